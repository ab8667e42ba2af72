"""Distillation targets and what they carry from the parent, in bits.

An offspring batch is (x, y, mask): inputs, target bytes and a float loss mask (B, T). The
target decides the loss (returned in nats, PyTorch's unit; convert once with nats_to_bits):

- hard: cross-entropy on y (real bytes, or the parent's sampled bytes);
- soft: KL(p_parent ‖ q_offspring) on the parent's full next-byte distribution (Hinton et al.
  2015 at temperature 1), computed on the fly from a frozen parent;
- mix: half of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from bitlens.errors import BitlensError
from bitlens.evaluate import window_logits
from bitlens.model import GPT
from bitlens.train import Batch, LossFn
from bitlens.units import nats_to_bits, surprisal_bits

# Weight of the soft-label (KL) term; the hard cross-entropy gets 1 − weight.
SOFT_WEIGHT: dict[str, float] = {"hard": 0.0, "soft": 1.0, "mix": 0.5}


def _kl_nats(parent_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-position KL(p ‖ q) in nats for logits (..., V)."""
    logp = torch.log_softmax(parent_logits.float(), dim=-1)
    logq = torch.log_softmax(logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def distill_loss(target: str, parent: GPT | None = None) -> LossFn:
    """The loss (nats, mean over masked positions) that trains an offspring on `target`."""
    if target not in SOFT_WEIGHT:
        raise BitlensError(f"unknown target {target!r}; choose from {', '.join(SOFT_WEIGHT)}")
    w = SOFT_WEIGHT[target]
    if w > 0 and parent is None:
        raise BitlensError(f"target {target!r} needs the parent's distributions")

    def loss(model: GPT, batch: Batch) -> torch.Tensor:
        x, y, mask = batch[0], batch[1], batch[2]
        logits = model(x)
        per_pos = torch.zeros_like(mask)
        if w < 1:
            ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            per_pos = per_pos + (1 - w) * ce.view_as(mask)
        if w > 0 and parent is not None:  # (a soft target without a parent was refused above)
            with torch.no_grad():
                parent_logits = parent(x)
            per_pos = per_pos + w * _kl_nats(parent_logits, logits)
        return (per_pos * mask).sum() / mask.sum().clamp_min(1.0)

    return loss


@dataclass(frozen=True)
class HeldoutScore:
    """A model on held-out windows: cross-entropy and KL to the parent, bits per byte."""

    bits_per_byte: float
    kl_to_parent_bits: float | None  # None when no parent was given
    bytes: int
    surprisal_bits: np.ndarray = field(repr=False, compare=False)  # per target byte, (n, T)


def heldout_score(
    model: GPT, windows: torch.Tensor, parent_logits: torch.Tensor | None = None
) -> HeldoutScore:
    """Bits/byte of the windows' targets under `model` (each (T + 1)-byte window scored on its
    own), and its mean KL(p_parent ‖ q) in bits per byte when the parent's logits are given."""
    logits = window_logits(model, windows, batch_size=64)
    surprisal = surprisal_bits(logits, windows[:, 1:].long()).double().numpy()
    n = surprisal.size
    kl = None
    if parent_logits is not None:
        kl = float(nats_to_bits(float(_kl_nats(parent_logits, logits).double().sum()) / n))
    return HeldoutScore(
        bits_per_byte=float(surprisal.mean()), kl_to_parent_bits=kl, bytes=n, surprisal_bits=surprisal
    )
