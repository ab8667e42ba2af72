"""Optuna's TPE as an evolution arm, through its ask/tell interface.

A generation's proposals are a pure function of (the rng's seed, the stored evaluations): a fresh
in-memory study with a `TPESampler` seeded from the generation's rng is told every finished
evaluation in id order (`study.add_trial` of a completed trial: the tell of an evaluation made
elsewhere), then asked for λ trials (`study.ask`). A resumed run rebuilds exactly that study from the
lineage store, and the driver, not a worker, asks, so every backend proposes the same genomes.

The gene space maps onto Optuna's distributions: `Choice` → `CategoricalDistribution`, `Real` →
`FloatDistribution`, `Integer` → `IntDistribution` (log scale where the gene has it). Optuna is an
optional dependency (`pip install 'bitlens[evolve]'`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bitlens.errors import BitlensError
from bitlens.evolve.genome import Choice, GeneSpace, Proposal, Real, Scored

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise BitlensError("the optuna-tpe strategy needs Optuna: pip install 'bitlens[evolve]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no log line per trial
    return optuna


def distributions(space: GeneSpace) -> dict[str, BaseDistribution]:
    """The gene space as Optuna distributions (same bounds, same log scales)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for g in space.genes:
        if isinstance(g, Choice):
            out[g.name] = CategoricalDistribution(g.values)
        elif isinstance(g, Real):
            out[g.name] = FloatDistribution(g.low, g.high, log=g.log)
        else:
            out[g.name] = IntDistribution(g.low, g.high, log=g.log)
    return out


def propose_tpe(
    space: GeneSpace, history: Sequence[Scored], n: int, n_startup: int, rng: np.random.Generator
) -> list[Proposal]:
    """n genomes asked of a TPE study told `history` (every finished evaluation, one trial each).

    n_startup: TPE samples at random until this many trials are complete (the random first
    generation already is that start, so pass its size).
    """
    optuna = _optuna()
    dists = distributions(space)
    sampler = optuna.samplers.TPESampler(seed=int(rng.integers(2**31)), n_startup_trials=n_startup)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for e in sorted(history, key=lambda e: e.id):
        if e.fitness == e.fitness:
            params = {k: e.genome[k] for k in dists}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=e.fitness))
    proposals = []
    for _ in range(n):
        trial = study.ask(dists)
        proposals.append(Proposal({k: trial.params[k] for k in space.names}, ()))
    return proposals
