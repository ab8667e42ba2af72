"""Search strategies over genomes, behind one registry: a (μ+λ) evolution strategy, random search
as its control, and Optuna's TPE through its ask/tell interface (`bitlens.evolve.optuna_search`).

Every strategy is pure: it takes the scored survivors, every finished evaluation so far and a numpy
Generator and returns proposals, so a generation is a deterministic function of (seed, generation,
stored evaluations) and a resumed run proposes exactly what the uninterrupted run proposed.

Selection is on the mean fitness of all of a genome's evaluations (`genome_means`): a genome
scored again (a re-evaluation, or a child identical to a genome already scored) adds a sample to its
mean instead of replacing its score, and survivors are ranked on that mean (ties: the genome first
evaluated earlier wins).

(μ+λ): λ children per generation; each child's parent is the winner of a k-way tournament among
the μ survivors, and with probability `crossover_rate` the child is the uniform crossover of two
tournament winners; then it is mutated. The next μ survivors are the best of parents ∪ children.
Failed evaluations never survive. Ties keep the older (lower id) evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bitlens.errors import BitlensError
from bitlens.evolve.genome import GeneSpace, Genome, Proposal, Scored


def genome_key(genome: Genome) -> str:
    """The genome's identity: two evaluations of equal genes are samples of one genome."""
    return json.dumps(genome, sort_keys=True)


def genome_means(evaluations: Sequence[Scored]) -> dict[str, Scored]:
    """Each distinct genome's mean fitness over all its evaluations (NaN ones left out), keyed by
    `genome_key`; its id is its first (lowest-id) evaluation, `n` the number averaged."""
    groups: dict[str, list[Scored]] = {}
    for e in sorted(evaluations, key=lambda e: e.id):
        if e.fitness == e.fitness:
            groups.setdefault(genome_key(e.genome), []).append(e)
    return {
        k: Scored(v[0].id, v[0].genome, float(np.mean([e.fitness for e in v])), len(v))
        for k, v in groups.items()
    }


def reevaluations(survivors: Sequence[Scored]) -> list[Proposal]:
    """The survivors, to be scored again on the new generation's seed.

    Fitness is noisy (the same genome moves by a few tenths between seeds), so a survivor kept
    on one score is often just lucky; scoring it again next to the children (common random
    numbers) adds a sample to its mean, so luck washes out (research/evolution.md §4.4, §8).
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
    space: GeneSpace,
    survivors: Sequence[Scored],
    history: Sequence[Scored],
    cfg: ESConfig,
    rng: np.random.Generator,
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
    space: GeneSpace,
    survivors: Sequence[Scored],
    history: Sequence[Scored],
    cfg: ESConfig,
    rng: np.random.Generator,
) -> list[Proposal]:
    """Random search: λ fresh genomes each generation, ignoring the survivors."""
    return sample_population(space, cfg.lam, rng)


def propose_optuna_tpe(
    space: GeneSpace,
    survivors: Sequence[Scored],
    history: Sequence[Scored],
    cfg: ESConfig,
    rng: np.random.Generator,
) -> list[Proposal]:
    """Optuna's TPE sampler, asked for λ genomes after every finished evaluation was told to it."""
    from bitlens.evolve.optuna_search import propose_tpe  # optuna is optional: imported on use

    return propose_tpe(space, history, cfg.lam, n_startup=cfg.mu, rng=rng)


def select_survivors(candidates: Sequence[Scored], mu: int) -> list[Scored]:
    """(μ+λ) truncation: the μ fittest of parents ∪ children (NaN fitness never survives; ties:
    the lower id). Pass genomes with their mean fitness (`genome_means`) to select on means."""
    ok = [c for c in candidates if c.fitness == c.fitness]
    return sorted(ok, key=lambda s: (-s.fitness, s.id))[:mu]


class Strategy(Protocol):
    """λ proposals from the survivors (mean fitness) and every finished evaluation (id order)."""

    def __call__(
        self,
        space: GeneSpace,
        survivors: Sequence[Scored],
        history: Sequence[Scored],
        cfg: ESConfig,
        rng: np.random.Generator,
    ) -> list[Proposal]: ...


STRATEGIES: dict[str, Strategy] = {
    "es": propose_es,
    "random": propose_random,
    "optuna-tpe": propose_optuna_tpe,
}


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise BitlensError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
