"""`bitlens measure generalisation`: the f-CMI experiment."""

from __future__ import annotations

from dataclasses import replace

import click

from bitlens.cli.common import emit_json, json_option, show_progress
from bitlens.data import load_corpus
from bitlens.measures.generalisation import (
    DEFAULT_PRESET,
    QUICK,
    GeneralisationConfig,
    measure_generalisation,
    plot_generalisation,
)
from bitlens.model import MODEL_PRESETS


def _sizes(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter("expected comma-separated window counts, e.g. 75,250,1000") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("sizes must be positive window counts")
    return sizes


@click.command("generalisation")
@click.option("--corpus", default=None, metavar="PATH",
              help="Text file, directory or '-' (stdin); windows come from its first 90%. "
                   "Default: bundled Tiny Shakespeare.")
@click.option("--preset", type=click.Choice([DEFAULT_PRESET, *MODEL_PRESETS]), default=DEFAULT_PRESET,
              show_default=True, help="Model trained on each mask (micro = 2 layers × 32).")
@click.option("--sizes", callback=_sizes, default=None, metavar="N,N,...",
              help="Training windows n per supersample (default 75,250,1000,4000; quick 25,100,400).")
@click.option("--masks", type=click.IntRange(min=2), default=None,
              help="Trainings per supersample, even (default 8; quick 6; the paper uses 30).")
@click.option("--supersamples", type=click.IntRange(min=1), default=None,
              help="Independent supersamples per size (default 1; the paper uses 5).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Optimizer steps per training, the same for every n (default 300; quick 120).")
@click.option("--window", "window_bytes", type=click.IntRange(min=2), default=None,
              help="Bytes predicted per window (default 16).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for windows, masks and training.")
@click.option("--quick", is_flag=True, help="A small run (seconds): fewer sizes, masks and steps.")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Write the figure to FILE.png and FILE.svg.")
@json_option
def generalisation_cmd(corpus, preset, sizes, masks, supersamples, steps, window_bytes, seed, quick,
                       plot_path, json_out):
    """Generalisation gap vs its f-CMI bound, in bits/byte; memorised bits per window.

    How much do models know about their own training windows, and does it bound the gap?
    Supersample protocol (Harutyunyan et al. 2021, f-CMI): 2n windows in pairs; each of k models
    trains on one member of every pair chosen by a mask. Reported per n, all in bits:
    the measured gap (held-out − train loss, bits/byte), the f-CMI bound on it (bits/byte),
    the CMI between the models' losses and the masks (bits, summed over the n pairs; at most 1
    bit per pair), and the estimator's floor for pairs the models know nothing about
    (bits/pair). The memorisation view lists windows whose loss drops most (bits/byte) when they
    are trained on, with their surprisal when held out.

    JSON keys: points [{n, gap_bits_per_byte, bound_bits_per_byte, cmi_bits, cmi_bits_per_window,
    cmi_floor_bits_per_window, train_bits_per_byte, heldout_bits_per_byte,
    membership_surprisal_correlation}], memorisation {n, windows [{text, membership_bits,
    membership_bits_per_byte, reference_bits_per_byte}]}, config, model_params, seconds.
    """
    cfg = QUICK if quick else GeneralisationConfig()
    overrides = {"masks": masks, "supersamples": supersamples, "steps": steps, "window_bytes": window_bytes}
    cfg = replace(cfg, preset=preset, **{k: v for k, v in overrides.items() if v is not None})
    result = measure_generalisation(load_corpus(corpus), sizes=sizes, seed=seed, quick=quick,
                                    progress=show_progress(), config=cfg)
    if json_out != "-":
        _print_table(result)
    if plot_path:
        for path in plot_generalisation(result, plot_path):
            click.echo(f"figure → {path}")
    emit_json(result, json_out)


def _print_table(result: dict) -> None:
    c = result["config"]
    click.echo(f"{c['preset']} model ({result['model_params']:,} parameters), {c['window_bytes']}-byte windows, "
               f"{c['masks']} masks × {c['supersamples']} supersample(s), {c['steps']} steps each, "
               f"{result['seconds']:.0f} s")
    click.echo(f"{'n':>6} {'train':>8} {'held-out':>9} {'gap':>8} {'bound':>8} {'CMI bits':>9} {'bits/pair':>9}")
    for p in result["points"]:
        click.echo(f"{p['n']:>6} {p['train_bits_per_byte']:>8.3f} {p['heldout_bits_per_byte']:>9.3f} "
                   f"{p['gap_bits_per_byte']:>8.4f} {p['bound_bits_per_byte']:>8.4f} {p['cmi_bits']:>9.1f} "
                   f"{p['cmi_bits_per_window']:>9.3f}")
    floor = result["points"][0]["cmi_floor_bits_per_window"]
    click.echo(f"(losses in bits/byte; the CMI estimate reads {floor:.3f} bits/pair for pairs the models ignore)")
    mem = result["memorisation"]
    click.echo(f"most memorised windows at n={mem['n']} (loss drop when trained on · surprisal held out):")
    for w in mem["windows"][:5]:
        click.echo(f"  {w['membership_bits_per_byte']:6.2f} · {w['reference_bits_per_byte']:5.2f} bits/byte  "
                   f"{w['text']!r}")

