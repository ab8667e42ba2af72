"""The report's sections on generated data: the distillation 2×2 with born-again offspring, and
collapse arms over seeds. Each reads only its steps' JSON (see `bitlens.report.text`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitlens.report.text import Table, fmt, interval_text


def _by_kind(results: list[dict]) -> tuple[dict | None, dict | None]:
    """(the 2×2 result, the born-again result) among a section's results, each None if absent."""
    two = next((r for r in results if "cells" in r), None)
    born = next((r for r in results if "generations" in r and "parent_bits_per_byte" in r), None)
    return two, born


def _p(d: dict) -> Any:
    return d.get("p_holm") if d.get("p_holm") is not None else d.get("p_value")


def distillation_table(results: list[dict]) -> Table:
    two, born = _by_kind(results)
    rows: list[list[Any]] = []
    if two is not None:
        for c in two["cells"]:
            ci = c.get("heldout_bits_per_byte_ci95")
            rows.append(
                [
                    f"{c['labels']} labels, {c['inputs']} inputs",
                    c["heldout_bits_per_byte"],
                    _ci(ci),
                    c["n_seeds"],
                    None,
                    "",
                ]
            )
        for e in two["effects"]:
            rows.append(
                [
                    f"effect: {e['definition']}",
                    e["estimate"],
                    _ci(e["ci95"]),
                    e["n_seeds"],
                    _p(e),
                    e["reading"],
                ]
            )
    if born is not None:
        rows.append(["parent (trained here)", born["parent_bits_per_byte"], "", None, None, ""])
        for g in born["generations"]:
            imp = g["improvement_vs_parent_bits_per_byte"]
            rows.append(
                [
                    f"born-again generation {g['generation']}: improvement vs parent",
                    imp["estimate"],
                    _ci(imp["ci95"]),
                    imp["n_seeds"],
                    _p(imp),
                    imp["reading"],
                ]
            )
    return Table(["row (test split)", "bits/byte", "95% interval", "seeds", "p (Holm)", "reading"], rows)


def _bpb(d: dict) -> str:
    return interval_text(d["estimate"], d["ci95"], d["n_seeds"], "bits/byte")


def _ci(ci: list[float] | None) -> str:
    return "–" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def distillation_reading(results: list[dict]) -> list[str]:
    two, born = _by_kind(results)
    lines = []
    if two is not None:
        parts = [f"{e['effect']} ({e['definition']}): {_bpb(e)}, {e['reading']}" for e in two["effects"]]
        lines.append(
            f"Distillation as a 2×2 on equal tokens ({fmt(two['budget_tokens'])} per offspring): "
            + "; ".join(parts)
            + "."
        )
    if born is not None:
        parts = []
        for g in born["generations"]:
            imp = g["improvement_vs_parent_bits_per_byte"]
            parts.append(f"generation {g['generation']} {_bpb(imp)} ({imp['reading']})")
        lines.append(
            f"Born-again offspring of the parent's size on its soft targets plus real text, at "
            f"{fmt(born['budget_ratio'])}× the parent's tokens, improve on the parent "
            f"({fmt(born['parent_bits_per_byte'])} bits/byte) by: " + "; ".join(parts) + "."
        )
    return lines


def plot_distillation(results: Any, path: str | Path) -> list[Path]:
    """The 2×2 cells and the born-again generations (test bits/byte, 95 % intervals as error
    bars), beside the parent. Saves PNG and SVG; returns the two paths."""
    from bitlens.plotting import new_figure, save_figure

    two, born = _by_kind(results if isinstance(results, list) else [results])
    fig, axes = new_figure(ncols=2, width=11, height=3.8)
    if two is not None:
        cells = two["cells"]
        _bars(axes[0], [f"{c['labels']}/{c['inputs']}" for c in cells], cells)
        axes[0].set_title(f"labels × inputs ({len(two['seeds'])} seeds)")
    if born is not None:
        rows = [*born["generations"], *([born["hard_control"]] if born.get("hard_control") else [])]
        names = [f"gen {g['generation']}" for g in born["generations"]] + (
            ["hard control"] if born.get("hard_control") else []
        )
        _bars(axes[1], names, rows)
        axes[1].axhline(born["parent_bits_per_byte"], ls="--", color="grey", lw=1, label="parent")
        axes[1].legend(fontsize=8)
        axes[1].set_title(f"born-again ({len(born['seeds'])} seeds)")
    for ax in axes:
        ax.set_ylabel("test bits/byte (lower is better)")
    return save_figure(fig, path)


def _bars(ax: Any, names: list[str], rows: list[dict]) -> None:
    means = [r["heldout_bits_per_byte"] for r in rows]
    cis = [r.get("heldout_bits_per_byte_ci95") for r in rows]
    low = [m - ci[0] if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    high = [ci[1] - m if ci else 0.0 for m, ci in zip(means, cis, strict=True)]
    ax.bar(names, means, yerr=[low, high], capsize=4, color="#4c72b0")
    top = max(m + h for m, h in zip(means, high, strict=True))
    bottom = min(m - lo for m, lo in zip(means, low, strict=True))
    ax.set_ylim(max(0.0, bottom - 0.3 * (top - bottom + 0.1)), top + 0.2 * (top - bottom + 0.1))
    ax.tick_params(axis="x", labelsize=8)


def collapse_table(results: list[dict]) -> Table:
    rows = []
    for arm in results[0]["arms"]:
        name = f"{arm['mode']}, top-p {fmt(float(arm['top_p']))}"
        for g in arm["generations"]:
            rows.append(
                [
                    name,
                    g["generation"],
                    g["heldout_bits_per_byte"],
                    _ci(g.get("heldout_bits_per_byte_ci95")),
                    g["sample_entropy_bits"],
                    g.get("rare_byte_mass"),
                ]
            )
    return Table(
        [
            "arm",
            "generation",
            "held-out bits/byte",
            "95% interval",
            "sample entropy (bits)",
            "rare-byte mass",
        ],
        rows,
    )


def collapse_reading(results: list[dict]) -> list[str]:
    r = results[0]
    last = r["generations"]
    held, tail = [], []
    for arm in r["arms"]:
        name = f"{arm['mode']} (top-p {fmt(float(arm['top_p']))})"
        c = arm["change"]["heldout_bits_per_byte"]
        held.append(
            f"{name} {interval_text(c['estimate'], c['ci95'], c['n_seeds'], 'bits/byte')}, {c['reading']}"
        )
        t = arm["change"].get("rare_byte_mass")
        if t is not None:
            tail.append(f"{name} {interval_text(t['estimate'], t['ci95'], t['n_seeds'])}, {t['reading']}")
    lines = [f"Change in held-out bits/byte from generation 0 to {last}: " + "; ".join(held) + "."]
    if tail:
        lines.append("The tail: change in the samples' rare-byte mass: " + "; ".join(tail) + ".")
    return lines


def plot_collapse_arms(result: Any, path: str | Path) -> list[Path]:
    """`plot_collapse` over the arms of a `run_collapse_arms` result (bands: 95 % intervals)."""
    from bitlens.offspring.collapse import plot_collapse

    return plot_collapse(result["arms"], path)
