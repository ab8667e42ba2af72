"""Capacity at saturation: the slope of memorised bits against parameters, with its interval.

Runs `CapacityConfig.study()` (see `bitlens.measures.capacity`): five byte-level GPT sizes from
1.1k to 41k parameters (1.55 decades; 68 % of the top model's parameters outside the embeddings
and head), three seeds, datasets of uniformly random 32-byte sequences from ¼ to 4× a guessed
capacity (3.6 bits/parameter), every run trained at lr 1e-2 until memorised bits grow by < 1 %
over 1000 steps (capped at 10k steps, recorded as `saturated: false`). Capacity per run = the
most memorised over the sweep (a plateau when growth stopped at its end; the slope with the mean
of the sweep's last three points instead is printed and kept as `tail_mean`); the result is the
slope of capacity against parameters per seed, its mean and bootstrap 95 % interval, at fp32
and after bf16 / int8 / int4 rounding of the weights, beside Morris et al. 2025 and Allen-Zhu &
Li 2024. About 50 minutes per seed on one CPU core (one process per seed: `--first-seed S
--seeds 1`, then a run with the defaults assembles the saved points); minutes on a GPU
(`--device cuda`).

Usage: OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/capacity.py [--json FILE]
           [--sizes 1x4,1x8] [--multiples 0.25,0.5,1] [--seeds 3] [--max-steps N] [--window N]
           [--points DIR] [--first-seed S] [--device cuda]
The options shrink the study (a smoke run); the defaults are the study.

Every trained point (size, seed, dataset size) is saved under --points (default:
benchmarks/capacity-points/, committed) as it finishes, and a later run with the same settings
reads it back instead of training it again: a study stopped
by a crash or a session's end resumes where it stopped, and processes given different seeds
(`--first-seed 1 --seeds 1`, one per core) fill one folder that a final run assembles.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bitlens.measures.capacity import CapacityConfig, measure_capacity, plot_capacity

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "capacity.json")
    ap.add_argument("--sizes", default=None, help="n_layer x n_embd, comma-separated, e.g. 1x4,1x8")
    ap.add_argument("--multiples", default=None, help="the data sweep, × the guessed capacity")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None, help="step cap of each run")
    ap.add_argument("--window", type=int, default=None, help="saturation window (and min steps)")
    ap.add_argument("--check-every", type=int, default=None)
    ap.add_argument("--points", type=Path, default=ROOT / "capacity-points", help="saved points (resume)")
    ap.add_argument("--first-seed", type=int, default=None, help="seeds run from here (default 0)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is lent")
    args = ap.parse_args()

    cfg = CapacityConfig.study()
    if args.sizes:
        cfg = replace(cfg, sizes=tuple(tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")))  # type: ignore[misc]
    if args.multiples:
        cfg = replace(cfg, data_multiples=tuple(float(m) for m in args.multiples.split(",")))
    if args.seeds:
        cfg = replace(cfg, n_seeds=args.seeds)
    if args.first_seed is not None:
        cfg = replace(cfg, seed=args.first_seed)
    sat = cfg.saturation
    if args.check_every:
        sat = replace(sat, check_every=args.check_every)
    if args.window:
        sat = replace(sat, window=args.window, min_steps=args.window)
    if args.max_steps:
        sat = replace(sat, max_steps=args.max_steps)
    cfg = replace(cfg, saturation=sat, device=args.device)

    t0 = time.perf_counter()
    r = measure_capacity(cfg, progress=True, points_dir=args.points).to_dict()
    r["benchmark_seconds"] = time.perf_counter() - t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2))
    plot_capacity(r, args.json.with_suffix(""))

    for run in r["runs"]:
        steps = [p["saturation"]["steps"] for p in run["points"]]
        print(
            f"{run['n_layer']}x{run['n_embd']} seed {run['seed']}: {run['parameters']:,} params, "
            f"capacity {run['memorised_bits']:,.0f} bits = {run['bits_per_parameter']:.2f} bits/param, "
            f"saturated {run['saturated']}, plateau {run['plateau_reached']}, steps {steps}"
        )
    for p, f in r["precision"].items():
        lo, hi = f["slope_ci95"]
        print(
            f"{p}: slope {f['slope_bits_per_parameter']:.3f} bits/param, 95% CI [{lo:.3f}, {hi:.3f}], "
            f"{f['n_seeds']} seeds; anchor {f['anchor']} = {f['anchor_bits_per_parameter']}"
        )
    t = r["tail_mean"]
    print(
        f"tail mean instead of maximum (fp32): slope {t['slope_bits_per_parameter']:.3f} bits/param, "
        f"95% CI [{t['slope_ci95'][0]:.3f}, {t['slope_ci95'][1]:.3f}]"
    )
    print(f"{r['parameter_decades']:.2f} decades of parameters; {r['benchmark_seconds']:.0f} s → {args.json}")


if __name__ == "__main__":
    main()
