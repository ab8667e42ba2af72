"""Lossless compression with a byte-level model: its cross-entropy, made into a real file.

Three modes share one coding loop:
- offline:  a trained model, frozen; the decoder needs the same weights (checked by fingerprint).
- online:   no model is transmitted. Encoder and decoder start from the same seeded initial
            weights, code a segment, then take the same training steps on it (as NNCP does), so
            the output size is the prequential description length of the file.
- adaptive: online, but starting from a trained model (dynamic evaluation).

The contract that makes decoding possible: the encoder and the decoder compute every
probability through the identical code path (`_code`): the file is cut into S contiguous
streams that advance in lockstep, one byte per stream per step, through the KV cache with batch
shape (S, 1); when a stream's context fills the window both sides re-prime it with the same
prefill of the last block/2 inputs; both sides use the same dtype and torch thread count. Batched
full-sequence logits differ from step-by-step ones in the last bits, which is why nothing here
uses them. The only difference between the two sides is the `symbols` callback: the encoder
reads a byte and codes it, the decoder decodes it. One range coder (constriction's
`RangeEncoder`, `Categorical(perfect=False)`) codes all streams interleaved, step by step.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import zlib
from dataclasses import asdict, astuple, dataclass
from typing import Callable, Iterator

import constriction
import numpy as np
import torch

from bitlens.container import Header, crc32, pack_header, unpack
from bitlens.data import START_BYTE
from bitlens.determinism import decoding_device, deterministic, device_name, on_device
from bitlens.errors import BitlensError
from bitlens.mixing import ContextMixer, MixConfig, mixture_code_bits
from bitlens.model import GPT, GPTConfig, KVCache, MODEL_PRESETS
from bitlens.online import (OnlineConfig, default_schedule, make_online_optimizer,
                            round_generator, round_lr, train_round)
from bitlens.progress import progress_bar
from bitlens.runs import weights_fingerprint
from bitlens.units import nats_to_bits

# Quantisation of probabilities to frequencies happens once, inside constriction, identically on
# both sides. perfect=False is the fast quantiser; the library's default is perfect=True.
_FAMILY = constriction.stream.model.Categorical(perfect=False)


# Target bytes per stream, and most streams, when cutting a file. Offline, more streams run the
# model on bigger batches (faster per byte) and cost almost nothing: 16 or 64 streams on 20 KB
# of enwik8 gave the same bits per byte. Online, fewer streams mean more updates per byte.
STREAM_BYTES = {"offline": 256, "online": 1024, "adaptive": 1024}
MAX_STREAMS = {"offline": 256, "online": 32, "adaptive": 32}
# One byte per stream per step is a small matmul: a second thread rarely pays for its
# synchronisation, and on a busy machine OpenMP spin-waits make it 10× slower.
DEFAULT_THREADS = 1


@dataclass
class CompressResult:
    """What a compression run measured. Sizes in bytes, code lengths in bits."""

    mode: str
    input_bytes: int
    output_bytes: int
    bits_per_byte: float | None  # 8 · output_bytes / input_bytes (None for empty input)
    model_bits: float  # Σ −log2 p(byte) under the model's float probabilities
    overhead_bits: float  # 8 · output_bytes − model_bits (header + range coder)
    header_bytes: int
    coder_overhead_bits: float  # 32 · payload words − model_bits (the range coder alone)
    n_streams: int
    seconds: float
    bytes_per_second: float
    params: int | None = None  # model parameters (offline, adaptive)
    bits_per_byte_with_model: float | None = None  # offline: weights at 2 bytes per parameter
    network_bits: float | None = None  # with mixing: Σ −log2 p under the network alone

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "bits_per_byte"}


def plan_streams(n: int, stream_bytes: int, max_streams: int) -> tuple[int, int]:
    """Cut n bytes into S contiguous streams of L bytes (the last may be shorter): (S, L).

    No stream is empty; S is at most max_streams and about n / stream_bytes.
    """
    if n == 0:
        return 0, 0
    s = min(max_streams, max(1, math.ceil(n / stream_bytes)))
    length = math.ceil(n / s)
    return math.ceil(n / length), length


def _stream_lengths(n: int, s: int, length: int) -> np.ndarray:
    return np.clip(n - length * np.arange(s), 0, length)


# A callback that receives the probabilities (m, 256) of the active streams at one step and
# returns their m bytes: the encoder codes known bytes, the decoder decodes them.
SymbolFn = Callable[[np.ndarray], np.ndarray]


@torch.no_grad()
def _predict(model: GPT, cache: KVCache, inputs: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (S, 256) in nats of the next byte after feeding `inputs` (S, T)."""
    logits = model(inputs.long(), cache)[:, -1, :]
    return torch.log_softmax(logits.float(), dim=-1).cpu()


def _context_chunks(start: int, end: int, block: int, keep: int) -> Iterator[tuple[int, int, int]]:
    """The coder's contexts over positions [start, end): (first input column, first, last+1 position).

    At `start` the cache is primed with the last `keep` inputs; each later position adds one
    input until the window is full, then the cache is re-primed. So one chunk's inputs are
    seq[:, a : stop] and its logits at offsets (first - a) … predict positions first … stop-1.
    """
    first = start
    while first < end:
        a = max(0, first + 1 - keep)
        stop = min(end, a + block)
        yield a, first, stop
        first = stop


@dataclass
class CodeLengths:
    """Code lengths accumulated by the coding loop, in bits."""

    coded: float = 0.0  # Σ −log2 p under the probabilities handed to the coder
    network: float = 0.0  # Σ −log2 p under the network alone (= coded without mixing)


def _code(model: GPT, seq: torch.Tensor, lengths: np.ndarray, symbols: SymbolFn,
          online: OnlineConfig | None, seed: int, progress: bool,
          trace: list | None = None, estimate: bool = False,
          mix: MixConfig | None = None) -> CodeLengths:
    """The coding loop shared by the encoder and the decoder; returns the code lengths.

    seq (S, L+1) uint8: column 0 is START_BYTE, column t+1 holds byte t of each stream (the
    decoder fills it as it goes). With `online`, the model is trained after every segment.
    With `mix`, the coder gets the network's distribution mixed with count models
    (`bitlens.mixing`). trace, if given, receives every step's probability array (for the
    bit-for-bit test). estimate=True (seq already full, nothing coded): each context chunk's
    log-probabilities come from one full-sequence forward instead of KV-cache steps, the same
    contexts and the same training, so the code lengths match the coder's to float rounding at
    a fraction of the cost. It only measures; `symbols` is not called. Used to tune schedules.
    """
    S, L = seq.shape[0], seq.shape[1] - 1
    block = model.config.block_size
    keep = max(1, block // 2)
    device = next(model.parameters()).device
    seq_host, seq = seq, seq.to(device)  # the model reads seq on its device; the caller gets seq_host
    cache = KVCache(model.config, S, device=device)
    lengths_t = torch.as_tensor(lengths)
    segment = online.segment if online else L
    mixer = ContextMixer(S, mix) if mix is not None else None
    opt = None
    if online is not None:
        opt = make_online_optimizer(model, online)
    model.eval()
    bits = CodeLengths()

    def step(logp_np: np.ndarray, pos: int, known: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Code one byte per active stream from the network's log-probabilities (S, 256) nats;
        returns (the bytes, the active-stream mask)."""
        active = pos < lengths
        if mixer is not None:
            p_active = mixer.predict(logp_np, active)
        else:
            probs = np.exp(logp_np)
            p_active = probs if active.all() else probs[active]
        if trace is not None:
            trace.append(p_active)
        got = symbols(p_active) if known is None else known[active]
        rows = np.arange(len(got))
        lp = logp_np if len(got) == S else logp_np[active]
        bits.network -= float(nats_to_bits(lp[rows, got].astype(np.float64).sum()))
        if mixer is not None:
            bits.coded += mixture_code_bits(p_active, got)
            mixer.update(got)
        bar.advance(int(active.sum()))
        return got, active

    with progress_bar(int(lengths.sum()), "coding", enabled=progress) as bar:
        for round_index, start in enumerate(range(0, L, segment)):
            end = min(L, start + segment)
            if estimate:
                for a, first, stop in _context_chunks(start, end, block, keep):
                    with torch.no_grad():
                        logits = model(seq[:, a:stop].long())[:, first - a :, :]
                    logp = torch.log_softmax(logits.float(), dim=-1)
                    target = seq[:, first + 1 : stop + 1].long()
                    if mixer is None:  # the network alone: all positions at once
                        lp = logp.gather(-1, target[..., None])[..., 0].cpu()
                        valid = torch.arange(first, stop)[None, :] < lengths_t[:, None]
                        bits.network -= float(nats_to_bits(lp[valid].double().sum()))
                        bar.advance(int(valid.sum()))
                        continue
                    logp_np, target_np = logp.cpu().numpy(), target.cpu().numpy()
                    for j, pos in enumerate(range(first, stop)):
                        step(logp_np[:, j], pos, target_np[:, j])
            for pos in range(start, end) if not estimate else ():
                if pos == start or cache.length == block:  # (re-)prime: a new round or a full window
                    cache.reset()
                    logp = _predict(model, cache, seq[:, max(0, pos + 1 - keep) : pos + 1])
                else:
                    logp = _predict(model, cache, seq[:, pos : pos + 1])
                got, active = step(logp.numpy(), pos, None)
                seq[torch.as_tensor(active).to(device), pos + 1] = torch.as_tensor(got.astype(np.uint8)).to(device)
            if online is not None and end < L:
                with torch.enable_grad():
                    train_round(model, opt, seq, lengths_t, end, online, round_lr(online, round_index),
                                round_generator(seed, round_index))
    if seq is not seq_host:
        seq_host.copy_(seq.cpu())
    if mixer is None:
        bits.coded = bits.network
    return bits


_MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd")  # online model, in header order


def _mode_model(mode: str, model: GPT | None, params: dict) -> GPT:
    """The model the coding loop runs: the frozen model, a copy to adapt, or a fresh init."""
    if mode == "offline":
        return model
    if mode == "adaptive":
        return copy.deepcopy(model)
    try:
        config = GPTConfig(**dict(zip(_MODEL_FIELDS, params["model"], strict=True)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params["seed"])
            return GPT(config).eval()
    except (KeyError, TypeError, ValueError, AssertionError):
        raise BitlensError("corrupted file: invalid online model in the header") from None


@dataclass
class _Plan:
    mode: str
    n_streams: int
    stream_length: int
    params: dict  # the header's mode parameters
    schedule: OnlineConfig | None


def _plan(n: int, model: GPT | None, online: bool, preset: str | GPTConfig, seed: int,
          n_streams: int | None, schedule: OnlineConfig | None, mix: MixConfig | None) -> _Plan:
    """Mode, stream layout and header parameters of a compression run over n bytes."""
    if model is None and not online:
        raise BitlensError("offline compression needs a model (or use online mode)")
    mode = "offline" if not online else ("adaptive" if model is not None else "online")
    if mix is not None and mode == "offline":
        raise BitlensError("mixing with count models is for the online and adaptive modes (add --online)")
    stream_bytes = STREAM_BYTES[mode]
    if n_streams is not None:
        if n_streams < 1:
            raise BitlensError("the number of streams must be at least 1")
        stream_bytes = max(1, math.ceil(n / n_streams))
    S, L = plan_streams(n, stream_bytes, max_streams=max(MAX_STREAMS[mode], n_streams or 0))
    params: dict = {"torch": torch.__version__}
    if mode != "offline":
        schedule = schedule or default_schedule(mode, n)
        params["schedule"] = list(astuple(schedule))
        params["seed"] = seed
    else:
        schedule = None
    if mode == "online":
        if isinstance(preset, str):
            if preset not in MODEL_PRESETS:
                raise BitlensError(f"unknown preset {preset!r}; choose from {', '.join(MODEL_PRESETS)}")
            preset = MODEL_PRESETS[preset]
        params["model"] = [getattr(preset, f) for f in _MODEL_FIELDS]
    if mix is not None:
        params["mix"] = {**asdict(mix), "orders": list(mix.orders)}
    return _Plan(mode, S, L, params, schedule)


def _header_mix(params: dict) -> MixConfig | None:
    if "mix" not in params:
        return None
    try:
        fields = dict(params["mix"])
        return MixConfig(**{**fields, "orders": tuple(int(k) for k in fields["orders"])})
    except (TypeError, ValueError, KeyError):
        raise BitlensError("corrupted file: invalid mixing settings in the header") from None


def _grid(data: bytes, S: int, L: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
    """The bytes as S rows of L (zero-padded), the coder's seq array, and the stream lengths."""
    grid = np.zeros(S * L, dtype=np.uint8)
    grid[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    grid = grid.reshape(S, L)
    seq = torch.full((S, L + 1), START_BYTE, dtype=torch.uint8)
    return grid, seq, _stream_lengths(len(data), S, L)


def compress(data: bytes, model: GPT | None = None, online: bool = False,
             preset: str | GPTConfig = "tiny",
             seed: int = 0, n_streams: int | None = None, threads: int | None = None,
             schedule: OnlineConfig | None = None, progress: bool = False,
             trace: list | None = None, device: str = "cpu",
             mix: MixConfig | None = None) -> tuple[bytes, CompressResult]:
    """Compress bytes losslessly: (file bytes, result). The mode follows the arguments:

    - model, not online → offline (decoding needs the same weights);
    - online, no model → online from `preset` (a MODEL_PRESETS name or a GPTConfig) initialised
      with `seed` (decoding needs nothing);
    - online and a model → adaptive (decoding needs the same starting weights).
    n_streams overrides the stream count; threads (default 1) is recorded and decoding uses the
    same count. trace, if given, receives every step's probabilities (see `_code`). device
    "cuda" runs the model on the GPU; the file then decodes only on the same GPU model. mix
    (online and adaptive) codes with the network mixed with count models (`bitlens.mixing`);
    model_bits is then the mixture's code length and network_bits the network's alone.
    """
    plan = _plan(len(data), model, online, preset, seed, n_streams, schedule, mix)
    mode, S, L, params = plan.mode, plan.n_streams, plan.stream_length, plan.params
    if (where := device_name(device)) != "cpu":
        params["device"] = where
    threads = threads or DEFAULT_THREADS
    t0 = time.perf_counter()
    n = len(data)
    encoder = constriction.stream.queue.RangeEncoder()
    lengths_bits = CodeLengths()
    if n:
        grid, seq, lengths = _grid(data, S, L)
        steps = itertools.count()

        def encode(p: np.ndarray) -> np.ndarray:
            pos = next(steps)
            col = grid[:, pos] if len(p) == S else grid[pos < lengths, pos]
            sym = col.astype(np.int32)
            encoder.encode(sym, _FAMILY, p)
            return sym

        with deterministic(threads):
            coder_model = on_device(_mode_model(mode, model, params), mode, device)
            lengths_bits = _code(coder_model, seq, lengths, encode, plan.schedule, seed, progress, trace,
                                 mix=mix)
    model_bits = lengths_bits.coded
    payload = encoder.get_compressed().astype("<u4").tobytes()
    header = Header(
        mode=mode, threads=threads, original_length=n, original_crc32=crc32(data), n_streams=S,
        payload_words=len(payload) // 4, payload_crc32=crc32(payload),
        fingerprint=bytes.fromhex(weights_fingerprint(model)) if model is not None else bytes(32),
        params=params,
    )
    head = pack_header(header)
    blob = head + payload
    seconds = time.perf_counter() - t0
    result = CompressResult(
        mode=mode, input_bytes=n, output_bytes=len(blob),
        bits_per_byte=8 * len(blob) / n if n else None, model_bits=model_bits,
        overhead_bits=8 * len(blob) - model_bits, header_bytes=len(head),
        coder_overhead_bits=8 * len(payload) - model_bits, n_streams=S, seconds=seconds,
        bytes_per_second=n / max(seconds, 1e-9),
        network_bits=lengths_bits.network if mix is not None else None,
    )
    if model is not None:
        result.params = model.num_params()
    if mode == "offline":
        result.bits_per_byte_with_model = (
            (8 * len(blob) + 16 * model.num_params()) / n if n else None
        )
    return blob, result


def estimate_model_bits(data: bytes, model: GPT | None = None, online: bool = False,
                        preset: str | GPTConfig = "tiny", seed: int = 0,
                        n_streams: int | None = None, threads: int | None = None,
                        schedule: OnlineConfig | None = None, progress: bool = False,
                        device: str = "cpu", mix: MixConfig | None = None) -> CodeLengths:
    """The code lengths `compress` would measure with these arguments, without coding (bits):
    `.coded` is its model_bits, `.network` the network's own code length.

    Same streams, contexts and training as `compress`, but every context's probabilities come
    from one full-sequence forward instead of step-by-step KV-cache calls, so it runs several
    times faster and agrees with the real coder to float rounding (tested). A measurement for
    tuning online schedules; only a real `compress` proves the code length.
    """
    plan = _plan(len(data), model, online, preset, seed, n_streams, schedule, mix)
    if not data:
        return CodeLengths()
    grid, seq, lengths = _grid(data, plan.n_streams, plan.stream_length)
    seq[:, 1:] = torch.as_tensor(grid)

    def no_symbols(p: np.ndarray) -> np.ndarray:
        raise AssertionError("estimate mode codes nothing")

    device_name(device)
    with deterministic(threads or DEFAULT_THREADS):
        coder_model = on_device(_mode_model(plan.mode, model, plan.params), plan.mode, device)
        return _code(coder_model, seq, lengths, no_symbols, plan.schedule, seed, progress,
                     estimate=True, mix=mix)


def read_header(blob: bytes) -> Header:
    """The verified header of a compressed file (see `bitlens.container`)."""
    return unpack(blob)[0]


def decompress(blob: bytes, model: GPT | None = None, progress: bool = False,
               trace: list | None = None) -> bytes:
    """Decode a file made by `compress`. Verifies the container, the model fingerprint, the
    torch version and thread count, and the CRC-32 of the output; any mismatch is a
    BitlensError, never silently wrong bytes.
    """
    header, payload = unpack(blob)
    params = header.params
    if header.mode in ("offline", "adaptive"):
        if model is None:
            raise BitlensError(
                f"this file was compressed in {header.mode} mode with a model "
                f"(weights {header.fingerprint.hex()[:12]}…); pass the same model (--model RUN_DIR)"
            )
        have = weights_fingerprint(model)
        if bytes.fromhex(have) != header.fingerprint:
            raise BitlensError(
                f"wrong model: the file needs weights {header.fingerprint.hex()[:12]}…, "
                f"the given model has {have[:12]}…"
            )
    if params.get("torch") != torch.__version__:
        raise BitlensError(
            f"the file was compressed with torch {params.get('torch')}, this is torch "
            f"{torch.__version__}; the model's probabilities would differ, decode with that version"
        )
    n = header.original_length
    if n == 0:
        if header.original_crc32 != crc32(b""):
            raise BitlensError("corrupted file: empty output fails its CRC-32 check")
        return b""
    S = header.n_streams
    L = math.ceil(n / S) if S else 0
    if S < 1 or math.ceil(n / L) != S:
        raise BitlensError("corrupted file: inconsistent stream layout")
    lengths = _stream_lengths(n, S, L)
    seq = torch.full((S, L + 1), START_BYTE, dtype=torch.uint8)
    device = decoding_device(str(params.get("device", "cpu")))
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))

    def decode(p: np.ndarray) -> np.ndarray:
        try:
            return decoder.decode(_FAMILY, p)
        except (ValueError, RuntimeError, AssertionError) as e:
            raise BitlensError(f"corrupted file: the code stream cannot be decoded ({e})") from None

    schedule = None
    if header.mode != "offline":
        try:
            schedule = OnlineConfig(*params["schedule"])
        except (KeyError, TypeError):
            raise BitlensError("corrupted file: invalid online schedule in the header") from None
    with deterministic(header.threads):
        coder_model = on_device(_mode_model(header.mode, model, params), header.mode, device)
        _code(coder_model, seq, lengths, decode, schedule, int(params.get("seed", 0)), progress,
              trace, mix=_header_mix(params))
    out = seq[:, 1:].numpy().reshape(-1)[:n].tobytes()
    if zlib.crc32(out) & 0xFFFFFFFF != header.original_crc32:
        raise BitlensError(
            "decoded data fails its CRC-32 check: the model's probabilities differed from the "
            "encoder's (different hardware or library build?)"
        )
    return out
