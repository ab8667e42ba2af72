"""Tune online (prequential) compression: estimated bits per byte over a grid of schedules.

Each grid point runs `bitlens.compress.estimate_bits`: the same streams, contexts and
training steps as `bitlens compress --online`, but probabilities come from full-sequence
forwards instead of step-by-step decoding, so a point costs a fraction of a real compression
and agrees with it to float rounding (tests/test_coding.py checks that). The winner still has
to be confirmed by a real round trip (benchmarks/compression.py). Reads ../shared/corpora
(skips cleanly without it). Runs points in parallel processes (--jobs), on CPU or --device cuda.

    python benchmarks/online_schedule.py --files enwik8-head.txt --max-bytes 262144 \
        --models tiny small --lrs 2e-3 4e-3 --streams 16 32 --replays 0 16 --jobs 2 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import time
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"

# Model shapes to try beyond the presets: (block_size, n_layer, n_head, n_embd).
MODELS = {
    "tiny": (128, 4, 4, 64),
    "shallow": (128, 2, 4, 128),  # ≈0.46M parameters, two layers
    "shallow-tiny": (128, 2, 4, 64),
    "small": (128, 5, 4, 128),
    "medium": (128, 6, 6, 192),
    "large": (128, 8, 8, 256),
}


def point(job: dict) -> dict:
    from bitlens.compress import MixConfig, OnlineConfig, estimate_bits
    from bitlens.model import GPTConfig

    data = Path(job["path"]).read_bytes()[: job["max_bytes"]]
    block, layers, heads, embd = MODELS[job["model"]]
    cfg = GPTConfig(block_size=block, n_layer=layers, n_head=heads, n_embd=embd)
    sch = OnlineConfig(
        lr=job["lr"],
        segment=job["segment"],
        train_steps=job["steps"],
        replay=job["replay"],
        warmup_rounds=job["warmup"],
        beta1=job["beta1"],
        beta2=job["beta2"],
    )
    t0 = time.perf_counter()
    try:
        bits = estimate_bits(
            data,
            online=True,
            preset=cfg,
            seed=0,
            n_streams=job["streams"],
            threads=1,
            schedule=sch,
            device=job["device"],
            mix=MixConfig(rate=job["mix_rate"]) if job["mix_rate"] else None,
            # a tuning estimate needs no bit-exact replay; some GPU ops refuse it
            deterministic_kernels=not job["nondeterministic"],
        )
    except Exception as e:  # one failing point must not lose the others
        return {
            **job,
            "bytes": len(data),
            "bits_per_byte": float("nan"),
            "seconds": 0.0,
            "error": f"{type(e).__name__}: {e}",
        }
    seconds = time.perf_counter() - t0
    return {
        **job,
        "bytes": len(data),
        "bits_per_byte": bits.coded / len(data),
        "network_bits_per_byte": bits.network / len(data),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--files", nargs="+", default=["enwik8-head.txt"])
    ap.add_argument("--max-bytes", type=int, default=262_144)
    ap.add_argument("--models", nargs="+", default=["small"], choices=list(MODELS))
    ap.add_argument("--lrs", nargs="+", type=float, default=[3e-3])
    ap.add_argument("--streams", nargs="+", type=int, default=[16])
    ap.add_argument("--segments", nargs="+", type=int, default=[64])
    ap.add_argument("--replays", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", nargs="+", type=int, default=[1])
    ap.add_argument("--warmups", nargs="+", type=int, default=[0])
    ap.add_argument("--beta1s", nargs="+", type=float, default=[0.9])
    ap.add_argument("--beta2s", nargs="+", type=float, default=[0.99])
    ap.add_argument(
        "--mix-rates",
        nargs="+",
        type=float,
        default=[0.0],
        help="context-mixing learning rates (0: the network alone)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--nondeterministic",
        action="store_true",
        help="allow non-deterministic kernels (fine for estimates, never for coding)",
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipping: no corpora at {args.corpora}")
        return 0
    jobs = [
        dict(
            path=str(args.corpora / f),
            file=f,
            max_bytes=args.max_bytes,
            model=m,
            lr=lr,
            streams=s,
            segment=g,
            replay=r,
            steps=k,
            warmup=w,
            beta1=b1,
            beta2=b2,
            mix_rate=mr,
            device=args.device,
            nondeterministic=args.nondeterministic,
        )
        for f, m, lr, s, g, r, k, w, b1, b2, mr in itertools.product(
            args.files,
            args.models,
            args.lrs,
            args.streams,
            args.segments,
            args.replays,
            args.steps,
            args.warmups,
            args.beta1s,
            args.beta2s,
            args.mix_rates,
        )
    ]
    print(f"{len(jobs)} points, {args.jobs} at a time", flush=True)
    rows = []
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap_unordered(point, jobs):
            rows.append(row)
            if "error" in row:
                print(
                    f"{row['file']} {row['model']} lr {row['lr']} S {row['streams']}: {row['error']}",
                    flush=True,
                )
                continue
            print(
                f"{row['file']:<22}{row['model']:<7} lr {row['lr']:<7g} S {row['streams']:<3} "
                f"seg {row['segment']:<4} replay {row['replay']:<3} steps {row['steps']} "
                f"warm {row['warmup']:<3} b1 {row['beta1']:<4g} b2 {row['beta2']:<6g} "
                f"mix {row['mix_rate']:<6g} "
                f"{row['bits_per_byte']:.4f} bits/byte (network {row['network_bits_per_byte']:.4f}) "
                f"{row['seconds']:.0f} s",
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    for f in args.files:
        ok = [r for r in rows if r["file"] == f and "error" not in r]
        if not ok:
            continue
        best = min(ok, key=lambda r: r["bits_per_byte"])
        print(
            f"best on {f}: {best['bits_per_byte']:.4f} bits/byte with "
            + ", ".join(
                f"{k}={best[k]}"
                for k in (
                    "model",
                    "lr",
                    "streams",
                    "segment",
                    "replay",
                    "steps",
                    "warmup",
                    "beta1",
                    "beta2",
                    "mix_rate",
                )
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
