"""Distillation as a 2×2 (labels × inputs) and born-again offspring, on the bundled corpus.

Usage: OMP_NUM_THREADS=1 python benchmarks/distillation.py [--seeds 10] [--parent-steps 64]
       [--budget-tokens 81920] [--born-again-seeds 5] [--generations 2] [--budget-ratio 0.75]
       [--out benchmarks/results/distillation-2x2.json]
Trains one `tiny` parent (fixed seed, parent_train split), then the 2×2 (every cell × seed) and
the born-again generations with their hard-label control, all scored on the test split. Writes
one JSON (the command, seeds, wall time, the parent, both parts) and prints the tables.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from bitlens.data import bundled_corpus_bytes
from bitlens.offspring.born_again import BornAgainConfig, run_born_again
from bitlens.offspring.distill_study import DistillConfig, run_distill_2x2
from bitlens.offspring.study_parent import ParentConfig, train_parent
from bitlens.runs import atomic_write_json


def _iv(d: dict) -> str:
    lo, hi = d["ci95"]
    return f"{d['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def _print(result: dict) -> None:
    p = result["parent"]
    print(f"parent: {p['steps']} steps, {p['tokens']:,} tokens, test {p['test_bits_per_byte']:.4f} bits/byte")
    d = result["distill_2x2"]
    print(f"2×2: {d['budget_tokens']:,} tokens per offspring, {len(d['seeds'])} seeds (test bits/byte)")
    for c in d["cells"]:
        lo, hi = c["heldout_bits_per_byte_ci95"]
        print(
            f"  {c['labels']:4}/{c['inputs']:9} {c['heldout_bits_per_byte']:.4f} [{lo:.4f}, {hi:.4f}] "
            f"parent TFLOPs {c['parent_flops'] / 1e12:.3f}, "
            f"offspring TFLOPs {c['offspring_train_flops'] / 1e12:.3f}"
        )
    for e in d["effects"]:
        print(f"  {e['effect']:11} {_iv(e)} p_holm {e['p_holm']:.3g}: {e['reading']}")
    b = result["born_again"]
    print(f"born-again: {b['budget_tokens']:,} tokens per generation, {len(b['seeds'])} seeds")
    for g in b["generations"]:
        imp, ctl = g["improvement_vs_parent_bits_per_byte"], g["gain_over_hard_control_bits_per_byte"]
        print(
            f"  gen {g['generation']} {g['heldout_bits_per_byte']:.4f}: vs parent {_iv(imp)} "
            f"(p_holm {imp['p_holm']:.3g}; {imp['reading']}); over hard control {_iv(ctl)} ({ctl['reading']})"
        )
    if b["hard_control"]:
        h = b["hard_control"]
        imp = h["improvement_vs_parent_bits_per_byte"]
        print(f"  hard control {h['heldout_bits_per_byte']:.4f}: vs parent {_iv(imp)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/distillation-2x2.json")
    ap.add_argument("--seeds", type=int, default=10, help="2×2 seeds (0..N-1)")
    ap.add_argument("--parent-steps", type=int, default=64)
    ap.add_argument("--budget-tokens", type=int, default=81_920, help="2×2 tokens per offspring")
    ap.add_argument("--born-again-seeds", type=int, default=5)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--budget-ratio", type=float, default=0.75)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = bundled_corpus_bytes()
    parent = train_parent(data, replace(ParentConfig.full(), steps=args.parent_steps))
    print(
        f"parent trained: {parent.test_bits_per_byte:.4f} bits/byte ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    t1 = time.perf_counter()
    distill = run_distill_2x2(
        parent,
        replace(DistillConfig.full(), seeds=tuple(range(args.seeds)), budget_tokens=args.budget_tokens),
    ).to_dict()
    distill["seconds"] = time.perf_counter() - t1
    print(f"2×2 done ({distill['seconds']:.0f} s)", flush=True)
    partial = {"command": " ".join(["python", *sys.argv]), "parent": parent.to_dict(), "distill_2x2": distill}
    atomic_write_json(Path(args.out), {**partial, "born_again": None, "partial": True})
    t2 = time.perf_counter()
    born = run_born_again(
        parent,
        BornAgainConfig(
            seeds=tuple(range(args.born_again_seeds)),
            generations=args.generations,
            budget_ratio=args.budget_ratio,
        ),
    ).to_dict()
    born["seconds"] = time.perf_counter() - t2
    result = {
        "command": " ".join(["python", *sys.argv]),
        "corpus": "tinyshakespeare (bundled)",
        "wall_seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "parent": parent.to_dict(),
        "distill_2x2": distill,
        "born_again": born,
    }
    atomic_write_json(Path(args.out), result)
    _print(result)
    print(f"wrote {args.out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
