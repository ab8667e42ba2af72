"""The selection budget sweep (issue #16 §2): arms × training budgets × seeds, with learning curves.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/offspring_sweep.py
       [--budgets 8192,32768] [--seeds 0,...,9] [--scores random,bigram,surprisal,rho-loss]
       [--extra-budget 131072 --extra-seeds 0,...,4] [--parent-preset tiny --parent-steps 300]
       [--json benchmarks/results/offspring-budget-sweep.json] [--out benchmarks/out/offspring-sweep]
       [--pool-bytes 800000 --parent-train-bytes 226242] [--preset tiny] [--lr 0.01]
Trains (or reuses) a parent on the bundled Tiny Shakespeare (`bitlens train`'s split), runs
`bitlens.offspring.sweep.run_sweep` on the default offspring context and writes the JSON (with
the command, seeds and wall time) and the plot. `--extra-budget` adds one larger budget with
its own, fewer seeds (when 10 seeds at it do not fit the time); every arm row says its n_seeds.

`--parent-train-bytes` names the parent's head (`bitlens.offspring.splits`): the parent trains
(with `bitlens train`'s recipe, its own 90/10 split inside that head) on those bytes only, and
the pool of `--pool-bytes` is the next stretch, larger than the 87 KB that `bitlens train`'s
10 % tail leaves. Validation and test stay the corpus's last bytes.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from bitlens.data import bundled_corpus_bytes
from bitlens.errors import BitlensError
from bitlens.offspring.policy import ContextConfig
from bitlens.offspring.sweep import SweepConfig, plot_sweep, run_sweep
from bitlens.runs import WEIGHTS_FILE, check_trained_on, load_run
from bitlens.train import train_run


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(","))


def _git_hash() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _write(r: dict, args: argparse.Namespace, parent_run: dict, t0: float, t1: float) -> None:
    """The result JSON with what reproduces it: command, seeds per budget, wall time, parent."""
    r["record"] = {
        "command": "OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python " + " ".join(sys.argv),
        "seeds": {str(b["budget_tokens"]): b["arms"][0]["n_seeds"] for b in r["budgets"]},
        "sweep_seconds": time.perf_counter() - t1,
        "wall_seconds": time.perf_counter() - t0,
        "parent": {k: parent_run[k] for k in ("preset", "steps", "tokens", "seconds", "val_bits_per_byte")},
        "git": _git_hash(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(r, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/out/offspring-sweep")
    ap.add_argument("--json", default="benchmarks/results/offspring-budget-sweep.json")
    ap.add_argument("--budgets", default="8192,32768", help="training tokens per offspring")
    ap.add_argument("--seeds", default=",".join(str(s) for s in range(10)))
    ap.add_argument("--scores", default="random,bigram,surprisal,rho-loss")
    ap.add_argument("--curve-points", type=int, default=3)
    ap.add_argument(
        "--extra-budget", type=int, default=131072, help="one larger budget, run with --extra-seeds"
    )
    ap.add_argument("--extra-seeds", default="0,1,2,3,4")
    ap.add_argument("--parent-preset", default="tiny")
    ap.add_argument("--parent-steps", type=int, default=300)
    ap.add_argument("--pool-bytes", type=int, default=None, help="default: the context's")
    ap.add_argument(
        "--parent-train-bytes", type=int, default=None, help="the parent's head (default: bitlens train's)"
    )
    ap.add_argument("--preset", default="tiny", help="offspring preset")
    ap.add_argument("--lr", type=float, default=None, help="offspring peak learning rate (default: preset's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    out = Path(args.out)
    data = bundled_corpus_bytes()
    context = replace(ContextConfig.full(), parent_train_bytes=args.parent_train_bytes)
    if args.pool_bytes is not None:
        context = replace(context, pool_bytes=args.pool_bytes)
    if args.parent_train_bytes is None:  # `bitlens train` holds out the tail the pool is cut from
        parent_data = data
    else:  # the parent reads its head and nothing after it
        parent_data = context.parent_text(data)
    parent_dir = out / "parent"
    if (parent_dir / WEIGHTS_FILE).exists():
        try:
            check_trained_on(parent_dir, parent_data)
        except BitlensError as e:
            sys.exit(f"{e}; use another --out")
    else:
        train_run(
            parent_data,
            parent_dir,
            preset=args.parent_preset,
            steps=args.parent_steps,
            seed=1,
            corpus_name="tinyshakespeare",
            train_overrides={"threads": 1},
        )
    parent_run = json.loads((parent_dir / "result.json").read_text())
    parent = load_run(parent_dir)
    cfg = SweepConfig(
        budgets=_ints(args.budgets),
        scores=tuple(args.scores.split(",")),
        seeds=_ints(args.seeds),
        curve_points=args.curve_points,
        preset=args.preset,
        lr=args.lr,
        context=context,
    )
    t1 = time.perf_counter()
    r = run_sweep(parent, data, cfg, progress=sys.stderr.isatty()).to_dict()
    _write(r, args, parent_run, t0, t1)  # the budgets with all seeds are kept even if the extra one overruns
    if args.extra_budget:
        extra = replace(cfg, budgets=(args.extra_budget,), seeds=_ints(args.extra_seeds))
        r["budgets"] += run_sweep(parent, data, extra, progress=sys.stderr.isatty()).to_dict()["budgets"]
        _write(r, args, parent_run, t0, t1)
    plot_sweep(r, out / "offspring-budget-sweep.png")
    print(
        f"parent {r['parent_bits_per_byte']:.4f} bits/byte, unigram "
        f"{r['unigram_entropy_bits_per_byte']:.4f}; {r['record']['wall_seconds']:.0f} s"
    )
    for b in r["budgets"]:
        for a in b["arms"]:
            g = a["gain_over_random_bits_per_byte"] or {}
            h = a["gain_over_bigram_bits_per_byte"] or {}
            print(
                f"{b['budget_tokens']:>8} {a['score']:10} {a['heldout_bits_per_byte']:.4f} "
                f"{a['heldout_bits_per_byte_ci95']} n={a['n_seeds']}  vs random {g.get('estimate')} "
                f"{g.get('ci95')} p_holm {g.get('p_holm')}  vs bigram {h.get('estimate')} {h.get('ci95')} "
                f"p_holm {h.get('p_holm')}  choice ≤ {a['choice_bits']:.4g} bits"
            )


if __name__ == "__main__":
    main()
