"""Evolution benchmarks: does (μ+λ) beat random search and hand-set policies; what workers buy.

Usage:
  python benchmarks/evolve_bench.py compare --seeds 0 1 2 --population 8 --generations 10 --out DIR
  python benchmarks/evolve_bench.py compare --seeds 1 --out DIR1   # one seed per process, then:
  python benchmarks/evolve_bench.py merge DIR0/compare.json DIR1/compare.json --out DIR
  python benchmarks/evolve_bench.py scaling --population 8 --out DIR
Runs on the bundled corpus (no /work/shared needed). Prints a table and writes DIR/<part>.json.
The three-arm study (ES, random, Optuna TPE; 10 seeds; paired tests) is benchmarks/evolve_study.py.

compare: one tiny parent (trained once), then per seed: an ES run and a random-search run (quick
scale, fitness gain-at-budget: held-out bits/byte gained over random selection, every genome at
the middle token budget) with the same number of evaluations (same seed: the same first
generation; both re-score their survivors each generation), and the hand-set policies (one per
score rule, document level, keep 0.5, hard target, the same budget). Because the best of many
noisy evaluations is biased upwards, each arm's winner (best mean over its evaluations), and every
hand-set policy, is scored again on `--recheck` fresh seeds on the test split (evolution itself
scores on validation), and those unbiased fitnesses are what the comparison reports (the best
hand-set policy is chosen as the best on validation over those seeds, then re-checked on test).

scaling: the wall time of one generation (population genomes, generation 0) with 1 and 2
workers on the local process pool and on Ray, and the ratio 1-worker / 2-worker.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bitlens.data import bundled_corpus_bytes
from bitlens.evolve.evaluators import PolicyEvaluator
from bitlens.evolve.genome import middle_budget_tokens, policy_gene_space
from bitlens.evolve.run import EvolveConfig, evaluation_seed, run_evolution
from bitlens.offspring.policy import ContextConfig
from bitlens.offspring.select import SCORES
from bitlens.train import train_run


def hand_set_policies(budget_tokens: int) -> list[dict]:
    return [
        dict(
            score=s,
            level="document",
            keep_ratio=0.5,
            synthetic_share=0.0,
            temperature=1.0,
            top_p=1.0,
            target="hard",
            offspring_preset="tiny",
            budget_tokens=budget_tokens,
        )
        for s in SCORES
    ]


def parent(out: Path, corpus: bytes, steps: int) -> str:
    d = out / "parent"
    if not (d / "result.json").exists():
        train_run(corpus, d, preset="tiny", steps=steps, seed=0, resume=(d / "config.json").exists())
    return str(d)


def _arm(run: dict) -> dict:
    """What one run contributes: its winner (best mean fitness) and the fitness curves."""
    winner = run["winner"]
    new = [
        [
            e["fitness"]
            for e in run["evaluations"]
            if e["generation"] == g["generation"] and e["kind"] == "new" and e["status"] == "done"
        ]
        for g in run["generations"]
    ]
    return {
        "last_generation_best": winner["fitness"]["estimate"],
        "genome": winner["genome"],
        "best_curve": [g["best_fitness"] for g in run["generations"]],
        "new_mean_curve": [float(np.mean(f)) if f else None for f in new],
        "evaluations": len(run["evaluations"]),
    }


def compare(args) -> dict:
    corpus = bundled_corpus_bytes()
    out = Path(args.out)
    parent_dir = parent(out, corpus, args.parent_steps)
    space = EvolveConfig(small=True).gene_space()  # gain-at-budget: the budget gene is pinned
    budget = middle_budget_tokens(quick=True)
    rows = []
    for seed in args.seeds:
        ev = PolicyEvaluator(
            corpus, parent_dir, context=replace(ContextConfig.quick(), seed=seed), space=space
        )
        arms = {}
        t0 = time.perf_counter()
        for strategy in ("es", "random"):
            cfg = EvolveConfig(
                population=args.population,
                generations=args.generations,
                seed=seed,
                strategy=strategy,
                reevaluate=not args.no_reevaluate,
                small=True,
            )
            r = run_evolution(
                out / f"{strategy}-s{seed}",
                cfg,
                backend="local",
                workers=args.workers,
                evaluator=ev,
                resume=True,
                save_weights=False,
            ).to_dict()
            arms[strategy] = _arm(r)
        # Unbiased comparison: every candidate scored again on the same fresh seeds, on the test
        # split, which nothing was chosen on (the best hand-set rule is chosen on validation).
        fresh = [evaluation_seed(seed + 1000, k) for k in range(args.recheck)]
        test_ev = replace(ev, split="test")
        hand = {
            g["score"]: [ev(g, s, None, None)["gain_bits_per_byte"] for s in fresh]
            for g in hand_set_policies(budget)
        }
        best_rule = max(hand, key=lambda k: np.mean(hand[k]))
        best_hand = next(g for g in hand_set_policies(budget) if g["score"] == best_rule)
        arms["hand"] = {
            "genome": best_hand,
            "recheck_fitness": [test_ev(best_hand, s, None, None)["gain_bits_per_byte"] for s in fresh],
            "all_validation": {k: float(np.mean(v)) for k, v in hand.items()},
        }
        for name in ("es", "random"):
            arms[name]["recheck_fitness"] = [
                test_ev(arms[name]["genome"], s, None, None)["gain_bits_per_byte"] for s in fresh
            ]
        for arm in arms.values():
            arm["recheck_mean"] = float(np.mean(arm["recheck_fitness"]))
        rows.append({"seed": seed, "arms": arms, "seconds": time.perf_counter() - t0})
        print(
            f"seed {seed}: " + ", ".join(f"{k} recheck {a['recheck_mean']:.3f}" for k, a in arms.items()),
            flush=True,
        )
    return {
        "rows": rows,
        "summary": summarise_compare(rows),
        "config": {
            "population": args.population,
            "generations": args.generations,
            "recheck_seeds": args.recheck,
            "reevaluate": not args.no_reevaluate,
            "parent_steps": args.parent_steps,
        },
        "fitness_unit": "bits/byte gained over a random-selection offspring at the same token budget",
    }


def summarise_compare(rows: list[dict]) -> dict:
    """Mean ± standard error over seeds of each arm's fresh-seed fitness, and ES − random per seed."""
    out = {}
    for k in ("es", "random", "hand"):
        per_seed = [r["arms"][k]["recheck_mean"] for r in rows]
        out[k] = {
            "recheck_mean": float(np.mean(per_seed)),
            "per_seed": per_seed,
            "stderr": (
                float(np.std(per_seed, ddof=1) / np.sqrt(len(per_seed))) if len(per_seed) > 1 else None
            ),
        }
    for k in ("es", "random"):
        found = [r["arms"][k]["last_generation_best"] for r in rows]
        out[k]["last_generation_best_mean"] = float(np.mean(found))
        # Does the search move its proposals to better policies? Mean fitness of the genomes it
        # proposes (not the re-scored survivors): last three generations minus the first.
        curves = [r["arms"][k]["new_mean_curve"] for r in rows]
        out[k]["proposal_gain_per_seed"] = [float(np.mean(c[-3:]) - c[0]) for c in curves]
    out["es_minus_random_per_seed"] = [
        r["arms"]["es"]["recheck_mean"] - r["arms"]["random"]["recheck_mean"] for r in rows
    ]
    out["es_minus_hand_per_seed"] = [
        r["arms"]["es"]["recheck_mean"] - r["arms"]["hand"]["recheck_mean"] for r in rows
    ]
    return out


def merge(args) -> dict:
    """Join compare.json files of runs made separately (e.g. one process per seed)."""
    parts = [json.loads(Path(f).read_text()) for f in args.files]
    rows = sorted((r for p in parts for r in p["rows"]), key=lambda r: r["seed"])
    return {**parts[0], "rows": rows, "summary": summarise_compare(rows)}


def scaling(args) -> dict:
    corpus = bundled_corpus_bytes()
    out = Path(args.out)
    parent_dir = parent(out, corpus, args.parent_steps)
    ev = PolicyEvaluator(
        corpus, parent_dir, context=ContextConfig.quick(), space=policy_gene_space(quick=True)
    )
    rows = []
    for backend in ("local", "ray"):
        for workers in (1, 2):
            t0 = time.perf_counter()
            cfg = EvolveConfig(population=args.population, generations=1, seed=0)
            r = run_evolution(
                out / f"scale-{backend}-{workers}",
                cfg,
                backend=backend,
                workers=workers,
                evaluator=ev,
                save_weights=False,
            ).to_dict()
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "backend": backend,
                    "workers": workers,
                    "seconds": seconds,
                    "fitness": [e["fitness"] for e in r["evaluations"]],
                }
            )
            print(f"{backend} × {workers}: {seconds:.1f} s", flush=True)
    ratios = {
        b: next(r["seconds"] for r in rows if r["backend"] == b and r["workers"] == 1)
        / next(r["seconds"] for r in rows if r["backend"] == b and r["workers"] == 2)
        for b in ("local", "ray")
    }
    same = all(r["fitness"] == rows[0]["fitness"] for r in rows)
    return {"rows": rows, "speedup_2_workers": ratios, "identical_results": same}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=("compare", "scaling", "merge"))
    p.add_argument("files", nargs="*", help="merge: the compare.json files to join")
    p.add_argument("--out", default="runs/evolve-bench")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--recheck", type=int, default=3, help="fresh seeds every final candidate is scored on")
    p.add_argument("--no-reevaluate", action="store_true", help="do not re-score survivors (the old ES)")
    p.add_argument("--parent-steps", type=int, default=200)
    args = p.parse_args()
    result = {"compare": compare, "scaling": scaling, "merge": merge}[args.part](args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{args.part}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
