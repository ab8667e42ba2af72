"""Distillation as a 2×2 design: labels × inputs, at equal tokens and equal offspring FLOPs.

`compare`'s raw/hard/soft/mix arms change two things at once (what the labels are, and whose text
the inputs are). Here each factor moves on its own:

- labels: **hard** (cross-entropy on the next byte) or **soft** (KL(p_parent ‖ q) on the parent's
  full next-byte distribution at every position, `distill_loss`);
- inputs: **real** (the pool split: held-out text the parent never saw) or **synthetic** (one
  parent-written window per pool window: that window's first real byte, then T bytes the parent
  samples at temperature 1 without a top-p cut). Hard labels on real inputs are the real next
  bytes; on synthetic inputs they are the sampled bytes, one draw from exactly the soft label.

Every cell trains a fresh offspring of the same preset on the same number of windows (as many
synthetic windows as pool windows, so as many passes), for the same `budget_tokens`, every
position carrying loss: equal loss tokens, equal offspring training FLOPs (6·N + attention per
token, `GPT.flops_per_token`). The parent's FLOPs are counted and reported per cell but not
equalised: its forward for soft labels (2·N + attention per training token) and its writing of
the synthetic windows (the same per written byte). Trading them for offspring steps would
confound labels with budget. The four cells of a seed share the offspring's initialisation and
the order of its batches (same window indices), so effects are paired by seed.

Scored once on the test split (bits/byte). The effects are per-seed paired differences with a
Student t interval and a paired t-test, Holm-adjusted across the three (`factorial_effects`):
labels = soft − hard averaged over inputs, inputs = synthetic − real averaged over labels,
interaction = (soft − hard | synthetic) − (soft − hard | real). Negative = lower bits/byte.
An interval that includes 0 reads "no effect detected".

The parent is the study's own (`bitlens.offspring.study_parent`): trained from a fixed seed on
the parent_train split with the offspring's recipe, so its steps and tokens are known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.budget import inference_flops
from bitlens.offspring.compare import paired_gain
from bitlens.offspring.distill import distill_loss
from bitlens.offspring.study_parent import SPLIT, STUDY_LR, StudyParent
from bitlens.offspring.synth import sample
from bitlens.progress import progress_bar
from bitlens.stats import holm, t_interval

LABELS = ("hard", "soft")
INPUTS = ("real", "synthetic")
CELLS = tuple((labels, inputs) for labels in LABELS for inputs in INPUTS)
FLOPS_COUNTING = (
    "offspring_train_flops: 6·N + attention per forwarded token (equal in every cell); "
    "parent_flops: 2·N + attention per token the parent labels (soft) or writes (synthetic), "
    "reported, not equalised"
)


@dataclass(frozen=True)
class DistillConfig:
    """The 2×2: every cell trains one offspring of `preset` per seed on `budget_tokens` tokens."""

    seeds: tuple[int, ...] = tuple(range(10))
    budget_tokens: int = 409_600
    preset: str = "tiny"
    lr: float = STUDY_LR

    def __post_init__(self) -> None:
        if len(self.seeds) < 2:
            raise BitlensError("the 2×2 needs at least 2 seeds: its effects are paired over seeds")
        if self.budget_tokens < 1:
            raise BitlensError(f"budget must be at least one token, got {self.budget_tokens}")
        if self.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {self.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        object.__setattr__(self, "seeds", tuple(self.seeds))

    @classmethod
    def quick(cls) -> DistillConfig:
        return cls(seeds=(0, 1, 2), budget_tokens=32_768)

    @classmethod
    def full(cls) -> DistillConfig:
        return cls()


@dataclass(frozen=True)
class CellRun:
    """One offspring of one cell and seed (bits/byte on the test split; FLOPs)."""

    labels: str
    inputs: str
    seed: int
    heldout_bits_per_byte: float
    kl_to_parent_bits: float | None
    tokens: int
    loss_tokens: int
    offspring_train_flops: float
    parent_flops: float


def synthetic_windows(parent: GPT, pool: torch.Tensor, seed: int) -> tuple[torch.Tensor, float]:
    """One parent-written (n, T + 1) window per pool window: its first real byte, then T bytes
    sampled at temperature 1 without a top-p cut; and their mean surprisal under the parent
    (its entropy rate on its own text, bits/byte)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 29)
    head = pool[:, :1]
    # large batches: a tiny model's cached steps cost little beyond their per-call overhead
    s = sample(parent, head, pool.shape[1] - 1, temperature=1.0, top_p=1.0, generator=gen, batch_size=512)
    return torch.cat([head.to(torch.uint8), s.tokens], dim=1), s.mean_surprisal_bits


def train_cell(
    parent: StudyParent, labels: str, windows: torch.Tensor, inputs: str, seed: int, config: DistillConfig
) -> CellRun:
    """Train one offspring on `windows` (every target carries loss) with hard or soft labels."""
    if labels not in LABELS or inputs not in INPUTS:
        raise BitlensError(f"a cell is labels in {LABELS} × inputs in {INPUTS}, got {labels}/{inputs}")
    batch = parent.ctx.config.batch_size
    model, result = train_on_windows(
        config.preset,
        [WindowSource.unmasked(windows, batch)],
        config.budget_tokens,
        seed,
        loss_fn=distill_loss(labels, parent.model),
        lr=config.lr,
    )
    parent_flops = 0.0
    if labels == "soft":
        parent_flops += inference_flops(parent.model, result.tokens)
    if inputs == "synthetic":
        parent_flops += inference_flops(parent.model, windows[:, 1:].numel())
    score = parent.ctx.heldout(model, SPLIT)
    return CellRun(
        labels=labels,
        inputs=inputs,
        seed=seed,
        heldout_bits_per_byte=score.bits_per_byte,
        kl_to_parent_bits=score.kl_to_parent_bits,
        tokens=result.tokens,
        loss_tokens=result.tokens,  # unmasked windows: every forwarded target carries loss
        offspring_train_flops=result.flops,
        parent_flops=parent_flops,
    )


@dataclass(frozen=True)
class CellRow:
    """One cell over the seeds: test bits/byte (mean, t interval), tokens and FLOPs per offspring."""

    labels: str
    inputs: str
    tokens: int
    loss_tokens: int
    offspring_train_flops: float
    parent_flops: float
    total_flops: float
    heldout_bits_per_byte: float
    heldout_bits_per_byte_ci95: list[float]
    n_seeds: int
    heldout_bits_per_byte_per_seed: list[float]
    kl_to_parent_bits: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cell_row(runs: list[CellRun]) -> CellRow:
    bpb = [r.heldout_bits_per_byte for r in runs]
    iv = t_interval(bpb)
    kls = [r.kl_to_parent_bits for r in runs]
    first = runs[0]
    if any(
        (r.tokens, r.loss_tokens, r.offspring_train_flops)
        != (first.tokens, first.loss_tokens, first.offspring_train_flops)
        for r in runs
    ):
        raise BitlensError("the seeds of one cell spent different budgets")  # never: same config
    return CellRow(
        labels=first.labels,
        inputs=first.inputs,
        tokens=first.tokens,
        loss_tokens=first.loss_tokens,
        offspring_train_flops=first.offspring_train_flops,
        parent_flops=float(np.mean([r.parent_flops for r in runs])),
        total_flops=first.offspring_train_flops + float(np.mean([r.parent_flops for r in runs])),
        heldout_bits_per_byte=iv.estimate,
        heldout_bits_per_byte_ci95=[iv.low, iv.high],
        n_seeds=iv.n,
        heldout_bits_per_byte_per_seed=bpb,
        kl_to_parent_bits=None
        if any(k is None for k in kls)
        else float(np.mean([k for k in kls if k is not None])),
    )


def reading(effect: Mapping[str, Any], lower: str, higher: str) -> str:
    """Words for a paired difference in bits/byte: "no effect detected" when its interval (or,
    after Holm, its adjusted p-value) does not exclude 0; else which side is lower."""
    ci = effect.get("ci95")
    if ci is None or ci[0] <= 0.0 <= ci[1]:
        return "no effect detected (95 % interval includes 0)"
    if effect.get("p_holm") is not None and effect["p_holm"] > 0.05:
        return f"interval excludes 0, but not after Holm (p_holm = {effect['p_holm']:.3g})"
    return lower if effect["estimate"] < 0 else higher


# The three effects: name, definition, words for a negative / positive difference.
EFFECTS = (
    (
        "labels",
        "soft − hard, averaged over inputs",
        "soft labels lower bits/byte",
        "hard labels lower bits/byte",
    ),
    (
        "inputs",
        "synthetic − real, averaged over labels",
        "synthetic inputs lower bits/byte",
        "real inputs lower bits/byte",
    ),
    (
        "interaction",
        "(soft − hard | synthetic) − (soft − hard | real)",
        "soft labels help more (or hurt less) on synthetic inputs",
        "soft labels help more (or hurt less) on real inputs",
    ),
)


def factorial_effects(per_seed: Mapping[tuple[str, str], Sequence[float]]) -> list[dict[str, Any]]:
    """The main effects and the interaction of a 2×2 from per-seed bits/byte of each
    (labels, inputs) cell (seeds in the same order in every cell): each a per-seed paired
    difference (estimate, ci95 from Student's t, n_seeds, p_value of the paired t-test, p_holm
    across the three, reading). Units: bits/byte; negative = the first condition is lower."""
    missing = [c for c in CELLS if c not in per_seed]
    if missing:
        raise BitlensError(f"the 2×2 lacks cells {missing}")
    c = {k: np.asarray(per_seed[k], dtype=np.float64) for k in CELLS}
    sizes = {len(v) for v in c.values()}
    if len(sizes) != 1:
        raise BitlensError(f"the cells have different numbers of seeds: {sorted(sizes)}")
    soft = (c["soft", "real"] + c["soft", "synthetic"]) / 2
    hard = (c["hard", "real"] + c["hard", "synthetic"]) / 2
    synthetic = (c["hard", "synthetic"] + c["soft", "synthetic"]) / 2
    real = (c["hard", "real"] + c["soft", "real"]) / 2
    gap_synthetic = c["soft", "synthetic"] - c["hard", "synthetic"]
    gap_real = c["soft", "real"] - c["hard", "real"]
    pairs = ((soft, hard), (synthetic, real), (gap_synthetic, gap_real))
    effects = [
        {"effect": name, "definition": definition, **paired_gain(better=b.tolist(), worse=a.tolist())}
        for (name, definition, _, _), (a, b) in zip(EFFECTS, pairs, strict=True)
    ]
    ps = [e["p_value"] for e in effects]
    if all(p is not None for p in ps):
        for e, adj in zip(effects, holm(ps), strict=True):
            e["p_holm"] = float(adj)
    for e, (_, _, lower, higher) in zip(effects, EFFECTS, strict=True):
        e["reading"] = reading(e, lower, higher)
    return effects


@dataclass(frozen=True)
class DistillResult:
    """The 2×2 on the test split: four cells, three effects, the parent and the splits."""

    cells: list[CellRow]
    effects: list[dict[str, Any]]
    parent: dict[str, Any]
    splits: dict[str, dict[str, int]]
    heldout_split: str
    heldout_bytes: int
    pool_windows: int
    window_bytes: int
    budget_tokens: int
    preset: str
    lr: float
    seeds: list[int]
    synthetic_sample_bits_per_byte: float  # the parent's mean surprisal on its own windows
    flops_counting: str = FLOPS_COUNTING

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "cells": [r.to_dict() for r in self.cells],
        }


def run_distill_2x2(parent: StudyParent, config: DistillConfig, progress: bool = False) -> DistillResult:
    """Train every cell × seed (synthetic windows written afresh per seed) and read the effects."""
    runs: dict[tuple[str, str], list[CellRun]] = {c: [] for c in CELLS}
    pool = parent.ctx.pool
    sample_bits = []
    with progress_bar(len(CELLS) * len(config.seeds), "2×2 offspring", enabled=progress) as bar:
        for seed in config.seeds:
            synthetic, bits = synthetic_windows(parent.model, pool, seed)
            sample_bits.append(bits)
            for labels, inputs in CELLS:
                windows = synthetic if inputs == "synthetic" else pool
                runs[labels, inputs].append(train_cell(parent, labels, windows, inputs, seed, config))
                bar.advance(1, status=f"{labels}/{inputs} seed {seed}")
    per_seed = {c: [r.heldout_bits_per_byte for r in runs[c]] for c in CELLS}
    return DistillResult(
        cells=[_cell_row(runs[c]) for c in CELLS],
        effects=factorial_effects(per_seed),
        parent=parent.to_dict(),
        splits=parent.ctx.splits.to_dict(),
        heldout_split=SPLIT,
        heldout_bytes=parent.ctx.split_windows(SPLIT)[:, 1:].numel(),
        pool_windows=len(pool),
        window_bytes=parent.ctx.window,
        budget_tokens=config.budget_tokens,
        preset=config.preset,
        lr=config.lr,
        seeds=list(config.seeds),
        synthetic_sample_bits_per_byte=float(np.mean(sample_bits)),
    )
