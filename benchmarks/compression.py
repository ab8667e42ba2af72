"""Compression benchmark: bits per byte and speed of classical compressors and bitlens.

Every compressor codes the same slice (the first --max-bytes of each file) and every output is
decoded and compared with the input. Needs ../shared/corpora (skips cleanly without it).

    python benchmarks/compression.py --model RUN_DIR [--max-bytes 20000] [--files enwik8-head.txt]

RUN_DIR should hold a model trained on text that is not among the test files, e.g.
    bitlens train --corpus DIR_WITH(calgary/book2, canterbury/lcet10.txt, canterbury/plrabn12.txt)
                  --out RUN_DIR --preset small --seed 0
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from bitlens.compress.baselines import BASELINES
from bitlens.compress.compare import DEFAULT_LEARNED, ComparisonConfig, compare_compressors
from bitlens.compress.online import ONLINE_PRESET
from bitlens.compress.registry import LEARNED
from bitlens.runs import load_run

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"
FILES = ["enwik8-head.txt", "tinyshakespeare.txt", "canterbury/alice29.txt", "calgary/book1"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--files", nargs="*", default=FILES)
    ap.add_argument("--max-bytes", type=int, default=20_000, help="slice of each file to code (0: all)")
    ap.add_argument("--model", default=None, help="run dir for offline/adaptive (optional)")
    ap.add_argument("--preset", default=ONLINE_PRESET, help="online preset")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the learned coders")
    ap.add_argument(
        "--learned",
        nargs="*",
        default=list(DEFAULT_LEARNED),
        choices=list(LEARNED),
        help="learned coders to run (+mix: mixed with count models)",
    )
    ap.add_argument("--no-baselines", action="store_true", help="skip the classical compressors")
    ap.add_argument("--json", default=None, help="write all results to this JSON file")
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipping: no corpora at {args.corpora}")
        return 0
    model = load_run(args.model) if args.model else None
    compressors = (*(() if args.no_baselines else BASELINES), *args.learned)
    results = {}
    for name in args.files:
        data = (args.corpora / name).read_bytes()
        config = ComparisonConfig(
            max_bytes=args.max_bytes, compressors=compressors, online_preset=args.preset, threads=args.threads
        )
        r = compare_compressors(data, model, config, progress=sys.stderr.isatty()).to_dict()
        results[name] = r
        print(f"\n{name}: first {r['input_bytes']:,} bytes")
        print(
            f"{'compressor':<20}{'bits/byte':>10}{'w/ model':>10}{'network':>9}{'enc KB/s':>10}"
            f"{'dec KB/s':>10}{'overhead':>10}  roundtrip"
        )
        for row in r["rows"]:
            kb = r["input_bytes"] / 1000
            with_model = row.get("bits_per_byte_with_model")
            overhead = row.get("overhead_bits")
            network = "" if "network_bits" not in row else f"{row['network_bits'] / r['input_bytes']:.3f}"
            if "counts_only_bits" in row:
                saves = (row["counts_only_bits"] - row["model_bits"]) / r["input_bytes"]
                network += f" (saves {saves:.3f})"
            print(
                f"{row['name']:<20}{row['bits_per_byte']:>10.4f}"
                f"{'' if with_model is None else f'{with_model:.2f}':>10}{network:>9}"
                f"{kb / row['compress_seconds']:>10.1f}{kb / row['decompress_seconds']:>10.1f}"
                f"{'' if overhead is None else f'{overhead:.0f}':>10}  {row['roundtrip']}"
            )
        # the process's peak resident memory so far (every coder run until now; Linux: KiB)
        r["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory so far: {r['peak_rss_mib']:.0f} MiB")
        sys.stdout.flush()
        if args.json:  # after every file, so a long run that stops keeps what it measured
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
