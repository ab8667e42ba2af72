"""The evolution study: does the (μ+λ) ES, or Optuna's TPE, beat random search at equal evaluations?

Usage:
  python benchmarks/evolve_study.py --seeds 0 1 2 3 4 5 6 7 8 9 --population 3 --generations 3 \\
      --out runs/evolve-study --json benchmarks/results/evolve-study.json

One tiny parent is trained once. Then, for every seed: the arms `es`, `random` and `optuna-tpe`
run `bitlens.evolve.run_evolution` with the same config (quick scale, fitness gain-at-budget: the
held-out gain in bits/byte over a random-selection offspring, every genome at the same token
budget), so they spend the same evaluations and share the first (random) generation. Selection reads
the validation split only; survivors are ranked on the mean of all their evaluations. At the end,
each arm's winner (its first survivor) is scored ONCE on the test split, on a seed no search used,
the same seed for every arm of that study seed. The arms are compared on those test gains by paired
t-tests across seeds (Student's t interval of the mean difference), Holm-adjusted over the three
pairs of arms.

Runs in one process (the serial backend); an evaluation already made in this process (the shared
first generation, a winner two arms share) is looked up, not redone: evaluations are deterministic,
so the numbers are the same. Writes every run directory under --out (a rerun resumes them) and
the summary JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bitlens.data import bundled_corpus_bytes
from bitlens.evolve.evaluators import PolicyEvaluator
from bitlens.evolve.genome import GeneSpace, Genome
from bitlens.evolve.run import EvolveConfig, evaluation_seed, run_evolution
from bitlens.evolve.strategy import STRATEGIES, genome_key
from bitlens.runs import atomic_write_json
from bitlens.stats import holm, paired_test, t_interval
from bitlens.train import train_run

ARMS = ("es", "random", "optuna-tpe")
TEST_SEED_OFFSET = 1000  # the test re-score's seed: evaluation_seed(seed + offset, 0), unused by search


@dataclass
class Memo:
    """An evaluator that remembers what it already evaluated (same genome, seed and parent)."""

    inner: PolicyEvaluator
    cache: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    hits: int = 0

    @property
    def space(self) -> GeneSpace:
        return self.inner.space

    def __call__(
        self, genome: Genome, seed: int, parent_model: str | None, weights_dir: str | None
    ) -> dict[str, Any]:
        key = (genome_key(genome), seed, parent_model)
        if key in self.cache:
            self.hits += 1
        else:
            self.cache[key] = self.inner(genome, seed, parent_model, weights_dir)
        return self.cache[key]


def parent(out: Path, corpus: bytes, steps: int) -> str:
    d = out / "parent"
    if not (d / "result.json").exists():
        train_run(corpus, d, preset="tiny", steps=steps, seed=0, resume=(d / "config.json").exists())
    return str(d)


def run_seed(args: argparse.Namespace, corpus: bytes, parent_dir: str, seed: int) -> dict[str, Any]:
    """Every arm on one seed, and each winner's single test-split score."""
    base = EvolveConfig(
        population=args.population,
        generations=args.generations,
        seed=seed,
        small=True,
        budget_tokens=args.budget_tokens,
    )
    ev = PolicyEvaluator(corpus, parent_dir, context=base.context(), space=base.gene_space())
    memo, test_ev = Memo(ev), Memo(replace(ev, split="test"))
    test_seed = evaluation_seed(seed + TEST_SEED_OFFSET, 0)
    arms: dict[str, Any] = {}
    for arm in ARMS:
        t0 = time.perf_counter()
        r = run_evolution(
            Path(args.out) / f"{arm}-s{seed}",
            replace(base, strategy=arm),
            backend="serial",
            evaluator=memo,
            resume=True,
            save_weights=False,
        ).to_dict()
        w = r["winner"]
        test = test_ev(w["genome"], test_seed, None, None)
        arms[arm] = {
            "winner_genome": w["genome"],
            "winner_validation_fitness": w["fitness"],  # mean over its evaluations, t interval
            "test_gain_bits_per_byte": test["gain_bits_per_byte"],
            "test_heldout_bits_per_byte": test["heldout_bits_per_byte"],
            "evaluations": len(r["evaluations"]),
            "failed": r["totals"]["failed"],
            "new_genome_mean_fitness": [
                _mean([e["fitness"] for e in r["evaluations"] if e["generation"] == g and e["kind"] == "new"])
                for g in range(args.generations)
            ],
            "seconds": time.perf_counter() - t0,
        }
    print(
        f"seed {seed}: "
        + ", ".join(f"{a} test gain {arms[a]['test_gain_bits_per_byte']:+.4f}" for a in ARMS)
        + f" ({memo.hits + test_ev.hits} evaluations looked up)",
        flush=True,
    )
    return {
        "seed": seed,
        "test_seed": test_seed,
        "arms": arms,
        "splits": ev.data_splits().to_dict(),
        "fitness": r["fitness"],
    }


def _mean(values: list[float | None]) -> float | None:
    x = [v for v in values if v is not None]
    return sum(x) / len(x) if x else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: the test gain's mean and t interval over seeds; per pair: the paired t-test."""
    gains = {a: [r["arms"][a]["test_gain_bits_per_byte"] for r in rows] for a in ARMS}
    arms = {a: t_interval(g).to_dict() for a, g in gains.items()}
    pairs = [("es", "random"), ("optuna-tpe", "random"), ("es", "optuna-tpe")]
    tests = []
    for a, b in pairs:
        diff = [x - y for x, y in zip(gains[a], gains[b], strict=True)]
        tests.append(
            {
                "a": a,
                "b": b,
                **t_interval(diff).to_dict(),  # mean of a − b over seeds, Student's t interval
                "p_value": paired_test(gains[a], gains[b], test="t").p_value,
            }
        )
    for t, p in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
        t["p_holm"] = float(p)
    return {"test_gain_bits_per_byte": arms, "paired": tests, "statements": [_statement(t) for t in tests]}


def _statement(t: dict[str, Any]) -> str:
    names = {"es": "evolution (ES)", "random": "random search", "optuna-tpe": "Optuna TPE"}
    lo, hi = t["ci95"]
    verdict = "beats" if t["p_holm"] < 0.05 and t["estimate"] > 0 else "does not beat"
    if t["p_holm"] < 0.05 and t["estimate"] < 0:
        verdict = "is beaten by"
    return (
        f"{names[t['a']]} {verdict} {names[t['b']]}: Δ = {t['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}] "
        f"bits/byte held-out test gain, p = {t['p_value']:.3g} (Holm {t['p_holm']:.3g}), "
        f"n = {t['n_seeds']} seeds"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/evolve-study")
    p.add_argument("--json", default="benchmarks/results/evolve-study.json")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--population", type=int, default=3)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--budget-tokens", type=int, default=16_384, help="the pinned token budget")
    p.add_argument("--parent-steps", type=int, default=100)
    args = p.parse_args()
    assert set(ARMS) <= set(STRATEGIES)
    t0 = time.perf_counter()
    corpus = bundled_corpus_bytes()
    out = Path(args.out)
    parent_dir = parent(out, corpus, args.parent_steps)
    rows = [run_seed(args, corpus, parent_dir, s) for s in args.seeds]
    summary = summarise(rows)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "seeds": args.seeds,
        "arms": list(ARMS),
        "config": {
            "population": args.population,
            "generations": args.generations,
            "evaluations_per_arm": args.population * (2 * args.generations - 1),
            "budget_tokens": args.budget_tokens,
            "parent_steps": args.parent_steps,
            "scale": "quick (small=True, ContextConfig.quick())",
            "backend": "serial (one process)",
            "selection_split": "validation",
            "final_split": "test (each winner scored once, seed evaluation_seed(seed + 1000, 0))",
        },
        "fitness": rows[0]["fitness"],
        "splits": rows[0]["splits"],
        "unit": "bits/byte: held-out gain over a random-selection offspring at the same token budget",
        "summary": summary,
        "rows": rows,
        "wall_seconds": time.perf_counter() - t0,
    }
    atomic_write_json(Path(args.json), result)
    print(json.dumps({k: result[k] for k in ("summary", "wall_seconds")}, indent=2))
    for line in summary["statements"]:
        print(line)


if __name__ == "__main__":
    main()
