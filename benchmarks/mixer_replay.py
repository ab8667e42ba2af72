"""Mixer variants at the cost of the counts: replay the mixer over a cached online network.

The online network's probabilities do not depend on the mixer (it trains on the bytes, not on
the mixture), so one estimate run can cache them in the coder's step order and every mixer
variant then replays over them at the counts coder's speed, with the exact code lengths the
coder would measure (to the estimate's float rounding):

    PYTHONPATH=src python benchmarks/mixer_replay.py cache enwik8-head.txt NET.npy [--schedule JSON]
    PYTHONPATH=src python benchmarks/mixer_replay.py replay enwik8-head.txt NET.npy '{"rate": 0.003}'

`cache` runs the default online schedule of the file's size, with --schedule's fields replaced
(network alone, 32 streams, one torch thread), and stores log-probabilities (nats, float32:
1 KB per coded byte); `replay` prints one JSON line: the mixture's, the network's and the
counts-only mixer's bits/byte, and what the network saves. Reads ../shared/corpora (skips cleanly without it).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bitlens.compress import coder
from bitlens.compress.loop import code_streams
from bitlens.compress.mixing import ContextMixer, MixConfig, mixture_code_bits
from bitlens.determinism import deterministic

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def _layout(data: bytes) -> tuple[coder._Plan, np.ndarray, torch.Tensor, np.ndarray]:
    plan = coder._plan(len(data), None, True, coder.ONLINE_PRESET, 0, None, None, None)
    grid, seq, lengths = coder._grid(data, plan.n_streams, plan.stream_length)
    return plan, grid, seq, lengths


def cache(data: bytes, out: Path, schedule: dict) -> float:
    """Cache the online network's log-probabilities; returns its code length in bits/byte."""
    plan, grid, seq, lengths = _layout(data)
    assert plan.schedule is not None
    plan.schedule = replace(plan.schedule, **schedule)
    seq[:, 1:] = torch.as_tensor(grid)
    trace: list[np.ndarray] = []
    with deterministic(1, kernels=True):
        model = coder._mode_model(plan.mode, None, plan.params, "cpu")
        bits = code_streams(model, seq, lengths, None, plan.schedule, 0, False, trace=trace, estimate=True)  # type: ignore[arg-type]
    np.save(out, np.concatenate([np.log(p).astype(np.float32) for p in trace]))
    return bits.network / len(data)


def replay(data: bytes, cached: Path, mix: MixConfig) -> dict[str, float]:
    """Bits/byte of the mixture, the network and the counts-only mixer over the cached network."""
    plan, grid, _, lengths = _layout(data)
    net = np.load(cached, mmap_mode="r")
    mixer = ContextMixer(plan.n_streams, mix, capacity=plan.stream_length, counts_only=True)
    coded = network = 0.0
    offset = 0
    for pos in range(plan.stream_length):
        active = pos < lengths
        m = int(active.sum())
        logp = np.asarray(net[offset : offset + m])
        offset += m
        p = mixer.predict(logp, active)
        got = grid[active, pos].astype(np.int64)
        coded += mixture_code_bits(p, got)
        network -= float(logp[np.arange(m), got].sum()) / np.log(2)
        mixer.update(got)
    n = len(data)
    counts = mixer.counts_only_bits / n
    return {"coded": coded / n, "network": network / n, "counts": counts, "saves": counts - coded / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["cache", "replay"])
    ap.add_argument("file", help="a file under the corpora folder")
    ap.add_argument("cached", type=Path, help="the cached network's log-probabilities (.npy)")
    ap.add_argument("mix", nargs="?", default="{}", help="replay: MixConfig fields, as JSON")
    ap.add_argument("--schedule", default="{}", help="cache: online schedule fields to replace, as JSON")
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"skipping: no corpora at {args.corpora}")
        return 0
    data = (args.corpora / args.file).read_bytes()
    t = time.perf_counter()
    if args.action == "cache":
        print(json.dumps({"file": args.file, "network": cache(data, args.cached, json.loads(args.schedule))}))
        return 0
    fields = json.loads(args.mix)
    row = replay(
        data, args.cached, MixConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    )
    print(
        json.dumps(
            {
                "cfg": fields,
                **{k: round(v, 6) for k, v in row.items()},
                "secs": round(time.perf_counter() - t),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
