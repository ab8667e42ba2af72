"""Fitness evaluations: the task a backend ships to a worker, and the evaluators that score it.

An evaluator is a picklable callable
    evaluator(genome, seed, parent_model, weights_dir) -> metrics dict
returning at least `fitness` (higher is better), `heldout_bits_per_byte`, `flops` and `tokens`,
and saving the offspring's weights into `weights_dir` (a run directory: config.json +
model.safetensors) when it is given. It must be a pure function of its arguments, so that the same
seed gives the same metrics on every backend. `run_task` wraps it: any exception, a non-finite
fitness or running out of memory becomes a `failed` outcome carrying the error.

- `PolicyEvaluator`: the real thing, `bitlens.offspring.policy.evaluate_policy` on the genome as
  a `CurationPolicy`; `parent_model` (lineage mode) replaces the run's parent by an offspring.
- `SyntheticEvaluator`: a known-answer objective over the same genes (fitness 0 exactly at
  `target`, negative elsewhere), to test the engine in milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.evolve.genome import Choice, GeneSpace, Genome, policy_gene_space
from bitlens.runs import WEIGHTS_FILE, atomic_save_tensors

REQUIRED_METRICS = ("fitness", "heldout_bits_per_byte", "flops", "tokens")


class Evaluator(Protocol):
    space: GeneSpace

    def __call__(self, genome: Genome, seed: int, parent_model: str | None,
                 weights_dir: str | None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EvalTask:
    id: int
    genome: Genome
    seed: int
    parent_model: str | None  # run dir of the model that curates the data (None: the run's parent)
    weights_dir: str | None  # where to save the offspring (None: do not save)


@dataclass(frozen=True)
class EvalOutcome:
    id: int
    status: str  # "done" or "failed"
    metrics: dict[str, Any] | None
    error: str | None
    seconds: float
    weights: str | None  # run dir holding the offspring's weights, when saved


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    """Drop values JSON cannot hold (tensors, models) and turn numpy scalars into floats."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def run_task(evaluator: Evaluator, task: EvalTask) -> EvalOutcome:
    """Evaluate one task; never raises for a failing evaluation (it returns status 'failed')."""
    t0 = time.perf_counter()

    def failed(error: str) -> EvalOutcome:
        return EvalOutcome(task.id, "failed", None, error, time.perf_counter() - t0, None)

    try:
        metrics = evaluator(task.genome, task.seed, task.parent_model, task.weights_dir)
        missing = [k for k in REQUIRED_METRICS if k not in metrics]
        if missing:
            return failed(f"evaluator returned no {', '.join(missing)}")
        metrics = _jsonable(metrics)
        if not all(math.isfinite(float(metrics[k])) for k in REQUIRED_METRICS):
            return failed(f"non-finite result: fitness={metrics['fitness']}, "
                          f"heldout_bits_per_byte={metrics['heldout_bits_per_byte']}")
    except MemoryError:
        return failed("out of memory")
    except Exception as e:  # a failed evaluation is data: record it and go on
        return failed(f"{type(e).__name__}: {e}")
    saved = task.weights_dir if task.weights_dir and (Path(task.weights_dir) / WEIGHTS_FILE).exists() else None
    return EvalOutcome(task.id, "done", metrics, None, time.perf_counter() - t0, saved)


def _unit(space: GeneSpace, genome: Genome) -> dict[str, float]:
    """Real/integer genes mapped to [0, 1] (log genes in log space)."""
    out = {}
    for g in space.genes:
        if isinstance(g, Choice):
            continue
        lo, hi, x = g.low, g.high, float(genome[g.name])
        if g.log:
            lo, hi, x = math.log(lo), math.log(hi), math.log(x)
        out[g.name] = (x - lo) / (hi - lo)
    return out


@dataclass(frozen=True)
class SyntheticEvaluator:
    """fitness = −(Σ squared unit-scale distance of numeric genes + Σ categorical mismatches)
    − noise·N(0,1) seeded by the evaluation seed. Optimum: `target`, fitness 0.

    Held-out bits/byte = 2 − fitness/10 and FLOPs = 1e6 × budget_tokens, so a Pareto front exists.
    Genomes whose `score` is in `fail_scores` raise; those in `nan_scores` return NaN; those in
    `crash_scores` kill their process (as the out-of-memory killer would: only use in a worker);
    each call sleeps `sleep_seconds` (for timing and kill tests).
    """

    target: Genome
    space: GeneSpace = field(default_factory=policy_gene_space)
    noise: float = 0.0
    fail_scores: tuple[str, ...] = ()
    nan_scores: tuple[str, ...] = ()
    crash_scores: tuple[str, ...] = ()
    sleep_seconds: float = 0.0

    def __call__(self, genome: Genome, seed: int, parent_model: str | None,
                 weights_dir: str | None) -> dict[str, Any]:
        self.space.check(genome)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        if genome["score"] in self.crash_scores:
            os._exit(137)
        if genome["score"] in self.fail_scores:
            raise RuntimeError(f"synthetic failure for score={genome['score']}")
        u, t = _unit(self.space, genome), _unit(self.space, self.target)
        distance = sum((u[k] - t[k]) ** 2 for k in u)
        distance += sum(genome[g.name] != self.target[g.name] for g in self.space.genes if isinstance(g, Choice))
        eps = np.random.default_rng(seed).normal() if self.noise else 0.0
        fitness = float("nan") if genome["score"] in self.nan_scores else -distance - self.noise * eps
        if weights_dir is not None:
            vector = torch.tensor([u[k] for k in sorted(u)], dtype=torch.float32)
            atomic_save_tensors(Path(weights_dir) / WEIGHTS_FILE, {"genes": vector})
        return {"fitness": fitness, "heldout_bits_per_byte": 2.0 - fitness / 10.0,
                "flops": 1e6 * float(genome.get("budget_tokens", 1)), "tokens": int(genome.get("budget_tokens", 1))}


@functools.lru_cache(maxsize=4)
def _context(parent_dir: str, corpus_digest: str, seed: int, quick: bool, corpus: bytes):
    """The offspring context for a parent, built once per worker process (it scores the pool)."""
    from bitlens.offspring.policy import build_context

    return build_context(parent_dir, corpus, seed, quick)


@dataclass(frozen=True)
class PolicyEvaluator:
    """Train an offspring under the genome's curation policy; fitness from `evaluate_policy`.

    `parent_dir`: run dir of the parent model; `context_seed` fixes the held-out set and pool
    scoring, so every genome of a run is judged on the same data.
    """

    corpus: bytes
    parent_dir: str
    quick: bool = False
    context_seed: int = 0
    space: GeneSpace = field(default_factory=policy_gene_space)

    def __call__(self, genome: Genome, seed: int, parent_model: str | None,
                 weights_dir: str | None) -> dict[str, Any]:
        try:
            from bitlens.offspring.policy import CurationPolicy, evaluate_policy
        except ImportError as e:
            raise BitlensError(f"the offspring package is missing ({e}); cannot evaluate policies") from None
        from bitlens.runs import atomic_write_json, save_model

        self.space.check(genome)
        digest = hashlib.sha256(self.corpus).hexdigest()
        ctx = _context(parent_model or self.parent_dir, digest, self.context_seed, self.quick, self.corpus)
        policy = CurationPolicy.from_dict(genome)
        metrics, model = evaluate_policy(policy, ctx, seed, return_model=True)
        if weights_dir is not None:
            out = Path(weights_dir)
            save_model(model, out / WEIGHTS_FILE)
            atomic_write_json(out / "config.json", {
                "preset": genome.get("offspring_preset"), "model": model.config.to_dict(),
                "policy": genome, "seed": seed, "parent": parent_model or self.parent_dir,
            })
        return metrics
