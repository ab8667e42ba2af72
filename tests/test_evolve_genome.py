"""Genes stay in bounds, mutation and crossover do what their docstrings say, ES finds a known optimum."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.errors import BitlensError
from bitlens.evolve.genome import Choice, GeneSpace, Integer, Real, _reflect, policy_gene_space
from bitlens.evolve.strategy import (
    STRATEGIES,
    ESConfig,
    Scored,
    generation_rng,
    sample_population,
    select_survivors,
    tournament,
)
from evolve_helpers import SyntheticEvaluator

SMALL = GeneSpace(
    (
        Choice("score", ("a", "b", "c", "d")),
        Choice("level", ("x", "y")),
        Real("keep_ratio", 0.1, 1.0, 0.1),
        Integer("budget_tokens", 1000, 100_000, 0.15),
    )
)
TARGET = {"score": "c", "level": "y", "keep_ratio": 0.37, "budget_tokens": 20_000}


@given(st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=60, deadline=None)
def test_sample_mutate_crossover_stay_in_bounds(seed, quick):
    space = policy_gene_space(quick)
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    for genome in (a, b, space.mutate(a, rng), space.crossover(a, b, rng)):
        space.check(genome)  # raises if any gene is out of bounds or of the wrong type
    child = space.crossover(a, b, rng)
    assert all(child[k] in (a[k], b[k]) for k in space.names)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_mutation_changes_at_least_one_gene(seed):
    space = policy_gene_space()
    rng = np.random.default_rng(seed)
    a = space.sample(rng)
    assert space.mutate(a, rng) != a


@given(st.floats(-50, 50), st.floats(-3, 3), st.floats(0.01, 5))
def test_reflect_folds_into_range_and_is_identity_inside(x, low, span):
    high = low + span
    y = _reflect(x, low, high)
    assert low - 1e-9 <= y <= high + 1e-9
    if low <= x <= high:
        assert y == pytest.approx(x)
    assert _reflect(high + 0.25 * span, low, high) == pytest.approx(high - 0.25 * span)


def test_mutation_scale_is_sigma_times_range():
    gene = Real("t", 0.0, 10.0, 0.01)  # sigma = 0.1 absolute, far from the bounds
    rng = np.random.default_rng(0)
    steps = np.array([gene.mutate(5.0, rng) - 5.0 for _ in range(4000)])
    assert steps.std() == pytest.approx(0.1, rel=0.05)
    log_gene = Integer("n", 1, 10**6, 0.05)  # sigma = 0.05 × ln(1e6) ≈ 0.69 in log space
    logs = np.array([math.log(log_gene.mutate(1000, rng) / 1000) for _ in range(4000)])
    assert logs.std() == pytest.approx(0.05 * math.log(1e6), rel=0.07)


def test_check_rejects_out_of_bounds_and_unknown_genes():
    genome = dict(TARGET)
    SMALL.check(genome)
    with pytest.raises(BitlensError, match="keep_ratio"):
        SMALL.check({**genome, "keep_ratio": 1.5})
    with pytest.raises(BitlensError, match="score"):
        SMALL.check({**genome, "score": "nope"})
    with pytest.raises(BitlensError, match="differ"):
        SMALL.check({**genome, "extra": 1})


def test_tournament_and_truncation():
    pool = [Scored(i, {}, f) for i, f in enumerate([0.1, 0.9, float("nan"), 0.5, 0.9])]
    rng = np.random.default_rng(0)
    # a tournament as large as the pool (drawn with replacement) mostly finds the best; ties → older id
    wins = [tournament(pool, 50, rng).id for _ in range(20)]
    assert set(wins) == {1}
    assert [s.id for s in select_survivors(pool, 3)] == [1, 4, 3]  # NaN never survives


def _search(strategy: str, seed: int, mu: int = 6, generations: int = 20) -> float:
    """The loop of run_evolution without the store: best fitness after mu × generations evaluations."""
    ev = SyntheticEvaluator(target=TARGET, space=SMALL)

    def fit(genome):
        return ev(genome, 0, None, None)["gain_bits_per_byte"]

    first = sample_population(SMALL, mu, generation_rng(seed, 0))
    pop = [Scored(i, p.genome, fit(p.genome)) for i, p in enumerate(first)]
    survivors, next_id = select_survivors(pop, mu), len(pop)
    for g in range(1, generations):
        children = []
        for p in STRATEGIES[strategy](SMALL, survivors, [], ESConfig(mu, mu), generation_rng(seed, g)):
            children.append(Scored(next_id, p.genome, fit(p.genome)))
            next_id += 1
        survivors = select_survivors(survivors + children, mu)
    return survivors[0].fitness


def test_es_finds_the_known_optimum_and_beats_random_search():
    es = [_search("es", s) for s in range(8)]
    rnd = [_search("random", s) for s in range(8)]
    # fitness 0 only at TARGET; > -0.03 means every categorical gene right and numerics close
    assert min(es) > -0.03
    assert np.mean(es) > np.mean(rnd)
