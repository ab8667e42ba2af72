"""What the subcommands share: the lazy command group, the common options, list parsing and output.

Nothing here imports torch, matplotlib, ray or transformers: `bitlens --help` and every
`bitlens CMD --help` only import the CLI modules, which import the library inside their commands.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bitlens.errors import BitlensError

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A command group whose subcommands are imported only when used (or listed in --help).

    `lazy` maps each subcommand's name to "module:attribute" of its click command.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(c for c in super().list_commands(ctx) if c not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


def parse_list(text: str | None, kind: Callable[[str], Any] = str, name: str = "list") -> tuple | None:
    """A comma-separated option value as a tuple ("0,1, 2" → (0, 1, 2) with kind=int); None stays
    None (option not given). Empty items are an error naming the option."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",")]
    if not all(items):
        raise BitlensError(f"{name}: empty item in {text!r}; write a comma-separated list such as 1,2,3")
    try:
        return tuple(kind(s) for s in items)
    except ValueError:
        raise BitlensError(
            f"{name}: cannot read {text!r} as a comma-separated list of {getattr(kind, '__name__', 'values')}"
        ) from None


corpus_option = click.option(
    "--corpus",
    default=None,
    metavar="PATH",
    help="Text file, directory of files, or '-' for stdin. Default: bundled Tiny Shakespeare.",
)
seed_option = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Random seed (the same seed gives the same numbers).",
)
quick_option = click.option("--quick", is_flag=True, help="Small, fast settings (seconds to a minute).")
model_option = click.option(
    "--model",
    "model_spec",
    required=True,
    metavar="RUN_DIR|hf:PATH",
    help="A trained run directory, or hf:PATH for a local Hugging Face causal LM (offline only).",
)
device_option = click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps"]),
    default=None,
    help="hf: models: where to run (default: cuda if available, else mps, else cpu). Byte-level "
    "models always run on the CPU.",
)
dtype_option = click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default=None,
    help="hf: models: weights dtype (default float32).",
)
batch_tokens_option = click.option(
    "--batch-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="hf: models: tokens per scoring batch (default 8192).",
)


def hf_options(f: F) -> F:
    """--device, --dtype and --batch-tokens: how a hf: model runs (see `load_model_spec`)."""
    for option in (batch_tokens_option, dtype_option, device_option):
        f = option(f)
    return f


def load_model_spec(spec: str, device: str | None, dtype: str | None, batch_tokens: int | None) -> Any:
    """The model a --model/--parent option names, with the hf_options (`bitlens.runs.load_model`)."""
    from bitlens.runs import load_model

    return load_model(spec, device=device, dtype=dtype, batch_tokens=batch_tokens)


preset_names = ("tiny", "shallow", "small", "base")  # bitlens.model.MODEL_PRESETS (a test keeps them equal)


def preset_option(default: str = "tiny", help: str = "Model size to train.") -> Callable[[F], F]:
    return click.option(
        "--preset", type=click.Choice(preset_names), default=default, show_default=True, help=help
    )


json_option = click.option(
    "--json",
    "json_out",
    metavar="FILE|-",
    default=None,
    help="Also write the results as a JSON object to FILE ('-' for stdout).",
)

plot_option = click.option(
    "--plot", "plot_path", default=None, metavar="PATH", help="Also draw the figure to PATH.png and PATH.svg."
)


def emit_json(obj: Any, target: str | None) -> None:
    """Write `obj` as JSON to stdout ('-') or atomically to a file; nothing if target is None."""
    if target is None:
        return
    if target == "-":
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        sys.stdout.flush()
    else:
        from bitlens.runs import atomic_write_json

        atomic_write_json(Path(target), obj)


def show_progress() -> bool:
    """Progress bars go to stderr when it is a terminal."""
    return sys.stderr.isatty()
