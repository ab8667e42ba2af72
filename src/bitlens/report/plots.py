"""The report's own figure (the default model's training curve) and the inlining of figures.

`figure_data_uri` runs any plot function on a step's JSON in a scratch folder and returns the
SVG it wrote as an inline data URI (SVGs from `bitlens.plotting` depend only on the figure, so the
page is a function of the JSON alone).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitlens.plotting import new_figure, save_figure, svg_only

COLORS = ["#3366aa", "#cc6633"]


def plot_training(result: dict, path: str | Path) -> list[Path]:
    """Training curve of the default model: train and held-out bits/byte against training bytes."""
    curve = result["curve"]
    fig, ax = new_figure(width=6.4, height=3.6)
    ax.set_title("default model: training curve", fontsize=11)
    ax.set_xlabel("training bytes (tokens)")
    ax.set_ylabel("bits/byte")
    ax.grid(alpha=0.3)
    train = [(r["tokens"], r["train_bits_per_byte"]) for r in curve if r.get("train_bits_per_byte")]
    val = [(r["tokens"], r["val_bits_per_byte"]) for r in curve if r.get("val_bits_per_byte") is not None]
    if train:
        ax.plot(*zip(*train), color=COLORS[0], label="train (batch mean)")
    if val:
        ax.plot(*zip(*val), "o-", color=COLORS[1], label="held-out")
    ax.axhline(
        result["val_bits_per_byte"],
        color=COLORS[1],
        ls=":",
        lw=1,
        label=f"final held-out {result['val_bits_per_byte']:.3f}",
    )
    ax.legend()
    return save_figure(fig, path)


def figure_data_uri(plot: Callable[[Any, Path], list[Path]], data: Any) -> str:
    """Run `plot(data, path)` in a scratch folder; the SVG it wrote, as a data URI."""
    with tempfile.TemporaryDirectory(prefix="bitlens-fig-") as tmp, svg_only():
        svg = [p for p in plot(data, Path(tmp) / "figure.svg") if p.suffix == ".svg"]
        if not svg:
            raise ValueError(f"{plot.__name__} wrote no SVG")
        return f"data:image/svg+xml;base64,{base64.b64encode(svg[0].read_bytes()).decode()}"
