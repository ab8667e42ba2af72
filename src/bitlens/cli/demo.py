"""`bitlens demo` (the main job) and `bitlens report` (rebuild the page from the JSON alone)."""

from __future__ import annotations

import click

from bitlens.cli.common import emit_json, json_option, show_progress
from bitlens.errors import BitlensError


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    default="runs/demo",
    show_default=True,
    metavar="DIR",
    help="Demo folder: model/, one <step>.json per step, demo.json (manifest), report.html.",
)
@click.option(
    "--quick", is_flag=True, help="Everything small (tiny model, short runs): a few minutes on 2 cores."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed passed to every step.")
@click.option(
    "--redo",
    multiple=True,
    metavar="STEP",
    help="Recompute a finished step instead of reusing its JSON (repeatable).",
)
@click.option(
    "--only",
    multiple=True,
    metavar="STEP",
    help="Run only this step (repeatable; training runs if needed); others stay as they are.",
)
@json_option
def demo_cmd(
    out_dir: str, quick: bool, seed: int, redo: tuple[str, ...], only: tuple[str, ...], json_out: str | None
) -> None:
    """Train the default model on Tiny Shakespeare, run every instrument, write report.html.

    Steps, in order: train, compression (bits/byte vs gzip/bzip2/xz/zstd/brotli), surprisal
    (bits/byte, entropy), prequential (code lengths in bits), dynamics, capacity
    (bits/parameter), lens and probes (bits per layer), offspring, collapse (replace, accumulate),
    evolution, generalisation (bits/byte). Each step writes DIR/<step>.json; re-running reuses
    finished steps and retries failed ones.

    JSON (--json): out_dir, report, quick, seed, steps (name, status, seconds, entry_point, error).
    """
    from bitlens.demo.run import run_demo

    result = run_demo(
        out_dir,
        quick=quick,
        seed=seed,
        progress=show_progress(),
        redo=redo,
        only=only,
        log=lambda line: click.echo(line, err=True),
    )
    counts: dict[str, int] = {}
    for step in result.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    click.echo(
        f"report: {result.report} (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")",
        err=json_out == "-",
    )
    emit_json(result.to_dict(), json_out)
    if result.failed:
        names = ", ".join(s.name for s in result.failed)
        raise BitlensError(
            f"{len(result.failed)} step(s) failed ({names}); see {result.report}; re-run to retry them"
        )


@click.command("report")
@click.argument("run_dir", metavar="DIR", type=click.Path(file_okay=False))
def report_cmd(run_dir: str) -> None:
    """Rebuild DIR/report.html from the JSON files a demo wrote in DIR (no model is run).

    The page is self-contained (inline figures, no network); all figures are in bits.
    """
    from bitlens.report import build_report

    click.echo(str(build_report(run_dir)))


COMMANDS = [demo_cmd, report_cmd]
