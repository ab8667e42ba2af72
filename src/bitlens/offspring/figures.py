"""Saving figures: matplotlib's Agg backend, one PNG and one SVG per figure.

matplotlib is imported on first use, so the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path


def new_figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)


def save_figure(fig, path: str | Path) -> list[Path]:
    """Save `fig` as PNG and SVG next to each other (path's suffix is replaced); close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".svg")]
    fig.tight_layout()
    for p in out:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return out
