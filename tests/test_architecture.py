"""The shape of the package: no import cycle (function-level imports included) and a CLI whose
help starts without the heavy libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "matplotlib", "ray", "transformers")


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """bitlens module → the bitlens modules it imports anywhere in its source (module level,
    inside functions or classes; not under `if TYPE_CHECKING:`)."""
    files = {_module_name(p, src): p for p in src.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        stack: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.If) and _is_type_checking(node):
                stack.extend(node.orelse)
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]  # running mod's __init__ too
            else:
                stack.extend(ast.iter_child_nodes(node))
                continue
            for t in targets:
                while t and t not in modules:  # `import bitlens.a.b` of a non-module attribute
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):  # own packages are not edges
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "bitlens"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from bitlens.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ..c import x\n")
    (pkg / "c.py").write_text("import bitlens.a\nx = 1\n")
    graph = import_graph(tmp_path)
    assert graph["bitlens.a"] == {"bitlens.sub", "bitlens.sub.b"} and graph["bitlens.sub.b"] == {"bitlens.c"}
    assert find_cycle(graph) == ["bitlens.a", "bitlens.sub.b", "bitlens.c", "bitlens.a"]
    (pkg / "c.py").write_text("x = 1\n")
    assert find_cycle(import_graph(tmp_path)) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "bitlens.cli" in graph and len(graph) > 30
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_nothing_imports_the_cli_or_the_demo():
    """Arrows point down: the CLI sits on top, the demo only under the CLI (the report reads the
    demo's manifest, the one module both share)."""
    graph = import_graph()
    for module, edges in graph.items():
        if module == "bitlens.__main__":  # `python -m bitlens` runs the CLI
            continue
        if not module.startswith("bitlens.cli"):
            assert not {e for e in edges if e.startswith("bitlens.cli")}, module
        if not module.startswith(("bitlens.cli", "bitlens.demo")):
            assert not {e for e in edges if e.startswith("bitlens.demo")} - {"bitlens.demo.manifest"}, module


_HELP_PROBE = """
import json, sys
from bitlens.cli import COMMANDS, cli, main
import click
codes = {}
for argv in [["--help"]] + [[name, "--help"] for name in COMMANDS]:
    codes[" ".join(argv)] = main(argv)
ctx = click.Context(cli)
for name in COMMANDS:
    command = cli.get_command(ctx, name)
    for sub in getattr(command, "list_commands", lambda c: [])(ctx):
        codes[f"{name} {sub} --help"] = main([name, sub, "--help"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_does_not_import_heavy_libraries():
    """`bitlens --help` and every `bitlens CMD [SUB] --help` run without torch, matplotlib, ray or
    transformers (checked in a fresh interpreter's sys.modules)."""
    out = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE % (HEAVY,)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert len(result["codes"]) > 15 and set(result["codes"].values()) == {0}, result["codes"]


def test_cli_preset_names_are_the_model_presets():
    from bitlens.cli.common import preset_names
    from bitlens.model import MODEL_PRESETS

    assert preset_names == tuple(MODEL_PRESETS)


@pytest.mark.parametrize("name", ["train", "measure", "offspring"])
def test_lazy_commands_resolve(name):
    import click

    from bitlens.cli import COMMANDS, cli

    assert isinstance(cli.get_command(click.Context(cli), name), click.Command)
    assert name in COMMANDS
