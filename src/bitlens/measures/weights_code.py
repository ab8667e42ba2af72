"""A real two-part code: the trained weights as an entropy-coded file, then the data under them.

Blier & Ollivier (2018) charge a two-part code L(θ) + L(data | θ). Here L(θ) is the size of a
file that decodes, not a flat 16 or 32 bits per parameter:

1. Each tensor is quantised on a uniform grid of 2^b levels between its min and max, b in 2..8
   (a constant tensor stores its one value). The precision is chosen per layer (the tensors of
   `blocks.i`, the embeddings, the head) to minimise weights-file bits + data bits, the data
   scored under the *quantised* model.
2. The integers of each tensor are coded with constriction's range coder under a categorical
   model whose table is the tensor's own histogram; the table is stored in the file (varint
   counts), so the size counts it.
3. The data is coded with the offline coder of `bitlens.compress` under the model decoded from
   the weights file, and decoded back. two_part_bits = weights_file_bits + data_bits, both sizes
   of real files that were decoded and compared.

Weights-file layout (little-endian), self-delimiting:

    magic b"\\x89BLW" | version u8 | index length u32 | index: zlib(JSON {"config": GPTConfig or
    null, "tensors": [[name, shape, bits], ...]}) | per tensor: bits 0 → value f32; else lo f32,
    step f32, 2^bits histogram counts (LEB128) | payload words (LEB128) | payload (u32 words)

A value decodes as lo + q·step in float32, the same expression the encoder used, so the decoded
model equals the quantised one bit for bit. Nothing is pickled.

Also here: the Occam (compression) bound of Lotfi et al. (2023) computed from the file's size.
"""

from __future__ import annotations

import json
import math
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import constriction
import numpy as np
import torch

from bitlens.compress.coder import compress, decompress
from bitlens.data import VOCAB_SIZE, bytes_to_tensor, with_start
from bitlens.errors import BitlensError
from bitlens.evaluate import window_scores
from bitlens.model import GPT, GPTConfig
from bitlens.runs import apply_weights, model_state
from bitlens.units import smoothing_cap_bits

MAGIC = b"\x89BLW"
FORMAT_VERSION = 1
BITS_CHOICES = (2, 3, 4, 5, 6, 7, 8)
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")


# --- Quantisation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantisedTensor:
    """A tensor on a uniform grid: value_i = lo + q_i·step (float32); bits 0 = constant lo."""

    name: str
    shape: tuple[int, ...]
    bits: int
    lo: float  # a float32 value
    step: float  # a float32 value (0 for a constant tensor)
    q: np.ndarray  # int32 grid indices in [0, 2^bits), flattened

    def values(self) -> torch.Tensor:
        """The dequantised float32 tensor: the one expression encoder and decoder both use."""
        v = np.float32(self.lo) + self.q.astype(np.float32) * np.float32(self.step)
        return torch.from_numpy(np.asarray(v, dtype=np.float32).reshape(self.shape))


def quantise(name: str, tensor: torch.Tensor, bits: int) -> QuantisedTensor:
    """Round `tensor` to the uniform 2^bits-level grid spanning [min, max] (bits in 1..16)."""
    if not 1 <= bits <= 16:
        raise BitlensError(f"quantisation needs 1..16 bits, got {bits}")
    w = tensor.detach().cpu().float().numpy().ravel()
    shape = tuple(tensor.shape)
    if w.size == 0:
        return QuantisedTensor(name, shape, 0, 0.0, 0.0, np.zeros(0, np.int32))
    if not np.isfinite(w).all():
        raise BitlensError(f"cannot quantise {name}: it holds inf or nan")
    lo, hi = np.float32(w.min()), np.float32(w.max())
    step = np.float32((float(hi) - float(lo)) / (2**bits - 1))
    if hi == lo or step == 0:
        return QuantisedTensor(name, shape, 0, float(lo), 0.0, np.zeros(w.size, np.int32))
    q = np.clip(np.rint((w.astype(np.float64) - float(lo)) / float(step)), 0, 2**bits - 1)
    return QuantisedTensor(name, shape, bits, float(lo), float(step), q.astype(np.int32))


# --- The weights file --------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(blob) or shift > 63:
            raise BitlensError("corrupted weights file: truncated or invalid integer")
        byte = blob[pos]
        n |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return n, pos


def _categorical(counts: np.ndarray):
    """The coding model of one tensor: its histogram, as both sides compute it from the counts."""
    return constriction.stream.model.Categorical(counts / counts.sum(), perfect=False)


def encode_weights(tensors: Iterable[QuantisedTensor], config: GPTConfig | None = None) -> bytes:
    """The weights file of `tensors` (in order), with the model config if given."""
    tensors = list(tensors)
    index = {
        "config": config.to_dict() if config is not None else None,
        "tensors": [[t.name, list(t.shape), t.bits] for t in tensors],
    }
    packed = zlib.compress(json.dumps(index, separators=(",", ":")).encode(), 9)
    out = bytearray(MAGIC + bytes([FORMAT_VERSION]) + _U32.pack(len(packed)) + packed)
    encoder = constriction.stream.queue.RangeEncoder()
    for t in tensors:
        if t.bits == 0:
            out += _F32.pack(t.lo)
            continue
        counts = np.bincount(t.q, minlength=2**t.bits)
        out += _F32.pack(t.lo) + _F32.pack(t.step) + b"".join(_varint(int(c)) for c in counts)
        encoder.encode(t.q, _categorical(counts.astype(np.float64)))
    words = encoder.get_compressed()
    out += _varint(len(words)) + words.astype("<u4").tobytes()
    return bytes(out)


def decode_weights(blob: bytes) -> tuple[GPTConfig | None, list[QuantisedTensor]]:
    """Read a file written by `encode_weights`: the config (if stored) and the tensors."""
    if blob[:4] != MAGIC:
        raise BitlensError("not a bitlens weights file (bad magic)")
    if len(blob) < 9 or blob[4] != FORMAT_VERSION:
        raise BitlensError("unsupported or truncated weights file")
    (n_index,) = _U32.unpack_from(blob, 5)
    pos = 9 + n_index
    try:
        index = json.loads(zlib.decompress(blob[9:pos]))
        config = GPTConfig.from_dict(index["config"]) if index["config"] is not None else None
        specs = [(str(n), tuple(int(s) for s in shape), int(b)) for n, shape, b in index["tensors"]]
    except (zlib.error, ValueError, KeyError, TypeError):
        raise BitlensError("corrupted weights file: unreadable index") from None
    tables: list[tuple[float, float, np.ndarray | None]] = []
    try:
        for _, _, bits in specs:
            (lo,) = _F32.unpack_from(blob, pos)
            if bits == 0:
                tables.append((lo, 0.0, None))
                pos += 4
                continue
            (step,) = _F32.unpack_from(blob, pos + 4)
            pos += 8
            table = []
            for _ in range(2**bits):
                c, pos = _read_varint(blob, pos)
                table.append(c)
            tables.append((lo, step, np.array(table, dtype=np.float64)))
    except struct.error:
        raise BitlensError("corrupted weights file: truncated tables") from None
    n_words, pos = _read_varint(blob, pos)
    if len(blob) != pos + 4 * n_words:
        raise BitlensError("corrupted weights file: wrong payload length")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(blob[pos:], dtype="<u4").astype(np.uint32))
    tensors = []
    for (name, shape, bits), (lo, step, counts) in zip(specs, tables, strict=True):
        size = math.prod(shape)
        if counts is None:
            q = np.zeros(size, np.int32)
        else:
            if counts.sum() != size:
                raise BitlensError(f"corrupted weights file: histogram of {name} does not match its shape")
            q = np.asarray(decoder.decode(_categorical(counts), size), dtype=np.int32)
        tensors.append(QuantisedTensor(name, shape, bits, lo, step, q))
    return config, tensors


def quantised_model(model: GPT, bits: dict[str, int]) -> tuple[GPT, list[QuantisedTensor]]:
    """A copy of `model` with every tensor of `model_state` quantised at bits[name]."""
    tensors = [quantise(k, v, bits[k]) for k, v in model_state(model).items()]
    return model_from_tensors(model.config, tensors), tensors


def model_from_tensors(config: GPTConfig, tensors: list[QuantisedTensor]) -> GPT:
    copy = GPT(config)
    apply_weights(copy, {t.name: t.values() for t in tensors}, "the weights file")
    return copy.eval()


# --- Choosing the precision --------------------------------------------------------------------


def layer_of(name: str) -> str:
    """The group a tensor's precision is chosen with: `blocks.i`, `head` (ln_f, lm_head), or
    the tensor's top-level module (wte, wpe)."""
    parts = name.split(".")
    if parts[0] == "blocks" and len(parts) > 1:
        return f"blocks.{parts[1]}"
    return "head" if parts[0] in ("ln_f", "lm_head") else parts[0]


@dataclass(frozen=True)
class PrecisionSearch:
    """The search's estimates of two-part totals, in bits (weights file + data bits scaled to n)."""

    layer_bits: dict[str, int]  # chosen precision per layer
    chosen_total_bits: float  # the estimate for the chosen mix: ≤ every fixed_total_bits value
    fixed_total_bits: dict[str, float]  # {"2": …, …, "8": …} one precision for every tensor
    evaluations: int


def search_precision(
    layers: list[str],
    total_bits: Callable[[dict[str, int]], float],
    choices: tuple[int, ...] = BITS_CHOICES,
) -> PrecisionSearch:
    """Minimise total_bits(layer → bits) over precisions in `choices` (consecutive integers):
    the best single precision first, then one pass of coordinate descent over the layers, each
    stepping its precision down, then up, one bit at a time while the total falls.

    The result is never worse than any single precision, since those are the starting points.
    """
    seen: dict[tuple[int, ...], float] = {}

    def total(assign: dict[str, int]) -> float:
        key = tuple(assign[g] for g in layers)
        if key not in seen:
            seen[key] = total_bits(assign)
        return seen[key]

    fixed = {b: total(dict.fromkeys(layers, b)) for b in choices}
    best_b = min(fixed, key=lambda b: fixed[b])
    assign, best = dict.fromkeys(layers, best_b), fixed[best_b]
    for g in layers:
        for direction in (-1, 1):
            while assign[g] + direction in choices:
                trial = {**assign, g: assign[g] + direction}
                t = total(trial)
                if t >= best:
                    break
                assign, best = trial, t
    return PrecisionSearch(assign, best, {str(b): v for b, v in fixed.items()}, len(seen))


# --- The compression bound ---------------------------------------------------------------------


def compression_bound_bits_per_byte(
    weights_file_bits: float,
    n_samples: int,
    smoothed_loss_bits_per_byte: float,
    epsilon: float,
    delta: float = 0.05,
    vocab: int = VOCAB_SIZE,
) -> float:
    """The Occam (compression) bound of Lotfi et al. 2023, "Non-vacuous generalization bounds for
    large language models" (Hoeffding with the prior 2^−K(h) over models), in bits per byte.

    With probability ≥ 1 − δ over n i.i.d. samples, the expected smoothed loss is at most

        R̂ + C·sqrt((K·ln 2 + ln(1/δ)) / (2n)),

    where R̂ is the empirical smoothed loss (bits/byte) of p ← (1 − ε)·p + ε/vocab, the loss lies
    in [0, C] with C = log2(vocab/ε) bits (Lotfi use the slightly smaller range
    log2(1 + (1 − ε)·vocab/ε)), and K = L + 2·log2 L bits is a prefix-free code length for a
    weights file of L bits. ε and δ must be fixed before seeing the data (else add the log of
    the number of values tried). Samples are i.i.d. in the theorem; the bytes of one text are
    not, so with n = bytes this is a reading of the formula, not a guarantee (Lotfi count
    documents).
    """
    if n_samples < 1 or weights_file_bits < 1 or not 0 < delta < 1:
        raise BitlensError("the bound needs n ≥ 1 samples, a file of ≥ 1 bit and 0 < δ < 1")
    cap = smoothing_cap_bits(epsilon, vocab)
    k_bits = weights_file_bits + 2 * math.log2(weights_file_bits)
    return smoothed_loss_bits_per_byte + cap * math.sqrt(
        (k_bits * math.log(2) + math.log(1 / delta)) / (2 * n_samples)
    )


# --- The two-part code -------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsCodeConfig:
    """How the weights are coded. search_bytes: bytes scored per candidate precision (spread
    over the data in independent windows); epsilon, delta: the compression bound's settings."""

    bits_choices: tuple[int, ...] = BITS_CHOICES
    search_bytes: int = 16_384
    epsilon: float = 0.01
    delta: float = 0.05

    def to_dict(self) -> dict:
        return {**asdict(self), "bits_choices": list(self.bits_choices)}


@dataclass(frozen=True)
class TwoPartCode:
    """Weights as a decoded file, then the data coded under them, in bits (sizes of real files)."""

    two_part_bits: float  # weights_file_bits + data_bits
    weights_file_bits: float  # 8 · weights_file_bytes
    weights_file_bytes: int
    data_bits: float  # 8 · bytes of the data file, coded offline under the decoded model
    data_model_bits: float  # Σ −log2 p(byte) under the quantised model (the coder's target)
    weight_bits_per_parameter: float  # weights_file_bits / params
    params: int
    tensor_bits: dict[str, int]  # precision per tensor in the file (0: a constant tensor)
    layer_bits: dict[str, int]  # precision chosen per layer
    search: dict  # PrecisionSearch estimates: chosen_total_bits, fixed_total_bits, evaluations
    compression_bound: dict  # Lotfi et al.'s Occam bound on the coded data (see its function)
    seconds: float
    config: dict  # WeightsCodeConfig.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)


def _search_windows(t: torch.Tensor, block_size: int, search_bytes: int) -> torch.Tensor:
    """Up to search_bytes // block_size windows of block_size + 1 bytes, evenly spread over t."""
    span = block_size + 1
    n = max(1, min(search_bytes // block_size, len(t) // span))
    starts = np.linspace(0, len(t) - span, n).round().astype(int)
    return torch.stack([t[s : s + span] for s in starts])


def two_part_code(data: bytes, model: GPT, cfg: WeightsCodeConfig | None = None) -> TwoPartCode:
    """The two-part code of `data` with `model`'s weights quantised at the precisions that
    minimise the total; both files are decoded and compared before any size is reported."""
    cfg = cfg or WeightsCodeConfig()
    t0 = time.perf_counter()
    t = bytes_to_tensor(data)
    n = len(t)
    if n <= model.config.block_size:
        raise BitlensError(f"the two-part code needs more than {model.config.block_size} bytes")
    state = model_state(model)
    layers = list(dict.fromkeys(layer_of(k) for k in state))
    windows = _search_windows(t, model.config.block_size, cfg.search_bytes)
    scale = n / windows[:, 1:].numel()

    def total_bits(assign: dict[str, int]) -> float:
        qmodel, tensors = quantised_model(model, {k: assign[layer_of(k)] for k in state})
        data_bits = float(window_scores(qmodel, windows)[0].sum()) * scale
        return 8.0 * len(encode_weights(tensors, model.config)) + data_bits

    search = search_precision(layers, total_bits, cfg.bits_choices)
    qmodel, tensors = quantised_model(model, {k: search.layer_bits[layer_of(k)] for k in state})
    blob = encode_weights(tensors, model.config)
    config, decoded = decode_weights(blob)
    for a, b in zip(tensors, decoded, strict=True):
        if a.name != b.name or not torch.equal(a.values().view(torch.int32), b.values().view(torch.int32)):
            raise BitlensError(f"weights file round trip failed on {a.name}")  # a bug, never expected
    receiver = model_from_tensors(config or model.config, decoded)
    data_blob, coded = compress(data, qmodel)
    if decompress(data_blob, receiver) != data:
        raise BitlensError("the data did not decode under the decoded weights")  # a bug
    params = sum(v.numel() for v in state.values())
    weights_bits = 8.0 * len(blob)
    # The bound's empirical loss: every byte scored once, in windows of block_size bytes that
    # tile the data (as the generalisation measure scores them), under smoothed predictions.
    T = model.config.block_size
    inputs = with_start(t)
    tiles = inputs[: (len(inputs) - 1) // T * T + 1].unfold(0, T + 1, T)
    smoothed = window_scores(qmodel, tiles, smoothing=cfg.epsilon)[0]
    loss = float(smoothed.mean())
    bound_bpb = compression_bound_bits_per_byte(weights_bits, smoothed.size, loss, cfg.epsilon, cfg.delta)
    bound = {
        "bits_per_byte": bound_bpb,
        "vacuous": bound_bpb >= 8.0,  # no better than sending bytes as they are
        "smoothed_loss_bits_per_byte": loss,
        "loss_cap_bits": smoothing_cap_bits(cfg.epsilon),
        "epsilon": cfg.epsilon,
        "delta": cfg.delta,
        "n_samples": int(smoothed.size),
    }
    return TwoPartCode(
        two_part_bits=weights_bits + 8.0 * len(data_blob),
        weights_file_bits=weights_bits,
        weights_file_bytes=len(blob),
        data_bits=8.0 * len(data_blob),
        data_model_bits=coded.model_bits,
        weight_bits_per_parameter=weights_bits / params,
        params=params,
        tensor_bits={q.name: q.bits for q in tensors},
        layer_bits=search.layer_bits,
        search={
            "chosen_total_bits": search.chosen_total_bits,
            "fixed_total_bits": search.fixed_total_bits,
            "evaluations": search.evaluations,
            "search_bytes": int(windows[:, 1:].numel()),
        },
        compression_bound=bound,
        seconds=time.perf_counter() - t0,
        config=cfg.to_dict(),
    )
