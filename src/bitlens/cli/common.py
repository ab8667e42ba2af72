"""Options and output helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bitlens.runs import atomic_write_json

json_option = click.option(
    "--json",
    "json_out",
    metavar="FILE|-",
    default=None,
    help="Also write the results as a JSON object to FILE ('-' for stdout).",
)


def emit_json(obj: Any, target: str | None) -> None:
    """Write `obj` as JSON to stdout ('-') or atomically to a file; nothing if target is None."""
    if target is None:
        return
    if target == "-":
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        sys.stdout.flush()
    else:
        atomic_write_json(Path(target), obj)


def show_progress() -> bool:
    """Progress bars go to stderr when it is a terminal."""
    return sys.stderr.isatty()
