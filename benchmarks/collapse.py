"""Collapse arms: replace, accumulate and accumulate-real, each at top-p 1.0 and 0.9, over seeds.

Runs `bitlens.offspring.collapse_arms` on the bundled Tiny Shakespeare: per seed, generation 0
trains once on real windows (shared by every arm and top-p); then each arm trains
`--generations` more from scratch on the same token budget per generation. Reports per arm the
held-out bits/byte (test split) and the samples' tail signature per generation, as means over
seeds with t intervals, the change from generation 0 to the last (paired by seed), and the
paired last-generation differences between arms (Holm-adjusted). Writes the JSON (with the
command, seeds and wall time) and a figure beside it (`--plot`, default under benchmarks/out/).

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/collapse.py
           [--seeds 0,1,2] [--generations 5] [--top-p 1.0,0.9] [--budget-tokens 32768]
           [--json benchmarks/results/collapse-arms.json] [--smoke]
The defaults are the study (about half an hour on one loaded core); --smoke is a seconds-long check.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from bitlens.data import bundled_corpus_bytes
from bitlens.offspring.collapse import MODES, CollapseConfig, plot_collapse
from bitlens.offspring.collapse_arms import CollapseArmsConfig, run_collapse_arms

ROOT = Path(__file__).resolve().parent


def _iv(x: dict) -> str:
    ci = x["ci95"]
    return f"{x['estimate']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{x['estimate']:+.3f}"


def _print(r: dict) -> None:
    print(
        f"seeds {r['seeds']}, {r['generations']} generations, {r['budget_tokens']:,} tokens per "
        f"generation ({r['offspring_preset']}, {r['window']}-byte windows), {r['real_windows']} real "
        f"windows, accumulate-real keeps {r['real_share']:g} real"
    )
    print(
        f"{'arm':16} {'top-p':>5} {'gen 0 bits/byte':>16} {'last':>7} {'Δ bits/byte [95% CI]':>26} "
        f"{'Δ unigram entropy':>26} {'Δ rare-bigram mass':>26} {'Δ rare-byte mass':>26}  reading"
    )
    for a in r["arms"]:
        g0, gl, c = a["generations"][0], a["generations"][-1], a["change"]
        print(
            f"{a['mode']:16} {a['top_p']:5g} {g0['heldout_bits_per_byte']:16.3f} "
            f"{gl['heldout_bits_per_byte']:7.3f} {_iv(c['heldout_bits_per_byte']):>26} "
            f"{_iv(c['sample_unigram_entropy_bits']):>26} {_iv(c['tail_mass']):>26} "
            f"{_iv(c['rare_byte_mass']):>26}  {c['heldout_bits_per_byte']['reading']}"
        )
    for d in r["last_generation_differences"]:
        p = f", Holm p {d['p_holm']:.3g}" if d["p_holm"] is not None else ""
        pair = f"top-p {d['top_p']:g}: {d['a']} − {d['b']}"
        print(f"last generation, {pair} = {_iv(d)} bits/byte{p}: {d['reading']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--top-p", default="1.0,0.9")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--real-share", type=float, default=0.25)
    ap.add_argument("--preset", default="shallow")
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--budget-tokens", type=int, default=32_768)
    ap.add_argument("--real-bytes", type=int, default=12_800)
    ap.add_argument("--test-bytes", type=int, default=16_384)
    ap.add_argument("--json", default=str(ROOT / "results" / "collapse-arms.json"))
    ap.add_argument("--plot", default=str(ROOT / "out" / "collapse-arms.png"))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 generation: checks the wiring")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    git = ["git", "rev-parse", "HEAD"]  # the code this run starts from
    commit = subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout
    base = CollapseConfig(
        generations=1 if args.smoke else args.generations,
        preset=args.preset,
        real_share=args.real_share,
        real_bytes=1_280 if args.smoke else args.real_bytes,
        test_bytes=2_048 if args.smoke else args.test_bytes,
        budget_tokens=1_024 if args.smoke else args.budget_tokens,
        window=args.window,
        batch_size=args.batch_size,
    )
    config = CollapseArmsConfig(
        base,
        modes=tuple(args.modes.split(",")),
        top_ps=tuple(float(p) for p in args.top_p.split(",")),
        seeds=tuple(int(s) for s in args.seeds.split(",")),
    )
    t0 = time.perf_counter()
    r = run_collapse_arms(bundled_corpus_bytes(), config, progress=sys.stderr.isatty()).to_dict()
    r["benchmark"] = {
        "command": "python benchmarks/collapse.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": list(config.seeds),
        "wall_seconds": time.perf_counter() - t0,
        "corpus": "tinyshakespeare (bundled)",
        "git_commit": commit.strip() or None,
        "torch_threads": torch.get_num_threads(),
    }
    _print(r)
    print(f"wall time {r['benchmark']['wall_seconds']:.0f} s")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1, allow_nan=False) + "\n")
    plot_collapse(r["arms"], args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
