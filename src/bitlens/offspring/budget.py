"""Cost and fitness: every offspring run is accounted in FLOPs, and fitness is bits per FLOP.

Cost = offspring training FLOPs (6·N·D + attention, from `GPT.flops_per_token(train=True)`,
paid for every forwarded token, masked or not) + the FLOPs of every other model the run needed:
the parent's scoring, generation and soft labels (2·N + attention per token,
`flops_per_token(train=False)`), and the reference model's training and scoring.
Fitness = (baseline held-out bits/byte − offspring held-out bits/byte) / (cost in TFLOPs), where
the baseline is the same offspring trained on a random selection of the same budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bitlens.errors import BitlensError
from bitlens.model import GPT

TFLOP = 1e12
FITNESS_UNIT = "bits/byte per TFLOP"


@dataclass(frozen=True)
class Cost:
    """FLOPs spent by one offspring run, by who spent them."""

    offspring_train_flops: float
    parent_flops: float = 0.0  # scoring + generation + soft labels
    reference_flops: float = 0.0  # reference model: training + scoring
    online_scoring_flops: float = 0.0  # the offspring scoring its candidates (online selection)

    @property
    def total_flops(self) -> float:
        return (
            self.offspring_train_flops + self.parent_flops + self.reference_flops + self.online_scoring_flops
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "total_flops": self.total_flops}


def inference_flops(model: GPT, tokens: int) -> float:
    """FLOPs for `tokens` forward-only tokens (scoring, generation, soft labels) at full context."""
    return tokens * model.flops_per_token(train=False)


def training_flops(model: GPT, tokens: int) -> float:
    """FLOPs to train on `tokens` tokens (forward + backward, 6·N + attention per token)."""
    return tokens * model.flops_per_token(train=True)


def steps_for_budget(budget_tokens: int, batch_size: int, block_size: int) -> int:
    """Optimizer steps that spend a training budget in tokens (rounded up, at least 1)."""
    if budget_tokens < 1:
        raise BitlensError(f"budget must be at least one token, got {budget_tokens}")
    return max(1, math.ceil(budget_tokens / (batch_size * block_size)))


def fitness(baseline_bits_per_byte: float, bits_per_byte: float, flops: float) -> float:
    """(baseline − this) held-out bits/byte per TFLOP of total cost (positive = better than random)."""
    if flops <= 0:
        raise BitlensError(f"cost must be positive, got {flops} FLOPs")
    return (baseline_bits_per_byte - bits_per_byte) / (flops / TFLOP)
