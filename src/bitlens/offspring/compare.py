"""Selection strategies and distillation targets side by side, at one token budget.

For every score × level the offspring is trained on `keep_ratio` of the pool (documents, or a
token loss mask) for a budget equal to the kept documents' tokens (one pass at document level),
over several seeds. Each strategy row reports its mean held-out bits/byte (and spread), its cost
and fitness against random selection, and whether the parent's *choice* carried information:
the ceiling log2 C(n, k) bits a selection of k of n items can hold, the total held-out bits the
offspring gained over random selection (bits/byte gained × held-out bytes), and their ratio.
The distillation rows train on all of the pool with the four targets at the same budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bitlens.model import GPT
from bitlens.offspring.policy import (
    ContextSizes,
    CurationPolicy,
    OffspringContext,
    context_from_model,
    evaluate_policy,
)
from bitlens.offspring.select import LEVELS, SCORES, n_kept
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import Bar, progress_bar

# Distillation targets: the policy that trains on each (all of the pool, same budget).
DISTILLATION_TARGETS: dict[str, dict[str, Any]] = {
    "raw": {"target": "hard", "synthetic_share": 0.0},
    "hard": {"target": "hard", "synthetic_share": 1.0},
    "soft": {"target": "soft", "synthetic_share": 0.0},
    "mix": {"target": "mix", "synthetic_share": 0.0},
}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _strategy_row(name: str, runs: list[dict]) -> dict[str, Any]:
    policy = runs[0]["policy"]
    bpb = [r["heldout_bits_per_byte"] for r in runs]
    gains = [(r["baseline_bits_per_byte"] - r["heldout_bits_per_byte"]) * r["heldout_bytes"]
             for r in runs]
    mean_bpb, std_bpb = _mean_std(bpb)
    mean_gain, std_gain = _mean_std(gains)
    choice = runs[0]["choice_bits"]
    return {
        "name": name,
        "score": policy["score"],
        "level": policy["level"],
        "keep_ratio": policy["keep_ratio"],
        "tokens": runs[0]["tokens"],
        "loss_tokens": runs[0]["loss_tokens"],
        "flops": float(np.mean([r["flops"] for r in runs])),
        "heldout_bits_per_byte": mean_bpb,
        "heldout_bits_per_byte_std": std_bpb,
        "heldout_bits_per_byte_per_seed": bpb,
        "baseline_bits_per_byte": float(np.mean([r["baseline_bits_per_byte"] for r in runs])),
        "fitness": float(np.mean([r["fitness"] for r in runs])),
        "improvement_vs_parent_bits_per_byte":
            float(np.mean([r["improvement_vs_parent_bits_per_byte"] for r in runs])),
        "choice_bits": choice,
        "gain_over_random_bits": mean_gain,
        "gain_over_random_bits_std": std_gain,
        "gain_per_choice_bit": mean_gain / choice if choice > 0 else 0.0,
        "seeds_better_than_random": int(sum(g > 0 for g in gains)),
    }


def _distillation_row(target: str, runs: list[dict]) -> dict[str, Any]:
    mean_bpb, std_bpb = _mean_std([r["heldout_bits_per_byte"] for r in runs])
    kl, _ = _mean_std([r["kl_to_parent_bits"] for r in runs])
    absorbed = [(r["kl_init_bits"] - r["kl_to_parent_bits"]) * r["heldout_bytes"] / r["tokens"]
                for r in runs]
    return {
        "target": target,
        "tokens": runs[0]["tokens"],
        "flops": float(np.mean([r["flops"] for r in runs])),
        "heldout_bits_per_byte": mean_bpb,
        "heldout_bits_per_byte_std": std_bpb,
        "heldout_bits_per_byte_per_seed": [r["heldout_bits_per_byte"] for r in runs],
        "kl_to_parent_bits": kl,
        "bits_per_token_from_parent": float(np.mean(absorbed)),
        "label_bits_per_token": float(np.mean([r["label_bits_per_token"] for r in runs])),
    }


def compare_distillation(
    ctx: OffspringContext, budget_tokens: int, seeds: Sequence[int], preset: str = "tiny",
    bar: Bar | None = None,
) -> list[dict[str, Any]]:
    """One row per distillation target: offspring trained on all of the pool at one budget."""
    rows = []
    for target, genes in DISTILLATION_TARGETS.items():
        policy = CurationPolicy(keep_ratio=1.0, offspring_preset=preset,
                                budget_tokens=budget_tokens, **genes)
        runs = []
        for seed in seeds:
            r = evaluate_policy(policy, ctx, seed)
            r["kl_init_bits"] = ctx.initial_kl_bits(preset, seed)
            runs.append(r)
            if bar is not None:
                bar.advance(1, status=target)
        rows.append(_distillation_row(target, runs))
    return rows


def compare_strategies(
    parent: GPT,
    data: bytes,
    keep_ratio: float = 0.3,
    seeds: Sequence[int] = (0,),
    quick: bool = False,
    progress: bool = False,
    preset: str = "tiny",
    sizes: ContextSizes | None = None,
) -> dict[str, Any]:
    """Every selection strategy and distillation target against random selection, in bits.

    Keys: strategies (name, keep_ratio, tokens, flops, heldout_bits_per_byte, fitness,
    choice_bits, gain_over_random_bits, ...), distillation (target, tokens,
    heldout_bits_per_byte, kl_to_parent_bits, bits_per_token_from_parent, ...), and the
    context: parent_bits_per_byte, heldout_bytes, pool_windows, budget_tokens, seeds.
    `bits_per_token_from_parent` is the parent knowledge the offspring absorbed, measured as the
    drop of its held-out KL to the parent from initialisation, in total held-out bits per
    training token; `label_bits_per_token` is what one label states (entropy of a soft label,
    surprisal of a hard byte, under the parent).
    """
    seeds = tuple(seeds)
    ctx = context_from_model(parent, data, seed=seeds[0], quick=quick, sizes=sizes)
    window, batch = ctx.window, ctx.sizes.batch_size
    kept_tokens = n_kept(len(ctx.pool), keep_ratio) * window
    budget = max(batch * window, round(kept_tokens / (batch * window)) * batch * window)
    strategies = [(level, score) for level in LEVELS for score in SCORES]
    n_runs = (len(strategies) + len(DISTILLATION_TARGETS)) * len(seeds)
    rows = []
    with progress_bar(n_runs, "offspring", enabled=progress) as bar:
        for level, score in strategies:
            policy = CurationPolicy(score=score, level=level, keep_ratio=keep_ratio,
                                    offspring_preset=preset, budget_tokens=budget)
            runs = []
            for seed in seeds:
                runs.append(evaluate_policy(policy, ctx, seed))
                bar.advance(1, status=f"{score}/{level}")
            rows.append(_strategy_row(f"{score}/{level}", runs))
        distillation = compare_distillation(ctx, budget, seeds, preset, bar)
    return {
        "strategies": rows,
        "distillation": distillation,
        "parent_bits_per_byte": ctx.parent_heldout_bits_per_byte(),
        "heldout_bytes": ctx.test_windows()[:, 1:].numel(),
        "pool_windows": len(ctx.pool),
        "window_bytes": window,
        "budget_tokens": budget,
        "keep_ratio": keep_ratio,
        "offspring_preset": preset,
        "seeds": list(seeds),
        "quick": quick,
        "fitness_unit": "bits/byte per TFLOP",
    }


def plot_strategies(result: dict, path: str | Path) -> list[Path]:
    """Held-out bits/byte per strategy (mean ± std over seeds; dashed: random at that level),
    gain per bit of choice, and the distillation targets. Saves PNG and SVG."""
    fig, axes = new_figure(ncols=3, width=15.0, height=4.2)
    rows = result["strategies"]
    names = [r["name"] for r in rows]
    y = np.arange(len(rows))
    ax = axes[0]
    ax.barh(y, [r["heldout_bits_per_byte"] for r in rows],
            xerr=[r.get("heldout_bits_per_byte_std", 0.0) for r in rows], color="tab:blue")
    for level in LEVELS:
        base = [r["heldout_bits_per_byte"] for r in rows
                if r["name"] == f"random/{level}"]
        if base:
            ax.axvline(base[0], ls="--", color="grey", lw=0.8)
    lo = min(r["heldout_bits_per_byte"] for r in rows)
    hi = max(r["heldout_bits_per_byte"] for r in rows)
    ax.set_xlim(lo - 0.1 * (hi - lo + 0.1), hi + 0.1 * (hi - lo + 0.1))
    ax.set_yticks(y, names)
    ax.set_xlabel("offspring held-out bits/byte (lower is better)")
    ax.set_title(f"selection at keep {result.get('keep_ratio', rows[0]['keep_ratio'])}")
    ax = axes[1]
    ax.barh(y, [r["gain_over_random_bits"] for r in rows], color="tab:green")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("held-out bits gained over random")
    for yi, r in zip(y, rows):
        ax.annotate(f"≤ {r['choice_bits']:.3g} bits of choice", (1.0, yi), fontsize=7,
                    va="center", ha="right", xycoords=("axes fraction", "data"))
    ax.set_title("does the choice carry information?")
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
