"""The `bitlens` command line: a thin layer that parses arguments and calls the library.

Each area registers its commands from its own module. Library errors (BitlensError) become a
one-line message and exit code 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys

import click

from bitlens import __version__
from bitlens.errors import BitlensError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bitlens")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """bitlens: look at transformer language models through information theory.

    Every figure is in bits: bits per byte (bits/byte), bits per token, bits per parameter.
    Models are byte-level, so one token is one byte.

    \b
    Start here:
      bitlens train --out runs/small          train the default model on Tiny Shakespeare
      bitlens eval --model runs/small --corpus FILE   bits per byte of any file
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from bitlens.cli import compress, demo, evolve, layers, measure, offspring, train

    for module in (train, demo, compress, measure, layers, offspring, evolve):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


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
