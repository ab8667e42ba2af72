"""`bitlens collapse`: model collapse over generations, every arm at every top-p over seeds."""

from __future__ import annotations

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
    show_progress,
)
from bitlens.errors import BitlensError

# Written out so that `--help` needs no torch (a test keeps it equal to collapse.MODES).
COLLAPSE_MODES = ("replace", "accumulate", "accumulate-real")
offspring_preset_option = preset_option(default="tiny", help="Offspring model size.")


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
