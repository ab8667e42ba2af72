"""`bitlens compress` and `bitlens decompress`: lossless coding with a model, in bits."""

from __future__ import annotations

from pathlib import Path

import click

from bitlens.cli.common import emit_json, json_option, preset_option, show_progress
from bitlens.errors import BitlensError


def _read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BitlensError(f"input not found: {path}") from None
    except OSError as e:
        raise BitlensError(f"cannot read {path}: {e.strerror or e}") from None


_DTYPES = ("float32", "bfloat16", "float16")


def _coding_device(device: str | None) -> str:
    """The device an hf: model codes on: the one asked for, else cuda when available, else cpu.
    (MPS is not offered for coding: its file could not be checked on decoding.)"""
    if device == "mps":
        raise BitlensError(
            "tokens mode codes on cpu or cuda: a file coded on mps could not be checked when decoding"
        )
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_output(path: str, force: bool) -> None:
    if Path(path).exists() and not force:
        raise BitlensError(f"{path} exists; pass --force to overwrite it")


@click.command("compress")
@click.argument("in_path", metavar="IN")
@click.argument("out_path", metavar="OUT")
@click.option(
    "--model",
    "model_dir",
    default=None,
    metavar="RUN_DIR",
    help="Trained run directory. Alone: offline mode. With --online: adaptive mode. "
    "hf:DIR (a local Hugging Face causal LM): tokens mode.",
)
@click.option(
    "--online", is_flag=True, help="Learn while coding (no weights are sent; decoding repeats the training)."
)
@preset_option("shallow", "Model size for online mode from scratch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Initial weights (online).")
@click.option(
    "--streams",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel streams the file is cut into (default: from the file size).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Torch threads (recorded; decoding uses the same). Default: 1. Online, the network "
    "also trains one segment behind the coder in a second thread with the same count, so the "
    "coder keeps two cores busy.",
)
@click.option(
    "--mix",
    is_flag=True,
    help="Online/adaptive: mix the network with count models of orders 1, 2, 3, 4 and 6, "
    "a word model, a two-word model and a match model, then an APM stage (the code length is then the "
    "mixture's; network_bits reports the network alone and counts_only_bits the same "
    "mixer without the network, measured in the same pass).",
)
@click.option(
    "--counts",
    is_flag=True,
    help="No network at all: the count models and mixer of --mix alone (the baseline that "
    "shows what the network adds; decompress needs nothing).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps"]),
    default=None,
    help="Where the model runs: byte-level models default to cpu; hf: models to cuda if "
    "available, else cpu. A file coded on a GPU decodes only on the same GPU model.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default=None,
    help="hf: models: weights dtype (default float32; recorded, decompress loads the same).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@json_option
def compress_cmd(
    in_path,
    out_path,
    model_dir,
    online,
    preset,
    seed,
    streams,
    threads,
    mix,
    counts,
    device,
    dtype,
    force,
    json_out,
):
    """Compress IN losslessly into OUT with a byte-level model and a range coder.

    \b
    offline:  --model RUN_DIR            (decompress needs the same model)
    online:   --online [--preset P]      (nothing needed to decompress)
    adaptive: --online --model RUN_DIR   (decompress needs the same starting model)
    counts:   --counts                   (no network: count models and mixer only)
    tokens:   --model hf:DIR             (a local Hugging Face LM codes its tokens;
                                          decompress needs the same model and tokenizer)

    Prints sizes in bytes and rates in bits per byte. JSON keys: input_bytes, output_bytes,
    bits_per_byte, model_bits (Σ −log2 p of the coded bytes), overhead_bits
    (8·output_bytes − model_bits), seconds, bytes_per_second, offline
    bits_per_byte_with_model (weights counted at 2 bytes per parameter), and with --mix
    network_bits (the network's own Σ −log2 p), counts_only_bits (the mixer without the
    network) and network_saves_bits_per_byte ((counts_only_bits − model_bits) / input_bytes);
    tokens mode: tokens and tokens_per_second (model_bits is Σ −log2 p of the coded tokens).
    """
    from bitlens.compress import MixConfig, compress, compress_tokens
    from bitlens.runs import atomic_write_bytes, is_hf_spec, load_model, load_run

    tokens = is_hf_spec(model_dir)
    if dtype is not None and not tokens:
        raise BitlensError("--dtype is for hf: models; byte-level models code in float32")
    if tokens and (online or mix or counts or streams is not None):
        raise BitlensError(
            "a Hugging Face model (hf:DIR) codes its tokens frozen, in one stream: "
            "drop --online, --mix, --counts and --streams"
        )
    if counts and (model_dir is not None or online):
        raise BitlensError("--counts codes without a network: drop --model and --online")
    if model_dir is None and not online and not counts:
        raise BitlensError("pass --model RUN_DIR (offline mode), --online, or --counts")
    if mix and not online:
        raise BitlensError("--mix needs --online (online or adaptive mode)")
    _check_output(out_path, force)
    data = _read_input(in_path)
    if tokens:
        model = load_model(model_dir, device=_coding_device(device), dtype=dtype)
        blob, r = compress_tokens(
            data, model, threads=threads, device=str(model.device), progress=show_progress()
        )
    else:
        blob, r = compress(
            data,
            load_run(model_dir) if model_dir else None,
            online=online,
            preset=preset,
            seed=seed,
            n_streams=streams,
            threads=threads,
            progress=show_progress(),
            device=device or "cpu",
            mix=MixConfig() if mix or counts else None,
            network=not counts,
        )
    atomic_write_bytes(out_path, blob)
    if json_out != "-":
        rate = "n/a" if r.bits_per_byte is None else f"{r.bits_per_byte:.4f} bits/byte"
        pace = f"{r.n_streams} streams" if r.tokens is None else f"{r.tokens_per_second:,.1f} tokens/s"
        click.echo(
            f"{r.mode}: {r.input_bytes:,} → {r.output_bytes:,} bytes, {rate} "
            f"({r.seconds:.1f} s, {r.bytes_per_second:,.0f} bytes/s, {pace})"
        )
        click.echo(
            f"model: {r.model_bits:,.0f} bits; overhead {r.overhead_bits:,.0f} bits "
            f"(header {8 * r.header_bytes} bits, coder {r.coder_overhead_bits:,.0f} bits)"
        )
        if r.tokens:
            click.echo(
                f"tokens: {r.tokens:,} ({r.input_bytes / r.tokens:.2f} bytes/token, "
                f"{r.model_bits / r.tokens:.4f} bits/token)"
            )
        if r.network_bits is not None:
            click.echo(
                f"network alone: {r.network_bits / max(r.input_bytes, 1):.4f} bits/byte "
                f"(mixing saved {r.network_bits - r.model_bits:,.0f} bits)"
            )
        if r.network_saves_bits_per_byte is not None:
            click.echo(
                f"counts alone: {r.counts_only_bits / max(r.input_bytes, 1):.4f} bits/byte; "
                f"network saves {r.network_saves_bits_per_byte:.4f} bits/byte"
            )
        if r.bits_per_byte_with_model is not None:
            click.echo(
                f"with the model counted (2 bytes/parameter): {r.bits_per_byte_with_model:.4f} bits/byte"
            )
    record = r.to_dict()
    if r.network_saves_bits_per_byte is not None:
        record["network_saves_bits_per_byte"] = r.network_saves_bits_per_byte
    emit_json(record, json_out)


@click.command("decompress")
@click.argument("in_path", metavar="IN")
@click.argument("out_path", metavar="OUT")
@click.option(
    "--model",
    "model_dir",
    default=None,
    metavar="RUN_DIR",
    help="The run directory used to compress (offline and adaptive files), or hf:DIR (tokens files).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def decompress_cmd(in_path, out_path, model_dir, force):
    """Decompress a file made by `bitlens compress`; verifies model, versions and CRC-32.

    Any mismatch (wrong model, other torch version, corrupted or truncated file) is a one-line
    error and OUT is left untouched. Sizes are in bytes.
    """
    from bitlens.compress import decompress, decompress_tokens, read_header
    from bitlens.compress.device import decoding_device
    from bitlens.runs import atomic_write_bytes, is_hf_spec, load_model, load_run

    _check_output(out_path, force)
    blob = _read_input(in_path)
    header = read_header(blob)
    hf = is_hf_spec(model_dir)
    if header.mode == "tokens":
        if not hf:
            raise BitlensError(
                "this file was coded with a Hugging Face model's tokens "
                f"(model {header.fingerprint.hex()[:12]}…); pass the same model: --model hf:DIR"
            )
        # the device and dtype the file was coded with (decoding repeats the encoder's arithmetic)
        device = decoding_device(str(header.params.get("device", "cpu")))
        dtype = str(header.params.get("dtype", "float32"))
        model = load_model(model_dir, device=device, dtype=dtype if dtype in _DTYPES else None)
        data = decompress_tokens(blob, model, progress=show_progress())
    elif hf:
        raise BitlensError(f"this is a {header.mode} file, not a tokens file: hf:DIR does not decode it")
    else:
        model = load_run(model_dir) if model_dir and header.mode != "online" else None
        data = decompress(blob, model, progress=show_progress())
    atomic_write_bytes(out_path, data)
    click.echo(f"{header.mode}: {len(blob):,} → {len(data):,} bytes, CRC-32 verified")


COMMANDS = [compress_cmd, decompress_cmd]
