"""The online network's code length under the default schedule with some fields replaced.

One `bitlens.compress.estimate_bits` run (32 streams, one torch thread) over the first N bytes
of a file, with `ONLINE_SCHEDULE` (or, with --short, `SHORT_ONLINE_SCHEDULE`) and the given
fields replaced; prints one JSON line in bits/byte: the network alone, and with --mix also
online + mix and the counts-only mixer of the same pass. --json adds the line to a record's
"rows". The estimate agrees with the real coder to float rounding (tests/test_coding.py).
Reads ../shared/corpora (skips cleanly without it).

    PYTHONPATH=src python benchmarks/online_probe.py enwik8-head.txt 524288 '{"head_lr": 0.03}'
    PYTHONPATH=src python benchmarks/online_probe.py canterbury/alice29.txt 0 '{"replay": 8}' \
        --short --mix --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from bitlens.compress import MixConfig, estimate_bits
from bitlens.compress.online import ONLINE_SCHEDULE, SHORT_ONLINE_SCHEDULE

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", help="a file under the corpora folder")
    ap.add_argument("max_bytes", type=int, help="first bytes of the file (0: all)")
    ap.add_argument("fields", nargs="?", default="{}", help="schedule fields to replace, as JSON")
    ap.add_argument("--short", action="store_true", help="start from the short-file schedule")
    ap.add_argument("--mix", action="store_true", help="mix with the count models (the default mixer)")
    ap.add_argument("--json", type=Path, default=None, help="add the row to this record's rows")
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipping: no corpora at {args.corpora}")
        return 0
    data = (args.corpora / args.file).read_bytes()[: args.max_bytes or None]
    fields = json.loads(args.fields)
    schedule = replace(SHORT_ONLINE_SCHEDULE if args.short else ONLINE_SCHEDULE, **fields)
    t = time.perf_counter()
    mix = MixConfig() if args.mix else None
    bits = estimate_bits(data, online=True, schedule=schedule, n_streams=32, threads=1, mix=mix)
    n = len(data)
    row: dict = {
        "file": args.file,
        "n": n,
        "schedule": asdict(schedule),
        "net_bpb": round(bits.network / n, 4),
    }
    if args.mix:
        row.update(mix_bpb=round(bits.coded / n, 4), counts_bpb=round(bits.counts_only / n, 4))
    row["secs"] = round(time.perf_counter() - t)
    print(json.dumps(row), flush=True)
    if args.json:
        record = json.loads(args.json.read_text()) if args.json.exists() else {"rows": []}
        record["rows"].append(row)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
