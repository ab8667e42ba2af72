"""Distillation targets and what they carry from the parent, in bits.

An offspring batch is (x, y, mask): inputs, target bytes and a float loss mask (B, T). The
target decides the loss (returned in nats, PyTorch's unit; convert once with nats_to_bits):

- hard: cross-entropy on y (real bytes, or the parent's sampled bytes);
- soft: KL(p_parent ‖ q_offspring) on the parent's full next-byte distribution (Hinton et al.
  2015 at temperature 1), computed on the fly from a frozen parent;
- mix: half of each.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bitlens.errors import BitlensError
from bitlens.model import GPT
from bitlens.train import Batch, LossFn
from bitlens.units import nats_to_bits

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
        if w > 0:
            with torch.no_grad():
                parent_logits = parent(x)
            per_pos = per_pos + w * _kl_nats(parent_logits, logits)
        return (per_pos * mask).sum() / mask.sum().clamp_min(1.0)

    return loss


@torch.no_grad()
def kl_to_parent_bits(parent: GPT, model: GPT, windows: torch.Tensor, batch_size: int = 64) -> float:
    """Mean KL(p_parent ‖ q_model) in bits per byte over every target position of `windows`."""
    was = parent.training, model.training
    parent.eval()
    model.eval()
    total, n = 0.0, 0
    try:
        for i in range(0, len(windows), batch_size):
            x = windows[i : i + batch_size, :-1].long()
            kl = _kl_nats(parent(x), model(x))
            total += float(kl.double().sum())
            n += kl.numel()
    finally:
        parent.train(was[0])
        model.train(was[1])
    return float(nats_to_bits(total / n))


def mean_bits(values: np.ndarray | torch.Tensor, mask: np.ndarray | None = None) -> float:
    """Mean of per-token bits, over the masked entries when a mask is given."""
    v = values.double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    return float(v[mask].mean() if mask is not None else v.mean())
