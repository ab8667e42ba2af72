"""The same seed gives the same run on every backend; a worker that dies is recorded as failed."""

import os
from pathlib import Path

import numpy as np
import pytest

from bitlens.errors import BitlensError
from bitlens.evolve.backends import WORKER_DIED, make_backend
from bitlens.evolve.genome import policy_gene_space
from bitlens.evolve.run import EvolveConfig, run_evolution
from evolve_helpers import SyntheticEvaluator

TARGET = policy_gene_space().sample(np.random.default_rng(11))


def fingerprint(result):
    return [
        (e["id"], e["genome"], e["parents"], e["seed"], e["status"], e["fitness"], e["error"])
        for e in result["evaluations"]
    ]


def run(tmp_path, backend, ev, workers=1, **config):
    cfg = EvolveConfig(**{"population": 3, "generations": 3, "seed": 5, **config})
    return run_evolution(tmp_path / backend, cfg, backend=backend, workers=workers, evaluator=ev).to_dict()


@pytest.fixture(scope="module")
def evaluator():
    return SyntheticEvaluator(target=TARGET, noise=0.1, fail_scores=("static-excess",), sleep_seconds=0.05)


@pytest.fixture(scope="module")
def serial_runs(tmp_path_factory, evaluator):
    """The serial reference run of each strategy (every strategy proposes in the driver)."""
    return {
        s: run(tmp_path_factory.mktemp(f"serial-{s}"), "serial", evaluator, strategy=s)
        for s in ("es", "optuna-tpe")
    }


@pytest.mark.parametrize("strategy", ["es", "optuna-tpe"])
def test_local_pool_matches_serial(tmp_path, evaluator, serial_runs, strategy):
    r = run(tmp_path, "local", evaluator, workers=2, strategy=strategy)
    assert r["config"]["backend"] == "local" and r["config"]["workers"] == 2
    assert fingerprint(r) == fingerprint(serial_runs[strategy])


def test_ray_matches_serial(tmp_path, evaluator, serial_runs, monkeypatch):
    pytest.importorskip("ray")
    # Ray workers must import the evaluator's module, which lives in tests/
    tests = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p))
    r = run(tmp_path, "ray", evaluator, workers=2, strategy="optuna-tpe")
    assert fingerprint(r) == fingerprint(serial_runs["optuna-tpe"])


def test_dead_worker_is_recorded_and_the_run_goes_on(tmp_path):
    # seed 5's first generation holds "random" genomes and others; "random" kills its process
    ev = SyntheticEvaluator(target=TARGET, crash_scores=("random",))
    r = run(tmp_path, "local", ev, workers=2, generations=1, population=4)
    crashed = [e for e in r["evaluations"] if e["genome"]["score"] == "random"]
    others = [e for e in r["evaluations"] if e["genome"]["score"] != "random"]
    assert crashed and others, "the seed no longer mixes crashing and healthy genomes"
    assert all(e["status"] == "failed" and e["error"] == WORKER_DIED for e in crashed)
    assert all(e["status"] == "done" for e in others)


def test_unknown_backend_is_a_clear_error(evaluator):
    with pytest.raises(BitlensError, match="unknown backend"):
        make_backend("slurm", evaluator)


def test_ray_is_optional(monkeypatch, evaluator):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # `import ray` now fails
    with pytest.raises(BitlensError, match=r"pip install 'bitlens\[ray\]'"):
        make_backend("ray", evaluator)
