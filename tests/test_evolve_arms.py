"""The arms of the evolution study: fitness forms, selection on means, the Optuna TPE arm."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from bitlens.errors import BitlensError
from bitlens.evolve.fitness import Fitness
from bitlens.evolve.genome import policy_gene_space
from bitlens.evolve.optuna_search import distributions, propose_tpe
from bitlens.evolve.run import EvolveConfig, run_evolution
from bitlens.evolve.strategy import Scored, genome_means, select_survivors
from evolve_helpers import SyntheticEvaluator

SPACE = policy_gene_space(quick=True, budget_tokens=9000)


def test_fitness_forms_arithmetic_and_names():
    m = {"gain_bits_per_byte": 0.3, "flops": 5e10}
    assert Fitness("gain-at-budget")(m) == 0.3
    assert Fitness("penalised", 2.0)(m) == pytest.approx(0.3 - 2.0 * 0.05)  # λ per TFLOP
    assert Fitness("penalised", 0.0)(m) == 0.3
    assert Fitness("penalised", 2.0).to_dict()["lambda_bits_per_byte_per_tflop"] == 2.0
    assert Fitness().to_dict(9000)["budget_tokens"] == 9000
    with pytest.raises(
        BitlensError, match="^unknown fitness 'ratio'; choose from gain-at-budget, penalised$"
    ):
        Fitness("ratio")
    with pytest.raises(BitlensError, match="non-negative"):
        Fitness("penalised", -1.0)


def test_genome_means_pool_every_evaluation_of_a_genome():
    a, b = {"x": 1}, {"x": 2}
    evals = [Scored(5, b, 0.9), Scored(1, a, 0.2), Scored(3, a, 0.4), Scored(7, a, 0.6), Scored(6, b, -0.5)]
    means = genome_means(evals)
    assert [(m.id, m.n) for m in means.values()] == [(1, 3), (5, 2)]
    assert [m.fitness for m in means.values()] == pytest.approx([0.4, 0.2])
    # a NaN evaluation adds nothing; ties on the mean go to the genome first evaluated
    assert genome_means([Scored(2, a, float("nan")), Scored(4, a, 1.0)])['{"x": 1}'] == Scored(4, a, 1.0, 1)
    tie = [Scored(9, a, 0.5), Scored(8, b, 0.5)]
    assert [s.id for s in select_survivors(tie, 2)] == [8, 9]


def test_selection_on_the_mean_finds_the_truly_best_genome_more_often():
    """Known noise: four genomes 0.2 bits/byte apart, six evaluations each with σ = 0.5. Ranking on
    the mean of all six (σ/√6 ≈ 0.2) picks the truly best far more often than ranking on one."""
    genomes = [{"g": i} for i in range(4)]
    truth = np.array([0.0, -0.2, -0.4, -0.6])
    rng = np.random.default_rng(0)
    on_mean = on_last = 0
    for _ in range(300):
        noisy = truth[None, :] + rng.normal(0.0, 0.5, size=(6, 4))  # evaluation k of genome i
        evals = [Scored(4 * k + i, genomes[i], float(noisy[k, i])) for k in range(6) for i in range(4)]
        on_mean += select_survivors(list(genome_means(evals).values()), 1)[0].genome == genomes[0]
        on_last += select_survivors(evals[-4:], 1)[0].genome == genomes[0]
    assert on_mean / 300 > 0.6 and on_mean / 300 > on_last / 300 + 0.2


def test_a_run_reports_the_winner_mean_and_interval_over_its_evaluations(tmp_path):
    ev = SyntheticEvaluator(target=SPACE.sample(np.random.default_rng(0)), space=SPACE, noise=0.3)
    cfg = EvolveConfig(population=3, generations=4, seed=0, strategy="random")
    r = run_evolution(tmp_path / "noisy", cfg, backend="serial", evaluator=ev).to_dict()
    w = r["winner"]
    assert w["n_evaluations"] >= 2  # re-evaluation added samples to the winner's mean
    vals = [e["fitness"] for e in r["evaluations"] if e["id"] in w["evaluation_ids"]]
    assert all(e["genome"] == w["genome"] for e in r["evaluations"] if e["id"] in w["evaluation_ids"])
    assert w["fitness"]["estimate"] == pytest.approx(np.mean(vals))
    assert w["fitness"]["n_seeds"] == len(vals) == w["n_evaluations"]
    assert w["fitness"]["ci95"][0] < w["fitness"]["estimate"] < w["fitness"]["ci95"][1]
    assert r["fitness"]["budget_tokens"] == 9000  # the evaluator's space pins the budget


def test_gene_space_maps_onto_optuna_distributions():
    d = distributions(policy_gene_space(quick=False))
    assert d["score"] == CategoricalDistribution(policy_gene_space().genes[0].values)
    assert d["keep_ratio"] == FloatDistribution(0.1, 1.0)
    assert d["budget_tokens"] == IntDistribution(32_768, 524_288, log=True)
    assert distributions(SPACE)["budget_tokens"] == IntDistribution(9000, 9000, log=True)


def _history(n: int, seed: int) -> list[Scored]:
    rng = np.random.default_rng(seed)
    return [Scored(i, SPACE.sample(rng), float(rng.normal())) for i in range(n)]


def test_tpe_proposals_are_a_pure_function_of_seed_and_history():
    history = _history(8, 0)
    first = propose_tpe(SPACE, history, 4, n_startup=4, rng=np.random.default_rng(1))
    again = propose_tpe(SPACE, list(reversed(history)), 4, n_startup=4, rng=np.random.default_rng(1))
    other = propose_tpe(SPACE, history, 4, n_startup=4, rng=np.random.default_rng(2))
    assert [p.genome for p in first] == [p.genome for p in again]  # told in id order, whatever given
    assert [p.genome for p in first] != [p.genome for p in other]
    for p in first:
        SPACE.check(p.genome)
        assert p.parents == () and p.kind == "new"


@given(st.integers(0, 2**16))
@settings(max_examples=5, deadline=None)
def test_tpe_follows_the_told_values(seed):
    """Told that score=`best` always wins by far, TPE proposes it for most new genomes. Every
    fourth genome told has it (a winner seen once or twice gives TPE too little to follow)."""
    rng = np.random.default_rng(seed)
    history = [Scored(i, SPACE.sample(rng), 0.0) for i in range(30)]
    best = history[0].genome["score"]
    history = [
        replace(h, genome={**h.genome, "score": best}) if i % 4 == 0 else h for i, h in enumerate(history)
    ]
    for h in history:
        SPACE.check(h.genome)
    history = [replace(h, fitness=10.0 if h.genome["score"] == best else 0.0) for h in history]
    out = propose_tpe(SPACE, history, 10, n_startup=5, rng=np.random.default_rng(seed))
    assert sum(p.genome["score"] == best for p in out) >= 5


def fingerprint(result):
    return [(e["genome"], e["parents"], e["seed"], e["status"], e["fitness"]) for e in result["evaluations"]]


def test_tpe_run_is_identical_after_a_stop_and_resume(tmp_path):
    ev = SyntheticEvaluator(target=SPACE.sample(np.random.default_rng(3)), space=SPACE, noise=0.05)
    cfg = EvolveConfig(population=3, generations=3, seed=5, strategy="optuna-tpe")
    full = run_evolution(tmp_path / "full", cfg, backend="serial", evaluator=ev).to_dict()
    cut = run_evolution(
        tmp_path / "cut", cfg, backend="serial", evaluator=ev, budget_flops=0.5 * full["totals"]["flops"]
    ).to_dict()
    assert cut["stopped"] == "flops budget reached" and len(cut["evaluations"]) < len(full["evaluations"])
    resumed = run_evolution(tmp_path / "cut", cfg, backend="serial", evaluator=ev, resume=True).to_dict()
    assert fingerprint(resumed) == fingerprint(full)
    # TPE proposals are not the random arm's: the arms differ after the shared first generation
    rnd = run_evolution(
        tmp_path / "rnd", replace(cfg, strategy="random"), backend="serial", evaluator=ev
    ).to_dict()
    assert fingerprint(rnd)[:3] == fingerprint(full)[:3] and fingerprint(rnd)[3:] != fingerprint(full)[3:]


def test_a_pinned_gene_never_mutates():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = SPACE.sample(rng)
        b = SPACE.mutate(a, rng)
        assert b != a and b["budget_tokens"] == 9000
