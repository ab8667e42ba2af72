"""Figures for the offspring instruments: matplotlib's Agg backend, one PNG and one SVG each.

matplotlib is imported on first use, so the CLI starts without it; saving is shared with the
measures (`bitlens.measures.plotting.save_figure`).
"""

from __future__ import annotations

from bitlens.measures.plotting import save_figure

__all__ = ["new_figure", "save_figure"]


def new_figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A row of `ncols` axes (always a 2-D array), `width` inches per axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
