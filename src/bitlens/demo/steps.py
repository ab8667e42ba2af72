"""What each demo step runs: one short function per step, calling its instrument's entry point.

Measures of the trained model get the held-out split (bytes the model was not trained on);
instruments that train their own models get the whole corpus and choose how much of it to use,
within their time budgets. Each entry point is imported inside its step, so the demo starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bitlens.data import split_corpus
from bitlens.demo.manifest import ENTRY_POINTS, STEP_NAMES
from bitlens.model import GPT
from bitlens.runs import CONFIG_FILE, METRICS_FILE, load_run

if TYPE_CHECKING:
    from bitlens.offspring.study_parent import StudyParent

C = TypeVar("C")

MODEL_DIR = "model"
CORPUS_NAME = "tinyshakespeare"

# The default model: `small` (≈1M parameters) for 250 steps in the full demo (the preset's 1,650
# steps alone would take its 15 minutes; `bitlens train` runs them), a short `tiny` run for
# --quick (100 steps of 16 windows, about 15 s), whose only job is to exercise every step within
# the quick demo's 3 minutes.
TRAIN_SETTINGS: dict[bool, dict[str, Any]] = {
    False: {"preset": "small", "steps": 250, "overrides": {}},
    True: {
        "preset": "tiny",
        "steps": 100,
        "overrides": {"eval_interval": 40, "eval_bytes": 8_192, "batch_size": 16},
    },
}


@dataclass
class DemoContext:
    """What the steps share: the corpus, the settings and (loaded once) the trained model."""

    out_dir: Path
    corpus: bytes
    quick: bool
    seed: int
    progress: bool
    _model: GPT | None = field(default=None, repr=False)

    @property
    def model_dir(self) -> Path:
        return self.out_dir / MODEL_DIR

    @property
    def model(self) -> GPT:
        if self._model is None:
            self._model = load_run(self.model_dir)
        return self._model

    @cached_property
    def study_parent(self) -> StudyParent:
        """The distillation studies' parent, trained here (shared by their steps; same seed)."""
        from bitlens.offspring.study_parent import ParentConfig, train_parent

        return train_parent(self.corpus, replace(ParentConfig.quick(), steps=PARENT_STEPS[self.quick]))

    @cached_property
    def heldout(self) -> bytes:
        """The held-out split (last 10%) of the corpus: bytes the model was not trained on."""
        split = split_corpus(self.corpus, self.model.config.block_size)
        return bytes(split.val.numpy().tobytes())

    @property
    def common(self) -> dict[str, Any]:
        """The keyword arguments every instrument takes."""
        return {"seed": self.seed, "quick": self.quick, "progress": self.progress}

    def preset(self, config_type: type[C]) -> C:
        """The quick or full config of an instrument, with the demo's seed."""
        return replace(config_type.quick() if self.quick else config_type.full(), seed=self.seed)  # type: ignore[attr-defined]


def _train(c: DemoContext) -> dict:
    from bitlens.train import train_run

    settings = TRAIN_SETTINGS[c.quick]
    r = train_run(
        c.corpus,
        c.model_dir,
        preset=settings["preset"],
        steps=settings["steps"],
        seed=c.seed,
        resume=(c.model_dir / CONFIG_FILE).exists(),
        progress=c.progress,
        corpus_name=CORPUS_NAME,
        train_overrides=settings["overrides"],
    )
    keys = ("step", "tokens", "train_bits_per_byte", "val_bits_per_byte")
    rows = [json.loads(line) for line in (c.model_dir / METRICS_FILE).read_text().splitlines()]
    # run_dir relative to the demo folder, so the report is portable
    return {
        **r.to_dict(),
        "run_dir": MODEL_DIR,
        "curve": [{k: row[k] for k in keys if k in row} for row in rows],
    }


def _compression(c: DemoContext) -> dict:
    from bitlens.compress.compare import ComparisonConfig, compare_compressors

    config = c.preset(ComparisonConfig)
    if not c.quick:  # adaptive (the small model training on as it codes) took half of 3.5 minutes
        config = replace(config, compressors=tuple(k for k in config.compressors if k != "adaptive"))
    return compare_compressors(c.heldout, c.model, config, progress=c.progress).to_dict()


def _surprisal(c: DemoContext) -> dict:
    from bitlens.measures.surprisal import SurprisalConfig, measure_surprisal

    return measure_surprisal(c.model, c.heldout, c.preset(SurprisalConfig), progress=c.progress).to_dict()


def _prequential(c: DemoContext) -> dict:
    from bitlens.measures.prequential import PrequentialConfig, measure_prequential

    config = c.preset(PrequentialConfig)
    if not c.quick:  # the measure's full 256 KiB is the benchmark's; the demo codes 32 KiB
        config = replace(config, max_bytes=32_768)
    return measure_prequential(c.corpus, config, progress=c.progress).to_dict()


def _dynamics(c: DemoContext) -> dict:
    from bitlens.measures.dynamics import DynamicsConfig, measure_dynamics

    config = c.preset(DynamicsConfig)
    if not c.quick:  # half the preset's training, 16 KiB scored: within the full demo's budget
        config = replace(config, steps=200, heldout_bytes=16_384)
    return measure_dynamics(c.corpus, config, progress=c.progress).to_dict()


def _capacity(c: DemoContext) -> dict:
    from bitlens.measures.capacity import CapacityConfig, measure_capacity

    # the quick sweep in both modes (three seeds in full): the study at saturation is the
    # benchmark's (benchmarks/capacity.py, hours)
    config = replace(CapacityConfig.quick(), seed=c.seed, n_seeds=DEMO_SEEDS[c.quick])
    return measure_capacity(config, progress=c.progress).to_dict()


def _lens(c: DemoContext) -> dict:
    from bitlens.measures.lens import LensConfig, measure_lens

    return measure_lens(c.model, c.heldout, c.preset(LensConfig), progress=c.progress).to_dict()


def _probes(c: DemoContext) -> dict:
    from bitlens.measures.probes import ProbeConfig, measure_probes

    # the whole corpus: the probes read its validation split (c.heldout) and record where it is
    return measure_probes(c.model, c.corpus, c.preset(ProbeConfig), progress=c.progress).to_dict()


def _offspring(c: DemoContext) -> dict:
    from bitlens.offspring.compare import CompareConfig, compare_strategies

    # The full demo: the quick context (a 32 KB pool) over three seeds, for intervals; the full
    # context (a 320 KB pool) is the benchmark's (benchmarks/offspring_sweep.py).
    config = replace(CompareConfig.quick(), seeds=_seeds(c) if not c.quick else (c.seed,))
    return compare_strategies(c.model, c.corpus, config, progress=c.progress).to_dict()


# The studies' sizes in the demo, (quick, full): enough seeds for an interval, short trainings;
# the benchmarks (benchmarks/distillation.py, collapse.py) hold the full studies.
DEMO_SEEDS: dict[bool, int] = {True: 2, False: 3}  # (quick, full)
PARENT_STEPS: dict[bool, int] = {True: 40, False: 80}  # the distillation studies' own parent
BORN_AGAIN_GENERATIONS: dict[bool, int] = {True: 1, False: 2}
DISTILL_TOKENS: dict[bool, int] = {True: 16_384, False: 32_768}  # per offspring, every cell
COLLAPSE_GENERATIONS: dict[bool, int] = {True: 2, False: 4}
# --quick: three arms × two seeds cost 14 generation trainings, so each is halved again.
COLLAPSE_QUICK_SIZES = (3_200, 2_048, 4_096)  # real bytes, test bytes, training tokens per generation


def _seeds(c: DemoContext) -> tuple[int, ...]:
    return tuple(c.seed + i for i in range(DEMO_SEEDS[c.quick]))


def _distillation(c: DemoContext) -> dict:
    from bitlens.offspring.distill_study import DistillConfig, run_distill_2x2

    config = replace(DistillConfig.quick(), seeds=_seeds(c), budget_tokens=DISTILL_TOKENS[c.quick])
    return run_distill_2x2(c.study_parent, config, progress=c.progress).to_dict()


def _born_again(c: DemoContext) -> dict:
    from bitlens.offspring.born_again import BornAgainConfig, run_born_again

    config = replace(
        BornAgainConfig.quick(),
        seeds=_seeds(c),
        generations=BORN_AGAIN_GENERATIONS[c.quick],
        budget_ratio=0.5 if c.quick else 1.0,
    )
    return run_born_again(c.study_parent, config, progress=c.progress).to_dict()


def _collapse(c: DemoContext) -> dict:
    from bitlens.offspring.collapse import CollapseConfig
    from bitlens.offspring.collapse_arms import CollapseArmsConfig, run_collapse_arms

    # the quick sizes in both modes: the full CollapseConfig (393k tokens a generation) is the
    # benchmark's (benchmarks/collapse.py), 48 generations of it would take the demo's whole budget
    base = replace(CollapseConfig.quick(), seed=c.seed, generations=COLLAPSE_GENERATIONS[c.quick])
    if c.quick:
        real_bytes, test_bytes, budget_tokens = COLLAPSE_QUICK_SIZES
        base = replace(base, real_bytes=real_bytes, test_bytes=test_bytes, budget_tokens=budget_tokens)
    config = CollapseArmsConfig(base=base, top_ps=(1.0,), seeds=_seeds(c))
    return run_collapse_arms(c.corpus, config, progress=c.progress).to_dict()


EVOLUTION_TOKENS: dict[bool, int | None] = {True: 8_192, False: None}  # None: the gene's middle
EVOLUTION_SIZE: dict[bool, tuple[int, int]] = {False: (3, 3), True: (2, 2)}  # (population, generations)


def _evolution(c: DemoContext) -> dict:
    from bitlens.evolve.run import EvolveConfig, run_evolution

    out = c.out_dir / "evolution"
    # The demo shows the loop at work, not a converged search: one evaluation of full-size genes
    # takes 20-30 s here, so even the full demo evolves quick genes (3 × 3 offspring; --quick
    # 2 × 2), survivors not re-scored.
    population, generations = EVOLUTION_SIZE[c.quick]
    config = replace(EvolveConfig.quick(), population=population, generations=generations)
    config = replace(config, seed=c.seed, reevaluate=False, budget_tokens=EVOLUTION_TOKENS[c.quick])
    return run_evolution(
        out,
        config,
        corpus=c.corpus,
        backend="local",
        workers=1,
        resume=out.exists(),
        progress=c.progress,
        parent_dir=str(c.model_dir),
    ).to_dict()


def _generalisation(c: DemoContext) -> dict:
    from bitlens.measures.generalisation import GeneralisationConfig, measure_generalisation

    # Both demos show the quick protocol: the full one (4 sizes × 3 supersamples × 32 masks,
    # 384 trainings, about an hour on 2 cores) is a benchmark, not a demo step.
    config = replace(GeneralisationConfig.quick(), seed=c.seed)
    return measure_generalisation(c.corpus, config, progress=c.progress).to_dict()


@dataclass(frozen=True)
class Step:
    """One demo step: its name (= JSON file stem), the code that runs it, its expected time."""

    name: str
    run: Callable[[DemoContext], dict]
    expected_seconds: tuple[float, float]  # (quick, full), on 2 idle cores; for the ETA only

    @property
    def entry_point(self) -> str:
        return ENTRY_POINTS[self.name]


# Each step's code and expected seconds (quick, full) on 2 idle cores, as measured on 2026-12-02:
# 2 min 38 s and 13 min 27 s in all with the report.
_TABLE: dict[str, tuple[Callable[[DemoContext], dict], tuple[float, float]]] = {
    "train": (_train, (17, 134)),
    "compression": (_compression, (6, 113)),
    "surprisal": (_surprisal, (1, 9)),
    "prequential": (_prequential, (14, 54)),
    "dynamics": (_dynamics, (18, 81)),  # two seeds: the series and the noise null
    "capacity": (_capacity, (6, 11)),
    "lens": (_lens, (2, 17)),
    "probes": (_probes, (3, 33)),
    "offspring": (_offspring, (14, 47)),
    "distillation": (_distillation, (14, 36)),
    "born_again": (_born_again, (8, 87)),
    "collapse": (_collapse, (11, 85)),
    "evolution": (_evolution, (17, 68)),
    "generalisation": (_generalisation, (14, 17)),
}
STEPS: list[Step] = [Step(name, *_TABLE[name]) for name in STEP_NAMES]
