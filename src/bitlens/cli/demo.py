"""`bitlens demo`: the main job, end to end on the bundled corpus."""

from __future__ import annotations

from pathlib import Path

import click

from bitlens.cli.common import show_progress
from bitlens.data import bundled_corpus_bytes
from bitlens.runs import CONFIG_FILE, WEIGHTS_FILE
from bitlens.train import train_run


@click.command("demo")
@click.option("--out", "out_dir", default="runs/demo", show_default=True, metavar="DIR",
              help="Where the demo writes its runs and results.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps for the default model (default: the preset's).")
def demo_cmd(out_dir: str, steps: int | None) -> None:
    """Train the default model (small, ≈1M parameters) on Tiny Shakespeare and report
    its held-out bits per byte. Re-running resumes or reuses a finished run.
    """
    model_dir = Path(out_dir) / "model"
    done = (model_dir / WEIGHTS_FILE).exists() and (model_dir / "result.json").exists()
    resume = (model_dir / CONFIG_FILE).exists()
    r = train_run(bundled_corpus_bytes(), model_dir, preset="small", steps=steps, resume=resume,
                  progress=show_progress(), corpus_name="tinyshakespeare")
    verb = "reused" if done else "trained"
    click.echo(f"default model {verb}: {r.params:,} parameters, {r.tokens:,} training bytes, "
               f"{r.flops:.3g} FLOPs, {r.seconds:.0f} s")
    click.echo(f"held-out bits per byte: {r.val_bits_per_byte:.4f} ({r.val_bytes:,} bytes)")


COMMANDS = [demo_cmd]
