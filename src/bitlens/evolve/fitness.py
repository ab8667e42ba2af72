"""What evolution maximises: the two fitness forms, both in bits/byte, neither a ratio.

An evaluator reports an offspring's held-out gain `gain_bits_per_byte` (the random-selection
baseline's held-out bits/byte minus the offspring's, same budget and seed; higher is better) and its
cost `flops` (offspring training + parent + reference). The driver turns them into fitness:

- `gain-at-budget`: fitness = gain. The cost is a constraint, not a term: every genome trains on
  the same `budget_tokens` (the run pins that gene), so genomes are compared at a fixed cost.
- `penalised`: fitness = gain − λ · cost, with λ in bits/byte per TFLOP stated in the JSON.

A ratio gain / cost is not offered: near-zero costs divide noise into huge values, so selecting on
it picks the cheapest lucky genome, not the best policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bitlens.errors import BitlensError

TFLOP = 1e12
FITNESS_FORMS = ("gain-at-budget", "penalised")
# λ of the penalised form, bits/byte per TFLOP: a quick-scale evaluation costs ~0.05-0.15 TFLOP and
# gains (or loses) up to ~0.2 bits/byte, so λ = 1 charges ~0.05-0.15 bits/byte: the same order.
DEFAULT_COST_WEIGHT = 1.0


@dataclass(frozen=True)
class Fitness:
    """The fitness form and its constant (`cost_weight` λ: bits/byte per TFLOP, penalised only)."""

    form: str = "gain-at-budget"
    cost_weight: float = DEFAULT_COST_WEIGHT

    def __post_init__(self) -> None:
        if self.form not in FITNESS_FORMS:
            raise BitlensError(f"unknown fitness {self.form!r}; choose from {', '.join(FITNESS_FORMS)}")
        if self.cost_weight < 0:
            raise BitlensError(f"the cost weight λ must be non-negative, got {self.cost_weight}")

    def __call__(self, metrics: Mapping[str, Any]) -> float:
        """Fitness in bits/byte (higher is better) from an evaluator's metrics."""
        gain = float(metrics["gain_bits_per_byte"])
        if self.form == "gain-at-budget":
            return gain
        return gain - self.cost_weight * float(metrics["flops"]) / TFLOP

    def to_dict(self, budget_tokens: int | None = None) -> dict[str, Any]:
        """As the JSON names it: the form, its formula, units and constants."""
        if self.form == "gain-at-budget":
            return {
                "form": self.form,
                "formula": "gain",
                "unit": "bits/byte",
                "budget_tokens": budget_tokens,
                "cost_unit": "training tokens (pinned: every genome trains on budget_tokens)",
            }
        return {
            "form": self.form,
            "formula": "gain - lambda * cost",
            "unit": "bits/byte",
            "lambda_bits_per_byte_per_tflop": self.cost_weight,
            "cost_unit": "TFLOPs (offspring training + parent + reference)",
        }
