"""The one plotting module: PNG + SVG, the paths returned, the figure closed, reproducible SVG, and
matplotlib imported nowhere else and only when a figure is made."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bitlens.plotting import DPI, new_figure, save_figure

SRC = Path(__file__).parents[1] / "src"


def _draw(path: Path) -> list[Path]:
    fig, (ax1, ax2) = new_figure(ncols=2, width=6.0, height=3.0)
    ax1.plot([0, 1, 2], [3.0, 2.5, 2.25], "o-", label="bits/byte")
    ax1.legend()
    ax2.bar(["a", "b"], [1.0, 2.0])
    return save_figure(fig, path)


def test_save_figure_writes_png_and_svg_and_closes(tmp_path):
    import matplotlib.pyplot as plt

    paths = _draw(tmp_path / "sub" / "fig.png")
    assert paths == [tmp_path / "sub" / "fig.png", tmp_path / "sub" / "fig.svg"]
    png, svg = (p.read_bytes() for p in paths)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and svg.lstrip().startswith(b"<?xml")
    assert int.from_bytes(png[16:20], "big") == 6 * DPI  # PNG width in pixels: 6 inches at DPI
    assert plt.get_fignums() == []


def test_svg_depends_only_on_the_figure(tmp_path):
    first = _draw(tmp_path / "a.svg")[1].read_bytes()
    second = _draw(tmp_path / "b")[1].read_bytes()
    assert first == second and b"<dc:date>" not in first


def test_matplotlib_is_imported_only_by_the_plotting_module_and_only_on_use():
    importers = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if re.search(r"^\s*(import|from) matplotlib", p.read_text(), re.M)
    )
    assert importers == ["bitlens/plotting.py"]
    code = "import sys, bitlens.plotting, bitlens.evolve.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC)}
    )
    assert out.stdout.strip() == "False"


def test_lineage_plot_returns_the_paths_it_wrote(tmp_path):
    from bitlens.evolve.plots import plot_lineage

    evaluations = [
        {"id": 1, "generation": 0, "index": 0, "parents": [], "status": "done", "fitness": -3.0},
        {"id": 2, "generation": 0, "index": 1, "parents": [], "status": "failed", "fitness": None},
        {"id": 3, "generation": 1, "index": 0, "parents": [1], "status": "done", "fitness": -2.5},
    ]
    paths = plot_lineage({"evaluations": evaluations, "best": {"id": 3}}, tmp_path / "lineage.png")
    assert paths == [tmp_path / "lineage.png", tmp_path / "lineage.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
