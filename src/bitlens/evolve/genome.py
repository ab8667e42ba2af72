"""The genome: a data-curation policy as a dict of typed, bounded genes, with mutation/crossover.

A genome is a plain JSON-able dict {gene name: value} (the fields of
`bitlens.offspring.policy.CurationPolicy`), so the lineage store, the JSON output and the worker
processes all see the same thing. A `GeneSpace` says which values are legal and how they move:

- `Choice` genes (score rule, level, distillation target, offspring size) mutate by drawing a
  *different* value uniformly.
- `Real` genes mutate by a Gaussian step of `sigma` × (high − low), in log space when `log=True`,
  reflected back into [low, high] (reflection, unlike clipping, does not pile genomes on a bound:
  Ray Tune's ×1.2 perturbations escaping their range is the pitfall this avoids).
- `Integer` genes (token budget) mutate like `Real` genes in log space, then round.

Each gene mutates with probability `rate` (default 1/number of genes); a mutation changes at least
one gene that can move (a gene with one legal value, such as a pinned budget, never counts).
Crossover is uniform: each gene comes from either parent with probability 1/2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bitlens.errors import BitlensError

Genome = dict[str, Any]


@dataclass(frozen=True)
class Choice:
    name: str
    values: tuple[str, ...]

    @property
    def fixed(self) -> bool:
        return len(self.values) == 1

    def sample(self, rng: np.random.Generator) -> str:
        return self.values[int(rng.integers(len(self.values)))]

    def mutate(self, value: str, rng: np.random.Generator) -> str:
        others = [v for v in self.values if v != value]
        return others[int(rng.integers(len(others)))] if others else value

    def check(self, value: Any) -> None:
        if value not in self.values:
            raise BitlensError(f"gene {self.name}={value!r} is not one of {', '.join(self.values)}")


def _reflect(x: float, low: float, high: float) -> float:
    """Fold x back into [low, high] by mirroring at the bounds."""
    if high <= low:
        return low
    span = high - low
    y = (x - low) % (2 * span)
    return low + (y if y <= span else 2 * span - y)


@dataclass(frozen=True)
class Real:
    name: str
    low: float
    high: float
    sigma: float  # mutation step, as a fraction of the range (of log-range when log=True)
    log: bool = False

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    def _to(self, x: float) -> float:
        return math.log(x) if self.log else x

    def _from(self, u: float) -> float:
        return math.exp(u) if self.log else u

    def sample(self, rng: np.random.Generator) -> float:
        lo, hi = self._to(self.low), self._to(self.high)
        return float(self._from(rng.uniform(lo, hi)))

    def mutate(self, value: float, rng: np.random.Generator) -> float:
        lo, hi = self._to(self.low), self._to(self.high)
        u = self._to(value) + rng.normal(0.0, self.sigma * (hi - lo))
        return float(min(self.high, max(self.low, self._from(_reflect(u, lo, hi)))))

    def check(self, value: Any) -> None:
        if not isinstance(value, (int, float)) or not (self.low <= value <= self.high):
            raise BitlensError(f"gene {self.name}={value!r} is outside [{self.low}, {self.high}]")


@dataclass(frozen=True)
class Integer:
    name: str
    low: int
    high: int
    sigma: float  # mutation step as a fraction of the log-range
    log: bool = True

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    def _real(self) -> Real:
        return Real(self.name, float(self.low), float(self.high), self.sigma, self.log)

    def sample(self, rng: np.random.Generator) -> int:
        return int(min(self.high, max(self.low, round(self._real().sample(rng)))))

    def mutate(self, value: int, rng: np.random.Generator) -> int:
        return int(min(self.high, max(self.low, round(self._real().mutate(float(value), rng)))))

    def check(self, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not (self.low <= value <= self.high):
            raise BitlensError(f"gene {self.name}={value!r} is not an integer in [{self.low}, {self.high}]")


Gene = Choice | Real | Integer


@dataclass(frozen=True)
class GeneSpace:
    genes: tuple[Gene, ...]
    rate: float | None = None  # probability that mutation touches each gene (None: 1/len(genes))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.genes)

    def sample(self, rng: np.random.Generator) -> Genome:
        return {g.name: g.sample(rng) for g in self.genes}

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """A copy of `genome` with each gene mutated with probability `rate` (at least one that
        can move, when any can)."""
        rate = self.rate if self.rate is not None else 1.0 / len(self.genes)
        movable = np.array([not g.fixed for g in self.genes])
        hits = (rng.random(len(self.genes)) < rate) & movable
        if not hits.any() and movable.any():
            hits[np.flatnonzero(movable)[int(rng.integers(int(movable.sum())))]] = True
        out = dict(genome)
        for gene, hit in zip(self.genes, hits, strict=True):
            if hit:
                out[gene.name] = gene.mutate(genome[gene.name], rng)
        return out

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """Uniform crossover: each gene from `a` or `b` with probability 1/2."""
        take_a = rng.random(len(self.genes)) < 0.5
        return {g.name: (a if t else b)[g.name] for g, t in zip(self.genes, take_a, strict=True)}

    def check(self, genome: Genome) -> None:
        """Raise BitlensError unless `genome` has exactly these genes, each within bounds."""
        if set(genome) != set(self.names):
            raise BitlensError(f"genome genes {sorted(genome)} differ from {sorted(self.names)}")
        for gene in self.genes:
            gene.check(genome[gene.name])


def middle_budget_tokens(quick: bool = False) -> int:
    """The geometric middle of the token-budget gene's range: the default fixed budget."""
    low, high = (8_192, 65_536) if quick else (32_768, 524_288)
    return round(math.sqrt(low * high))


def policy_gene_space(quick: bool = False, budget_tokens: int | None = None) -> GeneSpace:
    """The genes of `CurationPolicy` with their bounds (quick: tiny offspring, smaller budgets).

    budget_tokens: pin the token budget to this value (fitness at a fixed cost), else search it.

    The choices come from the offspring registries, so a new score rule becomes a gene value.

    Bounds follow research/evolution.md: keep ratios that worked lie in 0.1–0.7, sampling at
    T ≈ 1 with top-p ≈ 0.9; token budgets span a 16× range on a log scale.
    """
    from bitlens.offspring.distill import SOFT_WEIGHT
    from bitlens.offspring.select import LEVELS, SCORES

    low, high = (8_192, 65_536) if quick else (32_768, 524_288)
    if budget_tokens is not None:
        if budget_tokens < 1:
            raise BitlensError(f"budget_tokens must be at least 1, got {budget_tokens}")
        low = high = budget_tokens
    budget = Integer("budget_tokens", low, high, 0.15)
    return GeneSpace(
        (
            Choice("score", tuple(SCORES)),
            Choice("level", LEVELS),
            Real("keep_ratio", 0.1, 1.0, 0.1),
            Real("synthetic_share", 0.0, 1.0, 0.1),
            Real("temperature", 0.5, 1.5, 0.1),
            Real("top_p", 0.5, 1.0, 0.1),
            Choice("target", tuple(SOFT_WEIGHT)),
            Choice("offspring_preset", ("tiny",) if quick else ("tiny", "small")),
            budget,
        )
    )


# A genome as the search strategies see it (`bitlens.evolve.strategy`, `optuna_search`).


@dataclass(frozen=True)
class Scored:
    """A genome as the strategy sees it: fitness (higher is better) is one evaluation's, or the mean
    of `n` evaluations of the genome, whose first evaluation is `id`."""

    id: int
    genome: Genome
    fitness: float
    n: int = 1


@dataclass(frozen=True)
class Proposal:
    genome: Genome
    parents: tuple[int, ...]  # ids of the evaluations it was bred from (empty: sampled)
    kind: str = "new"  # "reevaluation": the survivor `parents[0]`, scored again on a new seed
