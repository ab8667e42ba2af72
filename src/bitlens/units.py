"""Unit conversions. PyTorch losses are in nats; everything bitlens reports is in bits.

Convert once, where a loss leaves PyTorch, with these helpers.
"""

import math

import torch

from bitlens.errors import BitlensError

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


def smoothed_surprisal_bits(logits: torch.Tensor, targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Per-position −log2 p̃(target) in bits under the smoothed prediction p̃ = (1 − ε)p + ε/V.

    V is the last dimension of `logits`. Computed in float64 as a log-sum of the two parts, so it
    never exceeds `smoothing_cap_bits(epsilon, V)`: the smoothing makes the log loss bounded.
    """
    if not 0.0 < epsilon <= 1.0:
        raise BitlensError(f"the smoothing ε must lie in (0, 1], got {epsilon}")
    logp = torch.log_softmax(logits.double(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    floor = math.log(epsilon / logits.shape[-1])
    smoothed = logp + math.log1p(-epsilon) if epsilon < 1.0 else torch.full_like(logp, -math.inf)
    return nats_to_bits(-torch.logaddexp(smoothed, torch.full_like(logp, floor)))


def smoothing_cap_bits(epsilon: float, vocab_size: int = 256) -> float:
    """The most bits a smoothed prediction (1 − ε)p + ε/V can cost: log2(V/ε)."""
    if not 0.0 < epsilon <= 1.0:
        raise BitlensError(f"the smoothing ε must lie in (0, 1], got {epsilon}")
    return nats_to_bits(-math.log(epsilon / vocab_size))
