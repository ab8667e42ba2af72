"""The one figure style of bitlens: matplotlib on the Agg backend, every figure saved as PNG + SVG.

This is the only module that imports matplotlib, and it does so when a figure is first made, so
importing a module with plot functions costs nothing (`bitlens --help` stays fast). Every plot
function in the tree makes its figure with `new_figure` and ends with `return save_figure(fig, path)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

DPI = 120
SUFFIXES = (".png", ".svg")
_SUFFIXES: ContextVar[tuple[str, ...]] = ContextVar("suffixes", default=SUFFIXES)


@contextmanager
def svg_only() -> Iterator[None]:
    """Inside, `save_figure` writes the SVG alone (the report inlines SVGs: no PNG to render)."""
    token = _SUFFIXES.set((".svg",))
    try:
        yield
    finally:
        _SUFFIXES.reset(token)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.5, height: float = 4.0) -> tuple[Figure, Any]:
    """A figure `width` × `height` inches in all, with `nrows` × `ncols` axes: one Axes, or a
    1-D array of them when there is one row or one column (matplotlib's `subplots`, squeezed)."""
    return _pyplot().subplots(nrows, ncols, figsize=(width, height))


def integer_ticks(axis: Axis) -> None:
    """Ticks at whole numbers only (generations, layers, indices)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def plain_ticks(axis: Axis, ticks: Sequence[float]) -> None:
    """Ticks exactly at `ticks`, written as plain numbers (no 10^k), and no minor labels: for a
    log axis over a few chosen values."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axis.set_ticks(list(ticks))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """Save `fig` as PNG and SVG at `path` with its suffix replaced (SVG alone inside
    `svg_only()`), close it; the paths written."""
    import matplotlib

    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_suffix(suffix) for suffix in _SUFFIXES.get()]
    fig.tight_layout()
    try:  # SVG that depends only on the figure: fixed ids, glyphs as paths, no timestamp
        with matplotlib.rc_context({"svg.hashsalt": "bitlens", "svg.fonttype": "path"}):
            for p in paths:
                fig.savefig(p, dpi=DPI, metadata={"Date": None} if p.suffix == ".svg" else None)
    finally:
        _pyplot().close(fig)
    return paths
