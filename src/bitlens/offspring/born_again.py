"""Born-again offspring (Furlanello et al. 2018): does re-encoding the parent into a fresh network
of its own size let it escape where the parent's training left it?

Generation 1 is a fresh model of the parent's preset trained on the parent's own training text
(the parent_train split, the same windows and batch size) with the `mix` target: half
cross-entropy on the real next byte, half KL to the parent's full next-byte distribution, for a
token budget `budget_ratio` (≤ 1) times the parent's, rounded down to whole batches. Generation
g + 1 is taught the same way by generation g of the same seed. Each generation's offspring
starts from its own initialisation (seed 1000·g + s).

Scored once on the test split. `improvement_vs_parent_bits_per_byte` is parent − offspring test
bits/byte (positive = the offspring beats its parent) over the seeds, with a Student t interval
and a t-test against 0, Holm-adjusted across the generations. The parent is one model (one
seed): the interval is over the offspring's seeds, not over parents. A hard-label control (the
parent's own recipe re-run from generation 1's seeds) tells a gain from the soft targets apart
from a re-roll of the seed: `gain_over_hard_control_bits_per_byte` is control − offspring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bitlens.errors import BitlensError
from bitlens.model import GPT
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.budget import inference_flops
from bitlens.offspring.compare import paired_gain
from bitlens.offspring.distill import distill_loss
from bitlens.offspring.distill_study import reading
from bitlens.offspring.study_parent import SPLIT, StudyParent
from bitlens.progress import progress_bar
from bitlens.stats import holm, t_interval

TARGET = "mix"  # half hard real bytes, half the teacher's soft distribution


@dataclass(frozen=True)
class BornAgainConfig:
    """Seeds, generations, and the offspring budget as a share of the parent's training tokens."""

    seeds: tuple[int, ...] = tuple(range(5))
    generations: int = 2
    budget_ratio: float = 1.0
    hard_control: bool = True

    def __post_init__(self) -> None:
        if len(self.seeds) < 2:
            raise BitlensError("born-again needs at least 2 seeds for an interval")
        if self.generations < 1:
            raise BitlensError(f"need at least one generation, got {self.generations}")
        if not 0.0 < self.budget_ratio <= 1.0:
            raise BitlensError(
                "the offspring's budget must be at most the parent's: "
                f"budget_ratio in (0, 1], got {self.budget_ratio}"
            )
        object.__setattr__(self, "seeds", tuple(self.seeds))

    @classmethod
    def quick(cls) -> BornAgainConfig:
        return cls(seeds=(0, 1, 2))

    @classmethod
    def full(cls) -> BornAgainConfig:
        return cls()


def offspring_budget(parent: StudyParent, budget_ratio: float) -> int:
    """budget_ratio × the parent's training tokens, down to whole batches (at least one)."""
    per_step = parent.ctx.config.batch_size * parent.ctx.window
    return max(1, int(parent.tokens * budget_ratio) // per_step) * per_step


@dataclass(frozen=True)
class GenerationRow:
    """One generation over the seeds: test bits/byte and its gains, each a paired difference dict
    (estimate, ci95, n_seeds, p_value, p_holm, reading) in bits/byte."""

    generation: int
    teacher: str
    tokens: int
    offspring_train_flops: float
    teacher_flops: float  # the teacher's forward over every training token (soft labels)
    heldout_bits_per_byte: float
    heldout_bits_per_byte_ci95: list[float]
    n_seeds: int
    heldout_bits_per_byte_per_seed: list[float]
    improvement_vs_parent_bits_per_byte: dict[str, Any]  # parent − offspring
    improvement_vs_previous_bits_per_byte: dict[str, Any] | None  # generation g−1 − g (g ≥ 2)
    gain_over_hard_control_bits_per_byte: dict[str, Any] | None  # control − offspring

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BornAgainResult:
    """Every generation, the hard-label control, the parent and the splits (test bits/byte)."""

    generations: list[GenerationRow]
    hard_control: dict[str, Any] | None
    parent: dict[str, Any]
    parent_bits_per_byte: float
    budget_tokens: int
    budget_ratio: float
    target: str
    trained_on: str
    splits: dict[str, dict[str, int]]
    heldout_split: str
    heldout_bytes: int
    seeds: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "generations": [g.to_dict() for g in self.generations],
        }


def _improvement(parent_bpb: float, bpb: list[float]) -> dict[str, Any]:
    """parent − offspring, per seed (the parent's figure repeated): estimate, ci95, p."""
    d = paired_gain(better=bpb, worse=[parent_bpb] * len(bpb))
    d["reading"] = reading(d, "the parent is better", "the offspring beats its parent")
    return d


def run_born_again(parent: StudyParent, config: BornAgainConfig, progress: bool = False) -> BornAgainResult:
    """Train `config.generations` born-again generations per seed and the hard-label control."""
    windows = parent.train_windows()
    batch = parent.ctx.config.batch_size
    budget = offspring_budget(parent, config.budget_ratio)
    source = [WindowSource.unmasked(windows, batch)]
    preset, lr = parent.config.preset, parent.config.lr  # the parent's own recipe
    parent_bpb = parent.test_bits_per_byte
    bpb: dict[int, list[float]] = {g: [] for g in range(1, config.generations + 1)}
    flops: dict[int, tuple[int, float, float]] = {}
    control: list[float] = []
    n_runs = len(config.seeds) * (config.generations + int(config.hard_control))
    with progress_bar(n_runs, "born-again", enabled=progress) as bar:
        for seed in config.seeds:
            teacher: GPT = parent.model
            for g in range(1, config.generations + 1):
                model, result = train_on_windows(
                    preset, source, budget, 1000 * g + seed, loss_fn=distill_loss(TARGET, teacher), lr=lr
                )
                bpb[g].append(parent.ctx.heldout(model, SPLIT).bits_per_byte)
                flops[g] = (result.tokens, result.flops, inference_flops(teacher, result.tokens))
                teacher = model
                bar.advance(1, status=f"generation {g} seed {seed}")
            if config.hard_control:
                model, _ = train_on_windows(
                    preset, source, budget, 1000 + seed, loss_fn=distill_loss("hard"), lr=lr
                )
                control.append(parent.ctx.heldout(model, SPLIT).bits_per_byte)
                bar.advance(1, status=f"hard control seed {seed}")
    rows = []
    for g in range(1, config.generations + 1):
        iv = t_interval(bpb[g])
        previous = None
        if g > 1:
            previous = paired_gain(better=bpb[g], worse=bpb[g - 1])
            previous["reading"] = reading(
                previous, f"generation {g - 1} is better", f"generation {g} is better"
            )
        over_control = None
        if config.hard_control:
            over_control = paired_gain(better=bpb[g], worse=control)
            over_control["reading"] = reading(
                over_control, "the hard-label control is better", "the born-again offspring beats the control"
            )
        tokens, train_flops, teacher_flops = flops[g]
        rows.append(
            GenerationRow(
                generation=g,
                teacher="parent" if g == 1 else f"generation {g - 1} (same seed)",
                tokens=tokens,
                offspring_train_flops=train_flops,
                teacher_flops=teacher_flops,
                heldout_bits_per_byte=iv.estimate,
                heldout_bits_per_byte_ci95=[iv.low, iv.high],
                n_seeds=iv.n,
                heldout_bits_per_byte_per_seed=bpb[g],
                improvement_vs_parent_bits_per_byte=_improvement(parent_bpb, bpb[g]),
                improvement_vs_previous_bits_per_byte=previous,
                gain_over_hard_control_bits_per_byte=over_control,
            )
        )
    _holm_across([r.improvement_vs_parent_bits_per_byte for r in rows])
    hard = None
    if config.hard_control:
        iv = t_interval(control)
        hard = {
            "heldout_bits_per_byte": iv.estimate,
            "heldout_bits_per_byte_ci95": [iv.low, iv.high],
            "n_seeds": iv.n,
            "heldout_bits_per_byte_per_seed": control,
            "improvement_vs_parent_bits_per_byte": _improvement(parent_bpb, control),
        }
    return BornAgainResult(
        generations=rows,
        hard_control=hard,
        parent=parent.to_dict(),
        parent_bits_per_byte=parent_bpb,
        budget_tokens=budget,
        budget_ratio=config.budget_ratio,
        target=TARGET,
        trained_on="parent_train",
        splits=parent.ctx.splits.to_dict(),
        heldout_split=SPLIT,
        heldout_bytes=parent.ctx.split_windows(SPLIT)[:, 1:].numel(),
        seeds=list(config.seeds),
    )


def _holm_across(gains: list[dict[str, Any]]) -> None:
    """Holm-adjust one family of paired differences in place (and re-read them)."""
    ps = [g["p_value"] for g in gains]
    if all(p is not None for p in ps):
        for g, adj in zip(gains, holm(ps), strict=True):
            g["p_holm"] = float(adj)
            g["reading"] = reading(g, "the parent is better", "the offspring beats its parent")
