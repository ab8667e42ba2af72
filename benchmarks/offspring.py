"""Parent → offspring benchmark: selection strategies over seeds, distillation targets, collapse.

Usage: python benchmarks/offspring.py [--out benchmarks/out/offspring] [--seeds 0,1,2]
       [--parent-steps 800] [--generations 5] [--quick]
Trains (or reuses) a `small` parent on the bundled Tiny Shakespeare, then writes
compare.json, collapse.json and their figures to --out. Needs nothing outside the package.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bitlens.config import override
from bitlens.data import bundled_corpus_bytes
from bitlens.offspring.collapse import MODES, CollapseConfig, plot_collapse, run_collapse
from bitlens.offspring.compare import (
    SPLIT,
    CompareConfig,
    compare_distillation,
    compare_strategies,
    plot_strategies,
)
from bitlens.offspring.policy import ContextConfig, context_from_model
from bitlens.runs import WEIGHTS_FILE, load_run
from bitlens.train import train_run


def _print_distillation(rows: list[dict]) -> None:
    for d in rows:
        print(
            f"{d['target']:6} {d['heldout_bits_per_byte']:.4f} ± {d['heldout_bits_per_byte_std']:.4f} "
            f"KL {d['kl_to_parent_bits']:.4f} KL drop {d['kl_drop_bits_per_byte']:.4f} "
            f"label {d['label_bits_per_token']:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/out/offspring")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--parent-steps", type=int, default=800)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--keep-ratio", type=float, default=0.3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", choices=["compare", "collapse"], default=None)
    ap.add_argument(
        "--collapse-budget",
        type=int,
        default=0,
        help="Training tokens per collapse generation (default: the full preset's).",
    )
    ap.add_argument(
        "--distill-budget",
        type=int,
        default=0,
        help="Only the distillation targets, at this many training tokens.",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    data = bundled_corpus_bytes()
    parent_dir = out / "parent"
    if args.skip != "compare" and not (parent_dir / WEIGHTS_FILE).exists():
        train_run(
            data,
            parent_dir,
            preset="small",
            steps=args.parent_steps,
            seed=1,
            resume=(parent_dir / "config.json").exists(),
            corpus_name="tinyshakespeare",
            train_overrides={"threads": 1},
        )
    seeds = tuple(int(s) for s in args.seeds.split(","))
    if args.distill_budget:
        t0 = time.perf_counter()
        context = ContextConfig.quick() if args.quick else ContextConfig.full()
        ctx = context_from_model(load_run(parent_dir), data, override(context, seed=seeds[0]))
        rows = [r.to_dict() for r in compare_distillation(ctx, args.distill_budget, seeds)]
        result = {
            "distillation": rows,
            "budget_tokens": args.distill_budget,
            "seeds": list(seeds),
            "parent_bits_per_byte": ctx.parent_heldout_bits_per_byte(SPLIT),
            "splits": ctx.splits.to_dict(),
            "seconds": time.perf_counter() - t0,
        }
        (out / f"distill-{args.distill_budget}.json").write_text(json.dumps(result, indent=2))
        _print_distillation(rows)
        return
    if args.skip != "compare":
        t0 = time.perf_counter()
        cfg = override(
            CompareConfig.quick() if args.quick else CompareConfig.full(),
            keep_ratio=args.keep_ratio,
            seeds=seeds,
        )
        r = compare_strategies(load_run(parent_dir), data, cfg).to_dict()
        r["seconds"] = time.perf_counter() - t0
        (out / "compare.json").write_text(json.dumps(r, indent=2))
        plot_strategies(r, out / "compare.png")
        print(json.dumps({k: r[k] for k in ("parent_bits_per_byte", "budget_tokens", "seconds")}))
        for s in r["strategies"]:
            g = s["gain_over_random_bits_per_byte"] or {"estimate": 0.0, "ci95": [0.0, 0.0], "p_holm": None}
            print(
                f"{s['name']:24} {s['heldout_bits_per_byte']:.4f} {s['heldout_bits_per_byte_ci95']}  "
                f"gain over random {g['estimate']:+.4f} bits/byte {g['ci95']} (Holm p {g['p_holm']}); "
                f"choice ≤ {s['choice_bits']:.4g} bits"
            )
        _print_distillation(r["distillation"])
    if args.skip != "collapse":
        runs = []
        for mode in MODES:
            t0 = time.perf_counter()
            cfg = override(
                CollapseConfig.quick() if args.quick else CollapseConfig.full(),
                mode=mode,
                generations=args.generations,
                seed=seeds[0],
                budget_tokens=args.collapse_budget or None,
            )
            c = run_collapse(data, cfg).to_dict()
            c["seconds"] = time.perf_counter() - t0
            runs.append(c)
            for g in c["generations"]:
                print(
                    f"{mode:10} gen {g['generation']} {g['heldout_bits_per_byte']:.4f} "
                    f"entropy {g['sample_entropy_bits']:.4f} tail {g['tail_mass']:.4f}"
                )
        name = f"collapse-{args.collapse_budget}" if args.collapse_budget else "collapse"
        (out / f"{name}.json").write_text(json.dumps({"runs": runs}, indent=2))
        plot_collapse(runs, out / f"{name}.png")


if __name__ == "__main__":
    main()
