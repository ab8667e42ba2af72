"""Selection strategies and distillation targets side by side, at one token budget.

For every score × level the offspring is trained on `keep_ratio` of the pool (documents, or a
token loss mask) for a budget equal to the kept documents' tokens (one pass at document level),
over several seeds. Every figure is scored on the **test** split: nothing here chooses, and the
pool the parent selects from is held-out text it never saw (`bitlens.offspring.splits`; the
JSON records the four byte ranges).

Each strategy row reports its mean held-out bits/byte with a t interval over seeds, its cost
and fitness against random selection, and what the parent's *choice* carries: log2 C(n, k),
the most a selection of k of n items can hold (an upper bound, not a measurement), and the
held-out gain in bits per byte of its mask over (a) a random mask and (b) the mask of the
non-parent `bigram` scorer at the same level, each a paired difference over seeds (same
seed = same initialisation and batches) with its t interval, paired t-test p-value and the
Holm-adjusted p-value across the strategies of that comparison. No figure here is a total over
the test set, so none grows with its size. The distillation rows train on all of the pool with
the four targets at the same budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.budget import FITNESS_UNIT
from bitlens.offspring.distill import SOFT_WEIGHT
from bitlens.offspring.parent import is_token_parent
from bitlens.offspring.policy import (
    ContextConfig,
    CurationPolicy,
    OffspringContext,
    PolicyResult,
    context_from_model,
    evaluate_policy,
)
from bitlens.offspring.select import LEVELS, SCORES, n_kept, uses_parent
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import Bar, progress_bar
from bitlens.stats import holm, mean_ci95, paired_test, t_interval

if TYPE_CHECKING:
    from bitlens.hf import HFModel

# Everything compare reports is scored here: it chooses nothing, so it may read the test split.
SPLIT = "test"
# The non-parent control scorer each parent-scored mask is compared with (at the same level).
CONTROL_SCORE = "bigram"

# Distillation targets: the policy that trains on each (all of the pool, same budget).
DISTILLATION_TARGETS: dict[str, dict[str, Any]] = {
    "raw": {"target": "hard", "synthetic_share": 0.0},
    "hard": {"target": "hard", "synthetic_share": 1.0},
    "soft": {"target": "soft", "synthetic_share": 0.0},
    "mix": {"target": "mix", "synthetic_share": 0.0},
}


@dataclass(frozen=True)
class CompareConfig:
    """One comparison: every strategy keeps `keep_ratio` of the pool, each trained once per seed.

    The offspring context (its splits and pool, see `ContextConfig`) is built with the
    sizes of `context` and the first seed: `context.seed` is always `seeds[0]`.
    """

    keep_ratio: float = 0.3
    seeds: tuple[int, ...] = (0,)
    preset: str = "tiny"  # offspring model
    context: ContextConfig = field(default_factory=ContextConfig.full)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise BitlensError("a comparison needs at least one seed")
        if not 0.0 < self.keep_ratio <= 1.0:
            raise BitlensError(f"keep ratio must be in (0, 1], got {self.keep_ratio}")
        if self.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {self.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "context", replace(self.context, seed=self.seeds[0]))

    @classmethod
    def quick(cls) -> CompareConfig:
        return cls(context=ContextConfig.quick())

    @classmethod
    def full(cls) -> CompareConfig:
        return cls()


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def paired_gain(better: Sequence[float], worse: Sequence[float]) -> dict[str, Any]:
    """worse − better bits/byte, paired by seed: the mean gain, its t interval (`ci95`,
    `n_seeds`), and the paired t-test's p-value (`p_holm` is filled in across a family of
    strategies by `holm_fill`). One seed has no spread: ci95 and p_value are None."""
    d = np.asarray(worse, dtype=np.float64) - np.asarray(better, dtype=np.float64)
    if len(d) < 2:
        return {"estimate": float(d.mean()), "ci95": None, "n_seeds": len(d), "p_value": None, "p_holm": None}
    p = paired_test(worse, better).p_value
    return {**t_interval(d).to_dict(), "p_value": p, "p_holm": None, "test": "paired t"}


def holm_fill(gains: list[dict[str, Any]]) -> None:
    """Holm-adjust the p-values of one family of comparisons in place."""
    with_p = [g for g in gains if g["p_value"] is not None]
    if with_p:
        for g, adj in zip(with_p, holm([g["p_value"] for g in with_p]), strict=True):
            g["p_holm"] = float(adj)


@dataclass(frozen=True)
class StrategyRow:
    """One selection strategy over the seeds (bits/byte on the test split; means over seeds)."""

    name: str
    score: str
    level: str
    keep_ratio: float
    tokens: int
    loss_tokens: int
    flops: float
    heldout_bits_per_byte: float
    heldout_bits_per_byte_ci95: list[float] | None  # t interval of the mean (None: one seed)
    heldout_bits_per_byte_std: float
    heldout_bits_per_byte_per_seed: list[float]
    n_seeds: int
    baseline_bits_per_byte: float
    fitness: float
    improvement_vs_parent_bits_per_byte: float
    choice_bits: float  # log2 C(n, k): an upper bound on what the choice can carry
    # Held-out bits/byte gained per seed over a random mask / the bigram scorer's mask (paired
    # differences with estimate, ci95, n_seeds, p_value, p_holm); None where not compared.
    gain_over_random_bits_per_byte: dict[str, Any] | None = None
    gain_over_bigram_bits_per_byte: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _strategy_row(name: str, runs: list[PolicyResult], control: list[float] | None) -> StrategyRow:
    """A strategy's row; `control`: the bigram scorer's per-seed bits/byte at this level (None
    for the controls themselves)."""
    policy = runs[0].policy
    bpb = [r.heldout_bits_per_byte for r in runs]
    mean_bpb, std_bpb = _mean_std(bpb)
    random = policy.score == "random"
    return StrategyRow(
        name=name,
        score=policy.score,
        level=policy.level,
        keep_ratio=policy.keep_ratio,
        tokens=runs[0].tokens,
        loss_tokens=runs[0].loss_tokens,
        flops=float(np.mean([r.flops for r in runs])),
        heldout_bits_per_byte=mean_bpb,
        heldout_bits_per_byte_ci95=mean_ci95(bpb),
        heldout_bits_per_byte_std=std_bpb,
        heldout_bits_per_byte_per_seed=bpb,
        n_seeds=len(runs),
        baseline_bits_per_byte=float(np.mean([r.baseline_bits_per_byte for r in runs])),
        fitness=float(np.mean([r.fitness for r in runs])),
        improvement_vs_parent_bits_per_byte=float(
            np.mean([r.improvement_vs_parent_bits_per_byte for r in runs])
        ),
        choice_bits=runs[0].choice_bits,
        gain_over_random_bits_per_byte=None
        if random
        else paired_gain(bpb, [r.baseline_bits_per_byte for r in runs]),
        gain_over_bigram_bits_per_byte=None if control is None else paired_gain(bpb, control),
    )


@dataclass(frozen=True)
class DistillationRow:
    """One distillation target over the seeds (bits/byte held out; KL in bits per byte)."""

    target: str
    tokens: int
    flops: float
    heldout_bits_per_byte: float
    heldout_bits_per_byte_std: float
    heldout_bits_per_byte_per_seed: list[float]
    heldout_bits_per_byte_ci95: list[float] | None
    n_seeds: int
    kl_to_parent_bits: float | None  # None for a token-level parent
    kl_drop_bits_per_byte: float | None  # KL to the parent at initialisation − after training
    label_bits_per_token: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distillation_row(target: str, runs: list[PolicyResult], kl_init: list[float | None]) -> DistillationRow:
    bpb = [r.heldout_bits_per_byte for r in runs]
    mean_bpb, std_bpb = _mean_std(bpb)
    kls = [r.kl_to_parent_bits for r in runs]
    kl: float | None = None
    absorbed: list[float] | None = None
    if all(k is not None for k in kls) and all(k is not None for k in kl_init):
        kl = _mean_std([float(k) for k in kls if k is not None])[0]
        absorbed = [
            float(k0 or 0.0) - float(r.kl_to_parent_bits or 0.0) for r, k0 in zip(runs, kl_init, strict=True)
        ]
    return DistillationRow(
        target=target,
        tokens=runs[0].tokens,
        flops=float(np.mean([r.flops for r in runs])),
        heldout_bits_per_byte=mean_bpb,
        heldout_bits_per_byte_std=std_bpb,
        heldout_bits_per_byte_per_seed=bpb,
        heldout_bits_per_byte_ci95=mean_ci95(bpb),
        n_seeds=len(runs),
        kl_to_parent_bits=kl,
        kl_drop_bits_per_byte=None if absorbed is None else float(np.mean(absorbed)),
        label_bits_per_token=float(np.mean([r.label_bits_per_token for r in runs])),
    )


def distillation_targets(ctx: OffspringContext) -> list[str]:
    """The distillation targets this context's parent can give: all of them for a byte parent;
    raw and hard (its samples) for a token-level one."""
    token = is_token_parent(ctx.parent)
    return [t for t, g in DISTILLATION_TARGETS.items() if not (token and SOFT_WEIGHT[g["target"]] > 0)]


def compare_distillation(
    ctx: OffspringContext,
    budget_tokens: int,
    seeds: Sequence[int],
    preset: str = "tiny",
    bar: Bar | None = None,
) -> list[DistillationRow]:
    """One row per distillation target: offspring trained on all of the pool at one budget.
    A token-level parent has no next-byte distribution: only the targets without soft labels
    (`distillation_targets`) run."""
    rows = []
    for target in distillation_targets(ctx):
        genes = DISTILLATION_TARGETS[target]
        policy = CurationPolicy(keep_ratio=1.0, offspring_preset=preset, budget_tokens=budget_tokens, **genes)
        runs: list[PolicyResult] = []
        kl_init: list[float | None] = []
        for seed in seeds:
            runs.append(evaluate_policy(policy, ctx, seed, SPLIT))
            kl_init.append(ctx.initial_kl_bits(preset, seed, SPLIT))
            if bar is not None:
                bar.advance(1, status=target)
        rows.append(_distillation_row(target, runs, kl_init))
    return rows


@dataclass(frozen=True)
class CompareResult:
    """Every selection strategy and distillation target of one comparison, in bits."""

    strategies: list[StrategyRow]
    distillation: list[DistillationRow]
    parent_bits_per_byte: float
    heldout_bytes: int
    splits: dict[str, dict[str, int]]  # byte ranges of parent_train, pool, validation, test
    heldout_split: str  # where every held-out figure was scored (test)
    pool_windows: int
    window_bytes: int
    budget_tokens: int
    keep_ratio: float
    offspring_preset: str
    seeds: list[int]
    quick: bool  # the context had the quick sizes
    parent_token: str = "byte"  # what the parent reads: "byte" (bitlens) or "token" (hf:)
    skipped_targets: list[str] = field(default_factory=list)  # soft-label targets a token parent lacks
    fitness_unit: str = FITNESS_UNIT

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "strategies": [r.to_dict() for r in self.strategies],
            "distillation": [r.to_dict() for r in self.distillation],
        }


def strategy_budget(ctx: OffspringContext, keep_ratio: float) -> int:
    """The training tokens of every run: the kept documents' tokens, in whole batches (≥ 1)."""
    window, batch = ctx.window, ctx.config.batch_size
    kept_tokens = n_kept(len(ctx.pool), keep_ratio) * window
    return max(batch * window, round(kept_tokens / (batch * window)) * batch * window)


def compare_strategies(
    parent: GPT | HFModel, data: bytes, config: CompareConfig, progress: bool = False
) -> CompareResult:
    """Every selection strategy and distillation target against random selection, in bits.

    `kl_drop_bits_per_byte` is the parent knowledge the offspring absorbed, measured as the
    drop of its held-out KL to the parent from initialisation, in bits per held-out byte;
    `label_bits_per_token` is what one label states (entropy of a soft label,
    surprisal of a hard byte, under the parent).
    """
    ctx = context_from_model(parent, data, config.context)
    budget = strategy_budget(ctx, config.keep_ratio)
    strategies = [(level, score) for level in LEVELS for score in SCORES]
    targets = distillation_targets(ctx)
    n_runs = (len(strategies) + len(targets)) * len(config.seeds)
    runs: dict[tuple[str, str], list[PolicyResult]] = {}
    with progress_bar(n_runs, "offspring", enabled=progress) as bar:
        for level, score in strategies:
            policy = CurationPolicy(
                score=score,
                level=level,
                keep_ratio=config.keep_ratio,
                offspring_preset=config.preset,
                budget_tokens=budget,
            )
            runs[level, score] = []
            for seed in config.seeds:
                runs[level, score].append(evaluate_policy(policy, ctx, seed, SPLIT))
                bar.advance(1, status=f"{score}/{level}")
        rows = []
        for level, score in strategies:
            control = [r.heldout_bits_per_byte for r in runs[level, CONTROL_SCORE]]
            rows.append(
                _strategy_row(f"{score}/{level}", runs[level, score], control if uses_parent(score) else None)
            )
        holm_fill([r.gain_over_random_bits_per_byte for r in rows if r.gain_over_random_bits_per_byte])
        holm_fill([r.gain_over_bigram_bits_per_byte for r in rows if r.gain_over_bigram_bits_per_byte])
        distillation = compare_distillation(ctx, budget, config.seeds, config.preset, bar)
    return CompareResult(
        strategies=rows,
        distillation=distillation,
        parent_bits_per_byte=ctx.parent_heldout_bits_per_byte(SPLIT),
        heldout_bytes=ctx.split_windows(SPLIT)[:, 1:].numel(),
        splits=ctx.splits.to_dict(),
        heldout_split=SPLIT,
        pool_windows=len(ctx.pool),
        window_bytes=ctx.window,
        budget_tokens=budget,
        keep_ratio=config.keep_ratio,
        offspring_preset=config.preset,
        seeds=list(config.seeds),
        quick=config.context.is_quick(),
        parent_token="token" if is_token_parent(parent) else "byte",
        skipped_targets=[t for t in DISTILLATION_TARGETS if t not in targets],
    )


def ci_err(rows: list[dict], key: str, ci_key: str | None = None) -> np.ndarray:
    """(2, n) distances from each row's estimate down/up to its ci95 (0 where there is none).
    With `ci_key` the estimate is row[key] and the interval row[ci_key]; without, row[key] is a
    paired-gain dict (or None)."""
    err = np.zeros((2, len(rows)))
    for i, r in enumerate(rows):
        if ci_key is not None:
            value, ci = r.get(key), r.get(ci_key)
        else:
            g = r.get(key) or {}
            value, ci = g.get("estimate"), g.get("ci95")
        if value is not None and ci is not None:
            err[:, i] = [value - ci[0], ci[1] - value]
    return err


def plot_strategies(result: dict, path: str | Path) -> list[Path]:
    """Held-out bits/byte per strategy (mean and 95 % interval over seeds; dashed: random at
    that level), the paired gain per byte over a random and over the bigram scorer's mask (95 %
    intervals), and the distillation targets. Saves PNG and SVG."""
    fig, axes = new_figure(ncols=3, width=15.0, height=4.2)
    rows = result["strategies"]
    names = [r["name"] for r in rows]
    y = np.arange(len(rows))
    ax = axes[0]
    ax.barh(
        y,
        [r["heldout_bits_per_byte"] for r in rows],
        xerr=ci_err(rows, "heldout_bits_per_byte", "heldout_bits_per_byte_ci95"),
        color="tab:blue",
    )
    for level in LEVELS:
        base = [r["heldout_bits_per_byte"] for r in rows if r["name"] == f"random/{level}"]
        if base:
            ax.axvline(base[0], ls="--", color="grey", lw=0.8)
    lo = min((r.get("heldout_bits_per_byte_ci95") or [r["heldout_bits_per_byte"]] * 2)[0] for r in rows)
    hi = max((r.get("heldout_bits_per_byte_ci95") or [r["heldout_bits_per_byte"]] * 2)[1] for r in rows)
    ax.set_xlim(lo - 0.1 * (hi - lo + 0.1), hi + 0.1 * (hi - lo + 0.1))
    ax.set_yticks(y, names)
    ax.set_xlabel("offspring held-out bits/byte, test split (lower is better)")
    ax.set_title(f"selection at keep {result.get('keep_ratio', rows[0]['keep_ratio'])}")
    ax = axes[1]
    for shift, key, label, color in (
        (-0.2, "gain_over_random_bits_per_byte", "over a random mask", "tab:green"),
        (0.2, "gain_over_bigram_bits_per_byte", "over the bigram scorer's mask", "tab:orange"),
    ):
        ax.barh(
            y + shift,
            [(r.get(key) or {}).get("estimate", 0.0) for r in rows],
            0.4,
            xerr=ci_err(rows, key),
            color=color,
            label=label,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("held-out bits/byte gained (paired over seeds, 95 % CI)")
    ax.legend(fontsize=7)
    for yi, r in zip(y, rows, strict=True):
        ax.annotate(
            f"≤ {r['choice_bits']:.3g} bits of choice",
            (1.0, yi),
            fontsize=7,
            va="center",
            ha="right",
            xycoords=("axes fraction", "data"),
        )
    ax.set_title("does the parent's choice carry information?")
    ax = axes[2]
    d = result.get("distillation", [])
    if d:
        x = np.arange(len(d))
        ax.bar(x - 0.2, [r["heldout_bits_per_byte"] for r in d], 0.4, label="held-out bits/byte")
        ax.bar(x + 0.2, [r["kl_to_parent_bits"] for r in d], 0.4, label="KL to parent (bits)")
        ax.set_xticks(x, [r["target"] for r in d])
        ax.legend(fontsize=8)
        ax.set_title(f"distillation targets ({d[0]['tokens']:,} tokens)")
    return save_figure(fig, path)
