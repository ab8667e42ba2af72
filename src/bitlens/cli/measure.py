"""`bitlens measure …`: the information measures (every figure in bits).

Each command parses its options, builds the measure's config (`quick()` or `full()`, with the
options given merged in by `bitlens.config.override`), calls the library and prints. Heavy
modules (torch, the measures) are imported inside the commands.
"""

from __future__ import annotations

from dataclasses import replace

import click

from bitlens.cli.common import (
    corpus_option,
    emit_json,
    hf_options,
    json_option,
    load_model_spec,
    model_option,
    parse_list,
    plot_option,
    preset_names,
    quick_option,
    seed_option,
    show_progress,
)
from bitlens.cli.common import preset_option as common_preset_option
from bitlens.errors import BitlensError
from bitlens.evolve.backends import BACKENDS

preset_option = common_preset_option("tiny", "Model size to train.")


def training_measure_options(f):
    """The options every measure that trains its own model takes."""
    for option in (json_option, plot_option, quick_option, seed_option, preset_option, corpus_option):
        f = option(f)
    return f


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
@model_option
@corpus_option
@hf_options
@click.option(
    "--max-bytes",
    type=click.IntRange(min=0),
    default=None,
    help="Score the first N bytes (0 = all). Default: 262,144.",
)
@click.option(
    "--span",
    type=click.IntRange(min=1),
    default=None,
    help="Length in bytes of the reported most/least surprising spans. Default: 32.",
)
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Spans reported. Default: 5.")
@click.option(
    "--npz",
    "npz_path",
    default=None,
    metavar="FILE",
    help="Write per-byte surprisal_bits, entropy_bits and bytes arrays to FILE (.npz).",
)
@plot_option
@json_option
def surprisal_cmd(
    model_spec, corpus, device, dtype, batch_tokens, max_bytes, span, top_k, npz_path, plot_path, json_out
):
    """Per-byte surprisal −log2 p(x_t) and predictive entropy H(p_t), in bits.

    For an hf: model each token's bits are spread over its bytes (totals exact, as `eval`).

    Prints both averages in bits/byte and the most and least surprising spans. JSON keys:
    bits_per_byte, entropy_bits_per_byte, bytes, most_surprising, least_surprising
    (lists of {text, start, mean_surprisal_bits}), histogram, profile.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.surprisal import SurprisalConfig, measure_surprisal, plot_surprisal

    cfg = override(SurprisalConfig.full(), max_bytes=max_bytes, span=span, top_k=top_k)
    model = load_model_spec(model_spec, device, dtype, batch_tokens)
    result = measure_surprisal(model, load_corpus(corpus), cfg, progress=show_progress())
    if npz_path:
        result.scores.save_npz(npz_path)
    r = result.to_dict()
    _echo(
        json_out,
        f"{r['bits_per_byte']:.4f} bits/byte surprisal, {r['entropy_bits_per_byte']:.4f} "
        f"bits/byte predictive entropy over {r['bytes']:,} bytes",
    )
    for title, key in (("most surprising", "most_surprising"), ("least surprising", "least_surprising")):
        _echo(json_out, f"{title}:")
        for s in r[key]:
            _echo(json_out, f"  {s['mean_surprisal_bits']:6.3f} bits/byte @ {s['start']:>8,}  {s['text']!r}")
    _finish(r, json_out, plot_path, plot_surprisal)


@measure.command("prequential")
@training_measure_options
@click.option(
    "--max-bytes",
    type=click.IntRange(min=0),
    default=None,
    help="Code the first N bytes (0 = all). Default: 256 KiB, 8 KiB with --quick.",
)
@click.option(
    "--seeds",
    default=None,
    help="Several seeds, e.g. 0,1,2 (replaces --seed): each is a full run, and the headline "
    "figures come as means with 95% t intervals over the seeds (JSON: summary, runs).",
)
def prequential_cmd(corpus, preset, max_bytes, seed, quick, plot_path, json_out, seeds):
    """Prequential (online) description length vs uniform and two-part codes, in bits.

    Blier & Ollivier's code with doubling blocks; the first block costs 8 bits/byte. The two-part
    code is a real weights file (quantised, entropy-coded, decoded) plus the data coded under it.
    JSON keys: uniform_bits, prequential_bits, two_part_bits, weights_file_bytes,
    weight_bits_per_parameter, weights_code (per-tensor precision, the search),
    two_part_float_bits {fp32, fp16}, final_model_bits, information_in_weights_bits (and
    _heldout_bits), by_final_training, bytes, bits_per_byte (same names, in bits/byte), blocks.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.prequential import (
        PrequentialConfig,
        measure_prequential,
        over_seeds,
        plot_prequential,
    )

    base = PrequentialConfig.quick() if quick else PrequentialConfig.full()
    cfg = override(base, preset=preset, seed=seed, max_bytes=max_bytes)
    seed_list = parse_list(seeds, int, "--seeds")
    if seed_list is not None and len(seed_list) > 1:
        data = load_corpus(corpus)
        runs = [
            measure_prequential(data, replace(cfg, seed=s), progress=show_progress()).to_dict()
            for s in seed_list
        ]
        summary = over_seeds(runs)
        _echo(
            json_out, f"{summary['bytes']:,} bytes, {preset} model, {len(runs)} seeds (mean [95% interval]):"
        )
        for key, iv in summary["summary"].items():
            _echo(json_out, f"  {key:44s} {iv['estimate']:10.4f} [{iv['ci95'][0]:.4f}, {iv['ci95'][1]:.4f}]")
        _finish(summary, json_out, None, plot_prequential)
        if plot_path:
            plot_prequential(runs[0], plot_path)
        return
    if seed_list is not None:
        cfg = replace(cfg, seed=seed_list[0])
    r = measure_prequential(load_corpus(corpus), cfg, progress=show_progress()).to_dict()
    bpb = r["bits_per_byte"]
    _echo(json_out, f"{r['bytes']:,} bytes, {preset} model ({r['params']:,} parameters):")
    for name, key in (
        ("uniform", "uniform_bits"),
        ("prequential", "prequential_bits"),
        ("final model (cross-entropy only)", "final_model_bits"),
        ("information in weights", "information_in_weights_bits"),
        ("  the same, held-out final rate", "information_in_weights_heldout_bits"),
        ("two-part, weights file + data", "two_part_bits"),
    ):
        if r[key] is not None:
            _echo(json_out, f"  {name:34s} {r[key]:>14,.0f} bits  {bpb[key]:7.4f} bits/byte")
    if r["weights_file_bytes"] is not None:
        _echo(
            json_out,
            f"  {'  weights file':34s} {r['weights_file_bytes']:>14,} bytes "
            f"{r['weight_bits_per_parameter']:7.4f} bits/parameter",
        )
    for prec in ("fp32", "fp16"):
        _echo(
            json_out,
            f"  {'two-part, flat ' + prec + ' weights':34s} {r['two_part_float_bits'][prec]:>14,.0f} bits  "
            f"{bpb['two_part_float_bits'][prec]:7.4f} bits/byte",
        )
    _finish(r, json_out, plot_path, plot_prequential)


@measure.command("dynamics")
@training_measure_options
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=None,
    help="Training steps (default: the preset's; 150 with --quick).",
)
@click.option(
    "--checkpoints",
    "checkpoint_specs",
    default=None,
    metavar="A,B,...",
    help="Score this series instead of training one: hf:DIR, run directories (one holding "
    "checkpoints/ stands for its saved steps) or .safetensors files, in training order. "
    "The held-out bytes are the corpus's last 10%.",
)
@click.option(
    "--null-checkpoints",
    default=None,
    metavar="A,B",
    help="Two seeds' final checkpoints on the same data, for the noise null (trained here: "
    "seeds SEED and SEED+1).",
)
@click.option(
    "--threshold",
    "threshold_bits",
    type=float,
    default=None,
    help="Loss threshold High/Low in bits (default: the end checkpoint's mean loss).",
)
@click.option(
    "--start-step",
    type=click.IntRange(min=0),
    default=None,
    help="Start at the last checkpoint saved at or before this step (default: trained here, the "
    "first at or below the unigram entropy; a named series, its first).",
)
@click.option(
    "--heldout-bytes",
    type=click.IntRange(min=64),
    default=None,
    help="Held-out bytes scored (default 65,536; 4,096 with --quick).",
)
@click.option(
    "--save-checkpoints",
    "save_dir",
    default=None,
    metavar="DIR",
    help="Keep the checkpoints trained here in DIR/seed-N (run directories).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="serial",
    show_default=True,
    help="Where each checkpoint is scored: serial: this process; local: a process pool; ray: Ray "
    "tasks (the same bits on all three).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Checkpoints scored at once (processes or Ray tasks, 1 thread each).",
)
@click.option("--ray-address", default=None, metavar="ADDR", help="Join an existing Ray cluster.")
def dynamics_cmd(
    corpus,
    preset,
    steps,
    seed,
    quick,
    plot_path,
    json_out,
    checkpoint_specs,
    null_checkpoints,
    threshold_bits,
    start_step,
    heldout_bytes,
    save_dir,
    backend,
    workers,
    ray_address,
):
    """Per-byte losses over a series of checkpoints, by Rho-1 class, with intervals (bits).

    Classes L->L, H->L, L->H, H->H compare each held-out byte's loss at the start and end
    checkpoints with a threshold. Reported: each class's share of the gain beside its share of
    the starting bits, end loss regressed on start loss, a two-seed noise null, a threshold
    sweep, Rho-1's 51/26/12/11 %. Intervals: bootstrap over blocks of held-out bytes. JSON keys:
    classes {class: {tokens, proportion, gain_share, start_bits_share, gain_over_start_share}},
    regression {slope, intercept, r_squared}, noise_null, threshold_sweep, checkpoints,
    rho1_proportions; each interval is {estimate, ci95, n_seeds, n_blocks}.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.dynamics import DynamicsConfig, measure_dynamics, plot_dynamics

    base = DynamicsConfig.quick() if quick else DynamicsConfig.full()
    cfg = override(
        base,
        preset=preset,
        seed=seed,
        steps=steps,
        threshold_bits=threshold_bits,
        heldout_bytes=heldout_bytes,
        start_step=start_step,
    )
    specs = checkpoint_specs.split(",") if checkpoint_specs else None
    null = tuple(null_checkpoints.split(",")) if null_checkpoints else None
    if null is not None and len(null) != 2:
        raise BitlensError("--null-checkpoints takes exactly two checkpoints: A,B")
    if specs is None and null is not None:
        raise BitlensError(
            "--null-checkpoints goes with --checkpoints (trained here, the null trains itself)"
        )
    r = measure_dynamics(
        load_corpus(corpus),
        cfg,
        progress=show_progress(),
        checkpoints=specs,
        null_checkpoints=null,
        backend=backend,
        workers=workers,
        address=ray_address,
        save_dir=save_dir,
    ).to_dict()
    _echo(
        json_out,
        f"{r['tokens']:,} held-out bytes, start {r['start']}, end {r['end']}, "
        f"threshold {r['threshold_bits']:.3f} bits ({r['threshold_rule']})",
    )

    def iv(d: dict | None, pct: bool = True) -> str:
        if d is None:
            return "undefined"
        f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
        return f"{f(d['estimate'])} [{f(d['ci95'][0])}, {f(d['ci95'][1])}]"

    for c, v in r["classes"].items():
        _echo(
            json_out,
            f"  {c}: {iv(v['proportion'])} of bytes (Rho-1 {r['rho1_proportions'][c]:.0%}); "
            f"share of gain {iv(v['gain_share'])} vs share of starting bits {iv(v['start_bits_share'])}",
        )
    reg = r["regression"]
    if reg["slope"] is not None:
        _echo(
            json_out,
            f"end = {iv(reg['slope'], False)} × start + {iv(reg['intercept'], False)} bits, "
            f"r² {iv(reg['r_squared'], False)}",
        )
    null_r = r["noise_null"]
    if null_r is not None:
        _echo(
            json_out,
            f"noise null (two seeds' final checkpoints): {iv(null_r['off_diagonal'])} of bytes change "
            f"class (H->L or L->H), mean |difference| {iv(null_r['mean_abs_change_bits'], False)} bits",
        )
    _echo(
        json_out, f"distance to Rho-1's split (total variation): {r['distance_to_rho1']:.3f}; 95% intervals"
    )
    _finish(r, json_out, plot_path, plot_dynamics)


@measure.command("capacity")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Step cap of each training run (runs stop earlier once memorised bits stop moving).",
)
@click.option("--seeds", "n_seeds", type=click.IntRange(min=1), default=None, help="Number of seeds.")
@seed_option
@quick_option
@plot_option
@json_option
def capacity_cmd(steps, n_seeds, seed, quick, plot_path, json_out):
    """Memorisation capacity as bits per parameter: the slope of capacity against parameters.

    On uniformly random bytes (baseline 8 bits/byte), memorised bits = Σ max(0, 8·S − surprisal);
    each run trains until they stop moving (or the step cap); capacity = the most memorised over
    a sweep of dataset sizes, a plateau when growth stopped at the sweep's end. Re-measured after
    bf16, int8 and int4 rounding of the weights, beside Morris et al. and Allen-Zhu & Li. The
    long study is benchmarks/capacity.py.
    JSON keys: slope_bits_per_parameter, slope_ci95, n_seeds, precision, tail_mean (the slope with
    capacity read as the mean of the sweep's last points), runs (each with parameters,
    memorised_bits, tail_mean_bits, saturated, plateau_reached, points), anchors_bits_per_parameter.
    """
    from dataclasses import replace

    from bitlens.config import override
    from bitlens.measures.capacity import CapacityConfig, measure_capacity, plot_capacity

    base = CapacityConfig.quick() if quick else CapacityConfig.full()
    cfg = override(base, seed=seed, n_seeds=n_seeds)
    if steps is not None:
        sat = cfg.saturation
        cfg = replace(cfg, saturation=replace(sat, max_steps=steps, min_steps=min(sat.min_steps, steps)))
    r = measure_capacity(cfg, progress=show_progress()).to_dict()
    for m in r["runs"]:
        flags = ("" if m["saturated"] else "  (not saturated)") + (
            "" if m["plateau_reached"] else "  (no plateau: a lower bound)"
        )
        _echo(
            json_out,
            f"{m['n_layer']}×{m['n_embd']} seed {m['seed']}: {m['parameters']:,} params, "
            f"{m['memorised_bits']:,.0f} bits = {m['bits_per_parameter']:.2f} bits/param{flags}",
        )
    for p, f in r["precision"].items():
        lo, hi = f["slope_ci95"]
        _echo(
            json_out,
            f"{p}: slope {f['slope_bits_per_parameter']:.2f} bits/param [{lo:.2f}, {hi:.2f}] over "
            f"{f['n_seeds']} seeds (anchor {f['anchor']}: {f['anchor_bits_per_parameter']})",
        )
    _finish(r, json_out, plot_path, plot_capacity)


@measure.command("validate")
@click.option(
    "--quick/--full",
    default=True,
    show_default=True,
    help="Quick checks (~1.5 min) or the full ones (1 MB order-2 Markov source, order-2 and "
    "order-3 lagged sources, minutes).",
)
@seed_option
@json_option
def validate_cmd(quick, seed, json_out):
    """Check the measures against sources whose entropy (bits/byte) is known exactly.

    Exits non-zero when a check fails. JSON keys: passed, checks (list of {name, source,
    expected_bits_per_byte, measured_bits_per_byte, relative_error, tolerance, passed}).
    """
    from bitlens.config import override
    from bitlens.measures.validate import ValidationConfig, validate_measures

    base = ValidationConfig.quick() if quick else ValidationConfig.full()
    r = validate_measures(override(base, seed=seed), progress=show_progress()).to_dict()
    for c in r["checks"]:
        _echo(
            json_out,
            f"{'ok  ' if c['passed'] else 'FAIL'} {c['name']:32s} {c['source']:14s} "
            f"expected {c['expected_bits_per_byte']:.4f}, measured "
            f"{c['measured_bits_per_byte']:.4f} bits/byte ({c['seconds']:.0f} s)",
        )
        if "conditional_entropy_bits_by_order" in c["details"]:  # model_learns_order_k
            d = c["details"]
            _echo(
                json_out,
                f"     sample: H(next | previous j bytes), j = 0..{d['order']}: "
                + ", ".join(f"{h:.2f}" for h in d["conditional_entropy_bits_by_order"])
                + f"; H(next | the byte j back), j = 1..{d['order']}: "
                + ", ".join(f"{h:.2f}" for h in d["entropy_given_byte_at_lag_bits"])
                + " bits/byte",
            )
    emit_json(r, json_out)
    if not r["passed"]:
        failed = ", ".join(c["name"] for c in r["checks"] if not c["passed"])
        raise BitlensError(f"known-answer checks failed: {failed}")


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


@measure.command("generalisation")
@click.option(
    "--corpus",
    default=None,
    metavar="PATH",
    help="Text file, directory or '-' (stdin); windows come from its first 90%. "
    "Default: bundled Tiny Shakespeare.",
)
@click.option(
    "--preset",
    type=click.Choice(["micro", *preset_names]),
    default=None,
    help="Model trained on each mask (default micro = 2 layers × 32).",
)
@click.option(
    "--sizes",
    callback=_sizes,
    default=None,
    metavar="N,N,...",
    help="Training windows n per supersample (default 75,250,1000,4000; quick 25,100,400).",
)
@click.option(
    "--masks",
    type=click.IntRange(min=2),
    default=None,
    help="Trainings per supersample, even (default 32; quick 8; the paper uses 30).",
)
@click.option(
    "--supersamples",
    type=click.IntRange(min=1),
    default=None,
    help="Independent supersamples per size; the intervals resample them (default 3; quick 1; "
    "the paper uses 5).",
)
@click.option(
    "--smoothing",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    default=None,
    help="ε: losses are scored under (1 − ε)p + ε/256, capped at log2(256/ε) bits (default 0.05).",
)
@click.option(
    "--null-draws",
    type=click.IntRange(min=1),
    default=None,
    help="Re-drawn mask sets in the permutation null, per supersample (default 1000; quick 200).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimizer steps per training, the same for every n (default 300; quick 90).",
)
@click.option(
    "--window",
    "window_bytes",
    type=click.IntRange(min=2),
    default=None,
    help="Bytes predicted per window (default 16).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for windows, masks and training.")
@click.option("--quick", is_flag=True, help="A small run (seconds): fewer sizes, masks and steps.")
@click.option(
    "--plot", "plot_path", default=None, metavar="FILE", help="Write the figure to FILE.png and FILE.svg."
)
@json_option
def generalisation_cmd(
    corpus,
    preset,
    sizes,
    masks,
    supersamples,
    smoothing,
    null_draws,
    steps,
    window_bytes,
    seed,
    quick,
    plot_path,
    json_out,
):
    """Generalisation gap vs its CMI bound, in bits/byte; memorised bits per window.

    How much do models know about their own training windows, and does it bound the gap?
    Supersample protocol (Harutyunyan et al. 2021; loss-difference CMI, Wang & Mao 2023): 2n
    windows in pairs; each of k models trains on one member of every pair chosen by a mask.
    Losses are scored with smoothed predictions, so none exceeds the cap log2(256/ε) bits, and
    the bound uses that cap. Reported per n, with bootstrap intervals across supersamples: the
    measured gap (held-out − train loss, bits/byte), the CMI bound on it (bits/byte), the CMI
    between the models' losses and the masks (bits, summed over the n pairs; at most 1 bit per
    pair) against its permutation null (floor and p-value), and whether the estimate is
    informative (above the floor, below 1 bit per pair): only there is "bound ≥ gap" a finding.
    The memorisation view lists windows whose loss drops most (bits/byte) when they are trained
    on, with their surprisal when held out.

    JSON keys: loss_cap_bits, points [{n, gap_bits_per_byte, gap_ci95, bound_bits_per_byte,
    bound_ci95, cmi_bits, cmi_ci95, cmi_bits_per_window, cmi_bits_per_supersample,
    cmi_null_floor_bits, cmi_floor_bits_per_window, cmi_null_p_value, cmi_pairs_above_null,
    cmi_status, informative, vacuous, loss_cap_bits, n_masks, n_supersamples, n_seeds,
    train_bits_per_byte, heldout_bits_per_byte, membership_surprisal_correlation}],
    memorisation {n, windows [{text, membership_bits, membership_bits_per_byte,
    reference_bits_per_byte}]}, config, model_params, seconds.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.generalisation import (
        GeneralisationConfig,
        measure_generalisation,
        plot_generalisation,
    )

    base = GeneralisationConfig.quick() if quick else GeneralisationConfig.full()
    cfg = override(
        base,
        preset=preset,
        sizes=sizes,
        masks=masks,
        supersamples=supersamples,
        smoothing=smoothing,
        null_draws=null_draws,
        steps=steps,
        window_bytes=window_bytes,
        seed=seed,
    )
    r = measure_generalisation(load_corpus(corpus), cfg, progress=show_progress()).to_dict()
    if json_out != "-":
        _print_generalisation(r)
    if plot_path:
        for path in plot_generalisation(r, plot_path):
            click.echo(f"figure → {path}")
    emit_json(r, json_out)


def _print_generalisation(result: dict) -> None:
    c = result["config"]
    click.echo(
        f"{c['preset']} model ({result['model_params']:,} parameters), "
        f"{c['window_bytes']}-byte windows, {c['masks']} masks × {c['supersamples']} supersample(s), "
        f"{c['steps']} steps each, ε = {c['smoothing']} (loss cap {result['loss_cap_bits']:.2f} bits), "
        f"{result['seconds']:.0f} s"
    )
    click.echo(
        f"{'n':>6} {'train':>7} {'held-out':>8} {'gap':>7} {'bound':>7} "
        f"{'bits/pair':>9} {'ci95':>13} {'floor':>6} {'p':>6}  status"
    )
    for p in result["points"]:
        lo, hi = (v / p["n"] for v in p["cmi_ci95"])
        click.echo(
            f"{p['n']:>6} {p['train_bits_per_byte']:>7.3f} {p['heldout_bits_per_byte']:>8.3f} "
            f"{p['gap_bits_per_byte']:>7.4f} {p['bound_bits_per_byte']:>7.3f} "
            f"{p['cmi_bits_per_window']:>9.3f} [{lo:.3f}, {hi:.3f}] {p['cmi_floor_bits_per_window']:>6.3f} "
            f"{p['cmi_null_p_value']:>6.3f}  {p['cmi_status']}{' (vacuous)' if p['vacuous'] else ''}"
        )
    click.echo(
        "(losses in bits/byte; CMI in bits per window pair, max 1; floor: the permutation null's mean; "
        "bound ≥ gap is a finding only where the status is informative)"
    )
    mem = result["memorisation"]
    click.echo(f"most memorised windows at n={mem['n']} (loss drop when trained on · surprisal held out):")
    for w in mem["windows"][:5]:
        click.echo(
            f"  {w['membership_bits_per_byte']:6.2f} · {w['reference_bits_per_byte']:5.2f} bits/byte  "
            f"{w['text']!r}"
        )


COMMANDS = [measure]
