"""A known-answer evaluator for the evolution engine's tests (picklable: workers import it)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bitlens.evolve.genome import Choice, GeneSpace, Genome, policy_gene_space
from bitlens.runs import WEIGHTS_FILE, atomic_save_tensors


def _unit(space: GeneSpace, genome: Genome) -> dict[str, float]:
    """Real/integer genes mapped to [0, 1] (log genes in log space; pinned genes left out)."""
    out = {}
    for g in space.genes:
        if isinstance(g, Choice) or g.fixed:
            continue
        lo, hi, x = g.low, g.high, float(genome[g.name])
        if g.log:
            lo, hi, x = math.log(lo), math.log(hi), math.log(x)
        out[g.name] = (x - lo) / (hi - lo)
    return out


@dataclass(frozen=True)
class SyntheticEvaluator:
    """gain_bits_per_byte = −(Σ squared unit-scale distance of numeric genes + Σ categorical
    mismatches) − noise·N(0,1) seeded by the evaluation seed. Optimum: `target`, gain 0 (the
    run's gain-at-budget fitness is this gain).

    Held-out bits/byte = 2 − gain/10 and FLOPs = 1e6 × budget_tokens, so a Pareto front exists.
    Genomes whose `score` is in `fail_scores` raise; those in `nan_scores` return NaN; those in
    `crash_scores` kill their process (as the out-of-memory killer would: only use in a worker);
    each call sleeps `sleep_seconds` (for timing and kill tests).
    """

    target: Genome
    space: GeneSpace = field(default_factory=policy_gene_space)
    noise: float = 0.0
    fail_scores: tuple[str, ...] = ()
    nan_scores: tuple[str, ...] = ()
    crash_scores: tuple[str, ...] = ()
    sleep_seconds: float = 0.0

    def __call__(
        self, genome: Genome, seed: int, parent_model: str | None, weights_dir: str | None
    ) -> dict[str, Any]:
        self.space.check(genome)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        if genome["score"] in self.crash_scores:
            os._exit(137)
        if genome["score"] in self.fail_scores:
            raise RuntimeError(f"synthetic failure for score={genome['score']}")
        u, t = _unit(self.space, genome), _unit(self.space, self.target)
        distance = sum((u[k] - t[k]) ** 2 for k in u)
        distance += sum(
            genome[g.name] != self.target[g.name] for g in self.space.genes if isinstance(g, Choice)
        )
        eps = np.random.default_rng(seed).normal() if self.noise else 0.0
        gain = float("nan") if genome["score"] in self.nan_scores else -distance - self.noise * eps
        if weights_dir is not None:
            vector = torch.tensor([u[k] for k in sorted(u)], dtype=torch.float32)
            atomic_save_tensors(Path(weights_dir) / WEIGHTS_FILE, {"genes": vector})
        tokens = int(genome.get("budget_tokens", 1))
        return {
            "gain_bits_per_byte": gain,
            "heldout_bits_per_byte": 2.0 - gain / 10.0,
            "flops": 1e6 * tokens,
            "tokens": tokens,
        }
