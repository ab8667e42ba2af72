"""Lineage mode: does a line of offspring, each generation's best becoming the next parent,
improve, hold or collapse? Compared with the same search whose parent is always the original.

One tiny parent is trained on the bundled Tiny Shakespeare. Per seed, two evolution runs at the
quick scale (`EvolveConfig(small=True)`), identical but for `lineage`: in `lineage` the best
offspring of generation g (by validation fitness, `LineageStore.best_saved`) curates and writes
generation g+1's data; in `fixed` the original parent always does. Both share generation 0 (same
seed, same parent). After the runs, each generation's best offspring is scored once on the TEST
split (never used for choosing). Per arm and generation: the mean test bits/byte over seeds with
its t interval; per arm, the change from generation 0 to the last, paired by seed, read as
"improves" (interval below 0), "collapses" (above 0) or "holds" (includes 0); and lineage − fixed
at the last generation, paired by seed.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/lineage.py [--seeds 0,1,2]
           [--generations 5] [--population 3] [--parent-steps 200] [--reevaluate]
           [--json benchmarks/results/lineage.json] [--out benchmarks/out/lineage] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bitlens.data import bundled_corpus_bytes
from bitlens.evolve.evaluators import PolicyEvaluator
from bitlens.evolve.lineage import LineageStore
from bitlens.evolve.run import STORE_FILE, EvolveConfig, run_evolution
from bitlens.offspring.distill import heldout_score
from bitlens.offspring.select import make_windows
from bitlens.runs import load_run
from bitlens.stats import paired_test, t_interval
from bitlens.train import train_run

ROOT = Path(__file__).resolve().parent
ARMS = ("lineage", "fixed")


def _iv(values: list[float]) -> dict:
    """Mean over seeds with its t interval (ci95 None for one seed)."""
    iv = t_interval(values)
    return {
        "estimate": iv.estimate,
        "ci95": [iv.low, iv.high] if len(values) > 1 else None,
        "n_seeds": len(values),
    }


def _reading(change: dict) -> str:
    ci = change["ci95"]
    if ci is None:
        return "one seed: no interval, not a finding"
    return "holds" if ci[0] <= 0.0 <= ci[1] else ("collapses" if change["estimate"] > 0 else "improves")


def best_per_generation(run_dir: Path, test: torch.Tensor) -> list[dict]:
    """Each generation's best saved offspring (the one lineage mode hands on), scored on `test`."""
    rows = []
    with LineageStore(run_dir / STORE_FILE) as store:
        g = 0
        while (best := store.best_saved(g)) is not None:
            rows.append(
                {
                    "generation": g,
                    "test_bits_per_byte": heldout_score(load_run(best.weights), test).bits_per_byte,
                    "validation_bits_per_byte": best.heldout_bits_per_byte,
                    "fitness": best.fitness,
                    "genome": best.genome,
                    "parent_model": store.generation_parent_model(g),
                    "evaluation_id": best.id,
                }
            )
            g += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--population", type=int, default=3)
    ap.add_argument("--parent-steps", type=int, default=200)
    ap.add_argument("--reevaluate", action="store_true", help="re-score survivors each generation")
    ap.add_argument("--out", default=str(ROOT / "out" / "lineage"))
    ap.add_argument("--json", default=str(ROOT / "results" / "lineage.json"))
    ap.add_argument("--smoke", action="store_true", help="2 × 2 genomes, a 10-step parent")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    git = ["git", "rev-parse", "HEAD"]  # the code this run starts from
    commit = subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout
    t0 = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    population, generations = (2, 2) if args.smoke else (args.population, args.generations)
    corpus, out = bundled_corpus_bytes(), Path(args.out)
    parent = out / "parent"
    if not (parent / "result.json").exists():
        steps = 10 if args.smoke else args.parent_steps
        train_run(
            corpus, parent, preset="tiny", steps=steps, seed=0, resume=(parent / "config.json").exists()
        )
    runs: dict[str, list[list[dict]]] = {arm: [] for arm in ARMS}
    test = None
    for seed in seeds:
        for arm in ARMS:
            cfg = EvolveConfig(
                population=population,
                generations=generations,
                seed=seed,
                lineage=arm == "lineage",
                small=True,
                reevaluate=args.reevaluate,
            )
            ev = PolicyEvaluator(corpus, str(parent), context=cfg.context(), space=cfg.gene_space())
            test = make_windows(ev.data_splits().take(corpus, "test"), ev.context.window)
            run_dir = out / f"{arm}-s{seed}"
            run_evolution(run_dir, cfg, evaluator=ev, backend="serial", resume=True)
            runs[arm].append(best_per_generation(run_dir, test))
            print(arm, seed, [round(r["test_bits_per_byte"], 4) for r in runs[arm][-1]], flush=True)
    assert test is not None
    curves = {arm: np.array([[r["test_bits_per_byte"] for r in run] for run in runs[arm]]) for arm in ARMS}
    result: dict = {
        "parent_test_bits_per_byte": heldout_score(load_run(parent), test).bits_per_byte,
        "test_bytes": int(test.shape[0] * (test.shape[1] - 1)),
        "arms": {},
    }
    for arm in ARMS:
        c = curves[arm]
        change = _iv((c[:, -1] - c[:, 0]).tolist())
        result["arms"][arm] = {
            "generations": [
                {"generation": g, "test_bits_per_byte": _iv(c[:, g].tolist())} for g in range(c.shape[1])
            ],
            "change_from_generation_0": {**change, "reading": _reading(change)},
            "per_seed": runs[arm],
        }
    last = {arm: curves[arm][:, -1].tolist() for arm in ARMS}
    diff = _iv(np.subtract(last["lineage"], last["fixed"]).tolist())
    if len(seeds) > 1:
        diff["p_value"] = paired_test(last["lineage"], last["fixed"]).p_value
    diff["reading"] = (
        "one seed: no interval"
        if diff["ci95"] is None
        else "no difference detected"
        if diff["ci95"][0] <= 0.0 <= diff["ci95"][1]
        else ("lineage worse" if diff["estimate"] > 0 else "lineage better")
    )
    result["lineage_minus_fixed_last_generation"] = diff
    result["benchmark"] = {
        "command": "python benchmarks/lineage.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": seeds,
        "population": population,
        "generations": generations,
        "reevaluate": args.reevaluate,
        "parent_steps": 10 if args.smoke else args.parent_steps,
        "scale": "quick (EvolveConfig.small: tiny offspring, 8k-65k token budgets)",
        "wall_seconds": time.perf_counter() - t0,
        "git_commit": commit.strip() or None,
    }
    print(f"original parent: {result['parent_test_bits_per_byte']:.4f} test bits/byte")
    for arm in ARMS:
        a = result["arms"][arm]
        cells = []
        for g in a["generations"]:
            x = g["test_bits_per_byte"]
            ci = f" [{x['ci95'][0]:.3f}, {x['ci95'][1]:.3f}]" if x["ci95"] else ""
            cells.append(f"g{g['generation']} {x['estimate']:.3f}{ci}")
        ch = a["change_from_generation_0"]
        ci = f" [{ch['ci95'][0]:+.3f}, {ch['ci95'][1]:+.3f}]" if ch["ci95"] else ""
        print(f"{arm:8} " + "; ".join(cells))
        print(f"{'':8} change {ch['estimate']:+.3f}{ci}: {ch['reading']}")
    ci = f" [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]" if diff["ci95"] else ""
    print(f"lineage − fixed, last generation: {diff['estimate']:+.3f}{ci} bits/byte: {diff['reading']}")
    print(f"wall time {result['benchmark']['wall_seconds']:.0f} s")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
