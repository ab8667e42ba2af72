"""Evolution benchmarks: does (μ+λ) beat random search and hand-set policies; what workers buy.

Usage:
  python benchmarks/evolve_bench.py compare --seeds 0 1 2 --population 4 --generations 4 --out DIR
  python benchmarks/evolve_bench.py scaling --population 4 --out DIR
Runs on the bundled corpus (no /work/shared needed). Prints a table and writes DIR/<part>.json.

compare: one tiny parent (trained once), then per seed: an ES run and a random-search run with
the same number of evaluations (same seed: the same first generation), and the hand-set policies
(one per score rule, document level, keep 0.5, hard target, mid budget) evaluated in the same
context and seed as the last generation. Because the best of many noisy evaluations is biased
upwards, the best genome of each arm is then re-evaluated on `--recheck` fresh seeds, and those
unbiased fitnesses are what the comparison reports.

scaling: the wall time of one generation (population genomes, generation 0) with 1 and 2
workers on the local process pool and on Ray, and the ratio 1-worker / 2-worker.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bitlens.data import bundled_corpus_bytes
from bitlens.evolve.evaluators import PolicyEvaluator
from bitlens.evolve.genome import policy_gene_space
from bitlens.evolve.run import evaluation_seed, run_evolution
from bitlens.offspring.select import SCORES
from bitlens.train import train_run


def hand_set_policies(budget_tokens: int) -> list[dict]:
    return [dict(score=s, level="document", keep_ratio=0.5, synthetic_share=0.0, temperature=1.0,
                 top_p=1.0, target="hard", offspring_preset="tiny", budget_tokens=budget_tokens)
            for s in SCORES]


def parent(out: Path, corpus: bytes, steps: int) -> str:
    d = out / "parent"
    if not (d / "result.json").exists():
        train_run(corpus, d, preset="tiny", steps=steps, seed=0, resume=(d / "config.json").exists())
    return str(d)


def compare(args) -> dict:
    corpus = bundled_corpus_bytes()
    out = Path(args.out)
    parent_dir = parent(out, corpus, args.parent_steps)
    space = policy_gene_space(quick=True)
    budget = int(np.sqrt(space.genes[-1].low * space.genes[-1].high))
    rows = []
    for seed in args.seeds:
        ev = PolicyEvaluator(corpus, parent_dir, quick=True, context_seed=seed, space=space)
        arms = {}
        t0 = time.perf_counter()
        for strategy in ("es", "random"):
            r = run_evolution(out / f"{strategy}-s{seed}", backend="local", workers=args.workers,
                              population=args.population, generations=args.generations, seed=seed,
                              strategy=strategy, evaluator=ev, resume=True, save_weights=False)
            arms[strategy] = {"best_found_fitness": r["best"]["fitness"], "genome": r["best"]["genome"],
                              "last_generation_best": r["generations"][-1]["best_fitness"],
                              "curve": [g["best_so_far_fitness"] for g in r["generations"]]}
        last_seed = evaluation_seed(seed, args.generations - 1)
        hand = [(g, ev(g, last_seed, None, None)["fitness"]) for g in hand_set_policies(budget)]
        best_hand = max(hand, key=lambda x: x[1])
        arms["hand"] = {"best_found_fitness": best_hand[1], "genome": best_hand[0],
                        "all": {g["score"]: f for g, f in hand}}
        fresh = [evaluation_seed(seed + 1000, k) for k in range(args.recheck)]
        for arm in arms.values():
            arm["recheck_fitness"] = [ev(arm["genome"], s, None, None)["fitness"] for s in fresh]
            arm["recheck_mean"] = float(np.mean(arm["recheck_fitness"]))
        rows.append({"seed": seed, "arms": arms, "seconds": time.perf_counter() - t0})
        print(f"seed {seed}: " + ", ".join(
            f"{k} found {a['best_found_fitness']:.3f} recheck {a['recheck_mean']:.3f}" for k, a in arms.items()),
            flush=True)
    summary = {k: {"best_found_mean": float(np.mean([r["arms"][k]["best_found_fitness"] for r in rows])),
                   "recheck_mean": float(np.mean([r["arms"][k]["recheck_mean"] for r in rows]))}
               for k in ("es", "random", "hand")}
    return {"rows": rows, "summary": summary, "evaluations_per_arm": args.population * args.generations,
            "fitness_unit": "bits/byte gained over a random-selection offspring per TFLOP"}


def scaling(args) -> dict:
    corpus = bundled_corpus_bytes()
    out = Path(args.out)
    parent_dir = parent(out, corpus, args.parent_steps)
    ev = PolicyEvaluator(corpus, parent_dir, quick=True, context_seed=0, space=policy_gene_space(quick=True))
    rows = []
    for backend in ("local", "ray"):
        for workers in (1, 2):
            t0 = time.perf_counter()
            r = run_evolution(out / f"scale-{backend}-{workers}", backend=backend, workers=workers,
                              population=args.population, generations=1, seed=0, evaluator=ev,
                              save_weights=False)
            seconds = time.perf_counter() - t0
            rows.append({"backend": backend, "workers": workers, "seconds": seconds,
                         "fitness": [e["fitness"] for e in r["evaluations"]]})
            print(f"{backend} × {workers}: {seconds:.1f} s", flush=True)
    ratios = {b: next(r["seconds"] for r in rows if r["backend"] == b and r["workers"] == 1)
              / next(r["seconds"] for r in rows if r["backend"] == b and r["workers"] == 2)
              for b in ("local", "ray")}
    same = all(r["fitness"] == rows[0]["fitness"] for r in rows)
    return {"rows": rows, "speedup_2_workers": ratios, "identical_results": same}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=("compare", "scaling"))
    p.add_argument("--out", default="runs/evolve-bench")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--population", type=int, default=4)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--recheck", type=int, default=2)
    p.add_argument("--parent-steps", type=int, default=200)
    args = p.parse_args()
    result = compare(args) if args.part == "compare" else scaling(args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{args.part}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
