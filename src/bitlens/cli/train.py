"""`bitlens train` and `bitlens eval`."""

from __future__ import annotations

import click

from bitlens.cli.common import (
    corpus_option,
    emit_json,
    hf_options,
    json_option,
    load_model_spec,
    model_option,
    preset_option,
    show_progress,
)


@click.command("train")
@corpus_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    metavar="RUN_DIR",
    help="Run directory: config.json, model.safetensors, metrics.jsonl, checkpoint.",
)
@preset_option(default="small", help="Model size: tiny ≈0.2M, small ≈1M, base ≈3M parameters.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimizer steps (overrides the preset's default length).",
)
@click.option("--seed", type=int, default=None, help="Random seed (init, batches). Default 1337.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a run in RUN_DIR from its last checkpoint with its recorded config "
    "(same result); a --steps or --seed that differs from the recorded one is an error.",
)
@json_option
def train_cmd(corpus, out_dir, preset, steps, seed, resume, json_out):
    """Train a byte-level transformer and report held-out bits per byte.

    The last 10% of the corpus is held out. The progress bar shows the training loss and the
    held-out loss in bits/byte, and tokens (bytes) per second. FLOPs are counted as 6·N·D plus
    attention.
    """
    from bitlens.data import load_corpus
    from bitlens.runs import refuse_hf
    from bitlens.train import train_run

    refuse_hf(out_dir, "train trains a byte-level model from scratch and")

    r = train_run(
        load_corpus(corpus),
        out_dir,
        preset=preset,
        steps=steps,
        seed=seed,
        resume=resume,
        progress=show_progress(),
        corpus_name=corpus or "tinyshakespeare",
    )
    click.echo(
        f"{r.preset}: {r.params:,} parameters, {r.steps} steps, {r.tokens:,} tokens, "
        f"{r.flops:.3g} FLOPs, {r.seconds:.1f} s ({r.tokens_per_second:,.0f} tokens/s)"
    )
    click.echo(f"held-out: {r.val_bits_per_byte:.4f} bits/byte over {r.val_bytes:,} bytes → {out_dir}")
    emit_json(r.to_dict(), json_out)


@click.command("eval")
@model_option
@corpus_option
@hf_options
@json_option
def eval_cmd(model_spec, corpus, device, dtype, batch_tokens, json_out):
    """Bits per byte of a corpus under a trained model (its cross-entropy, in bits).

    JSON keys: bits_per_byte, bytes, total_bits (= bits_per_byte × bytes); for hf: models also
    tokens and bits_per_token (the same total bits over the tokenizer's tokens).
    """
    from bitlens.data import load_corpus
    from bitlens.tokens import evaluate_any

    model = load_model_spec(model_spec, device, dtype, batch_tokens)
    r = evaluate_any(model, load_corpus(corpus), progress=show_progress())
    if json_out != "-":
        click.echo(f"{r.bits_per_byte:.4f} bits/byte over {r.bytes:,} bytes ({r.total_bits:,.0f} bits)")
    emit_json(r.to_dict(), json_out)
