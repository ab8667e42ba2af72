"""`run_evolution`: evolve data-curation policies, one generation at a time, into a run directory.

RUN_DIR holds `lineage.sqlite` (every genome, its parents, seed, fitness, cost, held-out
bits/byte, timings, weights pointer), `offspring/gGGG-iII/` (each offspring's config.json +
model.safetensors), `parent/` (the parent model, trained here unless one is given) and
`result.json`. Generation 0 is `population` random genomes; each later generation breeds
`population` children from the survivors (`strategy="es"`) or draws fresh random genomes
(`strategy="random"`, the control with the same number of evaluations). Fitness is whatever the
evaluator returns (higher is better): for policies, the offspring's held-out bits/byte gain per
FLOP defined by `bitlens.offspring.policy.evaluate_policy`.

All evaluations of one generation share one training seed (common random numbers: genomes are
compared on the same initialisation and batches). With `reevaluate` (the default), each later
generation also scores the previous survivors again on its seed, and selection uses only this
generation's scores, so a survivor must keep earning its place instead of living on one lucky
evaluation. Random search re-evaluates its survivors the same way, so both strategies spend the same
number of evaluations. Lineage mode: the best offspring of generation
g becomes the parent (the model that scores and generates data) of generation g+1.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bitlens.errors import BitlensError
from bitlens.evolve.backends import Backend, make_backend
from bitlens.evolve.evaluators import EvalOutcome, EvalTask, Evaluator, PolicyEvaluator
from bitlens.evolve.genome import policy_gene_space
from bitlens.evolve.lineage import Evaluation, LineageStore
from bitlens.evolve.strategy import (STRATEGIES, ESConfig, generation_rng, reevaluations, sample_population,
                                     select_survivors)
from bitlens.progress import progress_bar
from bitlens.runs import CONFIG_FILE, WEIGHTS_FILE, atomic_write_json

STORE_FILE = "lineage.sqlite"
PARENT_PRESET = "tiny"


@dataclass(frozen=True)
class EvolveConfig:
    """The settings that define a run (a resume must use the same ones, except generations)."""

    population: int
    generations: int
    seed: int = 0
    strategy: str = "es"
    lineage: bool = False
    tournament_size: int = 2
    crossover_rate: float = 0.5
    quick: bool = False
    reevaluate: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def default_sizes(quick: bool) -> tuple[int, int]:
    """(population, generations): quick fits the demo's ~20 s share; full is 8 × 6 = 48 offspring."""
    return (3, 2) if quick else (8, 6)


def evaluation_seed(seed: int, generation: int) -> int:
    return int(np.random.SeedSequence([seed, generation, 1]).generate_state(1)[0] % 2**31)


def _prepare_parent(out: Path, corpus: bytes, seed: int, quick: bool, progress: bool) -> str:
    """Train the run's parent model into RUN_DIR/parent (resuming a half-trained one)."""
    from bitlens.train import train_run

    parent = out / "parent"
    if not (parent / WEIGHTS_FILE).exists() or not (parent / "result.json").exists():
        train_run(corpus, parent, preset=PARENT_PRESET, steps=60 if quick else None, seed=seed,
                  resume=(parent / CONFIG_FILE).exists(), progress=progress, corpus_name="evolve")
    return str(parent)


def _check_resume(store: LineageStore, cfg: EvolveConfig, genes: list[str]) -> None:
    saved = store.get_meta("config")
    if saved is None:
        store.set_meta("config", cfg.to_dict())
        store.set_meta("genes", genes)
        return
    fixed = {k: v for k, v in cfg.to_dict().items() if k != "generations"}
    saved = {"reevaluate": False, **saved}  # runs stored before re-evaluation existed
    diff = [k for k, v in fixed.items() if saved.get(k) != v]
    if diff or store.get_meta("genes") != genes:
        what = ", ".join(f"{k}={saved.get(k)!r} (now {fixed[k]!r})" for k in diff) or "gene space"
        raise BitlensError(f"cannot resume: the run in {store.path.parent} was started with {what}")
    if cfg.generations != saved.get("generations"):
        store.set_meta("config", cfg.to_dict())


def run_evolution(
    out_dir: str | Path,
    corpus: bytes | None = None,
    backend: str = "local",
    population: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    quick: bool = False,
    resume: bool = False,
    progress: bool = False,
    workers: int = 1,
    strategy: str = "es",
    lineage: bool = False,
    budget_flops: float | None = None,
    time_limit: float | None = None,
    reevaluate: bool = True,
    ray_address: str | None = None,
    parent_dir: str | None = None,
    evaluator: Evaluator | None = None,
    save_weights: bool = True,
) -> dict[str, Any]:
    """Evolve curation policies; returns (and writes to RUN_DIR/result.json) the run's summary.

    reevaluate: score the survivors again in every later generation (see the module docstring).
    budget_flops caps the FLOPs of all finished evaluations (offspring training + data costs, as
    the evaluator counts them); time_limit caps the run's wall-clock seconds, summed over resumes.
    Both stop the run between evaluations; `--resume` with a larger cap continues it.
    Keys: generations [{generation, best_fitness, mean_fitness, best_genome, ...}],
    pareto [{heldout_bits_per_byte, flops, genome, ...}], evaluations, best, totals, stopped.
    """
    d_pop, d_gen = default_sizes(quick)
    cfg = EvolveConfig(population=population or d_pop, generations=generations or d_gen, seed=seed,
                       strategy=strategy, lineage=lineage, quick=quick, reevaluate=reevaluate)
    if cfg.population < 1 or cfg.generations < 1:
        raise BitlensError("population and generations must be at least 1")
    if strategy not in STRATEGIES:
        raise BitlensError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    out = Path(out_dir)
    store_path = out / STORE_FILE
    if store_path.exists() and not resume:
        raise BitlensError(f"{out} already holds an evolution run; pass --resume to continue it")
    if evaluator is None:
        from bitlens.data import load_corpus

        corpus = load_corpus(None) if corpus is None else corpus
        parent_dir = parent_dir or _prepare_parent(out, corpus, seed, quick, progress)
        evaluator = PolicyEvaluator(corpus, parent_dir, quick=quick, context_seed=seed,
                                    space=policy_gene_space(quick))
    space = evaluator.space
    es = ESConfig(mu=cfg.population, lam=cfg.population, tournament_size=cfg.tournament_size,
                  crossover_rate=cfg.crossover_rate)
    with LineageStore(store_path) as store:
        _check_resume(store, cfg, list(space.names))
        wall_before, t0 = float(store.get_meta("wall_seconds", 0.0)), time.perf_counter()

        def elapsed() -> float:
            return wall_before + time.perf_counter() - t0

        def stop_reason() -> str | None:
            if budget_flops is not None and store.totals()["flops"] >= budget_flops:
                return "flops budget reached"
            if time_limit is not None and elapsed() >= time_limit:
                return "time limit reached"
            return None

        stopped = None
        engine = make_backend(backend, evaluator, workers=workers, address=ray_address)
        try:
            for g in range(cfg.generations):
                if store.is_complete(g):
                    continue
                previous = store.get(store.survivors(g - 1)) if g > 0 else []
                if not store.has_generation(g):
                    if (stopped := stop_reason()) is not None:
                        break
                    rng = generation_rng(cfg.seed, g)
                    if g == 0:
                        proposals = sample_population(space, cfg.population, rng)
                    else:
                        proposals = STRATEGIES[strategy](space, [e.scored() for e in previous], es, rng)
                        if cfg.reevaluate:
                            proposals += reevaluations([e.scored() for e in previous])
                    parent_model = _lineage_parent(store, g) if lineage else None
                    seeds = [evaluation_seed(cfg.seed, g)] * len(proposals)
                    store.add_generation(g, proposals, seeds, parent_model)
                _evaluate_generation(store, engine, g, out, save_weights, progress, elapsed, stop_reason)
                if store.evaluations(g, "pending"):
                    stopped = stop_reason() or "interrupted"
                    break
                pool = store.evaluations(g, "done") if cfg.reevaluate else previous + store.evaluations(g, "done")
                candidates = [e.scored() for e in pool]
                store.complete_generation(g, [s.id for s in select_survivors(candidates, cfg.population)])
        finally:
            engine.close()
            store.set_meta("wall_seconds", elapsed())
        result = summarise(store, cfg, stopped, backend=backend, workers=workers)
    atomic_write_json(out / "result.json", result)
    return result


def _lineage_parent(store: LineageStore, generation: int) -> str | None:
    """The best saved offspring of the previous generation (else the previous generation's parent)."""
    done = [e for e in store.evaluations(generation - 1, "done") if e.weights]
    if not done:
        return store.generation_parent_model(generation - 1)
    return max(done, key=lambda e: (e.fitness, -e.id)).weights


def _evaluate_generation(store: LineageStore, engine: Backend, g: int, out: Path, save_weights: bool,
                         progress: bool, elapsed: Callable[[], float],
                         stop_reason: Callable[[], str | None]) -> None:
    """Evaluate generation g's pending genomes, storing each outcome the moment it arrives."""
    rows = store.evaluations(g)
    pending = [e for e in rows if e.status == "pending"]
    tasks = [EvalTask(e.id, e.genome, e.seed, e.parent_model,
                      str(out / "offspring" / f"g{g:03d}-i{e.idx:03d}") if save_weights else None)
             for e in pending]
    finished = [e.fitness for e in rows if e.status == "done"]
    with progress_bar(len(rows), f"generation {g}", enabled=progress) as bar:
        bar.advance(len(rows) - len(pending))

        def on_result(o: EvalOutcome) -> None:
            store.record(o.id, o.status, o.metrics, o.error, o.seconds, o.weights)
            store.set_meta("wall_seconds", elapsed())
            if o.status == "done":
                finished.append(o.metrics["fitness"])
            best = f"best fitness {max(finished):.4g}" if finished else "no success yet"
            bar.advance(1, status=best)

        engine.evaluate(tasks, on_result, lambda: stop_reason() is not None)


def pareto_front(evals: list[Evaluation]) -> list[Evaluation]:
    """Evaluations not dominated in (held-out bits/byte, FLOPs), both lower-is-better."""
    pts = sorted(evals, key=lambda e: (e.flops, e.heldout_bits_per_byte, e.id))
    front, best_bpb = [], float("inf")
    for e in pts:
        if e.heldout_bits_per_byte < best_bpb:
            front.append(e)
            best_bpb = e.heldout_bits_per_byte
    return front


def summarise(store: LineageStore, cfg: EvolveConfig, stopped: str | None, **extra: Any) -> dict[str, Any]:
    """The run's JSON summary, rebuilt from the lineage store alone."""
    evals = store.evaluations()
    done = [e for e in evals if e.status == "done"]
    gens = []
    for g in sorted({e.generation for e in evals}):
        rows = [e for e in evals if e.generation == g]
        ok = [e for e in rows if e.status == "done"]
        best = max(ok, key=lambda e: (e.fitness, -e.id)) if ok else None
        survivors = store.get(store.survivors(g))
        gens.append({
            "generation": g,
            "best_fitness": best.fitness if best else None,
            "mean_fitness": float(np.mean([e.fitness for e in ok])) if ok else None,
            "best_genome": best.genome if best else None,
            "best_heldout_bits_per_byte": best.heldout_bits_per_byte if best else None,
            "best_so_far_fitness": survivors[0].fitness if survivors else None,
            "evaluations": len(rows),
            "reevaluations": sum(e.kind == "reevaluation" for e in rows),
            "failed": sum(e.status == "failed" for e in rows),
            "pending": sum(e.status == "pending" for e in rows),
            "flops": float(sum(e.flops for e in ok)),
            "parent_model": store.generation_parent_model(g),
            "complete": store.is_complete(g),
        })
    best = max(done, key=lambda e: (e.fitness, -e.id)) if done else None
    return {
        "config": {**cfg.to_dict(), **extra},
        "stopped": stopped,
        "generations": gens,
        "pareto": [{"heldout_bits_per_byte": e.heldout_bits_per_byte, "flops": e.flops,
                    "genome": e.genome, "id": e.id, "fitness": e.fitness, "tokens": e.tokens}
                   for e in pareto_front(done)],
        "best": best.to_dict() if best else None,
        "evaluations": [e.to_dict() for e in evals],
        "totals": {**store.totals(), "wall_seconds": float(store.get_meta("wall_seconds", 0.0))},
        "lineage_store": str(store.path),
    }
