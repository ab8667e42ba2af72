"""Collapse arms over seeds: each arm (`collapse.MODES`) at each top-p, over several seeds, with a
t interval over seeds for every headline figure.

Per seed, generation 0 is trained once on the real windows and shared by every arm and top-p
(it depends on neither; it samples at each arm's top-p), so within a seed the arms differ only
from generation 1 on, and comparisons between arms are paired by seed.

Per arm and generation the JSON carries, for each figure of `HEADLINE`, its mean over seeds,
`<figure>_ci95` (Student's t interval of the mean, `bitlens.stats.t_interval`; None for one
seed) and `n_seeds`. Per arm, `change`: the change of each figure from generation 0 to the last,
paired by seed (the mean of last − first, its t interval), read as "rises", "falls" or "no change
detected" (the interval includes 0). `last_generation_differences`: held-out bits/byte of one
arm minus another at the last generation, per top-p, paired by seed, Holm-adjusted over the
family. Units are those of the figures: bits/byte, bits, or shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from bitlens.errors import BitlensError
from bitlens.offspring.collapse import (
    MODES,
    CollapseConfig,
    CollapseResult,
    RealData,
    collapse_splits,
    run_collapse,
    train_generation0,
)
from bitlens.offspring.compare import holm_fill, paired_gain
from bitlens.stats import mean_ci95

if TYPE_CHECKING:
    from bitlens.hf import HFModel
    from bitlens.model import GPT

# The figures read as findings: held-out bits/byte (collapse), and the tail signature of the
# samples (their entropy rate, unigram entropy, rare-bigram and rare-byte mass, forgotten bytes).
HEADLINE = (
    "heldout_bits_per_byte",
    "sample_entropy_bits",
    "sample_unigram_entropy_bits",
    "tail_mass",
    "rare_byte_mass",
    "heldout_share_below_threshold",
)
NO_CHANGE = "no change detected"


@dataclass(frozen=True)
class CollapseArmsConfig:
    """Every arm in `modes` at every top-p in `top_ps`, each over `seeds`; `base` gives the sizes,
    the temperature, the generations and accumulate-real's `real_share` (its mode, top_p and
    seed are set per run)."""

    base: CollapseConfig
    modes: tuple[str, ...] = MODES
    top_ps: tuple[float, ...] = (1.0, 0.9)
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        for name in ("modes", "top_ps", "seeds"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise BitlensError(f"{name} must be a non-empty list without repeats, got {values}")
        for mode in self.modes:  # validates each arm (mode name, accumulate-real's share)
            replace(self.base, mode=mode)
        if not all(0.0 < p <= 1.0 for p in self.top_ps):
            raise BitlensError(f"every top-p must lie in (0, 1], got {self.top_ps}")

    def run_config(self, mode: str, top_p: float, seed: int) -> CollapseConfig:
        return replace(self.base, mode=mode, top_p=top_p, seed=seed)


def seed_means(runs: Sequence[CollapseResult]) -> list[dict[str, Any]]:
    """Per generation, each headline figure's mean over the runs (seeds) with `<figure>_ci95`,
    and `n_seeds`; the training data's real share and size, which do not vary with the seed."""
    rows = []
    for g, first in enumerate(runs[0].generations):
        gens = [r.generations[g] for r in runs]
        row: dict[str, Any] = {
            "generation": first.generation,
            "n_seeds": len(runs),
            "real_share": first.real_share,
            "train_windows": first.train_windows,
        }
        for key in HEADLINE:
            values = [getattr(x, key) for x in gens]
            row[key], row[f"{key}_ci95"] = float(np.mean(values)), mean_ci95(values)
        rows.append(row)
    return rows


def _reading(estimate: float, ci95: list[float] | None) -> str:
    if ci95 is None:
        return "one seed: no interval, not a finding"
    if ci95[0] <= 0.0 <= ci95[1]:
        return NO_CHANGE
    return "rises" if estimate > 0 else "falls"


def generation_change(runs: Sequence[CollapseResult], key: str) -> dict[str, Any]:
    """`key` at the last generation minus at generation 0, paired by seed: estimate, ci95 (t
    interval; None for one seed), n_seeds and its reading ("rises", "falls", NO_CHANGE)."""
    d = [getattr(r.generations[-1], key) - getattr(r.generations[0], key) for r in runs]
    estimate, ci95 = float(np.mean(d)), mean_ci95(d)
    return {"estimate": estimate, "ci95": ci95, "n_seeds": len(d), "reading": _reading(estimate, ci95)}


@dataclass(frozen=True)
class CollapseArm:
    """One arm at one top-p over seeds: per-generation means with intervals, the change from
    generation 0 to the last, and every seed's run."""

    mode: str
    top_p: float
    seeds: list[int]
    generations: list[dict[str, Any]]  # `seed_means`
    change: dict[str, dict[str, Any]]  # headline figure → `generation_change`
    real_tail_mass: float
    real_rare_byte_mass: float
    real_unigram_entropy_bits: float
    runs: list[CollapseResult]

    @classmethod
    def of(cls, runs: Sequence[CollapseResult]) -> CollapseArm:
        r0 = runs[0]
        return cls(
            mode=r0.mode,
            top_p=r0.top_p,
            seeds=[r.seed for r in runs],
            generations=seed_means(runs),
            change={key: generation_change(runs, key) for key in HEADLINE},
            real_tail_mass=r0.real_tail_mass,
            real_rare_byte_mass=r0.real_rare_byte_mass,
            real_unigram_entropy_bits=r0.real_unigram_entropy_bits,
            runs=list(runs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runs": [r.to_dict() for r in self.runs]}


def last_generation_differences(arms: Sequence[CollapseArm]) -> list[dict[str, Any]]:
    """Held-out bits/byte of arm a minus arm b at the last generation, for every pair of arms at
    the same top-p, paired by seed (estimate, ci95, n_seeds, p_value and p_holm over the family;
    ci95 and p-values None for one seed). `reading` names the higher arm only when the interval
    excludes 0 and the Holm-adjusted p is below 0.05, else "no difference detected"."""
    rows = []
    for a, b in combinations(arms, 2):
        if a.top_p != b.top_p or a.seeds != b.seeds:
            continue
        x = [r.generations[-1].heldout_bits_per_byte for r in a.runs]
        y = [r.generations[-1].heldout_bits_per_byte for r in b.runs]
        rows.append({"a": a.mode, "b": b.mode, "top_p": a.top_p, **paired_gain(better=y, worse=x)})  # a − b
    holm_fill(rows)
    for r in rows:  # a difference is read only where the Holm-adjusted test agrees with the interval
        verdict = _reading(r["estimate"], r["ci95"])
        if r["p_holm"] is not None and r["p_holm"] >= 0.05:
            verdict = NO_CHANGE
        r["reading"] = {NO_CHANGE: "no difference detected", "rises": f"{r['a']} higher"}.get(
            verdict, f"{r['a']} lower" if verdict == "falls" else verdict
        )
    return rows


@dataclass(frozen=True)
class CollapseArms:
    """Every arm at every top-p over the seeds (see the module docstring)."""

    arms: list[CollapseArm]
    last_generation_differences: list[dict[str, Any]]
    seeds: list[int]
    generations: int
    real_share: float  # accumulate-real's share of real windows (tokens) per batch
    temperature: float
    budget_tokens: int
    real_windows: int
    heldout_bytes: int
    offspring_preset: str
    window: int
    quick: bool
    generation0: str
    splits: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arms": [a.to_dict() for a in self.arms]}


def run_collapse_arms(
    data: bytes,
    config: CollapseArmsConfig,
    progress: bool = False,
    generation0: GPT | HFModel | None = None,
) -> CollapseArms:
    """Run every arm at every top-p for every seed (generation 0 trained once per seed, or the
    given `generation0` for all) and summarise over seeds."""
    base = config.base
    real = RealData.of(data, base)
    name = None if generation0 is None else getattr(generation0, "name", "") or "given"
    runs: dict[tuple[str, float], list[CollapseResult]] = {
        (m, p): [] for p in config.top_ps for m in config.modes
    }
    for seed in config.seeds:
        model0 = train_generation0(replace(base, seed=seed), real) if generation0 is None else generation0
        for mode, top_p in runs:
            runs[mode, top_p].append(
                run_collapse(
                    data,
                    config.run_config(mode, top_p, seed),
                    progress=progress,
                    generation0=model0,
                    real=real,
                    generation0_name=name or "trained",
                )
            )
    arms = [CollapseArm.of(r) for r in runs.values()]
    return CollapseArms(
        arms=arms,
        last_generation_differences=last_generation_differences(arms),
        seeds=list(config.seeds),
        generations=base.generations,
        real_share=base.real_share,
        temperature=base.temperature,
        budget_tokens=base.budget_tokens,
        real_windows=len(real.real),
        heldout_bytes=real.test.shape[0] * base.window,
        offspring_preset=base.preset,
        window=base.window,
        quick=base.is_quick(),
        generation0=name or "trained",
        splits=collapse_splits(data, base).to_dict(),
    )
