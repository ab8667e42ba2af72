"""A learning rate that falls over the file: online + mix with and without `final_lr`, per file.

For each file, the default online schedule for its length with each `--final-lrs` value (the
learning rate falling linearly from `lr` to that value over the file's segments; 0 keeps it
constant) and, with `--lrs`, other starting rates. Code lengths come from `estimate_bits` (the
coder's streams, contexts and training steps, equal to a real round trip's code length to float
rounding, tested in tests/test_coding.py): bits/byte of the mix, of the network alone and of the
counts-only mixer in the same pass. Whole files by default; points run in parallel processes (--jobs).
Reads ../shared/corpora (skips cleanly without it).

    PYTHONPATH=src python benchmarks/online_lr_decay.py --final-lrs 0 5e-4 --jobs 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from dataclasses import asdict, replace
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"
FILES = ["enwik8-head.txt", "calgary/book1", "tinyshakespeare.txt", "canterbury/alice29.txt"]


def point(job: dict) -> dict:
    from bitlens.compress import MixConfig, estimate_bits
    from bitlens.compress.online import default_schedule

    data = Path(job["path"]).read_bytes()
    data = data[: job["max_bytes"]] if job["max_bytes"] else data
    n = len(data)
    base = default_schedule("online", n)
    schedule = replace(base, lr=job["lr"] or base.lr, final_lr=job["final_lr"])
    t0 = time.perf_counter()
    bits = estimate_bits(data, online=True, mix=MixConfig(), schedule=schedule, threads=1)
    return {
        "file": job["file"],
        "input_bytes": n,
        "lr": schedule.lr,
        "final_lr": job["final_lr"],
        "schedule": asdict(schedule),
        "bits_per_byte": bits.coded / n,
        "network_bits_per_byte": bits.network / n,
        "counts_only_bits_per_byte": bits.counts_only / n,
        "network_saves_bits_per_byte": (bits.counts_only - bits.coded) / n,
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--files", nargs="+", default=FILES)
    ap.add_argument("--max-bytes", type=int, default=0, help="first bytes of each file (0: all)")
    ap.add_argument("--final-lrs", nargs="+", type=float, default=[0.0, 5e-4])
    ap.add_argument("--lrs", nargs="+", type=float, default=[0.0], help="starting rates (0: the schedule's)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipped: no corpora at {args.corpora}")
        return 0
    jobs = [
        {"path": str(args.corpora / f), "file": f, "max_bytes": args.max_bytes, "lr": lr, "final_lr": final}
        for f in args.files
        for lr in args.lrs
        for final in args.final_lrs
    ]
    print(f"{len(jobs)} points, {args.jobs} at a time; estimated code lengths, bits/byte", flush=True)
    print(f"{'file':<24}{'lr':>7}{'final_lr':>9}{'mix':>9}{'network':>9}{'counts':>9}{'saves':>8}{'s':>6}")
    rows = []
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap_unordered(point, jobs):
            rows.append(row)
            print(
                f"{row['file']:<24}{row['lr']:>7g}{row['final_lr']:>9g}{row['bits_per_byte']:>9.4f}"
                f"{row['network_bits_per_byte']:>9.4f}{row['counts_only_bits_per_byte']:>9.4f}"
                f"{row['network_saves_bits_per_byte']:>8.4f}{row['seconds']:>6.0f}",
                flush=True,
            )
    rows.sort(key=lambda r: (args.files.index(r["file"]), r["lr"], r["final_lr"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"max_bytes": args.max_bytes, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
