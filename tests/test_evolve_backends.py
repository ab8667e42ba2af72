"""The same seed gives the same run on every backend; a worker that dies is recorded as failed."""

import os
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

from bitlens.errors import BitlensError
from bitlens.evolve.backends import WORKER_DIED, LocalBackend, make_backend
from bitlens.evolve.evaluators import EvalOutcome, EvalTask
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


class _PoolWhoseWorkerDiesBetweenTasks:
    """A stand-in process pool: the task named `doomed` kills its worker, and the pool notices
    only when the next task is submitted (the race a real pool has when a healthy task finishes
    just before a worker dies)."""

    def __init__(self, doomed: int) -> None:
        self.doomed, self.pending, self.broken = doomed, None, False

    def submit(self, fn, task):
        if self.broken:
            self.pending.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            raise BrokenProcessPool("a child process terminated abruptly")
        fut = Future()
        if task.id == self.doomed:
            self.pending, self.broken = fut, True
        else:
            fut.set_result(EvalOutcome(task.id, "done", {"fitness": 1.0}, None, 0.0, None))
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_pool_that_breaks_between_submissions_blames_only_the_dead_task(monkeypatch):
    pools = iter([_PoolWhoseWorkerDiesBetweenTasks(doomed=1), _PoolWhoseWorkerDiesBetweenTasks(doomed=-1)])
    backend = LocalBackend(SyntheticEvaluator(target=TARGET), workers=2)
    monkeypatch.setattr(backend, "_new_pool", lambda workers: next(pools))
    tasks = [EvalTask(i, TARGET, i, None, None) for i in range(4)]
    outcomes: dict[int, EvalOutcome] = {}
    backend.evaluate(tasks, lambda o: outcomes.__setitem__(o.id, o), lambda: False)
    assert sorted(outcomes) == [0, 1, 2, 3]
    assert outcomes[1].status == "failed" and outcomes[1].error == WORKER_DIED
    assert all(outcomes[i].status == "done" for i in (0, 2, 3))


def test_unknown_backend_is_a_clear_error(evaluator):
    with pytest.raises(BitlensError, match="unknown backend"):
        make_backend("slurm", evaluator)


def test_ray_is_optional(monkeypatch, evaluator):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # `import ray` now fails
    with pytest.raises(BitlensError, match=r"pip install 'bitlens\[ray\]'"):
        make_backend("ray", evaluator)
