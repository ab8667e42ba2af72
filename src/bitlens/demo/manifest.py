"""The demo's steps as data: their names, the entry point each calls, their JSON files, and the
manifest `<out>/demo.json` that records each step's status.

The demo writes the manifest as its steps finish; the report reads it (and the steps' JSON files)
to say what is done. Both import this module; it knows no step's code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bitlens.errors import BitlensError
from bitlens.runs import atomic_write_json

MANIFEST_FILE = "demo.json"

# The steps in order, each with the function it calls (its result is `<out>/<name>.json`).
ENTRY_POINTS: dict[str, str] = {
    "train": "bitlens.train.train_run",
    "compression": "bitlens.compress.compare.compare_compressors",
    "surprisal": "bitlens.measures.surprisal.measure_surprisal",
    "prequential": "bitlens.measures.prequential.measure_prequential",
    "dynamics": "bitlens.measures.dynamics.measure_dynamics",
    "capacity": "bitlens.measures.capacity.measure_capacity",
    "lens": "bitlens.measures.lens.measure_lens",
    "probes": "bitlens.measures.probes.measure_probes",
    "offspring": "bitlens.offspring.compare.compare_strategies",
    "distillation": "bitlens.offspring.distill_study.run_distill_2x2",
    "born_again": "bitlens.offspring.born_again.run_born_again",
    "collapse": "bitlens.offspring.collapse_arms.run_collapse_arms",
    "evolution": "bitlens.evolve.run.run_evolution",
    "generalisation": "bitlens.measures.generalisation.measure_generalisation",
}
STEP_NAMES: tuple[str, ...] = tuple(ENTRY_POINTS)


def result_path(out_dir: str | Path, step: str) -> Path:
    """Where a step's result (its entry point's JSON dict) lives."""
    return Path(out_dir) / f"{step}.json"


@dataclass
class StepRecord:
    """The last run of one step."""

    status: str  # "done" | "failed"
    seconds: float
    entry_point: str
    error: str | None = None  # "ExceptionType: message" of a failed step


@dataclass
class Manifest:
    """What `demo.json` holds: the demo's settings and the record of every step run so far."""

    quick: bool
    seed: int
    corpus: str
    corpus_bytes: int
    steps: dict[str, StepRecord] = field(default_factory=dict)

    def is_done(self, step: str) -> bool:
        record = self.steps.get(step)
        return record is not None and record.status == "done"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        steps = {name: StepRecord(**record) for name, record in d["steps"].items()}
        return cls(d["quick"], d["seed"], d["corpus"], d["corpus_bytes"], steps)


def read_manifest(out_dir: str | Path) -> Manifest | None:
    """The manifest of the demo folder `out_dir`, or None if it has none yet."""
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError:
        raise BitlensError(f"{path} is not valid JSON; remove it to start the demo afresh") from None
    except (KeyError, TypeError, AttributeError):
        raise BitlensError(f"{path} is not a demo manifest; remove it to start the demo afresh") from None


def write_manifest(out_dir: str | Path, manifest: Manifest) -> None:
    """Write `out_dir/demo.json` atomically."""
    atomic_write_json(Path(out_dir) / MANIFEST_FILE, manifest.to_dict())
