"""The report's vocabulary: a section (its steps, table, reading lines and plots), a table, and
how numbers and intervals are printed. Text is returned raw; the page escapes everything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = list[Any]
# A plot function: (the step's JSON dict, or the list of them for a section of several steps,
# path) → the paths it wrote.
PlotFn = Callable[[Any, Path], list[Path]]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[Row]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    steps: tuple[str, ...]  # the JSON files (step names) it reads
    table: Callable[[list[dict]], Table]
    reading: Callable[[list[dict]], list[str]]
    plots: tuple[PlotFn, ...]  # called with the first result, or all of them if several steps


def fmt(x: Any) -> str:
    """A number as the report prints it: ints with separators, floats to 3 decimals or 3 digits."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "nan"
        if abs(x) >= 1e7:
            return f"{x:.3g}"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3f}"
    return str(x)


def interval_text(
    estimate: float | None, ci95: Sequence[float] | None, n_seeds: int | None, unit: str = ""
) -> str:
    """ "0.123 [0.101, 0.145] bits/byte (3 seeds)", or the estimate alone, said so, without one
    (one seed has no interval, whatever a point-wide `ci95` says)."""
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}" if n_seeds else "seeds not recorded"
    unit = f" {unit}" if unit else ""
    if ci95 is None or n_seeds == 1:
        return f"{fmt(estimate)}{unit} ({seeds}, no interval)"
    return f"{fmt(estimate)} [{fmt(ci95[0])}, {fmt(ci95[1])}]{unit} ({seeds})"


def effect_words(ci95: Sequence[float] | None, positive: str, negative: str) -> str:
    """What an interval on a difference supports: one of the two directions, or no effect."""
    if ci95 is None:
        return "not tested (one seed)"
    if ci95[0] > 0:
        return positive
    if ci95[1] < 0:
        return negative
    return "no effect detected (the interval includes 0)"
