"""The `bitlens` command line: a thin layer that parses arguments and calls the library.

Subcommands are imported only when used (`COMMANDS` names where each lives), and the CLI modules
import the library inside their commands, so `bitlens --help` starts without torch. Library
errors (BitlensError) become a one-line message and exit code 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import click

from bitlens import __version__
from bitlens.cli.common import LazyGroup
from bitlens.errors import BitlensError

# command name → "module:click command", in the order a new user meets them.
COMMANDS = {
    "train": "bitlens.cli.train:train_cmd",
    "eval": "bitlens.cli.train:eval_cmd",
    "demo": "bitlens.cli.demo:demo_cmd",
    "report": "bitlens.cli.demo:report_cmd",
    "compress": "bitlens.cli.compress:compress_cmd",
    "decompress": "bitlens.cli.compress:decompress_cmd",
    "measure": "bitlens.cli.measure:measure",
    "lens": "bitlens.cli.layers:lens_cmd",
    "probe": "bitlens.cli.layers:probe_cmd",
    "offspring": "bitlens.cli.offspring:offspring_group",
    "collapse": "bitlens.cli.collapse:collapse_cmd",
    "evolve": "bitlens.cli.evolve:evolve_cmd",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="bitlens")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """bitlens: look at transformer language models through information theory.

    Every figure is in bits: bits per byte (bits/byte), bits per token, bits per parameter.
    bitlens models are byte-level, so one token is one byte; --model hf:DIR loads a local
    Hugging Face model (offline), whose token bits are reported per byte.

    \b
    Start here:
      bitlens train --out runs/small          train the default model on Tiny Shakespeare
      bitlens eval --model runs/small --corpus FILE   bits per byte of any file
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Entry point; `argv` lets tests run the CLI in-process. Returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="bitlens", standalone_mode=False)
    except BitlensError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0
