"""`bitlens offspring compare|sweep|evaluate` (and `distill|born-again`, from `bitlens.cli.distill`)."""

from __future__ import annotations

import json
from pathlib import Path

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
from bitlens.cli.distill import born_again_cmd, distill_cmd
from bitlens.errors import BitlensError

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
@click.option(
    "--pool-bytes",
    type=click.IntRange(min=1),
    default=None,
    help="Bytes in the selection pool (default 320000; quick 32000). Cut from the text after "
    "the parent's; with the default parent head it shrinks to fit the corpus's last 10 %.",
)
@click.option(
    "--parent-train-bytes",
    type=click.IntRange(min=2),
    default=None,
    metavar="N",
    help="The parent was trained on the corpus's first N bytes and nothing else (e.g. `head -c N "
    "corpus > head.txt; bitlens train --corpus head.txt`), so the pool, validation and test "
    "can take the rest at their exact sizes. Checked against what the parent run recorded. "
    "Default: the parent is `bitlens train`'s run on this corpus (its first 90 %).",
)
@click.option(
    "--lr",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Every offspring's peak learning rate (default: the offspring preset's).",
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
    pool_bytes,
    parent_train_bytes,
    lr,
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
    from bitlens.hf import HF_PREFIX
    from bitlens.offspring.sweep import SweepConfig, plot_sweep, run_sweep
    from bitlens.runs import check_trained_on

    base = SweepConfig.quick() if quick else SweepConfig.full()
    cfg = override(
        base,
        budgets=parse_list(budgets, int, "--budgets"),
        scores=parse_list(scores, str, "--scores"),
        level=level,
        keep_ratio=keep_ratio,
        seeds=parse_list(seeds, int, "--seeds"),
        curve_points=curve_points,
        preset=preset,
        lr=lr,
        context=override(base.context, pool_bytes=pool_bytes, parent_train_bytes=parent_train_bytes),
    )
    data = load_corpus(corpus)
    if parent_train_bytes is not None and not parent_dir.startswith(HF_PREFIX):
        check_trained_on(parent_dir, cfg.context.parent_text(data))
    parent = load_model_spec(parent_dir, device, dtype, batch_tokens)
    r = run_sweep(parent, data, cfg, progress=show_progress()).to_dict()
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


offspring_group.add_command(distill_cmd)
offspring_group.add_command(born_again_cmd)
