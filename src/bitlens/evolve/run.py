"""`run_evolution`: evolve data-curation policies, one generation at a time, into a run directory.

RUN_DIR holds `lineage.sqlite` (every genome, its parents, seed, fitness, cost, held-out
bits/byte, timings, weights pointer), `offspring/gGGG-iII/` (each offspring's config.json +
model.safetensors), `parent/` (the parent model, trained here unless one is given) and
`result.json`. Generation 0 is `population` random genomes; each later generation asks the strategy
(`STRATEGIES`: `es` breeds children from the survivors, `random` draws fresh genomes, `optuna-tpe`
asks Optuna's TPE) for `population` new genomes, so every arm spends the same evaluations.

Fitness (`bitlens.evolve.fitness`, bits/byte, higher is better) is the offspring's held-out gain
over a random-selection offspring, either at a fixed token budget (`gain-at-budget`: the budget
gene is pinned) or less λ·TFLOPs (`penalised`); result.json names the form and λ. It is scored on
the validation split (the test split is left for re-checking winners; result.json records the byte
ranges of every split).

All evaluations of one generation share one training seed (common random numbers). With
`reevaluate` (the default), each later generation also scores the previous survivors again on its
seed. Survivors are ranked on the mean fitness of all of a genome's evaluations (a re-evaluation
adds a sample; the store keeps every one), and result.json gives each survivor's n, and the
winner's mean with its 95% interval over its evaluations. Lineage mode: the best offspring of
generation g becomes the parent (the model that scores and generates data) of generation g+1.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bitlens.errors import BitlensError
from bitlens.evolve.backends import Backend, make_backend
from bitlens.evolve.evaluators import EvalOutcome, EvalTask, Evaluator, PolicyEvaluator
from bitlens.evolve.fitness import DEFAULT_COST_WEIGHT, Fitness
from bitlens.evolve.genome import GeneSpace, Integer, middle_budget_tokens, policy_gene_space
from bitlens.evolve.lineage import Evaluation, LineageStore
from bitlens.evolve.strategy import (
    STRATEGIES,
    ESConfig,
    Proposal,
    Scored,
    check_strategy,
    generation_rng,
    genome_key,
    genome_means,
    reevaluations,
    sample_population,
    select_survivors,
)
from bitlens.progress import progress_bar

if TYPE_CHECKING:
    from bitlens.offspring.policy import ContextConfig

STORE_FILE = "lineage.sqlite"
PARENT_PRESET = "tiny"
QUICK_PARENT_STEPS = 60  # a quick run's parent: enough to score and write something


@dataclass(frozen=True)
class EvolveConfig:
    """The settings that define a run (a resume must use the same ones, except generations).

    `small`: the quick scale: tiny offspring and small token budgets (`policy_gene_space(True)`),
    the quick offspring context, and a short parent when the run trains its own.
    `fitness`: "gain-at-budget" (every genome trains on `budget_tokens`, default the middle of the
    budget gene's range) or "penalised" (gain − `cost_weight` λ × TFLOPs; λ in bits/byte per TFLOP).
    """

    population: int = 8  # survivors μ = children λ per generation
    generations: int = 6  # including the random first one
    seed: int = 0
    strategy: str = "es"
    lineage: bool = False
    tournament_size: int = 2
    crossover_rate: float = 0.5
    small: bool = False
    reevaluate: bool = True
    fitness: str = "gain-at-budget"
    cost_weight: float = DEFAULT_COST_WEIGHT
    budget_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.population < 1 or self.generations < 1:
            raise BitlensError("population and generations must be at least 1")
        check_strategy(self.strategy)
        self.fitness_fn()  # checks the form and λ

    def fitness_fn(self) -> Fitness:
        return Fitness(self.fitness, self.cost_weight)

    def fixed_budget_tokens(self) -> int | None:
        """The token budget every genome trains on (gain-at-budget), None when it is searched."""
        if self.fitness != "gain-at-budget":
            return None
        return self.budget_tokens if self.budget_tokens is not None else middle_budget_tokens(self.small)

    @classmethod
    def quick(cls) -> EvolveConfig:
        """3 × 2 genomes of the small scale: fits the demo's ~20 s share."""
        return cls(population=3, generations=2, small=True)

    @classmethod
    def full(cls) -> EvolveConfig:
        """8 × 6 = 48 offspring of the full scale."""
        return cls()

    def to_dict(self) -> dict[str, Any]:
        """As stored in the lineage store and result.json (where `small` is called `quick`)."""
        return {("quick" if k == "small" else k): v for k, v in asdict(self).items()}

    def context(self) -> ContextConfig:
        """The offspring context every genome of the run is judged on."""
        from bitlens.offspring.policy import ContextConfig

        return replace(ContextConfig.quick() if self.small else ContextConfig.full(), seed=self.seed)

    def gene_space(self) -> GeneSpace:
        return policy_gene_space(self.small, self.fixed_budget_tokens())


def evaluation_seed(seed: int, generation: int) -> int:
    return int(np.random.SeedSequence([seed, generation, 1]).generate_state(1)[0] % 2**31)


def _prepare_parent(out: Path, corpus: bytes, cfg: EvolveConfig, progress: bool) -> str:
    """Train the run's parent model into RUN_DIR/parent (resuming a half-trained one)."""
    from bitlens.runs import CONFIG_FILE, WEIGHTS_FILE
    from bitlens.train import train_run

    parent = out / "parent"
    if not (parent / WEIGHTS_FILE).exists() or not (parent / "result.json").exists():
        train_run(
            corpus,
            parent,
            preset=PARENT_PRESET,
            steps=QUICK_PARENT_STEPS if cfg.small else None,
            seed=cfg.seed,
            resume=(parent / CONFIG_FILE).exists(),
            progress=progress,
            corpus_name="evolve",
        )
    return str(parent)


def _policy_evaluator(
    out: Path, cfg: EvolveConfig, corpus: bytes | None, parent_dir: str | None, progress: bool
) -> PolicyEvaluator:
    """The real evaluator: the given parent (or one trained into RUN_DIR/parent) on `corpus`."""
    from bitlens.data import load_corpus

    corpus = load_corpus(None) if corpus is None else corpus
    parent_dir = parent_dir or _prepare_parent(out, corpus, cfg, progress)
    return PolicyEvaluator(corpus, parent_dir, context=cfg.context(), space=cfg.gene_space())


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


class _Limits:
    """The run's wall clock (summed over resumes) and its caps, checked between evaluations."""

    def __init__(self, store: LineageStore, budget_flops: float | None, time_limit: float | None) -> None:
        self.store, self.budget_flops, self.time_limit = store, budget_flops, time_limit
        self._before, self._t0 = float(store.get_meta("wall_seconds", 0.0)), time.perf_counter()

    def elapsed(self) -> float:
        return self._before + time.perf_counter() - self._t0

    def stop_reason(self) -> str | None:
        if self.budget_flops is not None and self.store.totals()["flops"] >= self.budget_flops:
            return "flops budget reached"
        if self.time_limit is not None and self.elapsed() >= self.time_limit:
            return "time limit reached"
        return None


def run_evolution(
    out_dir: str | Path,
    config: EvolveConfig,
    corpus: bytes | None = None,
    backend: str = "local",
    workers: int = 1,
    resume: bool = False,
    progress: bool = False,
    budget_flops: float | None = None,
    time_limit: float | None = None,
    ray_address: str | None = None,
    parent_dir: str | None = None,
    evaluator: Evaluator | None = None,
    save_weights: bool = True,
) -> EvolveResult:
    """Evolve curation policies; returns (and writes to RUN_DIR/result.json) the run's summary.

    `config` defines the run; the rest says how to run it. budget_flops caps the FLOPs of all
    finished evaluations (offspring training + data costs, as the evaluator counts them);
    time_limit caps the run's wall-clock seconds, summed over resumes. Both stop the run between
    evaluations; `resume` with a larger cap continues it. `evaluator` replaces the policy
    evaluator (then `corpus` and `parent_dir` are not used, and its gene space is searched: build
    it with `config.gene_space()` to pin the budget of a gain-at-budget run).
    """
    out = Path(out_dir)
    store_path = out / STORE_FILE
    if store_path.exists() and not resume:
        raise BitlensError(f"{out} already holds an evolution run; pass --resume to continue it")
    ev = evaluator if evaluator is not None else _policy_evaluator(out, config, corpus, parent_dir, progress)
    with LineageStore(store_path) as store:
        _check_resume(store, config, list(ev.space.names))
        limits = _Limits(store, budget_flops, time_limit)
        engine = make_backend(backend, ev, workers=workers, address=ray_address)
        try:
            weights_root = out / "offspring" if save_weights else None
            stopped = _evolve(store, engine, ev.space, config, limits, weights_root, progress)
        finally:
            engine.close()
            store.set_meta("wall_seconds", limits.elapsed())
        result = summarise(store, config, stopped, ev, backend=backend, workers=workers)
    from bitlens.runs import atomic_write_json

    atomic_write_json(out / "result.json", result.to_dict())
    return result


def _evolve(
    store: LineageStore,
    engine: Backend,
    space: GeneSpace,
    cfg: EvolveConfig,
    limits: _Limits,
    weights_root: Path | None,
    progress: bool,
) -> str | None:
    """Run (or finish) every generation; returns why the run stopped early, or None."""
    for g in range(cfg.generations):
        if store.is_complete(g):
            continue
        previous = _survivors(store, g - 1)
        if not store.has_generation(g):
            if (stopped := limits.stop_reason()) is not None:
                return stopped
            parent_model = _lineage_parent(store, g) if cfg.lineage else None
            history = [e.scored() for e in store.evaluations(status="done") if e.generation < g]
            proposals = _propose(space, cfg, g, previous, history)
            store.add_generation(g, proposals, [evaluation_seed(cfg.seed, g)] * len(proposals), parent_model)
        _evaluate_generation(store, engine, g, weights_root, progress, limits, cfg.fitness_fn())
        if store.evaluations(g, "pending"):
            return limits.stop_reason() or "interrupted"
        means = _means_through(store, g)
        keys = {genome_key(s.genome) for s in previous}
        keys |= {genome_key(e.genome) for e in store.evaluations(g, "done")}
        survivors = select_survivors([means[k] for k in sorted(keys) if k in means], cfg.population)
        store.complete_generation(g, [s.id for s in survivors])
    return None


def _means_through(store: LineageStore, generation: int) -> dict[str, Scored]:
    """Every genome's mean fitness over all its finished evaluations up to `generation`."""
    done = store.evaluations(status="done")
    return genome_means([e.scored() for e in done if e.generation <= generation])


def _survivors(store: LineageStore, generation: int) -> list[Scored]:
    """The survivors of `generation`, best first, with their mean fitness and n as selected."""
    if generation < 0:
        return []
    means = _means_through(store, generation)
    return [means[genome_key(e.genome)] for e in store.get(store.survivors(generation))]


def _propose(
    space: GeneSpace, cfg: EvolveConfig, g: int, survivors: list[Scored], history: list[Scored]
) -> list[Proposal]:
    """Generation g's genomes: random at first, then the strategy's (and with `reevaluate`, the
    previous survivors again); a pure function of (seed, g, stored evaluations)."""
    rng = generation_rng(cfg.seed, g)
    if g == 0:
        return sample_population(space, cfg.population, rng)
    es = ESConfig(
        mu=cfg.population,
        lam=cfg.population,
        tournament_size=cfg.tournament_size,
        crossover_rate=cfg.crossover_rate,
    )
    proposals = STRATEGIES[cfg.strategy](space, survivors, history, es, rng)
    return proposals + reevaluations(survivors) if cfg.reevaluate else proposals


def _lineage_parent(store: LineageStore, generation: int) -> str | None:
    """The best saved offspring of the previous generation (else the previous generation's parent)."""
    best = store.best_saved(generation - 1)
    return best.weights if best else store.generation_parent_model(generation - 1)


def _evaluate_generation(
    store: LineageStore,
    engine: Backend,
    g: int,
    weights_root: Path | None,
    progress: bool,
    limits: _Limits,
    fitness: Fitness,
) -> None:
    """Evaluate generation g's pending genomes, storing each outcome (with its fitness) the moment
    it arrives."""
    rows = store.evaluations(g)
    pending = [e for e in rows if e.status == "pending"]
    tasks = [
        EvalTask(
            e.id,
            e.genome,
            e.seed,
            e.parent_model,
            str(weights_root / f"g{g:03d}-i{e.idx:03d}") if weights_root else None,
        )
        for e in pending
    ]
    finished = [e.fitness for e in rows if e.status == "done" and e.fitness is not None]
    with progress_bar(len(rows), f"generation {g}", enabled=progress) as bar:
        bar.advance(len(rows) - len(pending))

        def on_result(o: EvalOutcome) -> None:
            if o.status == "done" and o.metrics is not None:
                if "gain_bits_per_byte" not in o.metrics:
                    o = replace(
                        o, status="failed", metrics=None, error="evaluator returned no gain_bits_per_byte"
                    )
                else:
                    o = replace(o, metrics={**o.metrics, "fitness": fitness(o.metrics)})
            store.record(o.id, o.status, o.metrics, o.error, o.seconds, o.weights)
            store.set_meta("wall_seconds", limits.elapsed())
            if o.status == "done" and o.metrics is not None:
                finished.append(o.metrics["fitness"])
            best = f"best fitness {max(finished):.4g}" if finished else "no success yet"
            bar.advance(1, status=best)

        engine.evaluate(tasks, on_result, lambda: limits.stop_reason() is not None)


def pareto_front(evals: list[Evaluation]) -> list[Evaluation]:
    """Evaluations not dominated in (held-out bits/byte, FLOPs), both lower-is-better."""
    pts = sorted(evals, key=lambda e: (e.flops, e.heldout_bits_per_byte, e.id))
    front, best_bpb = [], float("inf")
    for e in pts:
        if e.heldout_bits_per_byte is not None and e.heldout_bits_per_byte < best_bpb:
            front.append(e)
            best_bpb = e.heldout_bits_per_byte
    return front


@dataclass(frozen=True)
class GenerationSummary:
    """One generation: fitness (higher is better), its best genome's held-out bits/byte, FLOPs."""

    generation: int
    best_fitness: float | None
    mean_fitness: float | None
    best_genome: dict[str, Any] | None
    best_heldout_bits_per_byte: float | None
    best_so_far_fitness: float | None  # the best survivor after this generation
    evaluations: int
    reevaluations: int
    failed: int
    pending: int
    flops: float
    parent_model: str | None
    complete: bool
    best_so_far_n: int | None = None  # evaluations averaged into best_so_far_fitness
    survivors: list[dict[str, Any]] = field(default_factory=list)  # id, mean_fitness, n, best first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvolveResult:
    """A run's summary, rebuilt from the lineage store alone (`to_dict()` is result.json)."""

    config: dict[str, Any]  # EvolveConfig.to_dict() and the backend and worker count
    stopped: str | None
    generations: list[GenerationSummary]
    pareto: list[Evaluation]  # not dominated in (held-out bits/byte, FLOPs)
    best: Evaluation | None
    evaluations: list[Evaluation]
    totals: dict[str, float]  # flops, tokens, done, failed, wall_seconds
    lineage_store: str
    splits: dict[str, dict[str, int]] | None = None  # corpus byte ranges (policy evaluator)
    heldout_split: str | None = None  # where fitness was scored (validation while searching)
    fitness: dict[str, Any] | None = None  # the form, its formula, unit and constants
    winner: dict[str, Any] | None = None  # the best survivor on its mean, with 95% intervals

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "fitness": self.fitness,
            "winner": self.winner,
            "stopped": self.stopped,
            "generations": [g.to_dict() for g in self.generations],
            "pareto": [
                {
                    "heldout_bits_per_byte": e.heldout_bits_per_byte,
                    "flops": e.flops,
                    "genome": e.genome,
                    "id": e.id,
                    "fitness": e.fitness,
                    "tokens": e.tokens,
                }
                for e in self.pareto
            ],
            "best": self.best.to_dict() if self.best else None,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "totals": self.totals,
            "lineage_store": self.lineage_store,
            "splits": self.splits,
            "heldout_split": self.heldout_split,
        }


def _best(evals: list[Evaluation]) -> Evaluation | None:
    return max(evals, key=lambda e: (e.fitness, -e.id)) if evals else None


def _generation_summary(store: LineageStore, g: int, rows: list[Evaluation]) -> GenerationSummary:
    ok = [e for e in rows if e.status == "done"]
    best = _best(ok)
    survivors = _survivors(store, g)
    return GenerationSummary(
        generation=g,
        best_fitness=best.fitness if best else None,
        mean_fitness=float(np.mean([e.fitness for e in ok])) if ok else None,
        best_genome=best.genome if best else None,
        best_heldout_bits_per_byte=best.heldout_bits_per_byte if best else None,
        best_so_far_fitness=survivors[0].fitness if survivors else None,
        evaluations=len(rows),
        reevaluations=sum(e.kind == "reevaluation" for e in rows),
        failed=sum(e.status == "failed" for e in rows),
        pending=sum(e.status == "pending" for e in rows),
        flops=float(sum(e.flops or 0.0 for e in ok)),
        parent_model=store.generation_parent_model(g),
        complete=store.is_complete(g),
        best_so_far_n=survivors[0].n if survivors else None,
        survivors=[{"id": v.id, "mean_fitness": v.fitness, "n": v.n} for v in survivors],
    )


def winner_summary(store: LineageStore) -> dict[str, Any] | None:
    """The first survivor of the last complete generation (the best mean fitness), with the mean
    and Student's t 95% interval of its fitness, gain and held-out bits/byte over its evaluations
    (one per distinct seed: a repeat on the same seed adds nothing), and its mean FLOPs."""
    from bitlens.stats import t_interval

    complete = [g for g in sorted({e.generation for e in store.evaluations()}) if store.is_complete(g)]
    top = _survivors(store, complete[-1])[:1] if complete else []
    if not top:
        return None
    key = genome_key(top[0].genome)
    runs = {e.seed: e for e in store.evaluations(status="done") if genome_key(e.genome) == key}
    evals = [runs[s] for s in sorted(runs, key=lambda s: runs[s].id)]

    def interval(values: list[float | None]) -> dict[str, Any] | None:
        x = [v for v in values if v is not None]
        return t_interval(x).to_dict() if x else None

    return {
        "id": top[0].id,
        "genome": top[0].genome,
        "generation": complete[-1],
        "n_evaluations": top[0].n,
        "evaluation_ids": [e.id for e in evals],
        "fitness": interval([e.fitness for e in evals]),
        "gain_bits_per_byte": interval([(e.result or {}).get("gain_bits_per_byte") for e in evals]),
        "heldout_bits_per_byte": interval([e.heldout_bits_per_byte for e in evals]),
        "flops": float(np.mean([e.flops or 0.0 for e in evals])),
    }


def summarise(
    store: LineageStore,
    cfg: EvolveConfig,
    stopped: str | None,
    evaluator: Evaluator | None = None,
    **extra: Any,
) -> EvolveResult:
    """The run's summary, rebuilt from the lineage store (`extra`: how it ran; a policy
    `evaluator` adds the corpus splits and the split fitness was scored on)."""
    policy = evaluator if isinstance(evaluator, PolicyEvaluator) else None
    evals = store.evaluations()
    done = [e for e in evals if e.status == "done"]
    generations = sorted({e.generation for e in evals})
    return EvolveResult(
        config={**cfg.to_dict(), **extra},
        stopped=stopped,
        generations=[
            _generation_summary(store, g, [e for e in evals if e.generation == g]) for g in generations
        ],
        pareto=pareto_front(done),
        best=_best(done),
        evaluations=evals,
        totals={**store.totals(), "wall_seconds": float(store.get_meta("wall_seconds", 0.0))},
        lineage_store=str(store.path),
        splits=policy.data_splits().to_dict() if policy else None,
        heldout_split=policy.split if policy else None,
        fitness=cfg.fitness_fn().to_dict(_pinned_budget(evaluator)),
        winner=winner_summary(store),
    )


def _pinned_budget(evaluator: Evaluator | None) -> int | None:
    """The token budget every genome trains on, when the searched gene space pins one."""
    genes = {g.name: g for g in evaluator.space.genes} if evaluator is not None else {}
    gene = genes.get("budget_tokens")
    return gene.low if isinstance(gene, Integer) and gene.fixed else None
