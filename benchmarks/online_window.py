"""The online model's window and update interval: real online + mix compressions (encode only)
of the first N bytes of a file, one configuration after another in one process.

Each configuration is a model shape (window, layers, heads, width) and an online schedule; every
row reports the mixed code length, the network's own code length and the counts-only mixer's
(measured in the same pass), in bits/byte. Configurations of equal training tokens per coded
byte ((streams + replay) · window / (streams · segment)) compare at equal training cost. Reads
../shared/corpora (skips cleanly without it).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/online_window.py --bytes 262144 \
        --configs w128-s32,w64-s16,w32-s16,w64-s16-r0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"

# name: ((window, layers, heads, width), lr, segment, replay)
CONFIGS = {
    "w128-s32": ((128, 2, 4, 128), 6e-3, 32, 8),  # the online default before 2026-12-02
    "w64-s32": ((64, 2, 4, 128), 6e-3, 32, 8),
    "w64-s16": ((64, 2, 4, 128), 6e-3, 16, 8),  # the default since
    "w64-s16-r0": ((64, 2, 4, 128), 6e-3, 16, 0),
    "w32-s16": ((32, 2, 4, 128), 6e-3, 16, 8),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="enwik8-head.txt")
    ap.add_argument("--bytes", type=int, default=262_144)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    path = CORPORA / args.file
    if not path.exists():
        print(f"skipped: {path} not found (the shared corpora are not here)")
        return 0
    from bitlens.compress import MixConfig, OnlineConfig, compress
    from bitlens.model import GPTConfig

    data = path.read_bytes()[: args.bytes]
    rows = []
    print(f"{args.file}: first {len(data):,} bytes, online + mix, seed 0")
    print(f"{'config':<12} {'tokens/byte':>11} {'bits/byte':>9} {'network':>8} {'counts':>8} {'cpu s':>7}")
    for name in args.configs.split(","):
        (window, layers, heads, width), lr, segment, replay = CONFIGS[name]
        model = GPTConfig(block_size=window, n_layer=layers, n_head=heads, n_embd=width)
        schedule = OnlineConfig(lr=lr, segment=segment, replay=replay)
        cpu = time.process_time()
        blob, res = compress(data, online=True, preset=model, mix=MixConfig(), schedule=schedule)
        cpu = time.process_time() - cpu
        n, streams = len(data), res.n_streams
        assert res.network_bits is not None and res.counts_only_bits is not None  # set by mixing
        row = {
            "config": name,
            "window": window,
            "segment": segment,
            "replay": replay,
            "trained_tokens_per_byte": (streams + replay) * window / (streams * segment),
            "bits_per_byte": 8 * len(blob) / n,
            "network_bits_per_byte": res.network_bits / n,
            "counts_only_bits_per_byte": res.counts_only_bits / n,
            "cpu_seconds": cpu,
        }
        rows.append(row)
        print(
            f"{name:<12} {row['trained_tokens_per_byte']:>11.2f} {row['bits_per_byte']:>9.4f} "
            f"{row['network_bits_per_byte']:>8.3f} {row['counts_only_bits_per_byte']:>8.3f} {cpu:>7.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"file": args.file, "bytes": len(data), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
