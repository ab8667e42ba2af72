"""Unit conversions. PyTorch losses are in nats; everything bitlens reports is in bits.

Convert once, where a loss leaves PyTorch, with these helpers.
"""

import math

import torch

LN2 = math.log(2.0)


def nats_to_bits(x):
    """Convert nats to bits (divide by ln 2). Works on floats, numpy arrays and tensors."""
    return x / LN2


def bits_to_nats(x):
    """Convert bits to nats (multiply by ln 2)."""
    return x * LN2


def surprisal_bits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position surprisal −log2 p(target) in bits, computed in float32.

    logits: (..., V); targets: (...) int64. Returns a tensor of shape (...).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    return nats_to_bits(-logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1))


def entropy_bits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy H(p) in bits of the predictive distribution softmax(logits) over the last dim."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return nats_to_bits(-(logp.exp() * logp).sum(-1))
