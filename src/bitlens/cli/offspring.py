"""`bitlens offspring compare|sweep|evaluate|distill|born-again` and `bitlens collapse`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bitlens.cli.common import (
    corpus_option,
    emit_json,
    hf_options,
    json_option,
    load_model_spec,
    parse_list,
    plot_option,
    preset_option,
    quick_option,
    seed_option,
    show_progress,
)
from bitlens.errors import BitlensError

F = TypeVar("F", bound=Callable[..., Any])

# Written out so that `--help` needs no torch (a test keeps it equal to collapse.MODES).
COLLAPSE_MODES = ("replace", "accumulate", "accumulate-real")
offspring_preset_option = preset_option(default="tiny", help="Offspring model size.")
parent_option = click.option(
    "--parent",
    "parent_dir",
    required=True,
    metavar="RUN_DIR|hf:PATH",
    help="Trained parent run directory (bitlens train), or hf:PATH for a local Hugging Face "
    "causal LM (it selects and writes text through its tokens; soft-label targets need a "
    "byte-level parent).",
)


def _parse_policy(text: str) -> dict:
    """--policy: a JSON object of genes, inline or in a file."""
    text = Path(text).read_text() if Path(text).is_file() else text
    try:
        genes = json.loads(text)
    except json.JSONDecodeError as e:
        raise BitlensError(f"--policy is neither a JSON object nor a JSON file: {e}") from None
    if not isinstance(genes, dict):
        raise BitlensError("--policy must be a JSON object of genes")
    return genes


@click.group("offspring")
def offspring_group() -> None:
    """Parent → offspring: a trained parent selects and writes data, an offspring learns from it."""


@offspring_group.command("compare")
@parent_option
@corpus_option
@hf_options
@click.option(
    "--keep-ratio",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Share of pool windows (or tokens) each strategy keeps (default 0.3).",
)
@click.option(
    "--seeds",
    default="0",
    show_default=True,
    metavar="S1,S2,...",
    help="Offspring seeds; means and spreads are over them.",
)
@offspring_preset_option
@quick_option
@plot_option
@json_option
def compare_cmd(
    parent_dir, corpus, device, dtype, batch_tokens, keep_ratio, seeds, preset, quick, plot_path, json_out
):
    """Selection strategies (random, surprisal, low-surprisal, static-excess, learnability, and
    the non-parent bigram control; document and token level) and distillation targets (raw, hard
    samples, soft labels, mix) at one budget.

    The pool is held-out text the parent never saw; every figure is scored on the test split
    (the JSON's `splits` gives the byte ranges). Units: held-out bits/byte with a t interval
    over seeds (ci95, n_seeds); FLOPs (6·N·D + attention for training, 2·N + attention per token
    the parent scores or writes); fitness in bits/byte gained over random selection per TFLOP;
    choice_bits = log2 C(n, k), an upper bound on what a selection can carry;
    gain_over_random_bits_per_byte / gain_over_bigram_bits_per_byte: held-out bits/byte gained
    over a random mask / the bigram scorer's mask, paired over seeds (estimate, ci95, n_seeds,
    p_value, p_holm); KL to the parent in bits/byte.

    JSON keys: splits, strategies [name, keep_ratio, tokens, flops, heldout_bits_per_byte,
    heldout_bits_per_byte_ci95, n_seeds, fitness, choice_bits, gain_over_random_bits_per_byte,
    gain_over_bigram_bits_per_byte, ...], distillation [target, tokens, heldout_bits_per_byte,
    heldout_bits_per_byte_ci95, kl_to_parent_bits, kl_drop_bits_per_byte, ...].
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.compare import CompareConfig, compare_strategies, plot_strategies

    cfg = override(
        CompareConfig.quick() if quick else CompareConfig.full(),
        keep_ratio=keep_ratio,
        seeds=parse_list(seeds, int, "--seeds"),
        preset=preset,
    )
    parent = load_model_spec(parent_dir, device, dtype, batch_tokens)
    r = compare_strategies(parent, load_corpus(corpus), cfg, progress=show_progress()).to_dict()
    if json_out != "-":
        _print_comparison(r)
    if plot_path:
        plot_strategies(r, plot_path)
    emit_json(r, json_out)


def _num(x: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if x is None else f"{x:{width}.4f}"


def _gain(g: dict | None) -> str:
    """A paired gain as '+0.0123 [-0.0100, +0.0300]' (blank when not compared)."""
    if g is None:
        return f"{'':>28}"
    if g["ci95"] is None:
        return f"{g['estimate']:+8.4f} {'(1 seed)':>19}"
    lo, hi = g["ci95"]
    return f"{g['estimate']:+8.4f} [{lo:+8.4f}, {hi:+8.4f}]"


def _bpb(row: dict) -> str:
    """Held-out bits/byte and its interval (blank for one seed)."""
    ci = row["heldout_bits_per_byte_ci95"]
    return f"{row['heldout_bits_per_byte']:8.4f} " + (
        f"[{ci[0]:7.4f}, {ci[1]:7.4f}]" if ci else f"{'(1 seed)':>18}"
    )


def _print_comparison(r: dict) -> None:
    click.echo(
        f"parent: {r['parent_bits_per_byte']:.4f} bits/byte; pool {r['pool_windows']} "
        f"windows; budget {r['budget_tokens']:,} tokens; seeds {r['seeds']}"
    )
    click.echo(
        f"{'strategy':26} {'bits/byte [95 % CI]':>26} {'TFLOPs':>8} {'choice bits':>12} "
        f"{'gain vs random /byte':>28} {'gain vs bigram /byte':>28}"
    )
    for s in r["strategies"]:
        click.echo(
            f"{s['name']:26} {_bpb(s)} "
            f"{s['flops'] / 1e12:8.3f} {s['choice_bits']:12.4g} "
            f"{_gain(s['gain_over_random_bits_per_byte'])} {_gain(s['gain_over_bigram_bits_per_byte'])}"
        )
    click.echo(
        f"{'target':8} {'bits/byte [95 % CI]':>26} {'KL→parent':>10} {'KL drop':>10} {'label bits':>11}"
    )
    for d in r["distillation"]:
        click.echo(
            f"{d['target']:8} {_bpb(d)} "
            f"{_num(d['kl_to_parent_bits'], 10)} {_num(d['kl_drop_bits_per_byte'], 10)} "
            f"{d['label_bits_per_token']:11.4f}"
        )
    click.echo(f"seeds: {r['seeds']}; scored on the {r['heldout_split']} split; splits {r['splits']}")
    if r.get("skipped_targets"):
        click.echo(
            f"not run: {', '.join(r['skipped_targets'])} (soft labels need a byte-level parent's "
            "next-byte distribution)"
        )


@offspring_group.command("sweep")
@parent_option
@corpus_option
@hf_options
@click.option(
    "--budgets",
    default=None,
    metavar="T1,T2,...",
    help="Offspring training budgets in tokens (default 65536,262144,1048576; 2048 tokens = "
    "one step of 16 windows of 128 bytes).",
)
@click.option(
    "--scores",
    default=None,
    metavar="S1,S2,...",
    help="Selection scores, the arms; random and bigram must be among them (default "
    "random,bigram,surprisal,rho-loss).",
)
@click.option("--level", type=click.Choice(["document", "token"]), default=None, help="Selection level.")
@click.option(
    "--keep-ratio",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Share of pool windows (or tokens) each arm keeps (default 0.3).",
)
@click.option(
    "--seeds",
    default=None,
    metavar="S1,S2,...",
    help="Offspring seeds, the same in every arm (default 0,...,9); gains are paired over them.",
)
@click.option(
    "--curve-points",
    type=click.IntRange(min=1),
    default=None,
    help="Test-split scores per run, evenly spaced in steps, the last at the end (default 4).",
)
@offspring_preset_option
@quick_option
@plot_option
@json_option
def sweep_cmd(
    parent_dir,
    corpus,
    device,
    dtype,
    batch_tokens,
    budgets,
    scores,
    level,
    keep_ratio,
    seeds,
    curve_points,
    preset,
    quick,
    plot_path,
    json_out,
):
    """Selection at several training budgets: each arm (a selection score) trains offspring at
    every budget over the same seeds, scored on the test split with learning curves.

    Per budget and arm: held-out bits/byte with a t interval over seeds (ci95, n_seeds), its
    learning curve (test bits/byte at several steps, mean and interval over seeds),
    choice_bits = log2 C(n, k), an upper bound on what a mask can carry, and the held-out
    bits/byte gained over a random mask (gain_over_random_bits_per_byte) and over the bigram
    scorer's mask (gain_over_bigram_bits_per_byte, parent-scored arms), paired over seeds
    (estimate, ci95, n_seeds, p_value, p_holm; Holm across the arms of one budget).

    JSON keys: splits, parent_bits_per_byte, unigram_entropy_bits_per_byte,
    target_bits_per_byte, budgets [budget_tokens, steps, arms [score, heldout_bits_per_byte,
    heldout_bits_per_byte_ci95, n_seeds, choice_bits, curve, gain_over_random_bits_per_byte,
    gain_over_bigram_bits_per_byte, ...]].
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.sweep import SweepConfig, plot_sweep, run_sweep

    cfg = override(
        SweepConfig.quick() if quick else SweepConfig.full(),
        budgets=parse_list(budgets, int, "--budgets"),
        scores=parse_list(scores, str, "--scores"),
        level=level,
        keep_ratio=keep_ratio,
        seeds=parse_list(seeds, int, "--seeds"),
        curve_points=curve_points,
        preset=preset,
    )
    parent = load_model_spec(parent_dir, device, dtype, batch_tokens)
    r = run_sweep(parent, load_corpus(corpus), cfg, progress=show_progress()).to_dict()
    if json_out != "-":
        print_sweep(r)
    if plot_path:
        plot_sweep(r, plot_path)
    emit_json(r, json_out)


def print_sweep(r: dict) -> None:
    """One table per budget: each arm's test bits/byte and its paired gains (95 % CI, Holm p)."""
    click.echo(
        f"parent: {r['parent_bits_per_byte']:.4f} bits/byte; byte unigram "
        f"{r['unigram_entropy_bits_per_byte']:.4f}; pool {r['pool_windows']} windows; keep "
        f"{r['keep_ratio']} ({r['level']}); seeds {r['seeds']}"
    )
    for b in r["budgets"]:
        click.echo(f"budget {b['budget_tokens']:,} tokens ({b['steps']} steps)")
        click.echo(
            f"  {'arm':14} {'bits/byte [95 % CI]':>26} {'choice bits':>12} "
            f"{'gain vs random /byte':>28} {'Holm p':>7} {'gain vs bigram /byte':>28} {'Holm p':>7}"
        )
        for a in b["arms"]:
            gr, gb = a["gain_over_random_bits_per_byte"], a["gain_over_bigram_bits_per_byte"]
            click.echo(
                f"  {a['score']:14} {_bpb(a)} {a['choice_bits']:12.4g} "
                f"{_gain(gr)} {_p(gr)} {_gain(gb)} {_p(gb)}"
            )
    click.echo(f"scored on the {r['heldout_split']} split; splits {r['splits']}")


def _p(g: dict | None) -> str:
    return f"{'':>7}" if g is None or g.get("p_holm") is None else f"{g['p_holm']:7.3f}"


@offspring_group.command("evaluate")
@parent_option
@corpus_option
@hf_options
@click.option(
    "--policy",
    "policy_text",
    default="{}",
    show_default=True,
    metavar="JSON|FILE",
    help="CurationPolicy genes as a JSON object or a JSON file; missing genes take "
    "their defaults, unknown ones are an error.",
)
@seed_option
@quick_option
@json_option
def evaluate_cmd(parent_dir, corpus, device, dtype, batch_tokens, policy_text, seed, quick, json_out):
    """Train one offspring under a curation policy and score it (what the evolution search does).

    One evaluation chooses nothing, so it is scored on the test split (the JSON's `splits`
    gives the byte ranges; evolution scores on validation instead). Units: held-out bits/byte
    (offspring, random-selection baseline, parent), FLOPs of the whole run, fitness in bits/byte
    gained over the baseline per TFLOP.

    JSON keys: heldout_bits_per_byte, heldout_split, baseline_bits_per_byte, tokens, flops,
    fitness, improvement_vs_parent_bits_per_byte, cost, choice_bits, kl_to_parent_bits (null
    for an hf: parent), policy, splits.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.distill import SOFT_WEIGHT
    from bitlens.offspring.parent import refuse_soft_target
    from bitlens.offspring.policy import ContextConfig, CurationPolicy, context_from_model, evaluate_policy

    policy = CurationPolicy.from_dict(_parse_policy(policy_text))
    context = override(ContextConfig.quick() if quick else ContextConfig.full(), seed=seed)
    parent = load_model_spec(parent_dir, device, dtype, batch_tokens)
    refuse_soft_target(parent, policy.target, SOFT_WEIGHT[policy.target])  # before reading the corpus
    ctx = context_from_model(parent, load_corpus(corpus), context)
    r = evaluate_policy(policy, ctx, seed, "test")
    if json_out != "-":
        click.echo(
            f"offspring {r.heldout_bits_per_byte:.4f} bits/byte, random selection "
            f"{r.baseline_bits_per_byte:.4f}, parent {r.parent_bits_per_byte:.4f}; "
            f"{r.tokens:,} tokens, {r.flops:.3g} FLOPs, fitness {r.fitness:+.4f} "
            f"{r.fitness_unit}"
        )
    emit_json({**r.to_dict(), "splits": ctx.splits.to_dict()}, json_out)


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


@offspring_group.command("distill")
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


@offspring_group.command("born-again")
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


def parse_arms(text: str) -> tuple[str, ...]:
    """--mode: a comma-separated list of arms, `all` (every arm) or `both` (replace,accumulate)."""
    named = {"all": COLLAPSE_MODES, "both": COLLAPSE_MODES[:2]}
    if text in named:
        return named[text]
    arms = parse_list(text, str, "--mode") or ()
    unknown = [a for a in arms if a not in COLLAPSE_MODES]
    if unknown:
        raise BitlensError(
            f"--mode: unknown arm {unknown[0]!r}; choose from {', '.join(COLLAPSE_MODES)}, all or both"
        )
    return arms


@click.command("collapse")
@corpus_option
@click.option(
    "--model",
    "model_spec",
    default=None,
    metavar="RUN_DIR|hf:PATH",
    help="Generation 0: this model as it is (a trained run, or hf:PATH for a local Hugging Face "
    "causal LM) instead of one trained on real data.",
)
@hf_options
@click.option(
    "--mode",
    "mode_text",
    default="replace",
    show_default=True,
    metavar="ARM[,ARM...]|all|both",
    help="Arms: replace (train only on the last generation's samples), accumulate (on real "
    "data and all samples so far), accumulate-real (all samples so far, with a fixed share of "
    "real data in every batch); all: the three; both: replace,accumulate.",
)
@click.option(
    "--generations",
    type=click.IntRange(min=1),
    default=None,
    help="Generations after generation 0, which trains on real data (default 5).",
)
@click.option(
    "--seeds",
    default="0",
    show_default=True,
    metavar="S1,S2,...",
    help="Seeds per arm; every figure is a mean over them with a t interval.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Sampling temperature (default 1.0).",
)
@click.option(
    "--top-p",
    "top_p_text",
    default="0.9",
    show_default=True,
    metavar="P[,P...]",
    help="Nucleus sampling mass; a list runs every arm at each (e.g. 1.0,0.9).",
)
@click.option(
    "--real-share",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="accumulate-real: share of every batch's windows (tokens) that are real (default 0.25).",
)
@offspring_preset_option
@quick_option
@plot_option
@json_option
def collapse_cmd(
    corpus,
    model_spec,
    device,
    dtype,
    batch_tokens,
    mode_text,
    generations,
    seeds,
    temperature,
    top_p_text,
    real_share,
    preset,
    quick,
    plot_path,
    json_out,
):
    """Model collapse: train each generation on earlier generations' samples, per arm, top-p and seed.

    Per generation, in bits: held-out bits/byte on real data (test split), and the samples' tail
    signature: their entropy (mean surprisal under the model that wrote them, bits/byte), unigram
    entropy (bits), rare-bigram and rare-byte mass (share of sample bigrams / bytes among the
    rarest real ones that hold 10 % of real data; real data ≈ 0.10). Each figure is the mean
    over seeds with its t interval; per arm, the change from generation 0 to the last, paired by
    seed ("no change detected" when its interval includes 0).

    JSON keys: arms [mode, top_p, seeds, generations [generation, n_seeds, real_share,
    heldout_bits_per_byte, heldout_bits_per_byte_ci95, sample_entropy_bits, ..._ci95,
    sample_unigram_entropy_bits, tail_mass, rare_byte_mass, heldout_share_below_threshold],
    change {figure: estimate, ci95, n_seeds, reading}, runs (one per seed)],
    last_generation_differences, seeds, real_share, budget_tokens, splits.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.offspring.collapse import CollapseConfig, plot_collapse
    from bitlens.offspring.collapse_arms import CollapseArmsConfig, run_collapse_arms

    base = override(
        CollapseConfig.quick() if quick else CollapseConfig.full(),
        generations=generations,
        temperature=temperature,
        real_share=real_share,
        preset=preset,
    )
    cfg = CollapseArmsConfig(
        base,
        modes=parse_arms(mode_text),
        top_ps=parse_list(top_p_text, float, "--top-p") or (),
        seeds=parse_list(seeds, int, "--seeds") or (),
    )
    first = None if model_spec is None else load_model_spec(model_spec, device, dtype, batch_tokens)
    if first is None and (device or dtype or batch_tokens):
        raise BitlensError(
            "--device, --dtype and --batch-tokens are for a generation 0 given by --model hf:PATH"
        )
    r = run_collapse_arms(load_corpus(corpus), cfg, progress=show_progress(), generation0=first).to_dict()
    if json_out != "-":
        _print_collapse(r)
    if plot_path:
        plot_collapse(r["arms"], plot_path)
    emit_json(r, json_out)


def _mean_ci(row: dict, key: str) -> str:
    """A mean over seeds and its interval, as '3.1234 [3.1000, 3.1500]' (no interval: 1 seed)."""
    ci = row[f"{key}_ci95"]
    return f"{row[key]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


_PRINTED = ("heldout_bits_per_byte", "sample_unigram_entropy_bits", "tail_mass", "rare_byte_mass")


def _print_collapse(r: dict) -> None:
    given = "" if r["generation0"] == "trained" else f"; generation 0 is {r['generation0']}"
    click.echo(
        f"seeds {r['seeds']}; {r['budget_tokens']:,} training tokens per generation; accumulate-real "
        f"keeps {r['real_share']:g} real{given}"
    )
    for arm in r["arms"]:
        click.echo(
            f"{arm['mode']}, top-p {arm['top_p']:g}: real data rare-bigram mass "
            f"{arm['real_tail_mass']:.4f}, rare-byte mass {arm['real_rare_byte_mass']:.4f}"
        )
        click.echo(
            f"  {'gen':>3} {'real':>5} {'held-out bits/byte [95% CI]':>31} {'unigram entropy':>31} "
            f"{'rare-bigram mass':>31} {'rare-byte mass':>31}"
        )
        for g in arm["generations"]:
            click.echo(
                f"  {g['generation']:3d} {g['real_share']:5.2f} "
                + " ".join(
                    f"{_mean_ci(g, k):>31}"
                    for k in (
                        "heldout_bits_per_byte",
                        "sample_unigram_entropy_bits",
                        "tail_mass",
                        "rare_byte_mass",
                    )
                )
            )
        for key in _PRINTED:
            c = arm["change"][key]
            ci = f" [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]" if c["ci95"] else ""
            click.echo(f"  change in {key} from generation 0: {c['estimate']:+.4f}{ci}: {c['reading']}")
    for d in r["last_generation_differences"]:
        ci = f" [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d["ci95"] else ""
        p = f", Holm p {d['p_holm']:.3g}" if d["p_holm"] is not None else ""
        click.echo(
            f"last generation, top-p {d['top_p']:g}: {d['a']} − {d['b']} = {d['estimate']:+.4f}{ci} "
            f"bits/byte{p}: {d['reading']}"
        )
