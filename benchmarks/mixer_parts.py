"""What each part of the count-model mixer earns: bits/byte against speed, without the network.

Runs the counts-only coder (`bitlens compress --counts`: count models, word and two-word models,
match model, APM, a second weight set chosen by the last byte, no network) with each part switched off in
turn, on the same bytes, and prints bits/byte and KB/s per configuration; the gain of a part is
the difference to the configuration without it. Code lengths come from `estimate_bits` (equal
to the real coder's, tested in tests/test_mixing.py); speeds are the estimate's, one process,
and only comparable within a run. Reads ../shared/corpora (skips cleanly without it).

    PYTHONPATH=src python benchmarks/mixer_parts.py --max-bytes 262144 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from bitlens.compress import MixConfig, estimate_bits

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"
FILES = ["enwik8-head.txt", "tinyshakespeare.txt", "canterbury/alice29.txt", "calgary/book1"]
ONE_SET = ("confidence",)  # the first four rows mix with one weight set, so each row adds one part
PARTS = {
    "orders only": MixConfig(word=False, word2=False, match=False, apm=False, selectors=ONE_SET),
    "+ word": MixConfig(word2=False, match=False, apm=False, selectors=ONE_SET),
    "+ word + match": MixConfig(word2=False, apm=False, selectors=ONE_SET),
    "+ word + match + APM": MixConfig(word2=False, selectors=ONE_SET),
    "+ byte-selected weights": MixConfig(word2=False),
    "+ two-word model (default)": MixConfig(),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--files", nargs="*", default=FILES)
    ap.add_argument("--max-bytes", type=int, default=262_144, help="first bytes of each file (0: all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipping: no corpora at {args.corpora}")
        return 0
    record: dict = {"max_bytes": args.max_bytes, "files": {}}
    for name in args.files:
        data = (args.corpora / name).read_bytes()
        data = data[: args.max_bytes] if args.max_bytes else data
        rows = []
        print(f"\n{name}: first {len(data):,} bytes")
        print(f"{'mixer':<34}{'bits/byte':>10}{'gain':>8}{'KB/s':>8}")
        previous = None
        for label, cfg in PARTS.items():
            t0 = time.perf_counter()
            bits = estimate_bits(data, network=False, mix=cfg, threads=1).coded
            seconds = time.perf_counter() - t0
            bpb = bits / len(data)
            gain = None if previous is None else previous - bpb
            rows.append(
                {
                    "mixer": label,
                    "config": {**asdict(cfg), "orders": list(cfg.orders)},
                    "bits_per_byte": bpb,
                    "gain_bits_per_byte": gain,
                    "kb_per_second": len(data) / seconds / 1000,
                }
            )
            shown_gain = "" if gain is None else f"{gain:.4f}"
            print(f"{label:<34}{bpb:>10.4f}{shown_gain:>8}{rows[-1]['kb_per_second']:>8.1f}")
            previous = bpb
        record["files"][name] = {"input_bytes": len(data), "rows": rows}
        if args.json:
            Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
