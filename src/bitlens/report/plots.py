"""Figures for the report, drawn from the instruments' JSON dicts (all axes in bits).

`plot_training` draws the default model's training curve. The `FALLBACK_PLOTS` are simple plots
of the contract keys, used only when an instrument's own `plot_*` function cannot be imported;
`figure_data_uri` runs either kind and returns the figure as an inline data URI.
"""

from __future__ import annotations

import base64
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

PlotFn = Callable[[Any, Path], None]
COLORS = ["#3366aa", "#cc6633", "#44aa77", "#aa4488", "#888833", "#666666"]


def _save(fig: plt.Figure, path: str | Path) -> None:
    """Save as PNG and SVG next to each other (`path`'s suffix is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    for suffix in (".svg", ".png"):
        fig.savefig(path.with_suffix(suffix), dpi=110)
    plt.close(fig)


def _axes(title: str, xlabel: str, ylabel: str, size: tuple[float, float] = (6.4, 3.6)):
    fig, ax = plt.subplots(figsize=size)
    if xlabel in ("layer", "generation"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_training(result: dict, path: str | Path) -> None:
    """Training curve of the default model: train and held-out bits/byte against training bytes."""
    curve = result["curve"]
    fig, ax = _axes("default model: training curve", "training bytes (tokens)", "bits/byte")
    train = [(r["tokens"], r["train_bits_per_byte"]) for r in curve if r.get("train_bits_per_byte")]
    val = [(r["tokens"], r["val_bits_per_byte"]) for r in curve if r.get("val_bits_per_byte") is not None]
    if train:
        ax.plot(*zip(*train), color=COLORS[0], label="train (batch mean)")
    if val:
        ax.plot(*zip(*val), "o-", color=COLORS[1], label="held-out")
    ax.axhline(result["val_bits_per_byte"], color=COLORS[1], ls=":", lw=1,
               label=f"final held-out {result['val_bits_per_byte']:.3f}")
    ax.legend()
    _save(fig, path)


def _bars(names: list[str], values: list[float], title: str, ylabel: str, path: str | Path) -> None:
    fig, ax = _axes(title, "", ylabel)
    ax.bar(range(len(values)), values, color=COLORS[0])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    _save(fig, path)


def _fallback_compression(result: dict, path: Path) -> None:
    rows = result["rows"]
    _bars([r["name"] for r in rows], [r["bits_per_byte"] for r in rows],
          f"bits/byte on {result['input_bytes']:,} bytes", "bits/byte", path)


def _fallback_surprisal(result: dict, path: Path) -> None:
    passages = result["most_surprising"] + result["least_surprising"]
    _bars([f"@{p['start']}" for p in passages], [p["mean_surprisal_bits"] for p in passages],
          "mean surprisal of the most and least surprising passages", "bits/byte", path)


def _fallback_prequential(result: dict, path: Path) -> None:
    n = result["bytes"]
    codes = {"uniform": result["uniform_bits"], "prequential": result["prequential_bits"]}
    codes.update({f"two-part {k}": v for k, v in result["two_part_bits"].items()})
    _bars(list(codes), [v / n for v in codes.values()], "code lengths", "bits/byte", path)


def _fallback_dynamics(result: dict, path: Path) -> None:
    names = list(result["classes"])
    fig, ax = _axes("token classes (loss Low/High, start→end)", "", "proportion of tokens")
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [result["classes"][k]["proportion"] for k in names], 0.4,
           color=COLORS[0], label="this model")
    ax.bar([i + 0.2 for i in x], [result["rho1_proportions"].get(k, 0) for k in names], 0.4,
           color=COLORS[1], label="Rho-1")
    ax.set_xticks(list(x), names)
    ax.legend()
    _save(fig, path)


def _fallback_capacity(result: dict, path: Path) -> None:
    fig, ax = _axes("capacity", "parameters", "bits/parameter")
    models = result["models"]
    ax.plot([m["params"] for m in models], [m["bits_per_parameter"] for m in models], "o-", color=COLORS[0])
    for (name, value), color in zip(result["reference_bits_per_parameter"].items(), COLORS[1:]):
        ax.axhline(value, ls="--", color=color, label=name)
    ax.set_xscale("log")
    ax.legend()
    _save(fig, path)


def _curves(rows: list[dict], x: str, ys: list[str], title: str, xlabel: str, ylabel: str,
            path: Path) -> None:
    """One line per key in `ys`, against the key `x`, over the same rows."""
    fig, ax = _axes(title, xlabel, ylabel)
    for key, color in zip(ys, COLORS):
        ax.plot([r[x] for r in rows], [r[key] for r in rows], "o-", color=color, label=key)
    ax.legend()
    _save(fig, path)


def _fallback_lens(result: dict, path: Path) -> None:
    _curves(result["layers"], "layer", ["logit_kl_bits", "tuned_kl_bits"], "lens: KL to the final prediction",
            "layer", "KL (bits)", path)


def _fallback_probes(result: dict, path: Path) -> None:
    fig, ax = _axes("MDL probes: compression per layer", "layer", "compression (uniform / online)")
    for prop, color in zip(result["properties"], COLORS * 4):
        layers = prop["layers"]
        ax.plot([r["layer"] for r in layers], [r["compression"] for r in layers], "o-", color=color,
                label=prop["property"])
        ax.plot([r["layer"] for r in layers], [r["control_compression"] for r in layers], ":", color=color)
    ax.legend(fontsize=8)
    _save(fig, path)


def _fallback_strategies(result: dict, path: Path) -> None:
    rows = result["strategies"]
    _bars([r["name"] for r in rows], [r["heldout_bits_per_byte"] for r in rows],
          "offspring trained on selected data", "held-out bits/byte", path)


def _fallback_collapse(results: list[dict], path: Path) -> None:
    fig, ax = _axes("generations trained on generated data", "generation", "held-out bits/byte")
    for result, color in zip(results, COLORS):
        gens = result["generations"]
        ax.plot([g["generation"] for g in gens], [g["heldout_bits_per_byte"] for g in gens], "o-",
                color=color, label=result["mode"])
    ax.legend()
    _save(fig, path)


def _fallback_fitness(result: dict, path: Path) -> None:
    _curves(result["generations"], "generation", ["best_fitness", "mean_fitness"],
            "evolution: fitness per generation", "generation", "fitness", path)


def _fallback_pareto(result: dict, path: Path) -> None:
    fig, ax = _axes("evolution: Pareto front", "FLOPs", "held-out bits/byte")
    front = sorted(result["pareto"], key=lambda p: p["flops"])
    ax.plot([p["flops"] for p in front], [p["heldout_bits_per_byte"] for p in front], "o-", color=COLORS[0])
    ax.set_xscale("log")
    _save(fig, path)


def _fallback_generalisation(result: dict, path: Path) -> None:
    fig, ax = _axes("generalisation gap and its bound", "training bytes n", "bits/byte")
    pts = result["points"]
    ax.plot([p["n"] for p in pts], [p["gap_bits_per_byte"] for p in pts], "o-", color=COLORS[0], label="gap")
    ax.plot([p["n"] for p in pts], [p["bound_bits_per_byte"] for p in pts], "s--", color=COLORS[1],
            label="CMI bound")
    ax.set_xscale("log")
    ax.legend()
    _save(fig, path)


FALLBACK_PLOTS: dict[str, PlotFn] = {
    "plot_compression": _fallback_compression,
    "plot_surprisal": _fallback_surprisal,
    "plot_prequential": _fallback_prequential,
    "plot_dynamics": _fallback_dynamics,
    "plot_capacity": _fallback_capacity,
    "plot_lens": _fallback_lens,
    "plot_probes": _fallback_probes,
    "plot_strategies": _fallback_strategies,
    "plot_collapse": _fallback_collapse,
    "plot_fitness": _fallback_fitness,
    "plot_pareto": _fallback_pareto,
    "plot_generalisation": _fallback_generalisation,
}


@contextmanager
def _reproducible_svg() -> Iterator[None]:
    """SVG output that depends only on the figure: fixed id salt, no timestamp."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    try:
        with matplotlib.rc_context({"svg.hashsalt": "bitlens", "svg.fonttype": "path"}):
            yield
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def figure_data_uri(plot: PlotFn, data: Any) -> str:
    """Run `plot(data, path)` in a scratch folder; the figure it wrote (SVG preferred) as a data URI."""
    with tempfile.TemporaryDirectory(prefix="bitlens-fig-") as tmp, _reproducible_svg():
        target = Path(tmp) / "figure.svg"
        plot(data, target)
        plt.close("all")
        written = sorted(Path(tmp).iterdir(), key=lambda p: (p.suffix != ".svg", p.name))
        if not written:
            raise ValueError(f"{getattr(plot, '__name__', plot)} wrote no figure")
        figure = written[0]
        mime = {".svg": "image/svg+xml", ".png": "image/png"}.get(figure.suffix.lower())
        if mime is None:
            raise ValueError(f"{getattr(plot, '__name__', plot)} wrote {figure.name}, not SVG or PNG")
        return f"data:{mime};base64,{base64.b64encode(figure.read_bytes()).decode()}"
