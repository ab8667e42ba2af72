"""`bitlens demo`: train the default model, run every instrument, write the report.

The demo is an ordered list of steps. Each step writes `<out>/<step>.json` atomically (the
instrument's result dict, exactly as its own command writes it) and is recorded in
`<out>/demo.json`, the manifest. Re-running the demo reuses every finished step, resumes the
training run from its checkpoint, retries failed steps and looks again for instruments that were
missing. An instrument whose module is not part of this build is recorded as "missing", and the
report names it. The report is rebuilt from the JSON files at the end of every run.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from bitlens.data import bundled_corpus_bytes, split_corpus
from bitlens.errors import BitlensError
from bitlens.instruments import INSTRUMENTS, Instrument, entry_point
from bitlens.model import GPT
from bitlens.runs import CONFIG_FILE, METRICS_FILE, atomic_write_json, load_run

MANIFEST_FILE = "demo.json"
MODEL_DIR = "model"
CORPUS_NAME = "tinyshakespeare"

# The default model: `small` (≈1M parameters, preset length) for the full demo, a short `tiny`
# run for --quick, whose only job is to exercise every step in a few minutes.
TRAIN_SETTINGS: dict[bool, dict[str, Any]] = {
    False: {"preset": "small", "steps": None, "overrides": {}},
    True: {"preset": "tiny", "steps": 200, "overrides": {"eval_interval": 50}},
}


@dataclass
class DemoContext:
    """What the steps share: the corpus, the settings and (loaded once) the trained model."""

    out_dir: Path
    corpus: bytes
    quick: bool
    seed: int
    progress: bool
    _model: GPT | None = field(default=None, repr=False)

    @property
    def model_dir(self) -> Path:
        return self.out_dir / MODEL_DIR

    @property
    def model(self) -> GPT:
        if self._model is None:
            self._model = load_run(self.model_dir)
        return self._model

    @cached_property
    def heldout(self) -> bytes:
        """The held-out split (last 10%) of the corpus: bytes the model was not trained on."""
        split = split_corpus(self.corpus, self.model.config.block_size)
        return bytes(split.val.numpy().tobytes())


StepFn = Callable[[DemoContext, Callable | None], dict]


@dataclass(frozen=True)
class Step:
    """One demo step: its name (= JSON file stem), the code that runs it, its expected time."""

    name: str
    run: StepFn
    expected_seconds: tuple[float, float]  # (quick, full), on 2 idle cores; for the ETA only
    instrument: Instrument | None = None

    @property
    def entry_point(self) -> str:
        return self.instrument.entry_point if self.instrument else "bitlens.train.train_run"


def _accepted(fn: Callable, **optional: Any) -> dict[str, Any]:
    """The optional keyword arguments that `fn` declares (beyond the contract's required ones)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in optional.items() if k in params}


def _train(ctx: DemoContext, _: Callable | None) -> dict:
    from bitlens.train import train_run

    settings = TRAIN_SETTINGS[ctx.quick]
    r = train_run(ctx.corpus, ctx.model_dir, preset=settings["preset"], steps=settings["steps"],
                  seed=ctx.seed, resume=(ctx.model_dir / CONFIG_FILE).exists(),
                  progress=ctx.progress, corpus_name=CORPUS_NAME, train_overrides=settings["overrides"])
    curve = []
    for line in (ctx.model_dir / METRICS_FILE).read_text().splitlines():
        row = json.loads(line)
        curve.append({k: row[k] for k in ("step", "tokens", "train_bits_per_byte", "val_bits_per_byte")
                      if k in row})
    result = r.to_dict()
    result["run_dir"] = MODEL_DIR  # relative to the demo folder, so the report is portable
    result["curve"] = curve
    return result


def _common(ctx: DemoContext) -> dict[str, Any]:
    return {"seed": ctx.seed, "quick": ctx.quick, "progress": ctx.progress}


def _collapse(mode: str) -> StepFn:
    def run(ctx: DemoContext, fn: Callable) -> dict:
        return fn(data=ctx.corpus, mode=mode, generations=5, **_common(ctx))

    return run


def _evolution(ctx: DemoContext, fn: Callable) -> dict:
    out = ctx.out_dir / "evolution"
    # The demo shows the loop at work, not a converged search: one evaluation of full-size genes
    # takes 20-30 s here, so even the full demo evolves quick genes (4 × 3 offspring, survivors
    # not re-scored).
    sizes = {} if ctx.quick else {"population": 4, "generations": 3}
    sizes.update(_accepted(fn, reevaluate=False))
    return fn(out_dir=str(out), corpus=ctx.corpus, backend="local", resume=out.exists(), workers=1,
              **_accepted(fn, parent_dir=str(ctx.model_dir)), seed=ctx.seed, quick=True,
              progress=ctx.progress, **sizes)


# Held-out bytes for measures of the trained model; the whole corpus for instruments that train
# their own models (they choose how much of it to use, within their time budgets).
_RUNS: dict[str, StepFn] = {
    "compression": lambda c, fn: fn(data=c.heldout, model=c.model, online_preset="tiny", **_common(c)),
    "surprisal": lambda c, fn: fn(model=c.model, data=c.heldout, **_common(c)),
    "prequential": lambda c, fn: fn(data=c.corpus, preset="tiny", **_common(c)),
    "dynamics": lambda c, fn: fn(data=c.corpus, preset="tiny", **_common(c)),
    "capacity": lambda c, fn: fn(**_common(c)),
    "lens": lambda c, fn: fn(model=c.model, data=c.heldout, tuned=True, **_common(c)),
    "probes": lambda c, fn: fn(model=c.model, data=c.heldout, **_common(c)),
    "offspring": lambda c, fn: fn(parent=c.model, data=c.corpus, keep_ratio=0.3, seeds=(c.seed,),
                                  quick=c.quick, progress=c.progress),
    "collapse_replace": _collapse("replace"),
    "collapse_accumulate": _collapse("accumulate"),
    "evolution": _evolution,
    "generalisation": lambda c, fn: fn(data=c.corpus, **_common(c)),
}
# Budgets from the contracts: ≲20 s per instrument with --quick, ≲90 s (compression ≲150 s) in full.
_EXPECTED = {"compression": (20, 150), "collapse_replace": (10, 45), "collapse_accumulate": (10, 45)}

STEPS: list[Step] = [Step("train", _train, (15, 300))] + [
    Step(name, _RUNS[name], _EXPECTED.get(name, (20, 90)), INSTRUMENTS[name]) for name in INSTRUMENTS
]


@dataclass
class StepOutcome:
    name: str
    status: str  # "done" | "reused" | "missing" | "failed" | "skipped"
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


def read_manifest(out_dir: str | Path) -> dict | None:
    """The demo manifest of `out_dir`, or None if there is none yet."""
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise BitlensError(f"{path} is not valid JSON; remove it to start the demo afresh") from None


def _check_settings(manifest: dict | None, out_dir: Path, quick: bool, seed: int) -> None:
    if manifest is None:
        return
    if manifest.get("quick") != quick or manifest.get("seed") != seed:
        raise BitlensError(
            f"{out_dir} holds a demo run with quick={manifest.get('quick')}, "
            f"seed={manifest.get('seed')}; choose another --out for quick={quick}, seed={seed}"
        )


class _Eta:
    """Overall time left: expected seconds of the steps to come, scaled by the pace so far."""

    def __init__(self, expected: dict[str, float]) -> None:
        self.expected = expected
        self.spent = 0.0
        self.budgeted = 0.0

    def record(self, name: str, seconds: float) -> None:
        self.spent += seconds
        self.budgeted += self.expected[name]

    def seconds_left(self, names: list[str]) -> float:
        pace = min(4.0, max(0.25, self.spent / self.budgeted)) if self.budgeted > 0 else 1.0
        return pace * sum(self.expected[n] for n in names)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _run_step(step: Step, ctx: DemoContext, fn: Callable | None) -> tuple[str, dict | None, str | None]:
    """Run one step with its entry point `fn`: (status, result, error)."""
    try:
        result = step.run(ctx, fn)
        if not isinstance(result, dict):
            raise BitlensError(f"{step.entry_point} returned {type(result).__name__}, not a dict")
        lacking = [k for k in (step.instrument.keys if step.instrument else ()) if k not in result]
        if lacking:
            raise BitlensError(f"{step.entry_point}'s result lacks the contract keys {lacking}")
        json.dumps(result)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # one instrument's failure must not cost the user the others
        return "failed", None, f"{type(e).__name__}: {e}"
    return "done", result, None


def run_demo(
    out_dir: str | Path = "runs/demo",
    quick: bool = False,
    seed: int = 0,
    progress: bool = False,
    redo: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run every step on the bundled corpus into `out_dir` (reusing finished ones) and write
    `out_dir/report.html`.

    redo: names of finished steps to recompute. only: if given, run just these steps (and the
    training they rely on); the others keep whatever state they had ("skipped" this time).
    log: receives one line per step event (the step list, each start with the overall ETA, each
    end); progress enables the instruments' own progress bars and an overall bar.
    """
    from bitlens.report import build_report

    out = Path(out_dir)
    unknown = [r for r in (*redo, *only) if r not in {s.name for s in STEPS}]
    if unknown:
        raise BitlensError(f"unknown step(s) {unknown}; steps are {', '.join(s.name for s in STEPS)}")
    if "train" in redo:
        raise BitlensError("the trained model cannot be redone in place; choose another --out")
    manifest = read_manifest(out)
    _check_settings(manifest, out, quick, seed)
    data = bundled_corpus_bytes()
    if manifest is None:
        manifest = {"quick": quick, "seed": seed, "corpus": CORPUS_NAME, "corpus_bytes": len(data),
                    "steps": {}}
    ctx = DemoContext(out, data, quick, seed, progress)
    emit = log or (lambda line: None)
    expected = {s.name: s.expected_seconds[0 if quick else 1] for s in STEPS}

    def reusable(step: Step) -> bool:
        entry = manifest["steps"].get(step.name, {})
        return (entry.get("status") == "done" and step.name not in redo
                and (out / f"{step.name}.json").exists())

    def skipped(step: Step) -> bool:
        return bool(only) and step.name not in only and step.name != "train"

    todo = [s for s in STEPS if not reusable(s) and not skipped(s)]
    todo = [s for s in todo if s.instrument is None or entry_point(s.instrument) is not None]
    eta = _Eta(expected)
    total = format_duration(eta.seconds_left([s.name for s in todo]))
    emit(f"bitlens demo → {out} ({'quick' if quick else 'full'}, seed {seed}): {len(STEPS)} steps "
         f"+ report, {len(todo)} to run, overall ETA ~{total}")
    for i, step in enumerate(STEPS, 1):
        plan = ("reuse" if reusable(step) else "skip" if skipped(step) else
                f"run, ~{format_duration(expected[step.name])}" if step in todo else
                "missing from this build")
        emit(f"  {i:2d}. {step.name:<20} {plan}")
    outcomes: list[StepOutcome] = []
    with _OverallBar(progress, sum(expected[s.name] for s in todo)) as bar:
        for i, step in enumerate(STEPS, 1):
            tag = f"[{i:2d}/{len(STEPS)}] {step.name}"
            if reusable(step):
                outcomes.append(StepOutcome(step.name, "reused", 0.0, step.entry_point))
                emit(f"{tag}: reused {step.name}.json")
                continue
            if skipped(step):
                outcomes.append(StepOutcome(step.name, "skipped", 0.0, step.entry_point))
                emit(f"{tag}: skipped (not in --only)")
                continue
            fn = entry_point(step.instrument) if step.instrument else None
            if step.instrument is not None and fn is None:
                status, result, error, seconds = "missing", None, None, 0.0
            else:
                left = format_duration(eta.seconds_left(
                    [s.name for s in todo if s.name not in {o.name for o in outcomes}]))
                emit(f"{tag}: running {step.entry_point} (expect ~{format_duration(expected[step.name])}; "
                     f"overall ETA ~{left})")
                bar.update(status=f"step {i}/{len(STEPS)} {step.name} · overall ETA ~{left}")
                t0 = time.perf_counter()
                status, result, error = _run_step(step, ctx, fn)
                seconds = time.perf_counter() - t0
            if step.name == "train" and status == "failed":
                raise BitlensError(f"training the default model failed: {error}")
            if result is not None:
                atomic_write_json(out / f"{step.name}.json", result)
            else:  # a failed or missing step leaves no stale result behind
                (out / f"{step.name}.json").unlink(missing_ok=True)
            manifest["steps"][step.name] = {"status": status, "seconds": round(seconds, 3),
                                            "entry_point": step.entry_point, "error": error}
            atomic_write_json(out / MANIFEST_FILE, manifest)
            outcomes.append(StepOutcome(step.name, status, seconds, step.entry_point, error))
            if status == "missing":
                emit(f"{tag}: missing ({step.entry_point} is not part of this build)")
                continue
            eta.record(step.name, seconds)
            bar.update(advance=expected[step.name], status=f"{i}/{len(STEPS)} steps done")
            emit(f"{tag}: {status} in {format_duration(seconds)}"
                 + (f" → {step.name}.json" if status == "done" else f": {error}"))
    report = build_report(out)
    emit(f"report → {report}")
    return DemoResult(str(out), str(report), quick, seed, outcomes)


class _OverallBar:
    """One bar over the whole demo, measured in expected seconds, with the current step and the
    overall ETA as its text (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: float) -> None:
        self.enabled, self.total = enabled and total > 0, math.ceil(total)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "_OverallBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("demo"), BarColumn(), TextColumn("{task.fields[status]}"),
                                      TimeElapsedColumn(), console=Console(file=sys.stderr))
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
