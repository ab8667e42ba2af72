"""Lossless compression with a byte-level model: its cross-entropy, made into a real file.

Three modes share one coding loop (`bitlens.compress.loop`):
- offline:  a trained model, frozen; the decoder needs the same weights (checked by fingerprint).
- online:   no model is transmitted. Encoder and decoder start from the same seeded initial
            weights, code a segment, then take the same training steps on it (as NNCP does), so
            the output size is the prequential description length of the file.
- adaptive: online, but starting from a trained model (dynamic evaluation).
A fourth, counts, is the baseline the others are measured against: the count models, the match
model and the mixer of `bitlens.compress.mixing` without any network.

One range coder (constriction's `RangeEncoder`, `Categorical(perfect=False)`) codes all streams
interleaved, step by step; the file's header (`bitlens.compress.container`) records everything
decoding must repeat, and decoding checks it.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import zlib
from dataclasses import asdict, astuple, dataclass

import constriction
import numpy as np
import torch

from bitlens.compress.container import Header, crc32, pack_header, unpack
from bitlens.compress.device import decoding_device, device_name, on_device
from bitlens.compress.loop import CodeLengths, code_streams, plan_streams, stream_lengths
from bitlens.compress.mixing import MixConfig
from bitlens.compress.online import ONLINE_PRESET, OnlineConfig, default_schedule
from bitlens.data import START_BYTE
from bitlens.determinism import deterministic
from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.runs import weights_fingerprint

# Quantisation of probabilities to frequencies happens once, inside constriction, identically on
# both sides. perfect=False is the fast quantiser; the library's default is perfect=True.
_FAMILY = constriction.stream.model.Categorical(perfect=False)


# Target bytes per stream, and most streams, when cutting a file. Offline, more streams run the
# model on bigger batches (faster per byte) and cost almost nothing: 16 or 64 streams on 20 KB
# of enwik8 gave the same bits per byte. Online, fewer streams mean more updates per byte.
STREAM_BYTES = {"offline": 256, "online": 1024, "adaptive": 1024, "counts": 1024}
MAX_STREAMS = {"offline": 256, "online": 32, "adaptive": 32, "counts": 32}
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
    counts_only_bits: float | None = None  # with mixing: the same count models and mixer, no network
    tokens: int | None = None  # tokens mode: tokens coded (`bitlens.compress.token_coder`)
    tokens_per_second: float | None = None  # tokens mode

    @property
    def network_saves_bits_per_byte(self) -> float | None:
        """What the network's input saved inside the mixture, in bits per input byte."""
        if self.counts_only_bits is None or self.mode == "counts" or not self.input_bytes:
            return None
        return (self.counts_only_bits - self.model_bits) / self.input_bytes

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "bits_per_byte"}


def coded_result(
    mode: str, n: int, head: bytes, payload: bytes, model_bits: float, n_streams: int, seconds: float, **extra
) -> CompressResult:
    """The measurements of one coded file of n input bytes: sizes from its header and payload,
    overheads against the model's code length (bits), speed from `seconds`."""
    size = len(head) + len(payload)
    return CompressResult(
        mode=mode,
        input_bytes=n,
        output_bytes=size,
        bits_per_byte=8 * size / n if n else None,
        model_bits=model_bits,
        overhead_bits=8 * size - model_bits,
        header_bytes=len(head),
        coder_overhead_bits=8 * len(payload) - model_bits,
        n_streams=n_streams,
        seconds=seconds,
        bytes_per_second=n / max(seconds, 1e-9),
        **extra,
    )


# The online model, in header order (a file written before tie_embeddings existed is refused).
_MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "tie_embeddings")


def _mode_model(mode: str, model: GPT | None, params: dict, device: str) -> GPT | None:
    """The model the coding loop runs on `device`: the frozen model, a copy to adapt, a fresh
    init, or None (counts mode)."""
    if mode == "counts":
        return None
    return on_device(_fresh_or_given(mode, model, params), mode, device)


def _fresh_or_given(mode: str, model: GPT | None, params: dict) -> GPT:
    if mode != "online":
        if model is None:  # compress and decompress refuse this before coding
            raise BitlensError(f"{mode} mode needs a model")
        return model if mode == "offline" else copy.deepcopy(model)
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


def _plan(
    n: int,
    model: GPT | None,
    online: bool,
    preset: str | GPTConfig,
    seed: int,
    n_streams: int | None,
    schedule: OnlineConfig | None,
    mix: MixConfig | None,
    network: bool = True,
) -> _Plan:
    """Mode, stream layout and header parameters of a compression run over n bytes."""
    if not network:
        if model is not None or online:
            raise BitlensError("the counts-only coder uses no network: give neither a model nor online")
        if mix is None:
            raise BitlensError("the counts-only coder needs mixing settings")
        mode = "counts"
    elif model is None and not online:
        raise BitlensError("offline compression needs a model (or use online mode)")
    else:
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
    if mode in ("online", "adaptive"):
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
        params["mix"] = {**asdict(mix), "orders": list(mix.orders), "selectors": list(mix.selectors)}
    return _Plan(mode, S, L, params, schedule)


def _header_mix(params: dict) -> MixConfig | None:
    if "mix" not in params:
        return None
    try:
        fields = dict(params["mix"])
        fields["orders"] = tuple(int(k) for k in fields["orders"])
        # a file written before the mixer had selectors used the confidence weight set alone
        fields["selectors"] = tuple(str(k) for k in fields.get("selectors", ["confidence"]))
        fields.setdefault("word2", False)  # and before version 4, no two-word model
        return MixConfig(**fields)
    except (TypeError, ValueError, KeyError):
        raise BitlensError("corrupted file: invalid mixing settings in the header") from None


def _grid(data: bytes, S: int, L: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
    """The bytes as S rows of L (zero-padded), the coder's seq array, and the stream lengths."""
    flat = np.zeros(S * L, dtype=np.uint8)
    flat[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    seq = torch.full((S, L + 1), START_BYTE, dtype=torch.uint8)
    return flat.reshape(S, L), seq, stream_lengths(len(data), S, L)


def compress(
    data: bytes,
    model: GPT | None = None,
    online: bool = False,
    preset: str | GPTConfig = ONLINE_PRESET,
    seed: int = 0,
    n_streams: int | None = None,
    threads: int | None = None,
    schedule: OnlineConfig | None = None,
    progress: bool = False,
    trace: list[np.ndarray] | None = None,
    device: str = "cpu",
    mix: MixConfig | None = None,
    network: bool = True,
) -> tuple[bytes, CompressResult]:
    """Compress bytes losslessly: (file bytes, result). The mode follows the arguments:

    - model, not online → offline (decoding needs the same weights);
    - online, no model → online from `preset` (a MODEL_PRESETS name or a GPTConfig) initialised
      with `seed` (decoding needs nothing);
    - online and a model → adaptive (decoding needs the same starting weights).
    n_streams overrides the stream count; threads (default 1) is recorded and decoding uses the
    same count. trace, if given, receives every step's probabilities (see `code_streams`). device
    "cuda" runs the model on the GPU; the file then decodes only on the same GPU model. mix
    (online and adaptive) codes with the network mixed with count models (`bitlens.compress.mixing`);
    model_bits is then the mixture's code length, network_bits the network's alone and
    counts_only_bits what the same mixer codes without the network (measured in the same pass).
    network=False (with mix, no model, not online) is the counts-only coder.
    """
    if getattr(model, "tokenizer", None) is not None:
        raise BitlensError("a Hugging Face model codes its tokens: use bitlens.compress.compress_tokens")
    plan = _plan(len(data), model, online, preset, seed, n_streams, schedule, mix, network)
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
            coder_model = _mode_model(mode, model, params, device)
            lengths_bits = code_streams(
                coder_model, seq, lengths, encode, plan.schedule, seed, progress, trace, mix=mix
            )
    model_bits = lengths_bits.coded
    payload = encoder.get_compressed().astype("<u4").tobytes()
    header = Header(
        mode=mode,
        threads=threads,
        original_length=n,
        original_crc32=crc32(data),
        n_streams=S,
        payload_words=len(payload) // 4,
        payload_crc32=crc32(payload),
        fingerprint=bytes.fromhex(weights_fingerprint(model)) if model is not None else bytes(32),
        params=params,
    )
    head = pack_header(header)
    blob = head + payload
    seconds = time.perf_counter() - t0
    result = coded_result(
        mode,
        n,
        head,
        payload,
        model_bits,
        S,
        seconds,
        network_bits=lengths_bits.network if mix is not None and mode != "counts" else None,
        counts_only_bits=lengths_bits.counts_only if mix is not None else None,
    )
    if model is not None:
        result.params = model.num_params()
        if mode == "offline":
            result.bits_per_byte_with_model = (8 * len(blob) + 16 * model.num_params()) / n if n else None
    return blob, result


def estimate_bits(
    data: bytes,
    model: GPT | None = None,
    online: bool = False,
    preset: str | GPTConfig = ONLINE_PRESET,
    seed: int = 0,
    n_streams: int | None = None,
    threads: int | None = None,
    schedule: OnlineConfig | None = None,
    progress: bool = False,
    device: str = "cpu",
    mix: MixConfig | None = None,
    deterministic_kernels: bool = True,
    network: bool = True,
) -> CodeLengths:
    """The code lengths `compress` would measure with these arguments, without coding (bits):
    `.coded` is its model_bits, `.network` the network's own code length.

    Same streams, contexts and training as `compress`, but every context's probabilities come
    from one full-sequence forward instead of step-by-step KV-cache calls, so it runs several
    times faster and agrees with the real coder to float rounding (tested). A measurement for
    tuning online schedules; only a real `compress` proves the code length.
    deterministic_kernels=False keeps the caller's kernel setting (faster non-deterministic
    kernels are fine for an estimate, which never has to decode; some GPU ops refuse
    deterministic mode); the thread count is fixed either way.
    """
    plan = _plan(len(data), model, online, preset, seed, n_streams, schedule, mix, network)
    if not data:
        return CodeLengths()
    grid, seq, lengths = _grid(data, plan.n_streams, plan.stream_length)
    seq[:, 1:] = torch.as_tensor(grid)

    def no_symbols(p: np.ndarray) -> np.ndarray:
        raise AssertionError("estimate mode codes nothing")

    device_name(device)
    with deterministic(threads or DEFAULT_THREADS, kernels=deterministic_kernels):
        coder_model = _mode_model(plan.mode, model, plan.params, device)
        return code_streams(
            coder_model, seq, lengths, no_symbols, plan.schedule, seed, progress, estimate=True, mix=mix
        )


def read_header(blob: bytes) -> Header:
    """The verified header of a compressed file (see `bitlens.compress.container`)."""
    return unpack(blob)[0]


def decompress(
    blob: bytes, model: GPT | None = None, progress: bool = False, trace: list[np.ndarray] | None = None
) -> bytes:
    """Decode a file made by `compress`. Verifies the container, the model fingerprint, the
    torch version and thread count, and the CRC-32 of the output; any mismatch is a
    BitlensError, never silently wrong bytes.
    """
    header, payload = unpack(blob)
    params = header.params
    if header.mode == "tokens":
        raise BitlensError(
            "this file was coded with a Hugging Face model's tokens: decode it with "
            "bitlens.compress.decompress_tokens (bitlens decompress --model hf:DIR)"
        )
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
    lengths = stream_lengths(n, S, L)
    seq = torch.full((S, L + 1), START_BYTE, dtype=torch.uint8)
    device = decoding_device(str(params.get("device", "cpu")))
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))

    def decode(p: np.ndarray) -> np.ndarray:
        try:
            return decoder.decode(_FAMILY, p)
        except (ValueError, RuntimeError, AssertionError) as e:
            raise BitlensError(f"corrupted file: the code stream cannot be decoded ({e})") from None

    schedule = None
    if header.mode in ("online", "adaptive"):
        try:
            schedule = OnlineConfig(*params["schedule"])
        except (KeyError, TypeError, ValueError):
            raise BitlensError("corrupted file: invalid online schedule in the header") from None
    mix = _header_mix(params)
    if header.mode == "counts" and mix is None:
        raise BitlensError("corrupted file: a counts-only file without mixing settings")
    with deterministic(header.threads):
        coder_model = _mode_model(header.mode, model, params, device)
        code_streams(
            coder_model,
            seq,
            lengths,
            decode,
            schedule,
            int(params.get("seed", 0)),
            progress,
            trace,
            mix=mix,
        )
    out = seq[:, 1:].numpy().reshape(-1)[:n].tobytes()
    if zlib.crc32(out) & 0xFFFFFFFF != header.original_crc32:
        raise BitlensError(
            "decoded data fails its CRC-32 check: the model's probabilities differed from the "
            "encoder's (different hardware or library build?)"
        )
    return out
