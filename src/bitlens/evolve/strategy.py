"""Search strategies over genomes: a (μ+λ) evolution strategy, and random search as its control.

Every function here is pure: it takes the scored survivors and a numpy Generator and returns
proposals, so a generation is a deterministic function of (seed, generation, survivors) and a
resumed run proposes exactly what the uninterrupted run proposed.

(μ+λ): λ children per generation; each child's parent is the winner of a k-way tournament among
the μ survivors, and with probability `crossover_rate` the child is the uniform crossover of two
tournament winners; then it is mutated. The next μ survivors are the best of parents ∪ children.
Failed evaluations never survive. Ties keep the older (lower id) evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bitlens.evolve.genome import GeneSpace, Genome


@dataclass(frozen=True)
class Scored:
    """A finished evaluation as the strategy sees it (fitness: higher is better)."""

    id: int
    genome: Genome
    fitness: float


@dataclass(frozen=True)
class Proposal:
    genome: Genome
    parents: tuple[int, ...]  # ids of the evaluations it was bred from (empty: sampled)
    kind: str = "new"  # "reevaluation": the survivor `parents[0]`, scored again on a new seed


def reevaluations(survivors: Sequence[Scored]) -> list[Proposal]:
    """The survivors, to be scored again on the new generation's seed.

    Fitness is noisy (the same genome moves by a few tenths between seeds), so a survivor kept
    on its old score is often just lucky; scoring it again next to the children (common random
    numbers) and selecting on the fresh scores lets luck wash out (research/evolution.md §4.4).
    """
    return [Proposal(s.genome, (s.id,), "reevaluation") for s in survivors]


@dataclass(frozen=True)
class ESConfig:
    mu: int  # survivors kept per generation
    lam: int  # children per generation
    tournament_size: int = 2
    crossover_rate: float = 0.5


def generation_rng(seed: int, generation: int, stream: int = 0) -> np.random.Generator:
    """Independent random streams per (run seed, generation, purpose)."""
    return np.random.default_rng(np.random.SeedSequence([seed, generation, stream]))


def sample_population(space: GeneSpace, n: int, rng: np.random.Generator) -> list[Proposal]:
    return [Proposal(space.sample(rng), ()) for _ in range(n)]


def tournament(pool: Sequence[Scored], k: int, rng: np.random.Generator) -> Scored:
    """The fittest of k members drawn with replacement (k=1 is uniform choice)."""
    picks = [pool[int(i)] for i in rng.integers(len(pool), size=max(1, k))]
    return max(picks, key=lambda s: (_rank(s.fitness), -s.id))


def _rank(fitness: float) -> float:
    return fitness if fitness == fitness else float("-inf")  # NaN loses every comparison


def propose_es(
    space: GeneSpace, survivors: Sequence[Scored], cfg: ESConfig, rng: np.random.Generator
) -> list[Proposal]:
    """λ children of the survivors by tournament, crossover and mutation."""
    if not survivors:  # everything failed so far: start over from random genomes
        return sample_population(space, cfg.lam, rng)
    children = []
    for _ in range(cfg.lam):
        a = tournament(survivors, cfg.tournament_size, rng)
        if len(survivors) > 1 and rng.random() < cfg.crossover_rate:
            b = tournament(survivors, cfg.tournament_size, rng)
            genome, parents = space.crossover(a.genome, b.genome, rng), tuple(sorted({a.id, b.id}))
        else:
            genome, parents = a.genome, (a.id,)
        children.append(Proposal(space.mutate(genome, rng), parents))
    return children


def propose_random(
    space: GeneSpace, survivors: Sequence[Scored], cfg: ESConfig, rng: np.random.Generator
) -> list[Proposal]:
    """Random search: λ fresh genomes each generation, ignoring the survivors."""
    return sample_population(space, cfg.lam, rng)


def select_survivors(candidates: Sequence[Scored], mu: int) -> list[Scored]:
    """(μ+λ) truncation: the μ fittest of parents ∪ children (NaN fitness never survives)."""
    ok = [c for c in candidates if c.fitness == c.fitness]
    return sorted(ok, key=lambda s: (-s.fitness, s.id))[:mu]


ProposeFn = Callable[[GeneSpace, Sequence[Scored], ESConfig, np.random.Generator], list[Proposal]]
STRATEGIES: dict[str, ProposeFn] = {"es": propose_es, "random": propose_random}
