"""`run_demo`: run the demo's steps into a folder, reusing finished ones, then write the report.

Each step writes `<out>/<step>.json` atomically (its entry point's result, exactly as the
instrument's own command writes it) and is recorded in `<out>/demo.json`, the manifest.
Re-running the demo reuses every finished step, resumes the training run from its checkpoint and
retries failed steps. The report is rebuilt from the JSON files at the end of every run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bitlens.data import bundled_corpus_bytes
from bitlens.demo.manifest import Manifest, StepRecord, read_manifest, result_path, write_manifest
from bitlens.demo.steps import CORPUS_NAME, STEPS, DemoContext, Step
from bitlens.errors import BitlensError
from bitlens.report import build_report
from bitlens.runs import atomic_write_json

Log = Callable[[str], None]


@dataclass
class StepOutcome:
    name: str
    status: str  # "done" | "reused" | "failed" | "skipped"
    seconds: float
    entry_point: str
    error: str | None = None


@dataclass
class DemoResult:
    out_dir: str
    report: str
    quick: bool
    seed: int
    steps: list[StepOutcome]

    @property
    def failed(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.status == "failed"]

    def to_dict(self) -> dict:
        return asdict(self)


def run_demo(
    out_dir: str | Path = "runs/demo",
    quick: bool = False,
    seed: int = 0,
    progress: bool = False,
    redo: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
    log: Log | None = None,
) -> DemoResult:
    """Run every step on the bundled corpus into `out_dir` (reusing finished ones) and write
    `out_dir/report.html`.

    redo: names of finished steps to recompute. only: if given, run just these steps (and the
    training they rely on); the others keep whatever state they had ("skipped" this time).
    log: receives one line per step event (the step list, each start with the overall ETA, each
    end); progress enables the instruments' own progress bars and an overall bar.
    """
    out = Path(out_dir)
    _check_step_names(redo, only)
    data = bundled_corpus_bytes()
    manifest = _open_manifest(out, quick, seed, len(data))
    plan = plan_steps(manifest, out, redo, only)
    expected = {s.name: s.expected_seconds[0 if quick else 1] for s in STEPS}
    emit = log or (lambda line: None)
    _announce(emit, out, manifest, plan, expected)
    ctx = DemoContext(out, data, quick, seed, progress)
    outcomes = _run_steps(ctx, manifest, plan, expected, emit)
    report = build_report(out)
    emit(f"report → {report}")
    return DemoResult(str(out), str(report), quick, seed, outcomes)


def _check_step_names(redo: tuple[str, ...], only: tuple[str, ...]) -> None:
    names = [s.name for s in STEPS]
    unknown = [r for r in (*redo, *only) if r not in names]
    if unknown:
        raise BitlensError(f"unknown step(s) {unknown}; steps are {', '.join(names)}")
    if "train" in redo:
        raise BitlensError("the trained model cannot be redone in place; choose another --out")


def _open_manifest(out: Path, quick: bool, seed: int, corpus_bytes: int) -> Manifest:
    """The folder's manifest, or a new one; refuses a folder that holds a demo with other settings."""
    manifest = read_manifest(out)
    if manifest is None:
        return Manifest(quick, seed, CORPUS_NAME, corpus_bytes)
    if manifest.quick != quick or manifest.seed != seed:
        raise BitlensError(
            f"{out} holds a demo run with quick={manifest.quick}, seed={manifest.seed}; "
            f"choose another --out for quick={quick}, seed={seed}"
        )
    return manifest


def plan_steps(manifest: Manifest, out: Path, redo: tuple[str, ...], only: tuple[str, ...]) -> dict[str, str]:
    """What to do with each step: "reuse" (done, its JSON is there, not in `redo`), "skip" (not in
    a non-empty `only`; training never is) or "run"."""

    def action(name: str) -> str:
        if manifest.is_done(name) and name not in redo and result_path(out, name).exists():
            return "reuse"
        if only and name not in only and name != "train":
            return "skip"
        return "run"

    return {s.name: action(s.name) for s in STEPS}


def _announce(
    emit: Log, out: Path, manifest: Manifest, plan: dict[str, str], expected: dict[str, float]
) -> None:
    todo = [name for name, action in plan.items() if action == "run"]
    total = format_duration(Eta(expected).seconds_left(todo))
    emit(
        f"bitlens demo → {out} ({'quick' if manifest.quick else 'full'}, seed {manifest.seed}): "
        f"{len(STEPS)} steps + report, {len(todo)} to run, overall ETA ~{total}"
    )
    for i, (name, action) in enumerate(plan.items(), 1):
        emit(
            f"  {i:2d}. {name:<20} "
            f"{action if action != 'run' else f'run, ~{format_duration(expected[name])}'}"
        )


def _run_steps(
    ctx: DemoContext, manifest: Manifest, plan: dict[str, str], expected: dict[str, float], emit: Log
) -> list[StepOutcome]:
    """Run the planned steps in order, recording each in the manifest as it ends."""
    todo = [name for name, action in plan.items() if action == "run"]
    eta = Eta(expected)
    outcomes: list[StepOutcome] = []
    with _OverallBar(ctx.progress, sum(expected[n] for n in todo)) as bar:
        for i, step in enumerate(STEPS, 1):
            tag = f"[{i:2d}/{len(STEPS)}] {step.name}"
            if plan[step.name] == "reuse":
                outcomes.append(StepOutcome(step.name, "reused", 0.0, step.entry_point))
                emit(f"{tag}: reused {step.name}.json")
                continue
            if plan[step.name] == "skip":
                outcomes.append(StepOutcome(step.name, "skipped", 0.0, step.entry_point))
                emit(f"{tag}: skipped (not in --only)")
                continue
            left = format_duration(eta.seconds_left([n for n in todo if n not in eta.done]))
            emit(
                f"{tag}: running {step.entry_point} (expect ~{format_duration(expected[step.name])}; "
                f"overall ETA ~{left})"
            )
            bar.update(status=f"step {i}/{len(STEPS)} {step.name} · overall ETA ~{left}")
            outcome = run_step(step, ctx)
            if step.name == "train" and outcome.status == "failed":
                raise BitlensError(f"training the default model failed: {outcome.error}")
            manifest.steps[step.name] = StepRecord(
                outcome.status, round(outcome.seconds, 3), step.entry_point, outcome.error
            )
            write_manifest(ctx.out_dir, manifest)
            outcomes.append(outcome)
            eta.record(step.name, outcome.seconds)
            bar.update(advance=expected[step.name], status=f"{i}/{len(STEPS)} steps done")
            emit(
                f"{tag}: {outcome.status} in {format_duration(outcome.seconds)}"
                + (f" → {step.name}.json" if outcome.status == "done" else f": {outcome.error}")
            )
    return outcomes


def run_step(step: Step, ctx: DemoContext) -> StepOutcome:
    """Run one step and write its JSON ("done"), or catch its error and remove any stale JSON
    ("failed"): one instrument's failure must not cost the user the others (Ctrl-C still stops)."""
    path = result_path(ctx.out_dir, step.name)
    t0 = time.perf_counter()
    try:
        atomic_write_json(path, step.run(ctx))
    except Exception as e:
        path.unlink(missing_ok=True)
        error = f"{type(e).__name__}: {e}"
        return StepOutcome(step.name, "failed", time.perf_counter() - t0, step.entry_point, error)
    return StepOutcome(step.name, "done", time.perf_counter() - t0, step.entry_point)


class Eta:
    """Overall time left: expected seconds of the steps to come, scaled by the pace so far."""

    def __init__(self, expected: dict[str, float]) -> None:
        self.expected = expected
        self.done: list[str] = []
        self.spent = 0.0
        self.budgeted = 0.0

    def record(self, name: str, seconds: float) -> None:
        self.done.append(name)
        self.spent += seconds
        self.budgeted += self.expected[name]

    def seconds_left(self, names: list[str]) -> float:
        pace = min(4.0, max(0.25, self.spent / self.budgeted)) if self.budgeted > 0 else 1.0
        return pace * sum(self.expected[n] for n in names)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _OverallBar:
    """One bar over the whole demo, measured in expected seconds, with the current step and the
    overall ETA as its text (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: float) -> None:
        self.enabled, self.total = enabled and total > 0, math.ceil(total)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _OverallBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("demo"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("demo", total=self.total, status="")
        return self

    def update(self, advance: float = 0.0, status: str | None = None) -> None:
        if self._progress is not None:
            fields = {} if status is None else {"status": status}
            self._progress.update(self._task, advance=advance, **fields)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
