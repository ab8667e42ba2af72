"""Scoring bytes with a model: per-byte surprisal and entropy in bits, and bits per byte.

Every byte of the data is scored, the first one after the virtual START_BYTE. Long data is
scored in windows of the model's context: the first window scores all its positions, each later
window (shifted by `stride`) scores only its last `stride` positions, so every byte after the
first window sees at least block_size − stride bytes of context.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from bitlens.data import bytes_to_tensor, with_start
from bitlens.errors import BitlensError
from bitlens.model import GPT
from bitlens.progress import progress_bar
from bitlens.units import entropy_bits, smoothed_surprisal_bits, surprisal_bits


@dataclass(frozen=True)
class ByteScores:
    """Per-byte figures in bits (float64 arrays of length N)."""

    surprisal_bits: np.ndarray  # −log2 p(x_t | x_<t)
    entropy_bits: np.ndarray | None  # H(p_t), the predictive entropy before seeing x_t


@dataclass(frozen=True)
class EvalResult:
    bits_per_byte: float
    bytes: int
    total_bits: float

    def to_dict(self) -> dict:
        return asdict(self)


def _windows(n: int, block: int, stride: int) -> list[tuple[int, int, int]]:
    """(a, lo, e): feed inputs [a, e), keep predictions for targets [lo, e)."""
    out = [(0, 0, min(block, n))]
    done = out[0][2]
    while done < n:
        e = min(done + stride, n)
        out.append((max(0, e - block), done, e))
        done = e
    return out


@torch.no_grad()
def window_logits(model: GPT, windows: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Next-byte logits (n, T, V) for the inputs windows[:, :-1] of every (n, T + 1) window,
    each window scored on its own, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(w[:, :-1].long()) for w in windows.split(batch_size)])
    finally:
        model.train(was_training)


@torch.no_grad()
def window_scores(
    model: GPT,
    windows: torch.Tensor,
    batch_size: int = 64,
    with_entropy: bool = False,
    smoothing: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per target byte of every (n, T + 1) window, each window scored on its own: the surprisal
    −log2 p(x_t | window prefix) and, if asked, the entropy of the next-byte distribution, both
    (n, T) float64 arrays in bits. Runs in eval mode (the model's mode is restored), on the
    model's device.
    With `smoothing` ε the surprisal is that of (1 − ε)p + ε/256, at most log2(256/ε) bits
    (`units.smoothed_surprisal_bits`); the entropy stays that of the model's own p.

    The one scorer of independent windows: selection, distillation, capacity and the
    generalisation measure all use it.
    """
    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    surprisal, entropy = [], []
    try:
        for chunk in windows.split(batch_size):
            w = chunk.long().to(device)
            logits = model(w[:, :-1])
            if smoothing is None:
                surprisal.append(surprisal_bits(logits, w[:, 1:]).double().cpu().numpy())
            else:
                surprisal.append(smoothed_surprisal_bits(logits, w[:, 1:], smoothing).cpu().numpy())
            if with_entropy:
                entropy.append(entropy_bits(logits).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(surprisal), (np.concatenate(entropy) if with_entropy else None)


@torch.no_grad()
def score_bytes(
    model: GPT,
    data: bytes | torch.Tensor,
    stride: int | None = None,
    batch_size: int = 16,
    with_entropy: bool = False,
    progress: bool = False,
) -> ByteScores:
    """Score every byte of `data` with `model` (surprisal, and entropy if asked), in bits."""
    t = bytes_to_tensor(data) if isinstance(data, (bytes, bytearray)) else data
    n = len(t)
    if n == 0:
        raise BitlensError("nothing to score: the data is empty")
    block = model.config.block_size
    stride = stride or max(1, block // 2)
    if not 0 < stride <= block:
        raise BitlensError(f"stride must be in 1..{block}, got {stride}")
    was_training = model.training
    model.eval()
    try:
        surprisal, entropy = score_windows(
            model, with_start(t), t.long(), block, stride, batch_size, with_entropy, progress, "scoring"
        )
    finally:
        model.train(was_training)
    return ByteScores(surprisal_bits=surprisal, entropy_bits=entropy)


def score_windows(
    model,
    seq: torch.Tensor,
    targets: torch.Tensor,
    block: int,
    stride: int,
    batch_size: int,
    with_entropy: bool,
    progress: bool,
    label: str,
    rate: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Surprisal (and entropy) in bits of every target, seq[i] predicting targets[i], scored in
    overlapping windows of `block` shifted by `stride` (see `_windows`), `batch_size` at a time.

    The model is any callable mapping (B, T) ids to (B, T, V) logits (bytes or tokens); a model
    with `token_bits` (`bitlens.hf.HFModel`) computes the bits itself, where its logits are.
    `rate` names the unit the progress bar counts per second ("tokens").
    """
    token_bits = getattr(model, "token_bits", None)
    n = len(targets)
    surprisal = np.zeros(n, dtype=np.float64)
    entropy = np.zeros(n, dtype=np.float64) if with_entropy else None
    windows = _windows(n, block, stride)
    # The first window may be short; every later window has length exactly `block`.
    groups = [windows[:1]] + [windows[i : i + batch_size] for i in range(1, len(windows), batch_size)]
    with progress_bar(n, label, enabled=progress, rate=rate) as bar:
        for group in (g for g in groups if g):
            x = torch.stack([seq[a:e] for a, _, e in group])
            y = torch.stack([targets[a:e] for a, _, e in group])
            if token_bits is not None:
                s, h = token_bits(x, y, entropy is not None)
            else:
                logits = model(x)
                s = surprisal_bits(logits, y)
                h = entropy_bits(logits) if entropy is not None else None
            for row, (a, lo, e) in enumerate(group):
                surprisal[lo:e] = s[row, lo - a :].double().numpy()
                if entropy is not None and h is not None:
                    entropy[lo:e] = h[row, lo - a :].double().numpy()
                bar.advance(e - lo)
    return surprisal, entropy


def evaluate(
    model: GPT,
    data: bytes | torch.Tensor,
    stride: int | None = None,
    batch_size: int = 16,
    progress: bool = False,
) -> EvalResult:
    """Bits per byte of `data` under `model` (cross-entropy in bits, averaged over bytes)."""
    scores = score_bytes(model, data, stride=stride, batch_size=batch_size, progress=progress)
    total = float(scores.surprisal_bits.sum())
    n = len(scores.surprisal_bits)
    return EvalResult(bits_per_byte=total / n, bytes=n, total_bits=total)
