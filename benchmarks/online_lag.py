"""Training one segment behind the coder, in a second thread: speed and bits, lag 0 against lag 1.

Compresses and decompresses the first N bytes of a file with online + mix at the default
schedule, once with `lag` 0 (the coder waits for each training round) and once with `lag` 1 (the
round trains in a second thread while the next segment is coded), in one process, one after the
other, so the speed ratio is measured within one run. Each row is a real round trip (decoded
byte for byte) and reports bits/byte (the file's size, header included), the network alone and
the counts-only mixer (same pass), wall-clock KB/s each way and CPU seconds (both threads). On a
machine with one free core, lag 1 cannot be faster: run it on an idle machine. Reads
../shared/corpora (skips cleanly without it).

    PYTHONPATH=src python benchmarks/online_lag.py --file enwik8-head.txt --bytes 262144 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import asdict, replace
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="enwik8-head.txt")
    ap.add_argument("--bytes", type=int, default=262_144, help="first bytes of the file (0: all)")
    ap.add_argument("--lags", default="0,1")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    path = CORPORA / args.file
    if not path.exists():
        print(f"skipped: {path} not found (the shared corpora are not here)")
        return 0
    from bitlens.compress import MixConfig, compress, decompress
    from bitlens.compress.online import default_schedule

    data = path.read_bytes()
    data = data[: args.bytes] if args.bytes else data
    n = len(data)
    base = default_schedule("online", n)
    record: dict = {"file": args.file, "input_bytes": n, "cpu_count": os.cpu_count(), "rows": []}
    print(f"{args.file}: first {n:,} bytes, online + mix, default schedule, seed 0, one torch thread")
    heads = ("bits/byte", "network", "counts", "enc KB/s", "dec KB/s")
    print(f"{'lag':>3} " + " ".join(f"{h:>9}" for h in heads) + f" {'cpu s':>7}")
    for lag in (int(v) for v in args.lags.split(",")):
        schedule = replace(base, lag=lag)
        t, cpu = time.perf_counter(), time.process_time()
        blob, res = compress(data, online=True, mix=MixConfig(), schedule=schedule, threads=1)
        enc_s, enc_cpu = time.perf_counter() - t, time.process_time() - cpu
        t, cpu = time.perf_counter(), time.process_time()
        back = decompress(blob)
        dec_s, dec_cpu = time.perf_counter() - t, time.process_time() - cpu
        assert res.network_bits is not None and res.counts_only_bits is not None  # set by mixing
        row = {
            "lag": lag,
            "schedule": asdict(schedule),
            "roundtrip": back == data,
            "output_bytes": len(blob),
            "bits_per_byte": 8 * len(blob) / n,
            "network_bits_per_byte": res.network_bits / n,
            "counts_only_bits_per_byte": res.counts_only_bits / n,
            "compress_seconds": enc_s,
            "decompress_seconds": dec_s,
            "compress_cpu_seconds": enc_cpu,
            "decompress_cpu_seconds": dec_cpu,
            "compress_kb_per_second": n / enc_s / 1000,
            "decompress_kb_per_second": n / dec_s / 1000,
        }
        record["rows"].append(row)
        print(
            f"{lag:>3} {row['bits_per_byte']:>9.4f} {row['network_bits_per_byte']:>9.3f} "
            f"{row['counts_only_bits_per_byte']:>9.4f} {row['compress_kb_per_second']:>9.2f} "
            f"{row['decompress_kb_per_second']:>9.2f} {enc_cpu + dec_cpu:>7.0f}"
            + ("" if row["roundtrip"] else "  ROUND TRIP FAILED")
        )
    rows = record["rows"]
    if len(rows) == 2:
        record["speedup_compress"] = rows[0]["compress_seconds"] / rows[1]["compress_seconds"]
        record["speedup_decompress"] = rows[0]["decompress_seconds"] / rows[1]["decompress_seconds"]
        print(
            f"lag {rows[1]['lag']} / lag {rows[0]['lag']}: {record['speedup_compress']:.2f}x compressing, "
            f"{record['speedup_decompress']:.2f}x decompressing"
        )
    record["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if all(r["roundtrip"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
