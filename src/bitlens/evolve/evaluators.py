"""Fitness evaluations: the task a backend ships to a worker, and the evaluators that score it.

An evaluator is a picklable callable
    evaluator(genome, seed, parent_model, weights_dir) -> metrics dict
returning at least `heldout_bits_per_byte`, `flops` and `tokens` (an evolution run also needs
`gain_bits_per_byte`, higher is better, from which `bitlens.evolve.fitness` makes the fitness),
and saving the offspring's weights into `weights_dir` (a run directory: config.json +
model.safetensors) when it is given. It must be a pure function of its arguments, so that the same
seed gives the same metrics on every backend. `run_task` wraps it: any exception, a non-finite
required figure (or gain, or fitness) or running out of memory becomes a `failed` outcome carrying
the error.

`PolicyEvaluator` is the real thing: `bitlens.offspring.policy.evaluate_offspring` on the genome
as a `CurationPolicy`, reporting the gain over its random-selection baseline (bits/byte) and not
the offspring module's gain-per-TFLOP ratio, which evolution must not select on; `parent_model`
(lineage mode) replaces the run's parent by an offspring.
It scores on the validation split, which evolution may choose on; a re-check of the winners
uses `split="test"`, the split nothing is chosen on.
(The tests drive the engine with a known-answer evaluator of their own.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bitlens.evolve.genome import GeneSpace, Genome, policy_gene_space

if TYPE_CHECKING:
    from bitlens.offspring.policy import ContextConfig, OffspringContext
    from bitlens.offspring.splits import DataSplits

REQUIRED_METRICS = ("heldout_bits_per_byte", "flops", "tokens")
CHECKED_METRICS = (*REQUIRED_METRICS, "gain_bits_per_byte", "fitness")  # finite when present


class Evaluator(Protocol):
    @property
    def space(self) -> GeneSpace: ...

    def __call__(
        self, genome: Genome, seed: int, parent_model: str | None, weights_dir: str | None
    ) -> dict[str, Any]: ...


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
    from bitlens.runs import WEIGHTS_FILE  # torch: loaded where evaluations run, not by the CLI

    t0 = time.perf_counter()

    def failed(error: str) -> EvalOutcome:
        return EvalOutcome(task.id, "failed", None, error, time.perf_counter() - t0, None)

    try:
        metrics = evaluator(task.genome, task.seed, task.parent_model, task.weights_dir)
        missing = [k for k in REQUIRED_METRICS if k not in metrics]
        if missing:
            return failed(f"evaluator returned no {', '.join(missing)}")
        metrics = _jsonable(metrics)
        bad = {
            k: metrics[k] for k in CHECKED_METRICS if k in metrics and not math.isfinite(float(metrics[k]))
        }
        if bad:
            return failed("non-finite result: " + ", ".join(f"{k}={v}" for k, v in bad.items()))
    except MemoryError:
        return failed("out of memory")
    except Exception as e:  # a failed evaluation is data: record it and go on
        return failed(f"{type(e).__name__}: {e}")
    saved = task.weights_dir
    if saved is not None and not (Path(saved) / WEIGHTS_FILE).exists():
        saved = None
    return EvalOutcome(task.id, "done", metrics, None, time.perf_counter() - t0, saved)


@functools.lru_cache(maxsize=4)
def _context(parent_dir: str, corpus_digest: str, config: ContextConfig, corpus: bytes) -> OffspringContext:
    """The offspring context for a parent, built once per worker process (it scores the pool)."""
    from bitlens.offspring.policy import build_context

    return build_context(parent_dir, corpus, config)


def _full_context() -> ContextConfig:
    from bitlens.offspring.policy import ContextConfig

    return ContextConfig.full()


@dataclass(frozen=True)
class PolicyEvaluator:
    """Train an offspring under the genome's curation policy; fitness from `evaluate_policy`.

    `parent_dir`: run dir of the parent model; `context` (sizes and seed) fixes the splits and
    pool scoring, so every genome of a run is judged on the same data; `split`: where fitness is
    scored, "validation" while searching, "test" only to re-check the winners at the end.
    """

    corpus: bytes
    parent_dir: str
    context: ContextConfig = field(default_factory=_full_context)
    space: GeneSpace = field(default_factory=policy_gene_space)
    split: str = "validation"

    def data_splits(self) -> DataSplits:
        """The byte ranges of the corpus splits this evaluator's contexts use."""
        return self.context.data_splits(self.corpus)

    def __call__(
        self, genome: Genome, seed: int, parent_model: str | None, weights_dir: str | None
    ) -> dict[str, Any]:
        # Imported here: the offspring package needs torch, which the CLI must not load for --help.
        from bitlens.offspring.policy import CurationPolicy, evaluate_offspring
        from bitlens.runs import WEIGHTS_FILE, atomic_write_json, save_model

        self.space.check(genome)
        digest = hashlib.sha256(self.corpus).hexdigest()
        ctx = _context(parent_model or self.parent_dir, digest, self.context, self.corpus)
        result, model = evaluate_offspring(CurationPolicy.from_dict(genome), ctx, seed, self.split)
        if weights_dir is not None:
            out = Path(weights_dir)
            save_model(model, out / WEIGHTS_FILE)
            atomic_write_json(
                out / "config.json",
                {
                    "preset": genome.get("offspring_preset"),
                    "model": model.config.to_dict(),
                    "policy": genome,
                    "seed": seed,
                    "parent": parent_model or self.parent_dir,
                },
            )
        metrics = result.to_dict()
        del metrics["fitness"], metrics["fitness_unit"]  # a gain/cost ratio: not for selection
        return {**metrics, "gain_bits_per_byte": result.baseline_bits_per_byte - result.heldout_bits_per_byte}
