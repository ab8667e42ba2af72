"""run_evolution on a known-answer objective: store, resume after a kill, failures, caps, lineage."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bitlens.errors import BitlensError
from bitlens.evolve.genome import Integer, policy_gene_space
from bitlens.evolve.lineage import LineageStore
from bitlens.evolve.plots import plot_fitness, plot_lineage, plot_pareto
from bitlens.evolve.run import STORE_FILE, EvolveConfig, run_evolution
from evolve_helpers import SyntheticEvaluator

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
TARGET = policy_gene_space().sample(np.random.default_rng(7))


def synthetic(**kw) -> SyntheticEvaluator:
    return SyntheticEvaluator(target=TARGET, noise=0.05, **kw)


CONFIG = EvolveConfig(population=4, generations=3, seed=3)
CONFIG_FIELDS = set(EvolveConfig.__dataclass_fields__)


def evolve(tmp_path, name="run", **kw):
    """A serial run of CONFIG (with the config fields in kw replaced) as its JSON dict."""
    cfg = replace(CONFIG, **{k: v for k, v in kw.items() if k in CONFIG_FIELDS})
    args = {
        "backend": "serial",
        "evaluator": synthetic(),
        **{k: v for k, v in kw.items() if k not in CONFIG_FIELDS},
    }
    return run_evolution(tmp_path / name, cfg, **args).to_dict()


def fingerprint(result):
    return [
        (e["generation"], e["genome"], e["parents"], e["seed"], e["status"], e["fitness"])
        for e in result["evaluations"]
    ]


def test_result_keys_pareto_and_store(tmp_path):
    r = evolve(tmp_path, reevaluate=False)
    assert [g["generation"] for g in r["generations"]] == [0, 1, 2]
    assert r["fitness"] == {
        "form": "gain-at-budget",
        "formula": "gain",
        "unit": "bits/byte",
        "budget_tokens": None,  # this evaluator's gene space does not pin the budget
        "cost_unit": "training tokens (pinned: every genome trains on budget_tokens)",
    }
    for g in r["generations"]:
        assert {"generation", "best_fitness", "mean_fitness", "best_genome"} <= set(g)
        fits = [e["fitness"] for e in r["evaluations"] if e["generation"] == g["generation"]]
        assert g["best_fitness"] == max(fits) and g["mean_fitness"] == pytest.approx(np.mean(fits))
    assert len(r["evaluations"]) == 12 and r["totals"]["done"] == 12
    # (μ+λ): the best so far never gets worse; children name their parents
    so_far = [g["best_so_far_fitness"] for g in r["generations"]]
    assert so_far == sorted(so_far)
    assert all(e["parents"] for e in r["evaluations"] if e["generation"] > 0)
    # Pareto front = exactly the non-dominated points (brute force)
    pts = [(e["heldout_bits_per_byte"], e["flops"]) for e in r["evaluations"]]
    nondom = {p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)}
    assert {(p["heldout_bits_per_byte"], p["flops"]) for p in r["pareto"]} == nondom
    assert all({"heldout_bits_per_byte", "flops", "genome"} <= set(p) for p in r["pareto"])
    # weights saved for every offspring; result.json is the returned dict
    assert all((Path(e["weights"]) / "model.safetensors").exists() for e in r["evaluations"])
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == json.loads(json.dumps(r))
    # the same seed gives the same run; another seed does not
    assert fingerprint(evolve(tmp_path, "again", reevaluate=False)) == fingerprint(r)
    assert fingerprint(evolve(tmp_path, "other", seed=4, reevaluate=False)) != fingerprint(r)


@pytest.mark.parametrize("strategy", ["es", "random", "optuna-tpe"])
def test_survivors_are_rescored_and_selected_on_their_mean(tmp_path, strategy):
    ev = synthetic()
    r = evolve(tmp_path, strategy=strategy, evaluator=ev)
    by_id = {e["id"]: e for e in r["evaluations"]}
    # equal evaluations in every arm: 4 genomes, then 4 proposals + 4 survivors scored again
    assert [g["evaluations"] for g in r["generations"]] == [4, 8, 8]
    assert [g["reevaluations"] for g in r["generations"]] == [0, 4, 4]
    with LineageStore(tmp_path / "run" / STORE_FILE) as store:
        for g in (1, 2):
            rows = [e for e in by_id.values() if e["generation"] == g]
            again = [e for e in rows if e["kind"] == "reevaluation"]
            # each re-scored genome is exactly a survivor of g-1, scored on generation g's seed
            assert sorted(e["parents"][0] for e in again) == sorted(store.survivors(g - 1))
            for e in again:
                assert e["genome"] == by_id[e["parents"][0]]["genome"] and e["seed"] == rows[0]["seed"]
                assert e["fitness"] == ev(e["genome"], e["seed"], None, None)["gain_bits_per_byte"]
            # selection: the 4 best genomes of survivors ∪ children on the mean of ALL their
            # evaluations so far (brute force here); a genome is named by its first evaluation
            pool = [by_id[i]["genome"] for i in store.survivors(g - 1)] + [e["genome"] for e in rows]
            scores = {}
            for e in sorted(by_id.values(), key=lambda e: e["id"]):
                if e["generation"] <= g and e["genome"] in pool:
                    key = json.dumps(e["genome"], sort_keys=True)
                    scores.setdefault(key, (e["id"], []))[1].append(e["fitness"])
            top = sorted(scores.values(), key=lambda v: (-np.mean(v[1]), v[0]))[:4]
            assert store.survivors(g) == [i for i, _ in top]
            summary = r["generations"][g]["survivors"]
            assert [s["n"] for s in summary] == [len(v) for _, v in top]
            assert [s["mean_fitness"] for s in summary] == pytest.approx([np.mean(v) for _, v in top])
    # the winner: the first survivor, its mean and t interval over its evaluations
    w, last = r["winner"], r["generations"][-1]["survivors"][0]
    assert w["id"] == last["id"] and w["fitness"]["estimate"] == pytest.approx(last["mean_fitness"])
    assert w["fitness"]["n_seeds"] == len(w["evaluation_ids"]) == last["n"]
    low, high = w["fitness"]["ci95"]
    assert low <= w["fitness"]["estimate"] <= high


def test_failed_evaluations_are_recorded_and_the_run_goes_on(tmp_path):
    ev = synthetic(fail_scores=("static-excess", "random"), nan_scores=("surprisal",))
    r = evolve(tmp_path, evaluator=ev, generations=4)
    failed = [e for e in r["evaluations"] if e["status"] == "failed"]
    assert failed and len(r["generations"]) == 4 and all(g["complete"] for g in r["generations"])
    for e in failed:
        if e["genome"]["score"] == "surprisal":
            assert "non-finite" in e["error"]
        else:
            assert e["error"] == f"RuntimeError: synthetic failure for score={e['genome']['score']}"
    assert r["totals"]["failed"] == len(failed)
    with LineageStore(tmp_path / "run" / STORE_FILE) as store:
        survivors = {i for g in range(4) for i in store.survivors(g)}
    assert survivors.isdisjoint(e["id"] for e in failed)


def test_flops_budget_stops_and_resume_finishes_the_same_run(tmp_path):
    full = evolve(tmp_path, "full")
    total = full["totals"]["flops"]
    part = evolve(tmp_path, "cut", budget_flops=0.4 * total)
    assert part["stopped"] == "flops budget reached"
    assert 0.4 * total <= part["totals"]["flops"] < total
    with pytest.raises(BitlensError, match="already holds"):
        evolve(tmp_path, "cut")
    with pytest.raises(BitlensError, match="population"):
        evolve(tmp_path, "cut", resume=True, population=5)
    resumed = evolve(tmp_path, "cut", resume=True)
    assert resumed["stopped"] is None
    assert fingerprint(resumed) == fingerprint(full)


def test_time_limit_stops_between_evaluations(tmp_path):
    r = evolve(tmp_path, evaluator=synthetic(sleep_seconds=0.1), time_limit=0.35)
    assert r["stopped"] == "time limit reached"
    assert 2 <= r["totals"]["done"] <= 6


def test_lineage_mode_uses_the_best_offspring_as_next_parent(tmp_path):
    r = evolve(tmp_path, lineage=True)
    by_id = {e["id"]: e for e in r["evaluations"]}
    assert r["generations"][0]["parent_model"] is None
    for g in r["generations"][1:]:
        prev = [e for e in by_id.values() if e["generation"] == g["generation"] - 1]
        best = max(prev, key=lambda e: e["fitness"])
        assert g["parent_model"] == best["weights"]
        assert all(
            e["parent_model"] == best["weights"] for e in by_id.values() if e["generation"] == g["generation"]
        )


def test_best_saved_is_the_fittest_offspring_with_weights(tmp_path):
    from bitlens.evolve.strategy import Proposal

    with LineageStore(tmp_path / STORE_FILE) as store:
        store.add_generation(0, [Proposal(TARGET, ())] * 4, [1, 1, 1, 1], None)
        ids = [e.id for e in store.evaluations(0)]
        store.record(ids[0], "done", {"fitness": 0.5}, None, 1.0, "w0")
        store.record(ids[1], "done", {"fitness": 0.9}, None, 1.0, None)  # fittest, but not saved
        store.record(ids[2], "done", {"fitness": 0.7}, None, 1.0, "w2")
        store.record(ids[3], "done", {"fitness": 0.7}, None, 1.0, "w3")  # a tie: the older wins
        best = store.best_saved(0)
        assert best is not None and (best.id, best.weights) == (ids[2], "w2")
        assert store.best_saved(1) is None


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from bitlens.evolve.genome import Integer, policy_gene_space
    from bitlens.evolve.run import EvolveConfig, run_evolution
    from evolve_helpers import SyntheticEvaluator
    target = policy_gene_space().sample(np.random.default_rng(7))
    ev = SyntheticEvaluator(target=target, noise=0.05, sleep_seconds=0.3)
    if __name__ == "__main__":
        run_evolution(sys.argv[1], EvolveConfig(population=4, generations=3, seed=3),
                      backend="local", workers=2, evaluator=ev)
""")


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_resume_after_kill_loses_no_finished_evaluation(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(SRC), str(TESTS))), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], env=env)
    db, finished = out / STORE_FILE, []
    try:
        deadline = time.time() + 90
        while time.time() < deadline and len(finished) < 5:
            time.sleep(0.1)
            if db.exists():
                try:
                    with sqlite3.connect(db) as con:
                        finished = con.execute(
                            "SELECT id, finished_at FROM evaluations WHERE status='done'"
                        ).fetchall()
                except sqlite3.OperationalError:
                    pass  # schema not written yet
        workers = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 5 <= len(finished) < 12, "the run was not killed mid-way"
    deadline = time.time() + 15  # orphaned pool workers notice the dead driver and exit
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.2)
    assert workers and not any(Path(f"/proc/{p}").exists() for p in workers)
    resumed = run_evolution(out, CONFIG, backend="serial", evaluator=synthetic(), resume=True).to_dict()
    with sqlite3.connect(out / STORE_FILE) as con:
        after = dict(con.execute("SELECT id, finished_at FROM evaluations WHERE status='done'").fetchall())
    assert all(after[i] == t for i, t in finished)  # finished before the kill: kept, not redone
    assert fingerprint(resumed) == fingerprint(evolve(tmp_path, "clean"))


def test_plots_write_png_and_svg(tmp_path):
    r = evolve(tmp_path, evaluator=synthetic(fail_scores=("static-excess",)))
    for plot, name in ((plot_fitness, "fitness"), (plot_pareto, "pareto"), (plot_lineage, "lineage")):
        plot(r, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_config_scales_and_the_stored_dict():
    quick, full = EvolveConfig.quick(), EvolveConfig.full()
    assert (quick.population, quick.generations, quick.small) == (3, 2, True)
    assert (full.population, full.generations, full.small) == (8, 6, False)
    assert quick.to_dict() == {
        "population": 3,
        "generations": 2,
        "seed": 0,
        "strategy": "es",
        "lineage": False,
        "tournament_size": 2,
        "crossover_rate": 0.5,
        "quick": True,
        "reevaluate": True,
        "fitness": "gain-at-budget",
        "cost_weight": 1.0,
        "budget_tokens": None,
    }
    # gain-at-budget pins the budget gene (default: the geometric middle of its range)
    assert quick.gene_space().genes[-1] == Integer("budget_tokens", 23_170, 23_170, 0.15)
    assert replace(quick, budget_tokens=9000).fixed_budget_tokens() == 9000
    assert replace(quick, fitness="penalised").gene_space() == policy_gene_space(True)
    assert quick.context().seed == 0 and quick.context().is_quick()
    assert EvolveConfig(seed=4).context().seed == 4 and not full.context().is_quick()
    with pytest.raises(
        BitlensError, match="^unknown strategy 'annealing'; choose from es, random, optuna-tpe$"
    ):
        EvolveConfig(strategy="annealing")
    with pytest.raises(BitlensError, match="unknown fitness 'ratio'; choose from gain-at-budget, penalised"):
        EvolveConfig(fitness="ratio")
    with pytest.raises(BitlensError, match="at least 1"):
        EvolveConfig(population=0)
