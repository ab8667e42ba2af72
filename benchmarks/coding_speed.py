"""Coding speed: KB/s of compress and decompress per mode and torch thread count, same bytes.

Run it on an idle machine: it times wall clock. Every row is a real round trip. Reads
../shared/corpora (skips cleanly without it).

    python benchmarks/coding_speed.py --model RUN_DIR --bytes 262144 --threads 1 2 \
        --modes offline online online+mix --json speed.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bitlens.compress.compare import ComparisonConfig, compare_compressors
from bitlens.compress.registry import LEARNED
from bitlens.runs import load_run

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--file", default="enwik8-head.txt")
    ap.add_argument("--bytes", type=int, default=262_144, help="prefix to code (≥ 256 KiB: long schedules)")
    ap.add_argument("--model", default=None, help="run dir for offline/adaptive rows")
    ap.add_argument("--preset", default="small", help="online preset")
    ap.add_argument("--modes", nargs="+", default=["offline", "online", "online+mix"], choices=LEARNED)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not (args.corpora / args.file).exists():
        print(f"skipping: no {args.file} under {args.corpora}")
        return 0
    data = (args.corpora / args.file).read_bytes()[: args.bytes]
    model = load_run(args.model) if args.model else None
    rows = []
    print(f"{args.file}, first {len(data):,} bytes")
    print(f"{'mode':<14}{'threads':>8}{'bits/byte':>11}{'enc KB/s':>10}{'dec KB/s':>10}  roundtrip")
    for mode in args.modes:
        for threads in args.threads:
            config = ComparisonConfig(
                max_bytes=0, compressors=(mode,), online_preset=args.preset, threads=threads
            )
            coded = compare_compressors(data, model, config).rows
            if not coded:
                print(f"{mode:<14} skipped: needs --model")
                break
            r = coded[0]
            row = {
                "mode": mode,
                "threads": threads,
                "bytes": len(data),
                "bits_per_byte": r["bits_per_byte"],
                "compress_kb_per_s": len(data) / 1000 / r["compress_seconds"],
                "decompress_kb_per_s": len(data) / 1000 / r["decompress_seconds"],
                "roundtrip": r["roundtrip"],
                "n_streams": r["n_streams"],
            }
            rows.append(row)
            print(
                f"{mode:<14}{threads:>8}{row['bits_per_byte']:>11.4f}{row['compress_kb_per_s']:>10.2f}"
                f"{row['decompress_kb_per_s']:>10.2f}  {row['roundtrip']}",
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
