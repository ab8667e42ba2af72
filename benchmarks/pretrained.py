"""Pretrained checkpoints on bitlens's instruments: bits/byte, lens KL per layer, compression vs
xz -9e, tokens/s, for any local Hugging Face causal LM.

Meant for real checkpoints (GPT-2, Pythia, Llama-family, Qwen) on a GPU machine: `--device cuda
--dtype bfloat16` there. On a CPU it runs too, slowly for a large model; the tests run it in
seconds on a tiny random model. Offline only: hf:PATH is a local save_pretrained() directory.

    python benchmarks/pretrained.py --model hf:~/models/gpt2 --device cuda --text book1 \
        --json benchmarks/results/pretrained-gpt2.json

Figures: eval bits/byte (and bits/token) on the first --bytes of the text, scored in windows of
the model's context; logit-lens KL(final ‖ layer) per layer in bits per token on --lens-tokens
held-out tokens; the tokens coder on the first --compress-bytes (a real round trip, checked byte
for byte) beside xz -9e on the same bytes; tokens/s of scoring and of coding (the coder steps one
token at a time through the KV cache, so it is much slower than scoring).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bitlens.compress.compare import ComparisonConfig, compare_compressors
from bitlens.data import load_corpus
from bitlens.measures.lens import LensConfig, measure_lens
from bitlens.runs import atomic_write_json, load_model
from bitlens.tokens import evaluate_any


def run(args: argparse.Namespace) -> dict:
    model = load_model(args.model, device=args.device, dtype=args.dtype, batch_tokens=args.batch_tokens)
    text = load_corpus(args.text)
    data = text[: args.bytes]
    t0 = time.perf_counter()
    ev = evaluate_any(model, data, progress=args.progress)
    score_seconds = time.perf_counter() - t0
    tokens = getattr(ev, "tokens", ev.bytes)
    lens = measure_lens(
        model,
        data,
        LensConfig(tuned=False, eval_tokens=args.lens_tokens, window=model.config.block_size),
        progress=args.progress,
    ).to_dict()
    coded = compare_compressors(
        text, model, ComparisonConfig(max_bytes=args.compress_bytes, compressors=("xz", "tokens"))
    ).to_dict()
    rows = {("tokens" if r["name"].startswith("bitlens tokens") else "xz"): r for r in coded["rows"]}
    return {
        "model": args.model,
        "device": str(getattr(model, "device", "cpu")),
        "dtype": str(getattr(model, "dtype", "float32")).removeprefix("torch."),
        "params": model.num_params(),
        "context_tokens": model.config.block_size,
        "text": args.text or "tinyshakespeare",
        "eval": {**ev.to_dict(), "seconds": score_seconds, "tokens_per_second": tokens / score_seconds},
        "lens": [
            {"layer": r["layer"], "logit_kl_bits": r["logit_kl_bits"], "logit_ce_bits": r["logit_ce_bits"]}
            for r in lens["layers"]
        ],
        "lens_tokens": lens["tokens"],
        "compression": {
            "bytes": coded["input_bytes"],
            "tokens_bits_per_byte": rows["tokens"]["bits_per_byte"],
            "xz_bits_per_byte": rows["xz"]["bits_per_byte"],
            "roundtrip": rows["tokens"]["roundtrip"],
            "coded_tokens": rows["tokens"]["tokens"],
            "coding_tokens_per_second": rows["tokens"]["tokens_per_second"],
            "decode_seconds": rows["tokens"]["decompress_seconds"],
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="hf:PATH, a local Hugging Face causal LM")
    ap.add_argument("--device", default=None, choices=["cpu", "cuda", "mps"], help="default: auto")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--batch-tokens", type=int, default=None, help="tokens per scoring batch")
    ap.add_argument("--text", default=None, help="text file (default: bundled Tiny Shakespeare)")
    ap.add_argument("--bytes", type=int, default=262_144, help="bytes scored for bits/byte")
    ap.add_argument("--lens-tokens", type=int, default=8192, help="held-out tokens for the lens")
    ap.add_argument("--compress-bytes", type=int, default=16_384, help="bytes coded (and decoded)")
    ap.add_argument("--json", default="pretrained.json", help="where the JSON goes")
    ap.add_argument("--progress", action="store_true", help="progress bars (tokens/s) on stderr")
    args = ap.parse_args(argv)
    if not args.model.startswith("hf:"):
        ap.error("--model must be hf:PATH (a local Hugging Face model directory)")
    r = run(args)
    e, c = r["eval"], r["compression"]
    print(f"{r['model']}: {r['params']:,} parameters on {r['device']} in {r['dtype']}")
    print(
        f"eval: {e['bits_per_byte']:.4f} bits/byte ({e['bits_per_token']:.4f} bits/token) over "
        f"{e['bytes']:,} bytes, {e['tokens_per_second']:,.0f} tokens/s"
    )
    print(
        "lens KL(final ‖ layer), bits/token: " + " ".join(f"{row['logit_kl_bits']:.3f}" for row in r["lens"])
    )
    print(
        f"compression of {c['bytes']:,} bytes: tokens {c['tokens_bits_per_byte']:.4f} bits/byte "
        f"vs xz -9e {c['xz_bits_per_byte']:.4f}; round trip {'ok' if c['roundtrip'] else 'FAILED'}; "
        f"{c['coding_tokens_per_second']:,.1f} tokens/s coding"
    )
    atomic_write_json(Path(args.json), r)
    print(f"→ {args.json}")
    return 0 if c["roundtrip"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
