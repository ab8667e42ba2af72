"""Figures of an evolution run, drawn from the JSON dict `run_evolution` returns (PNG + SVG).

- `plot_fitness`: best and mean fitness per generation, the best survivor's mean, and the
  winner's 95% interval.
- `plot_pareto`: every offspring's held-out bits/byte against its FLOPs, with the Pareto front.
- `plot_lineage`: the lineage tree: one dot per genome (generation × index, coloured by fitness),
  lines from each child to its parent(s); failed evaluations are crosses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitlens.plotting import integer_ticks, new_figure, save_figure


def plot_fitness(result: dict[str, Any], path: str | Path) -> list[Path]:
    """Fitness (higher is better) over generations: best, mean, best survivor, winner ± 95% CI."""
    gens = [g for g in result["generations"] if g["best_fitness"] is not None]
    x = [g["generation"] for g in gens]
    fig, ax = new_figure(width=6, height=4)
    ax.plot(x, [g["best_fitness"] for g in gens], "o-", label="best of generation")
    ax.plot(x, [g["mean_fitness"] for g in gens], "s--", label="mean of generation")
    so_far = [
        (g["generation"], g.get("best_so_far_fitness"))
        for g in gens
        if g.get("best_so_far_fitness") is not None
    ]
    if so_far:
        ax.plot(*zip(*so_far), "k:", label="best survivor (mean of its evaluations)")
    w = result.get("winner")
    if w and w.get("fitness"):
        f, (lo, hi) = w["fitness"]["estimate"], w["fitness"]["ci95"]
        ax.errorbar(
            [w["generation"]],
            [f],
            yerr=[[f - lo], [hi - f]],
            fmt="D",
            color="k",
            capsize=4,
            label=(
                f"winner, 95% CI over its {n} evaluations"
                if (n := w["fitness"]["n_seeds"]) > 1
                else "winner (1 evaluation: no interval)"
            ),
        )
    integer_ticks(ax.xaxis)
    ax.set_xlabel("generation")
    form = (result.get("fitness") or {}).get("form")
    ax.set_ylabel(f"fitness, bits/byte ({form})" if form else "fitness")
    ax.set_title(f"evolution: {result.get('config', {}).get('strategy', 'es')}")
    ax.legend()
    return save_figure(fig, path)


def plot_pareto(result: dict[str, Any], path: str | Path) -> list[Path]:
    """Held-out bits/byte vs training FLOPs of every offspring; the Pareto front joined."""
    done = [e for e in result.get("evaluations", []) if e["status"] == "done"]
    fig, ax = new_figure(width=6, height=4)
    if done:
        sc = ax.scatter(
            [e["flops"] for e in done],
            [e["heldout_bits_per_byte"] for e in done],
            c=[e["generation"] for e in done],
            cmap="viridis",
            s=18,
            alpha=0.7,
        )
        fig.colorbar(sc, ax=ax, label="generation")
    front = sorted(result["pareto"], key=lambda p: p["flops"])
    ax.step(
        [p["flops"] for p in front],
        [p["heldout_bits_per_byte"] for p in front],
        "r-o",
        where="post",
        label="Pareto front",
    )
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs (total cost of the offspring run)")
    ax.set_ylabel("held-out bits/byte")
    ax.legend()
    return save_figure(fig, path)


def plot_lineage(result: dict[str, Any], path: str | Path) -> list[Path]:
    """The lineage tree (x: generation, y: index in generation, colour: fitness)."""
    evals = result.get("evaluations", [])
    pos = {e["id"]: (e["generation"], e["index"]) for e in evals}
    fig, ax = new_figure(width=7, height=4.5)
    for e in evals:
        for p in e["parents"]:
            if p in pos:
                (x0, y0), (x1, y1) = pos[p], pos[e["id"]]
                ax.plot([x0, x1], [y0, y1], color="0.7", lw=0.8, zorder=1)
    done = [e for e in evals if e["status"] == "done"]
    if done:
        sc = ax.scatter(
            [pos[e["id"]][0] for e in done],
            [pos[e["id"]][1] for e in done],
            c=[e["fitness"] for e in done],
            cmap="plasma",
            s=40,
            zorder=2,
        )
        fig.colorbar(sc, ax=ax, label="fitness")
    failed = [e for e in evals if e["status"] == "failed"]
    if failed:
        ax.scatter(
            [pos[e["id"]][0] for e in failed],
            [pos[e["id"]][1] for e in failed],
            marker="x",
            color="k",
            s=40,
            zorder=2,
            label="failed",
        )
        ax.legend()
    best = result.get("best")
    if best:
        ax.scatter(*pos[best["id"]], s=160, facecolors="none", edgecolors="g", lw=2, zorder=3)
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.set_xlabel("generation")
    ax.set_ylabel("genome index")
    ax.set_title("lineage (lines: child → parents; green ring: best)")
    return save_figure(fig, path)
