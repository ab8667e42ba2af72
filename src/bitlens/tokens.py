"""Token streams: how a model sees bytes, so one instrument serves byte models and tokenizers.

A bitlens `GPT` reads bytes (one token = one byte). A Hugging Face model (`bitlens.hf.HFModel`)
reads its tokenizer's tokens, each covering a run of bytes. A `TokenStream` records the token
ids, the virtual start token that predicts the first one, and where each token ends in the bytes,
so figures in bits per token convert exactly to bits per byte: the total bits are the same, only
the divisor changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from bitlens.data import START_BYTE, bytes_to_tensor
from bitlens.errors import BitlensError
from bitlens.evaluate import ByteScores, EvalResult, evaluate, score_bytes, score_windows


@dataclass(frozen=True)
class TokenStream:
    """Data as a model's tokens. Token i covers bytes [byte_ends[i-1], byte_ends[i])."""

    ids: torch.Tensor  # int64 (n_tokens,)
    start_id: int  # the virtual token before ids[0]; it predicts ids[0]
    byte_ends: np.ndarray  # int64 (n_tokens,), non-decreasing, last == n_bytes
    n_bytes: int

    def __len__(self) -> int:
        return len(self.ids)

    def inputs(self) -> torch.Tensor:
        """start_id followed by the ids (length n_tokens + 1): inputs[i] predicts ids[i]."""
        return torch.cat([torch.tensor([self.start_id], dtype=torch.long), self.ids])

    def last_byte(self) -> np.ndarray:
        """Index of each token's last byte: where a token's representation sits in the bytes."""
        return np.maximum(self.byte_ends - 1, 0)


def byte_stream(data: bytes) -> TokenStream:
    """The stream a byte-level model reads: every byte a token, START_BYTE before the first."""
    ids = bytes_to_tensor(data).long()
    return TokenStream(ids, START_BYTE, np.arange(1, len(data) + 1, dtype=np.int64), len(data))


def token_name(model) -> str:
    """What one token is for `model`: "byte" (bitlens GPT) or "token" (a tokenizer model)."""
    return "byte" if getattr(model, "encode", None) is None else "token"


def token_stream(model, data: bytes) -> TokenStream:
    """`data` as `model` reads it: bytes for a bitlens GPT, its tokenizer for an HF model."""
    if len(data) == 0:
        raise BitlensError("nothing to score: the data is empty")
    encode = getattr(model, "encode", None)
    return encode(data) if encode is not None else byte_stream(data)


def context_windows(stream: TokenStream, length: int, max_tokens: int | None = None):
    """Consecutive non-overlapping windows over the stream, for layer-wise measures.

    Returns (x, y, index), each (W, length) int64: x the inputs, y the next tokens, and index
    the position in `stream.ids` of the token x holds (−1 for the start token). Each window
    restarts the context; a tail shorter than `length` is dropped unless it is all there is.
    """
    seq = stream.inputs()
    n = len(stream) if max_tokens is None else min(len(stream), max_tokens)
    if n < length:
        length = n
    w = n // length
    x = seq[: w * length].view(w, length)
    y = stream.ids[: w * length].view(w, length)
    index = torch.arange(-1, w * length - 1).view(w, length)
    return x, y, index


@dataclass(frozen=True)
class TokenScores:
    """Per-token surprisal and predictive entropy in bits, with the token's byte span."""

    surprisal_bits: np.ndarray  # (n_tokens,) −log2 p(token | previous tokens)
    entropy_bits: np.ndarray | None  # (n_tokens,) entropy of the next-token distribution
    byte_ends: np.ndarray
    n_bytes: int

    @property
    def total_bits(self) -> float:
        return float(self.surprisal_bits.sum())


@torch.no_grad()
def score_tokens(
    model, data: bytes, batch_size: int | None = None, with_entropy: bool = False, progress: bool = False
) -> TokenScores:
    """Score every token of `data` (the first one after the start token), in bits.

    Windows as in `bitlens.evaluate`: the first window scores all its positions, each later one
    (shifted by half a context) only its last half, so every token beyond the first window sees
    at least half a context. Windows per batch: `batch_size`, by default as many as the model's
    token budget holds (`HFModel.batch_size`; 8 for a model without one). The progress bar shows
    tokens/s.
    """
    stream = token_stream(model, data)
    block = model.config.block_size
    if batch_size is None:
        budget = getattr(model, "batch_size", None)
        batch_size = budget(block) if budget is not None else 8
    stride = max(1, block // 2)
    surprisal, entropy = score_windows(
        model,
        stream.inputs(),
        stream.ids,
        block,
        stride,
        batch_size,
        with_entropy,
        progress,
        "scoring tokens",
        rate="tokens",
    )
    return TokenScores(surprisal, entropy, stream.byte_ends, stream.n_bytes)


def spread_over_bytes(per_token: np.ndarray, byte_ends: np.ndarray, n_bytes: int) -> np.ndarray:
    """Per-byte values whose sum over each token's bytes is that token's value.

    A token's bits are shared equally by its bytes. A token that covers no byte of its own (a
    tokenizer that splits a UTF-8 character) ends where the token before it ends, so the two
    share those bytes; a first token with no byte goes to byte 0. The total is preserved exactly.
    """
    ends, inverse = np.unique(byte_ends, return_inverse=True)
    totals = np.bincount(inverse, weights=per_token, minlength=len(ends))
    starts = np.concatenate([[0], ends[:-1]])
    out = np.zeros(n_bytes, dtype=np.float64)
    for s, e, t in zip(starts, ends, totals):
        if e > s:
            out[s:e] += t / (e - s)
        elif n_bytes > 0:  # only the first end can be 0 (ends are unique and sorted)
            out[0] += t
    return out


def score_bytes_any(model, data: bytes, with_entropy: bool = False, progress: bool = False) -> ByteScores:
    """Per-byte surprisal (and entropy) in bits for any model: exact for byte models; for a
    tokenizer model each token's bits are spread over its bytes (sum preserved)."""
    if getattr(model, "encode", None) is None:
        return score_bytes(model, data, with_entropy=with_entropy, progress=progress)
    t = score_tokens(model, data, with_entropy=with_entropy, progress=progress)
    ent = None if t.entropy_bits is None else spread_over_bytes(t.entropy_bits, t.byte_ends, t.n_bytes)
    return ByteScores(spread_over_bytes(t.surprisal_bits, t.byte_ends, t.n_bytes), ent)


@dataclass(frozen=True)
class TokenEvalResult:
    """Bits per byte of a tokenizer model, with its bits per token (same total bits)."""

    bits_per_byte: float
    bytes: int
    total_bits: float
    tokens: int
    bits_per_token: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_any(model, data: bytes, progress: bool = False) -> EvalResult | TokenEvalResult:
    """Cross-entropy of `data` in bits: per byte for a byte model; per byte and per token for a
    tokenizer model (one with `encode`, e.g. `bitlens.hf.HFModel`)."""
    if getattr(model, "encode", None) is None:
        return evaluate(model, data, progress=progress)
    with torch.no_grad():
        scores = score_tokens(model, data, progress=progress)
    total = scores.total_bits
    n_tok = len(scores.surprisal_bits)
    return TokenEvalResult(
        bits_per_byte=total / len(data),
        bytes=len(data),
        total_bits=total,
        tokens=n_tok,
        bits_per_token=total / n_tok,
    )
