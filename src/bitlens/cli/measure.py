"""`bitlens measure …`: the information measures (every figure in bits).

Other modules add subcommands to this group with `measure.add_command(...)`.
"""

from __future__ import annotations

from dataclasses import replace

import click

from bitlens.cli.common import emit_json, json_option, show_progress
from bitlens.data import load_corpus
from bitlens.errors import BitlensError
from bitlens.model import MODEL_PRESETS
from bitlens.runs import load_run

corpus_option = click.option(
    "--corpus", default=None, metavar="PATH",
    help="Text file, directory or '-' (stdin). Default: bundled Tiny Shakespeare.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
quick_option = click.option("--quick", is_flag=True, help="A small, fast run (seconds).")
preset_option = click.option("--preset", type=click.Choice(list(MODEL_PRESETS)), default="tiny",
                             show_default=True, help="Model size to train.")
plot_option = click.option("--plot", "plot_path", default=None, metavar="PATH",
                           help="Also draw the figure to PATH.png and PATH.svg.")


def training_measure_options(f):
    """The options every measure that trains its own model takes."""
    for option in (json_option, plot_option, quick_option, seed_option, preset_option, corpus_option):
        f = option(f)
    return f


def _config(quick: bool, quick_cfg, default_cfg, **overrides):
    """The quick or default config of a measure, with the options the user gave replaced."""
    return replace(quick_cfg if quick else default_cfg,
                   **{k: v for k, v in overrides.items() if v is not None})


def _finish(result: dict, json_out: str | None, plot_path: str | None, plot_fn) -> None:
    if plot_path:
        plot_fn(result, plot_path)
    emit_json(result, json_out)


def _echo(json_out: str | None, text: str) -> None:
    """Human-readable lines, unless the JSON goes to stdout."""
    if json_out != "-":
        click.echo(text)


@click.group("measure")
def measure() -> None:
    """Information measures of data, models and training, all in bits (bits/byte, bits/param)."""


@measure.command("surprisal")
@click.option("--model", "model_dir", required=True, metavar="RUN_DIR", help="A trained run directory.")
@corpus_option
@click.option("--max-bytes", type=click.IntRange(min=0), default=262_144, show_default=True,
              help="Score the first N bytes (0 = all).")
@click.option("--span", type=click.IntRange(min=1), default=32, show_default=True,
              help="Length in bytes of the reported most/least surprising spans.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--npz", "npz_path", default=None, metavar="FILE",
              help="Write per-byte surprisal_bits, entropy_bits and bytes arrays to FILE (.npz).")
@plot_option
@json_option
def surprisal_cmd(model_dir, corpus, max_bytes, span, top_k, npz_path, plot_path, json_out):
    """Per-byte surprisal −log2 p(x_t) and predictive entropy H(p_t), in bits.

    Prints both averages in bits/byte and the most and least surprising spans. JSON keys:
    bits_per_byte, entropy_bits_per_byte, bytes, most_surprising, least_surprising
    (lists of {text, start, mean_surprisal_bits}), histogram, profile.
    """
    from bitlens.measures.surprisal import measure_surprisal, plot_surprisal

    r = measure_surprisal(load_run(model_dir), load_corpus(corpus), progress=show_progress(),
                          max_bytes=max_bytes, span=span, top_k=top_k, npz_path=npz_path)
    _echo(json_out, f"{r['bits_per_byte']:.4f} bits/byte surprisal, {r['entropy_bits_per_byte']:.4f} "
                    f"bits/byte predictive entropy over {r['bytes']:,} bytes")
    for title, key in (("most surprising", "most_surprising"), ("least surprising", "least_surprising")):
        _echo(json_out, f"{title}:")
        for s in r[key]:
            _echo(json_out, f"  {s['mean_surprisal_bits']:6.3f} bits/byte @ {s['start']:>8,}  {s['text']!r}")
    _finish(r, json_out, plot_path, plot_surprisal)


@measure.command("prequential")
@training_measure_options
@click.option("--max-bytes", type=click.IntRange(min=0), default=None,
              help="Code the first N bytes (0 = all). Default: 256 KiB, 32 KiB with --quick.")
def prequential_cmd(corpus, preset, max_bytes, seed, quick, plot_path, json_out):
    """Prequential (online) description length vs uniform and two-part codes, in bits.

    Blier & Ollivier's code with doubling blocks; the first block costs 8 bits/byte. JSON keys:
    uniform_bits, prequential_bits, two_part_bits {fp32, fp16}, final_model_bits,
    information_in_weights_bits, bytes, bits_per_byte (same names, in bits/byte), blocks.
    """
    from bitlens.measures.prequential import QUICK, PrequentialConfig, measure_prequential, plot_prequential

    cfg = _config(quick, QUICK, PrequentialConfig(), max_bytes=max_bytes)
    r = measure_prequential(load_corpus(corpus), preset=preset, seed=seed, quick=quick,
                            progress=show_progress(), config=cfg)
    bpb = r["bits_per_byte"]
    _echo(json_out, f"{r['bytes']:,} bytes, {preset} model ({r['params']:,} parameters):")
    for name, key in (("uniform", "uniform_bits"), ("prequential", "prequential_bits"),
                      ("final model (cross-entropy only)", "final_model_bits"),
                      ("information in weights", "information_in_weights_bits")):
        _echo(json_out, f"  {name:34s} {r[key]:>14,.0f} bits  {bpb[key]:7.4f} bits/byte")
    for prec in ("fp32", "fp16"):
        _echo(json_out, f"  {'two-part, ' + prec + ' weights':34s} {r['two_part_bits'][prec]:>14,.0f} bits  "
                        f"{bpb['two_part_bits'][prec]:7.4f} bits/byte")
    _finish(r, json_out, plot_path, plot_prequential)


@measure.command("dynamics")
@training_measure_options
@click.option("--steps", type=click.IntRange(min=2), default=None,
              help="Training steps (default: the preset's; 150 with --quick).")
def dynamics_cmd(corpus, preset, steps, seed, quick, plot_path, json_out):
    """Information gained per held-out token during training, in bits, by Rho-1 class.

    Classes L->L, H->L, L->H, H->H compare each token's surprisal at a start checkpoint and at
    the end with a threshold (the final mean bits/byte). JSON keys: classes {class:
    {proportion, information_gained_bits}}, rho1_proportions, tokens, checkpoints,
    by_frequency, by_start_surprisal.
    """
    from bitlens.measures.dynamics import QUICK, DynamicsConfig, measure_dynamics, plot_dynamics

    cfg = _config(quick, QUICK, DynamicsConfig(), steps=steps)
    r = measure_dynamics(load_corpus(corpus), preset=preset, seed=seed, quick=quick,
                         progress=show_progress(), config=cfg)
    _echo(json_out, f"{r['tokens']:,} held-out tokens, start step {r['start_step']}, end step "
                    f"{r['end_step']}, threshold {r['threshold_bits']:.3f} bits")
    for c, v in r["classes"].items():
        _echo(json_out, f"  {c}: {v['proportion']:6.1%} (Rho-1 {r['rho1_proportions'][c]:.0%}), "
                        f"information gained {v['information_gained_bits']:,.0f} bits")
    _echo(json_out, f"Spearman(start surprisal, gain) = {r['spearman_start_surprisal_vs_gain']:.3f}; "
                    f"Spearman(byte frequency, gain) = {r['spearman_frequency_vs_gain']:.3f}")
    _finish(r, json_out, plot_path, plot_dynamics)


@measure.command("capacity")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Full-batch training steps (= exposures per sequence).")
@seed_option
@quick_option
@plot_option
@json_option
def capacity_cmd(steps, seed, quick, plot_path, json_out):
    """Memorisation capacity in bits per parameter, on uniformly random bytes (8 bits/byte).

    Memorised bits = Σ max(0, 8·S − surprisal) over the sequences; the plateau over a sweep of
    dataset sizes / parameters, beside Morris et al. (≈3.6) and Allen-Zhu & Li (≈2).
    JSON keys: models (list of {params, bits_per_parameter, points}), reference_bits_per_parameter.
    """
    from bitlens.measures.capacity import QUICK, CapacityConfig, measure_capacity, plot_capacity

    cfg = _config(quick, QUICK, CapacityConfig(), steps=steps)
    r = measure_capacity(seed=seed, quick=quick, progress=show_progress(), config=cfg)
    for m in r["models"]:
        flag = "" if m["plateau_reached"] else "  (no plateau: sweep more sequences)"
        _echo(json_out, f"{m['n_layer']}×{m['n_embd']}: {m['params']:,} params, capacity "
                        f"{m['capacity_bits']:,.0f} bits = {m['bits_per_parameter']:.2f} bits/param{flag}")
    _echo(json_out, "references: Morris et al. 2025 ≈3.6 bits/param, Allen-Zhu & Li ≈2 bits/param")
    _finish(r, json_out, plot_path, plot_capacity)


@measure.command("validate")
@click.option("--quick/--full", default=True, show_default=True,
              help="Quick checks (~1 min) or the full ones (1 MB order-2 Markov source, minutes).")
@seed_option
@json_option
def validate_cmd(quick, seed, json_out):
    """Check the measures against sources whose entropy (bits/byte) is known exactly.

    Exits non-zero when a check fails. JSON keys: passed, checks (list of {name, source,
    expected_bits_per_byte, measured_bits_per_byte, relative_error, tolerance, passed}).
    """
    from bitlens.measures.validate import validate_measures

    r = validate_measures(seed=seed, quick=quick, progress=show_progress())
    for c in r["checks"]:
        _echo(json_out, f"{'ok  ' if c['passed'] else 'FAIL'} {c['name']:30s} {c['source']:14s} "
                        f"expected {c['expected_bits_per_byte']:.4f}, measured "
                        f"{c['measured_bits_per_byte']:.4f} bits/byte ({c['seconds']:.0f} s)")
    emit_json(r, json_out)
    if not r["passed"]:
        failed = ", ".join(c["name"] for c in r["checks"] if not c["passed"])
        raise BitlensError(f"known-answer checks failed: {failed}")


def _add_generalisation() -> None:
    from bitlens.cli.measure_generalisation import generalisation_cmd

    measure.add_command(generalisation_cmd)


_add_generalisation()

COMMANDS = [measure]
