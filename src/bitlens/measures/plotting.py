"""Shared figure plumbing for the measures: the Agg backend, PNG + SVG output."""

from __future__ import annotations

from pathlib import Path


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.5, height: float = 4.0):
    """A matplotlib figure and its axes, on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=True)
    return fig, axes


def save_figure(fig, path: str | Path) -> list[Path]:
    """Save `fig` as PNG and SVG next to `path` (its suffix is replaced); returns both paths."""
    import matplotlib.pyplot as plt

    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = [base.with_suffix(".png"), base.with_suffix(".svg")]
    fig.tight_layout()
    for p in out:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return out
