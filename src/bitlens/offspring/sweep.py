"""The selection budget sweep: the same selectors at several training budgets, with learning curves.

`offspring compare` reads every strategy at one budget (one pass over the kept documents). Here
a few selectors (random, the non-parent bigram control, and parent-scored ones such as
surprisal and online rho-loss) train offspring at each of several budgets in tokens, over the
same seeds; every offspring is scored on the **test** split (nothing here chooses) at the end
and at a few steps on the way (its learning curve).

Per budget, each arm reports its mean held-out bits/byte with a t interval over seeds, and
what the parent's choice carries: log2 C(n, k), the most a mask can hold (an upper bound in
bits, not a measurement), and the held-out gain in bits per byte of its mask over a random mask
and over the bigram scorer's mask, each a paired difference over seeds (same seed = same
initialisation and batch draws) with its t interval, paired t-test p-value and Holm-adjusted
p-value across the arms of that budget. No figure is a total over the test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import entropy

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.budget import steps_for_budget
from bitlens.offspring.compare import CONTROL_SCORE, SPLIT, ci_err, holm_fill, paired_gain
from bitlens.offspring.parent import is_token_parent
from bitlens.offspring.policy import (
    ContextConfig,
    CurationPolicy,
    OffspringRun,
    context_from_model,
    train_offspring,
)
from bitlens.offspring.select import LEVELS, SCORES, uses_parent
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import progress_bar
from bitlens.stats import mean_ci95
from bitlens.train import TRAIN_PRESETS

if TYPE_CHECKING:
    from bitlens.hf import HFModel

RANDOM = "random"
# The bar for the largest budget: well below the byte-unigram entropy (bits/byte).
TARGET_BITS_PER_BYTE = 3.0


@dataclass(frozen=True)
class SweepConfig:
    """Arms (selection scores at one level and keep ratio) × budgets (training tokens) × seeds.

    The arms must include random and the bigram control, the two masks every parent-scored arm
    is compared with. The offspring context is built with `context`'s sizes and the first seed.
    `curve_points`: test-split scores per run, evenly spaced in steps, the last at the end.
    `lr`: every offspring's peak learning rate (None: the preset's).
    """

    budgets: tuple[int, ...] = (65_536, 262_144, 1_048_576)
    scores: tuple[str, ...] = (RANDOM, CONTROL_SCORE, "surprisal", "rho-loss")
    level: str = "document"
    keep_ratio: float = 0.3
    seeds: tuple[int, ...] = tuple(range(10))
    preset: str = "tiny"
    curve_points: int = 4
    context: ContextConfig = field(default_factory=ContextConfig.full)
    lr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "budgets", tuple(self.budgets))
        object.__setattr__(self, "scores", tuple(self.scores))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        unknown = [s for s in self.scores if s not in SCORES]
        checks = [
            (bool(self.budgets), "a sweep needs at least one budget"),
            (all(b >= 1 for b in self.budgets), f"budgets are training tokens ≥ 1, got {self.budgets}"),
            (len(set(self.budgets)) == len(self.budgets), f"budgets repeat: {self.budgets}"),
            (not unknown, f"unknown score(s) {unknown}; choose from {', '.join(SCORES)}"),
            (
                RANDOM in self.scores and CONTROL_SCORE in self.scores,
                f"the arms must include {RANDOM} and {CONTROL_SCORE} (the masks others are compared with)",
            ),
            (len(set(self.scores)) == len(self.scores), f"scores repeat: {self.scores}"),
            (self.level in LEVELS, f"level must be one of {', '.join(LEVELS)}"),
            (0.0 < self.keep_ratio <= 1.0, f"keep ratio must be in (0, 1], got {self.keep_ratio}"),
            (bool(self.seeds), "a sweep needs at least one seed"),
            (len(set(self.seeds)) == len(self.seeds), f"seeds repeat: {self.seeds}"),
            (self.preset in MODEL_PRESETS, f"unknown preset {self.preset!r}"),
            (self.curve_points >= 1, "curve_points must be at least 1 (the end of training)"),
            (self.lr is None or self.lr > 0, f"the learning rate must be positive, got {self.lr}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BitlensError(f"invalid sweep: {message}")
        object.__setattr__(self, "budgets", tuple(sorted(self.budgets)))
        object.__setattr__(self, "context", replace(self.context, seed=self.seeds[0]))

    @classmethod
    def quick(cls) -> SweepConfig:
        return cls(budgets=(2_048, 4_096, 8_192), seeds=(0, 1), curve_points=2, context=ContextConfig.quick())

    @classmethod
    def full(cls) -> SweepConfig:
        return cls()


def curve_steps(steps: int, points: int) -> list[int]:
    """`points` step counts evenly spaced over a run of `steps`, the last = `steps` (distinct,
    ≥ 1; fewer when the run has fewer steps than points)."""
    return sorted({max(1, round(steps * i / points)) for i in range(1, points + 1)})


def _curve(runs: list[OffspringRun], tokens_per_step: int) -> list[dict[str, Any]]:
    """Mean held-out bits/byte over seeds at each recorded step, with its t interval."""
    steps = [s for s, _ in runs[0].curve]
    out = []
    for i, step in enumerate(steps):
        values = [r.curve[i][1] for r in runs]
        out.append(
            {
                "step": step,
                "tokens": step * tokens_per_step,
                "heldout_bits_per_byte": float(np.mean(values)),
                "ci95": mean_ci95(values),
                "n_seeds": len(values),
            }
        )
    return out


@dataclass(frozen=True)
class ArmRow:
    """One selector at one budget over the seeds (bits/byte on the test split)."""

    score: str
    uses_parent: bool
    heldout_bits_per_byte: float
    heldout_bits_per_byte_ci95: list[float] | None  # t interval of the mean (None: one seed)
    heldout_bits_per_byte_per_seed: list[float]
    n_seeds: int
    flops: float  # mean total FLOPs of one run (training + parent + online scoring)
    choice_bits: float  # log2 C(n, k): an upper bound on what the mask can carry
    curve: list[dict[str, Any]]  # [{step, tokens, heldout_bits_per_byte, ci95, n_seeds}]
    # Held-out bits/byte gained over a random mask / the bigram scorer's mask, paired over
    # seeds (estimate, ci95, n_seeds, p_value, p_holm); None where not compared.
    gain_over_random_bits_per_byte: dict[str, Any] | None = None
    gain_over_bigram_bits_per_byte: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BudgetResult:
    """Every arm at one training budget; Holm runs across the arms of this budget."""

    budget_tokens: int
    steps: int
    arms: list[ArmRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_tokens": self.budget_tokens,
            "steps": self.steps,
            "arms": [a.to_dict() for a in self.arms],
        }


def budget_rows(per_seed: dict[str, list[OffspringRun]], tokens_per_step: int) -> list[ArmRow]:
    """The arms of one budget from their runs (same seeds, same order in every arm): paired
    gains over random (every arm but random) and over bigram (the parent-scored arms), each
    family Holm-adjusted."""
    bpb = {s: [r.heldout.bits_per_byte for r in runs] for s, runs in per_seed.items()}
    rows = []
    for score, runs in per_seed.items():
        parent = uses_parent(score)
        rows.append(
            ArmRow(
                score=score,
                uses_parent=parent,
                heldout_bits_per_byte=float(np.mean(bpb[score])),
                heldout_bits_per_byte_ci95=mean_ci95(bpb[score]),
                heldout_bits_per_byte_per_seed=bpb[score],
                n_seeds=len(runs),
                flops=float(np.mean([r.cost.total_flops for r in runs])),
                choice_bits=runs[0].choice_bits,
                curve=_curve(runs, tokens_per_step),
                gain_over_random_bits_per_byte=None
                if score == RANDOM
                else paired_gain(bpb[score], bpb[RANDOM]),
                gain_over_bigram_bits_per_byte=paired_gain(bpb[score], bpb[CONTROL_SCORE])
                if parent
                else None,
            )
        )
    holm_fill([g for r in rows if (g := r.gain_over_random_bits_per_byte)])
    holm_fill([g for r in rows if (g := r.gain_over_bigram_bits_per_byte)])
    return rows


@dataclass(frozen=True)
class SweepResult:
    """The sweep, in bits: one `BudgetResult` per budget, smallest first."""

    budgets: list[BudgetResult]
    parent_bits_per_byte: float
    unigram_entropy_bits_per_byte: float  # plug-in byte entropy of the test split
    target_bits_per_byte: float  # the bar the largest budget is meant to pass
    heldout_bytes: int
    splits: dict[str, dict[str, int]]  # byte ranges of parent_train, pool, validation, test
    heldout_split: str
    pool_windows: int
    window_bytes: int
    level: str
    keep_ratio: float
    offspring_preset: str
    offspring_lr: float  # peak learning rate of every offspring
    seeds: list[int]
    quick: bool
    parent_token: str = "byte"

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "budgets": [b.to_dict() for b in self.budgets],
        }


def byte_entropy_bits(data: bytes | np.ndarray) -> float:
    """Plug-in entropy of the byte frequencies, in bits per byte (the unigram bar)."""
    counts = np.bincount(np.frombuffer(bytes(data), dtype=np.uint8), minlength=256)
    return float(entropy(counts, base=2))


def run_sweep(parent: GPT | HFModel, data: bytes, config: SweepConfig, progress: bool = False) -> SweepResult:
    """Train every arm × budget × seed offspring and score it on the test split (with its
    learning curve); see the module docstring for what each figure means."""
    ctx = context_from_model(parent, data, config.context)
    batch, window = ctx.config.batch_size, ctx.window
    results = []
    n_runs = len(config.budgets) * len(config.scores) * len(config.seeds)
    with progress_bar(n_runs, "sweep", enabled=progress) as bar:
        for budget in config.budgets:
            steps = steps_for_budget(budget, batch, window)
            at = curve_steps(steps, config.curve_points)  # the last, the end, is scored after training
            per_seed: dict[str, list[OffspringRun]] = {}
            for score in config.scores:
                policy = CurationPolicy(
                    score=score,
                    level=config.level,
                    keep_ratio=config.keep_ratio,
                    offspring_preset=config.preset,
                    budget_tokens=budget,
                )
                per_seed[score] = []
                for seed in config.seeds:
                    run = train_offspring(policy, ctx, seed, SPLIT, curve_steps=at, lr=config.lr)
                    per_seed[score].append(run)
                    bar.advance(1, status=f"{budget:,} tokens {score}")
            results.append(BudgetResult(budget, steps, budget_rows(per_seed, batch * window)))
    return SweepResult(
        budgets=results,
        parent_bits_per_byte=ctx.parent_heldout_bits_per_byte(SPLIT),
        unigram_entropy_bits_per_byte=byte_entropy_bits(ctx.test.numpy()),
        target_bits_per_byte=TARGET_BITS_PER_BYTE,
        heldout_bytes=ctx.split_windows(SPLIT)[:, 1:].numel(),
        splits=ctx.splits.to_dict(),
        heldout_split=SPLIT,
        pool_windows=len(ctx.pool),
        window_bytes=window,
        level=config.level,
        keep_ratio=config.keep_ratio,
        offspring_preset=config.preset,
        offspring_lr=TRAIN_PRESETS[config.preset].lr if config.lr is None else config.lr,
        seeds=list(config.seeds),
        quick=config.context.is_quick(),
        parent_token="token" if is_token_parent(parent) else "byte",
    )


def plot_sweep(result: dict, path: str | Path) -> list[Path]:
    """Learning curves per budget (mean held-out bits/byte over seeds, 95 % band; the byte
    unigram and the target as lines) and the paired gain per byte over a random and over the
    bigram scorer's mask against budget (95 % error bars). Saves PNG and SVG."""
    budgets = result["budgets"]
    n = len(budgets)
    fig, axes = new_figure(ncols=n + 2, width=4.0 * (n + 2), height=3.8)
    axes = np.atleast_1d(axes)
    colors = {a["score"]: f"C{i}" for i, a in enumerate(budgets[0]["arms"])}
    for ax, b in zip(axes[:n], budgets, strict=True):
        for arm in b["arms"]:
            c = arm["curve"]
            x = [p["tokens"] for p in c]
            y = [p["heldout_bits_per_byte"] for p in c]
            ax.plot(x, y, marker="o", ms=3, color=colors[arm["score"]], label=arm["score"])
            if all(p["ci95"] for p in c):
                ax.fill_between(
                    x,
                    [p["ci95"][0] for p in c],
                    [p["ci95"][1] for p in c],
                    alpha=0.2,
                    color=colors[arm["score"]],
                )
        ax.axhline(
            result["unigram_entropy_bits_per_byte"], ls=":", color="grey", lw=0.8, label="byte unigram"
        )
        ax.axhline(result["target_bits_per_byte"], ls="--", color="black", lw=0.8, label="target")
        ax.set_title(f"{b['budget_tokens']:,} tokens ({b['steps']} steps)")
        ax.set_xlabel("training tokens")
        ax.set_ylabel("test bits/byte (95 % band over seeds)")
    axes[0].legend(fontsize=7)
    for ax, key, title in (
        (axes[n], "gain_over_random_bits_per_byte", "gain over a random mask"),
        (axes[n + 1], "gain_over_bigram_bits_per_byte", "gain over the bigram scorer's mask"),
    ):
        tokens = np.array([b["budget_tokens"] for b in budgets], dtype=float)
        for j, score in enumerate(colors):
            rows = [next(a for a in b["arms"] if a["score"] == score) for b in budgets]
            if rows[0][key] is None:
                continue
            shift = 1.0 + 0.04 * (j - len(colors) / 2)  # dodge on the log axis
            ax.errorbar(
                tokens * shift,
                [r[key]["estimate"] for r in rows],
                yerr=ci_err(rows, key),
                marker="o",
                capsize=3,
                color=colors[score],
                label=score,
            )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(tokens, [f"{int(t):,}" for t in tokens], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("training budget (tokens)")
        ax.set_ylabel("test bits/byte gained (paired, 95 % CI)")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:  # a panel with no arm to compare draws no legend
            ax.legend(fontsize=7)
    return save_figure(fig, path)
