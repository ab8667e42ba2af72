"""`bitlens lens` and `bitlens probe`: information through the layers, in bits."""

from __future__ import annotations

import click

from bitlens.cli.common import (
    corpus_option,
    emit_json,
    hf_options,
    json_option,
    load_model_spec,
    model_option,
    plot_option,
    quick_option,
    seed_option,
    show_progress,
)
from bitlens.measures.properties import PROPERTIES


@click.command("lens")
@model_option
@corpus_option
@hf_options
@click.option("--tuned", is_flag=True, help="Also train (or load) a tuned lens and show it side by side.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Tuned-lens SGD steps (default 250, or 120 with --quick).",
)
@click.option(
    "--load-lens",
    "load_lens",
    default=None,
    metavar="FILE",
    help="Reuse a tuned lens saved with --save-lens instead of training one (implies --tuned).",
)
@click.option(
    "--save-lens",
    "save_lens",
    default=None,
    metavar="FILE",
    help="Write the trained tuned lens as safetensors.",
)
@seed_option
@quick_option
@plot_option
@json_option
def lens_cmd(
    model_spec,
    corpus,
    device,
    dtype,
    batch_tokens,
    tuned,
    steps,
    load_lens,
    save_lens,
    seed,
    quick,
    plot_path,
    json_out,
):
    """Logit lens (and tuned lens) per layer: what each layer's residual stream predicts.

    Per layer (0 = embeddings, last = the output), on the last 10% of the corpus, in bits per
    token (= bits per byte for bitlens models): KL to the model's final distribution, cross-
    entropy to the true next token, and entropy of the lens distribution. The tuned lens
    (Belrose et al. 2023) is trained on the first 90%.

    JSON keys: layers (list of {layer, logit_kl_bits, tuned_kl_bits, logit_ce_bits,
    tuned_ce_bits, entropy_bits, tuned_entropy_bits, and the 95 % intervals logit_kl_ci95,
    tuned_kl_ci95, logit_ce_ci95, tuned_ce_ci95}), token, tokens, bytes, bytes_per_token,
    final_ce_bits, n_blocks (the intervals resample blocks of positions), n_seeds.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.lens import LensConfig, TunedLens, measure_lens, plot_lens

    lens = TunedLens.load(load_lens) if load_lens else None
    base = LensConfig.quick() if quick else LensConfig.full()
    config = override(base, steps=steps, tuned=tuned or lens is not None, seed=seed)
    result = measure_lens(
        load_model_spec(model_spec, device, dtype, batch_tokens),
        load_corpus(corpus),
        config,
        progress=show_progress(),
        lens=lens,
    )
    if save_lens and result.tuned_lens is not None:
        result.tuned_lens.save(save_lens)
    r = result.to_dict()
    if json_out != "-":
        unit = f"bits/{r['token']}"
        click.echo(
            f"{'layer':>5} {'logit KL':>9} {'tuned KL':>9} {'logit CE':>9} {'tuned CE':>9} "
            f"{'entropy':>8}   ({unit}, {r['tokens']:,} held-out {r['token']}s)"
        )
        for row in r["layers"]:
            cells = [
                row["logit_kl_bits"],
                row["tuned_kl_bits"],
                row["logit_ce_bits"],
                row["tuned_ce_bits"],
                row["entropy_bits"],
            ]
            text = " ".join("        -" if c is None else f"{c:9.3f}" for c in cells)
            click.echo(f"{row['layer']:>5} {text}")
        if save_lens:
            click.echo(f"tuned lens → {save_lens}")
    if plot_path:
        plot_lens(r, plot_path)
    emit_json(r, json_out)


@click.command("probe")
@model_option
@corpus_option
@hf_options
@click.option(
    "--property",
    "properties",
    multiple=True,
    type=click.Choice(list(PROPERTIES)),
    help="Property to probe (repeatable). Default: all of them.",
)
@click.option(
    "--probe",
    "probe_kind",
    default=None,
    metavar="KIND",
    help="Probe family: linear (default), or mlp (one hidden layer).",
)
@click.option(
    "--examples",
    type=click.IntRange(min=64),
    default=None,
    help="Tokens probed per property and seed (default 4096, or 1024 with --quick).",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Repeats behind each interval (example draw, control task, probe init); default 3.",
)
@seed_option
@quick_option
@plot_option
@json_option
def probe_cmd(
    model_spec,
    corpus,
    device,
    dtype,
    batch_tokens,
    properties,
    probe_kind,
    examples,
    seeds,
    seed,
    quick,
    plot_path,
    json_out,
):
    """MDL probes (Voita & Titov 2020) with control tasks (Hewitt & Liang 2019), per layer.

    Online code length in bits of the property's labels with a probe retrained on 0.1, 0.2, …,
    50% of them; compression = uniform bits / online bits. The control task gives each input
    type (byte, or token id) a random label, fixed per type, with the real label distribution.
    selectivity_bits = real gain − control gain (gain = labels-alone bits − online bits): > 0
    when the layer encodes more of the property than a lookup of the input type, with a 95%
    interval over the seeds. Only held-out text is probed: the last 10% of the corpus for a
    bitlens model; for an hf: model all of it is taken as held out (JSON heldout: assumed).

    JSON keys: heldout, heldout_bytes, byte_range, seeds, properties (list of {property,
    classes, examples, marginal_bits, control_marginal_bits, layers: list of {layer,
    codelength_bits, uniform_bits, compression, control_codelength_bits, control_compression,
    selectivity_bits, selectivity_ci95, n_seeds, selectivity_per_seed}}).
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.measures.probes import ProbeConfig, measure_probes, plot_probes

    base = ProbeConfig.quick() if quick else ProbeConfig.full()
    config = override(
        base,
        properties=tuple(properties) or None,
        kind=probe_kind,
        examples=examples,
        seeds=seeds,
        seed=seed,
    )
    r = measure_probes(
        load_model_spec(model_spec, device, dtype, batch_tokens),
        load_corpus(corpus),
        config,
        progress=show_progress(),
    ).to_dict()
    if json_out != "-":
        start, end = r["byte_range"]
        click.echo(f"probed bytes {start:,}–{end:,} (held out: {r['heldout']}), {r['seeds']} seeds")
        for prop in r["properties"]:
            click.echo(f"{prop['property']}: {prop['classes']} classes, {prop['examples']:,} examples")
            click.echo(
                f"{'layer':>7} {'online bits':>12} {'control bits':>13} {'selectivity bits (95% CI)':>34}"
            )
            for row in prop["layers"]:
                low, high = row["selectivity_ci95"]
                click.echo(
                    f"{row['layer']:>7} {row['codelength_bits']:12,.0f} "
                    f"{row['control_codelength_bits']:13,.0f} "
                    f"{row['selectivity_bits']:12,.0f} [{low:,.0f}, {high:,.0f}]"
                )
    if plot_path:
        plot_probes(r, plot_path)
    emit_json(r, json_out)


COMMANDS = [lens_cmd, probe_cmd]
