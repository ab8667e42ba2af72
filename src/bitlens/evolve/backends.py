"""Where evaluations run, behind one interface: in this process, in a local process pool, on Ray.

    backend = make_backend("local", evaluator, workers=2)
    backend.evaluate(tasks, on_result, should_stop)   # on_result(outcome) as each one finishes
    backend.close()

Every backend keeps at most `workers` evaluations in flight and asks `should_stop()` before
starting each one, so budget and time caps stop a run between evaluations, not after a whole
generation. Outcomes are reported as they complete (the driver stores each at once); the order
of completion does not matter because each evaluation is seeded by its task alone.

Failures: `run_task` turns exceptions into failed outcomes inside the worker. A worker that dies
(killed, out of memory) breaks a process pool: a task alone in flight is recorded as failed; when
several were in flight, each is re-run alone in a fresh process, and one that kills its process
again is recorded as failed. On Ray, a
crashed task is recorded as failed (Ray does not retry it: max_retries=0).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

from bitlens.errors import BitlensError
from bitlens.evolve.evaluators import EvalOutcome, EvalTask, Evaluator, run_task

OnResult = Callable[[EvalOutcome], None]
ShouldStop = Callable[[], bool]

WORKER_DIED = "worker process died (killed or out of memory)"


class Backend(Protocol):
    name: str
    workers: int

    def evaluate(self, tasks: Sequence[EvalTask], on_result: OnResult, should_stop: ShouldStop) -> None: ...

    def close(self) -> None: ...


class SerialBackend:
    """Evaluate in the calling process, one at a time (debugging, tests), with the same torch
    thread count as a pool worker, so that its results equal the other backends' bit for bit."""

    name = "serial"

    def __init__(self, evaluator: Evaluator, workers: int = 1, threads: int = 1, **_: object) -> None:
        self.evaluator, self.workers, self.threads = evaluator, 1, threads

    def evaluate(self, tasks: Sequence[EvalTask], on_result: OnResult, should_stop: ShouldStop) -> None:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for task in tasks:
                if should_stop():
                    return
                on_result(run_task(self.evaluator, task))
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        pass


# The evaluator of a pool worker, set once by the pool's initializer (so a large corpus is sent
# to each worker once, not with every task).
_WORKER_EVALUATOR: Evaluator | None = None


def _init_worker(evaluator: Evaluator, threads: int, driver_pid: int) -> None:
    global _WORKER_EVALUATOR
    import torch

    torch.set_num_threads(threads)
    _WORKER_EVALUATOR = evaluator
    threading.Thread(target=_exit_with_driver, args=(driver_pid,), daemon=True).start()


def _exit_with_driver(driver_pid: int) -> None:
    """A worker whose driver was killed would finish its task for nobody: exit instead."""
    while os.getppid() == driver_pid:
        time.sleep(1.0)
    os._exit(1)


def _pool_task(task: EvalTask) -> EvalOutcome:
    assert _WORKER_EVALUATOR is not None
    return run_task(_WORKER_EVALUATOR, task)


class LocalBackend:
    """A pool of `workers` spawned processes with `threads` torch threads each."""

    name = "local"

    def __init__(self, evaluator: Evaluator, workers: int = 1, threads: int = 1, **_: object) -> None:
        if workers < 1:
            raise BitlensError(f"--workers must be at least 1, got {workers}")
        self.evaluator, self.workers, self.threads = evaluator, workers, threads
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.evaluator, self.threads, os.getpid()),
        )

    def evaluate(self, tasks: Sequence[EvalTask], on_result: OnResult, should_stop: ShouldStop) -> None:
        queue = list(tasks)
        broken: list[EvalTask] = []
        in_flight: dict[Future, EvalTask] = {}
        pool_broke = False  # the pool refused a new task: a worker died with a task in flight
        while queue or in_flight:
            while queue and not broken and not pool_broke and len(in_flight) < self.workers:
                if should_stop():
                    break
                if self._pool is None:
                    self._pool = self._new_pool(self.workers)
                try:
                    in_flight[self._pool.submit(_pool_task, queue[0])] = queue[0]
                except BrokenProcessPool:  # the broken in-flight futures name the culprits
                    pool_broke = True
                    break
                queue.pop(0)
            if not in_flight:
                if pool_broke and self._pool is not None:  # no task was running: nobody to blame
                    self._pool.shutdown(wait=True, cancel_futures=True)
                    self._pool, pool_broke = None, False
                    continue
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                task = in_flight.pop(fut)
                try:
                    on_result(fut.result())
                except BrokenProcessPool:
                    broken.append(task)
            if broken and self._pool is not None and not in_flight:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
                if len(broken) == 1:  # it was alone in flight: it is the culprit
                    on_result(EvalOutcome(broken[0].id, "failed", None, WORKER_DIED, 0.0, None))
                else:  # isolate each one: only the culprit fails again
                    for task in broken:
                        if not should_stop():
                            on_result(self._isolated(task))
                broken, pool_broke = [], False

    def _isolated(self, task: EvalTask) -> EvalOutcome:
        pool = self._new_pool(1)
        try:
            return pool.submit(_pool_task, task).result()
        except BrokenProcessPool:
            return EvalOutcome(task.id, "failed", None, WORKER_DIED, 0.0, None)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _ray_task(evaluator: Evaluator, task: EvalTask, threads: int) -> EvalOutcome:
    import torch

    torch.set_num_threads(threads)
    return run_task(evaluator, task)


class RayBackend:
    """Ray tasks: `ray.init()` on this machine (num_cpus=workers) or join `address`'s cluster.

    Keeps `workers` tasks in flight. Ray is optional: imported only here.
    """

    name = "ray"

    def __init__(
        self,
        evaluator: Evaluator,
        workers: int = 1,
        threads: int = 1,
        address: str | None = None,
        **_: object,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BitlensError("the ray backend needs Ray: pip install 'bitlens[ray]'") from None
        self._ray, self.workers, self.threads = ray, workers, threads
        self._owns = not ray.is_initialized()
        if self._owns:
            # Workers must import this very bitlens (a source checkout is not installed).
            src = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
            runtime_env = {"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": str(threads)}}
            try:
                if address:
                    ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        runtime_env=runtime_env,
                    )
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BitlensError(f"cannot start Ray{f' at {address}' if address else ''}: {e}") from None
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        self._evaluator = ray.put(evaluator)

    def evaluate(self, tasks: Sequence[EvalTask], on_result: OnResult, should_stop: ShouldStop) -> None:
        ray = self._ray
        queue = list(tasks)
        in_flight: dict = {}
        while queue or in_flight:
            while queue and len(in_flight) < self.workers and not should_stop():
                task = queue.pop(0)
                in_flight[self._remote.remote(self._evaluator, task, self.threads)] = task
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task = in_flight.pop(ref)
                try:
                    on_result(ray.get(ref))
                except ray.exceptions.RayError as e:  # worker crash, OOM kill, lost object
                    error = f"{type(e).__name__}: {e}"[:500]
                    on_result(EvalOutcome(task.id, "failed", None, error, 0.0, None))

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


BACKENDS: dict[str, type] = {"local": LocalBackend, "ray": RayBackend, "serial": SerialBackend}


def make_backend(
    name: str, evaluator: Evaluator, workers: int = 1, threads: int = 1, address: str | None = None
) -> Backend:
    if name not in BACKENDS:
        raise BitlensError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name](evaluator, workers=workers, threads=threads, address=address)
