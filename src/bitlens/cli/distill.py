"""`bitlens offspring distill` (labels × inputs) and `bitlens offspring born-again`: the
distillation studies, each with its own parent trained here (`bitlens.offspring.study_parent`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from bitlens.cli.common import (
    corpus_option,
    emit_json,
    json_option,
    preset_option,
    quick_option,
    show_progress,
)

F = TypeVar("F", bound=Callable[..., Any])


def _seeds_option(default_help: str) -> Callable[[F], F]:
    return click.option(
        "--seeds",
        "n_seeds",
        type=click.IntRange(min=2),
        default=None,
        metavar="N",
        help=f"Number of offspring seeds, 0..N-1; intervals are over them ({default_help}).",
    )


parent_steps_option = click.option(
    "--parent-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Training steps of the study's parent, trained here from a fixed seed on the "
    "parent_train split (default 600; --quick 40).",
)


def _parent_config(quick: bool, preset: str, parent_steps: int | None):  # -> ParentConfig
    from bitlens.config import override
    from bitlens.offspring.study_parent import ParentConfig

    return override(ParentConfig.quick() if quick else ParentConfig.full(), preset=preset, steps=parent_steps)


@click.command("distill")
@corpus_option
@_seeds_option("default 10; --quick 3")
@parent_steps_option
@click.option(
    "--budget-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Training tokens of every offspring, the same in all four cells (default 409,600; --quick 32,768).",
)
@preset_option(default="tiny", help="Size of the parent and of the offspring.")
@quick_option
@json_option
def distill_cmd(corpus, n_seeds, parent_steps, budget_tokens, preset, quick, json_out):
    """Distillation as a 2×2: labels (hard next bytes | the parent's soft next-byte distribution)
    × inputs (real pool text | parent-written text), paired over seeds.

    \b
    A parent (same preset) is trained here from a fixed seed on the parent_train split; then,
    per seed, four offspring train on equal tokens with equal offspring FLOPs:
      hard/real       cross-entropy on held-out text the parent never saw (the pool)
      soft/real       KL to the parent's distribution at every position of that text
      hard/synthetic  cross-entropy on the parent's samples (temperature 1, no top-p)
      soft/synthetic  KL to the parent's distribution on its own samples
    Parent FLOPs (soft labels, writing) are counted and reported, not equalised.

    Units: test-split bits/byte per cell (mean, ci95 over seeds, n_seeds); the effects are
    paired per-seed differences in bits/byte (negative = the first condition is lower):
    labels = soft − hard, inputs = synthetic − real, interaction = (soft − hard | synthetic) −
    (soft − hard | real), each with a t interval, p_value and Holm p_holm. An interval that
    includes 0 reads "no effect detected".

    JSON keys: cells [labels, inputs, tokens, loss_tokens, offspring_train_flops, parent_flops,
    heldout_bits_per_byte, heldout_bits_per_byte_ci95, n_seeds, ...], effects [effect,
    definition, estimate, ci95, n_seeds, p_value, p_holm, reading], parent, splits.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.distill_study import DistillConfig, run_distill_2x2
    from bitlens.offspring.study_parent import train_parent

    cfg = override(
        DistillConfig.quick() if quick else DistillConfig.full(),
        seeds=None if n_seeds is None else tuple(range(n_seeds)),
        budget_tokens=budget_tokens,
        preset=preset,
    )
    parent = train_parent(load_corpus(corpus), _parent_config(quick, preset, parent_steps))
    r = run_distill_2x2(parent, cfg, progress=show_progress()).to_dict()
    if json_out != "-":
        _print_distill(r)
    emit_json(r, json_out)


def _interval(estimate: float, ci: list[float] | None) -> str:
    if ci is None:
        return f"{estimate:+8.4f} {'(1 seed)':>19}"
    return f"{estimate:+8.4f} [{ci[0]:+8.4f}, {ci[1]:+8.4f}]"


def _print_distill(r: dict) -> None:
    p = r["parent"]
    click.echo(
        f"parent: {p['preset']}, {p['steps']} steps ({p['tokens']:,} tokens), "
        f"{p['test_bits_per_byte']:.4f} bits/byte on the test split; offspring {r['preset']}, "
        f"{r['budget_tokens']:,} tokens; {len(r['seeds'])} seeds"
    )
    click.echo(
        f"{'labels/inputs':16} {'bits/byte [95 % CI]':>28} {'offspring TFLOPs':>17} {'parent TFLOPs':>14}"
    )
    for c in r["cells"]:
        click.echo(
            f"{c['labels'] + '/' + c['inputs']:16} "
            f"{_interval(c['heldout_bits_per_byte'], c['heldout_bits_per_byte_ci95'])} "
            f"{c['offspring_train_flops'] / 1e12:17.4f} {c['parent_flops'] / 1e12:14.4f}"
        )
    click.echo(f"{'effect (bits/byte)':16} {'estimate [95 % CI]':>28} {'p_holm':>8}  reading")
    for e in r["effects"]:
        p_holm = "n/a" if e["p_holm"] is None else f"{e['p_holm']:.3g}"
        click.echo(f"{e['effect']:16} {_interval(e['estimate'], e['ci95'])} {p_holm:>8}  {e['reading']}")
    click.echo(
        f"scored on the {r['heldout_split']} split ({r['heldout_bytes']:,} bytes); splits {r['splits']}"
    )


@click.command("born-again")
@corpus_option
@_seeds_option("default 5; --quick 3")
@parent_steps_option
@click.option(
    "--generations",
    type=click.IntRange(min=1),
    default=None,
    help="Born-again generations; generation g + 1 is taught by generation g (default 2).",
)
@click.option(
    "--budget-ratio",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Offspring training tokens as a share of the parent's (at most 1; default 1).",
)
@click.option(
    "--hard-control/--no-hard-control",
    default=None,
    help="Also re-run the parent's hard-label recipe from generation 1's seeds (default on).",
)
@preset_option(default="tiny", help="Size of the parent and of every offspring.")
@quick_option
@json_option
def born_again_cmd(
    corpus, n_seeds, parent_steps, generations, budget_ratio, hard_control, preset, quick, json_out
):
    """Born-again offspring: a fresh model of the parent's own size, trained on the parent's
    text with half its soft targets and half the real bytes (target mix), at no more tokens
    than the parent; then again from that offspring (Furlanello et al. 2018).

    The parent (--preset) is trained here from a fixed seed on the parent_train split, and every
    generation trains on the same split. Units: test-split bits/byte;
    improvement_vs_parent_bits_per_byte = parent − offspring (positive = beats its parent),
    with ci95 over seeds, n_seeds, p_value and Holm p_holm across generations (the parent is a
    single model: the interval is over the offspring's seeds). gain_over_hard_control_bits_per_byte
    = hard-label control − offspring, paired by seed.

    JSON keys: generations [generation, teacher, tokens, heldout_bits_per_byte,
    heldout_bits_per_byte_ci95, n_seeds, improvement_vs_parent_bits_per_byte {estimate, ci95,
    n_seeds, p_value, p_holm, reading}, improvement_vs_previous_bits_per_byte,
    gain_over_hard_control_bits_per_byte], hard_control, parent, budget_tokens, splits.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.born_again import BornAgainConfig, run_born_again
    from bitlens.offspring.study_parent import train_parent

    cfg = override(
        BornAgainConfig.quick() if quick else BornAgainConfig.full(),
        seeds=None if n_seeds is None else tuple(range(n_seeds)),
        generations=generations,
        budget_ratio=budget_ratio,
        hard_control=hard_control,
    )
    parent = train_parent(load_corpus(corpus), _parent_config(quick, preset, parent_steps))
    r = run_born_again(parent, cfg, progress=show_progress()).to_dict()
    if json_out != "-":
        _print_born_again(r)
    emit_json(r, json_out)


def _print_born_again(r: dict) -> None:
    p = r["parent"]
    click.echo(
        f"parent: {p['preset']}, {p['steps']} steps ({p['tokens']:,} tokens), "
        f"{r['parent_bits_per_byte']:.4f} bits/byte on the test split; offspring budget "
        f"{r['budget_tokens']:,} tokens; {len(r['seeds'])} seeds"
    )
    click.echo(f"{'':14} {'bits/byte':>9} {'improvement vs parent [95 % CI]':>33} {'p_holm':>8}  reading")
    rows = [(f"generation {g['generation']}", g) for g in r["generations"]]
    if r["hard_control"] is not None:
        rows.append(("hard control", r["hard_control"]))
    for name, g in rows:
        imp = g["improvement_vs_parent_bits_per_byte"]
        p_holm = "n/a" if imp["p_holm"] is None else f"{imp['p_holm']:.3g}"
        click.echo(
            f"{name:14} {g['heldout_bits_per_byte']:9.4f} {_interval(imp['estimate'], imp['ci95']):>33} "
            f"{p_holm:>8}  {imp['reading']}"
        )
    for g in r["generations"]:
        over = g["gain_over_hard_control_bits_per_byte"]
        if over is not None:
            click.echo(
                f"generation {g['generation']} over the hard control: "
                f"{_interval(over['estimate'], over['ci95'])} bits/byte ({over['reading']})"
            )
    click.echo(
        f"scored on the {r['heldout_split']} split ({r['heldout_bytes']:,} bytes); splits {r['splits']}"
    )
