"""Generalisation in bits: the CMI bound next to the measured gap, and what gets memorised.

How much does a model know about *its* training windows, and does that bound how much worse it
does on windows it never saw? For each training-set size n and each of `supersamples` draws:
1. draw a supersample of 2n non-overlapping windows from the corpus's training split, in pairs;
2. train k models (k even; masks come in complementary pairs, and a mask and its complement share
   the training seed), each on one member of every pair chosen by its mask;
3. score every window under every model with smoothed predictions (1 − ε)p + ε/256, so that no
   loss exceeds the cap C = log2(256/ε) bits per byte, and hand the losses to
   `bitlens.measures.cmi`: the measured gap (held-out − trained, bits/byte), the CMI in bits, its
   bound on the gap with the cap C, the permutation null (the floor and a p-value), and each
   window's membership bits (the memorisation view).
Per n the figures are means over supersamples with bootstrap intervals across them
(`bitlens.stats`), and the CMI gets a status: "floor" when the permutation null cannot be
rejected (p ≥ 0.05), "ceiling" when its interval reaches 1 bit per pair less the floor (the
masks are as readable as the estimator can show), "informative" in between. Only there does
"bound ≥ gap" say something; at the floor or the ceiling it holds by construction.
Training length is a fixed number of steps for every n, so small n means many epochs.

Beside the CMI bound, each n carries a compression (Occam) bound in the style of Lotfi et al.
2023: the first supersample's first model is quantised at 2, 4 or 8 bits per weight and written
as a real weights file (`bitlens.measures.weights_code`); its smoothed loss on its own n training
windows plus the Hoeffding term for a prefix code of that file (plus log2 3 bits for the choice of
precision) bounds its expected smoothed loss per byte, windows taken as the i.i.d. samples.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bitlens.data import split_corpus
from bitlens.errors import BitlensError
from bitlens.evaluate import window_scores
from bitlens.measures.cmi import (
    CmiEstimate,
    CmiNull,
    Membership,
    complementary_masks,
    estimate_cmi,
    membership,
    permutation_null,
    permutation_p_value,
)
from bitlens.measures.weights_code import compression_bound_bits_per_byte, encode_weights, quantised_model
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.progress import progress_bar
from bitlens.runs import model_state
from bitlens.stats import bootstrap_ci
from bitlens.train import TrainConfig, train
from bitlens.units import smoothing_cap_bits

# Each supersample trains `masks` models per size, so the default model is far smaller than `tiny`.
MICRO = GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)
DEFAULT_PRESET = "micro"
SIGNIFICANCE = 0.05  # a CMI estimate whose permutation p-value reaches this sits at the floor


@dataclass(frozen=True)
class GeneralisationConfig:
    sizes: tuple[int, ...] = (75, 250, 1000, 4000)  # n: pairs per supersample = training windows
    supersamples: int = 3  # independent draws of the 2n windows per size (the intervals' unit)
    masks: int = 32  # trainings per supersample (even: complementary pairs)
    steps: int = 300  # optimizer steps per training, whatever n is
    batch_size: int = 32  # windows per step
    window_bytes: int = 16  # bytes predicted per window (the model sees window_bytes of context)
    lr: float = 1e-2
    smoothing: float = 0.05  # ε: losses scored under (1 − ε)p + ε/256, at most log2(256/ε) bits
    null_draws: int = 1000  # re-drawn mask sets in the permutation null, per supersample
    preset: str = DEFAULT_PRESET  # "micro" (2 × 32) or a bitlens model preset
    threads: int | None = 1  # torch threads while training; small models run best on one
    seed: int = 0  # windows, masks, training seeds, null draws and bootstrap
    mode: str = "full"  # "quick" or "full": the constructor used, recorded as the result's `quick`

    @classmethod
    def quick(cls) -> GeneralisationConfig:
        return cls(sizes=(25, 100, 400), supersamples=1, masks=8, steps=45, null_draws=200, mode="quick")

    @classmethod
    def full(cls) -> GeneralisationConfig:
        return cls()

    @property
    def loss_cap_bits(self) -> float:
        """C = log2(256/ε): no smoothed loss exceeds it (bits per byte)."""
        return smoothing_cap_bits(self.smoothing)

    def to_dict(self) -> dict:
        """The settings, as the result records them (seed and mode sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k not in ("seed", "mode")}


@dataclass(frozen=True)
class GeneralisationPoint:
    """One training-set size n: means over its supersamples, losses in bits/byte, CMI in bits.

    Each `*_ci95` is a bootstrap interval across the supersamples (a point when there is one).
    """

    n: int
    gap_bits_per_byte: float  # held-out − train, smoothed losses
    gap_ci95: list[float]
    bound_bits_per_byte: float  # the loss-difference CMI bound on the gap, with the cap C
    bound_ci95: list[float]
    cmi_bits: float  # Σ over the n pairs of I(ΔL_i; U_i)
    cmi_ci95: list[float]
    cmi_bits_per_window: float  # cmi_bits / n, in [0, 1]
    cmi_bits_per_supersample: list[float]
    cmi_null_floor_bits: float  # the mean estimate under the permutation null (Σ over pairs)
    cmi_floor_bits_per_window: float  # the same per pair
    cmi_null_p_value: float  # of the mean estimate against the null of the mean
    # Share of pairs whose own permutation p-value is below 0.05; a pair's p is at least
    # 2^(1 − k/2), so this stays 0 with fewer than 12 masks.
    cmi_pairs_above_null: float
    cmi_status: str  # "floor", "informative" or "ceiling" (see the module docstring)
    informative: bool  # cmi_status == "informative": only then is "bound ≥ gap" a finding
    vacuous: bool  # the bound reaches the cap C, which bounds any gap
    loss_cap_bits: float  # C = log2(256/ε)
    n_masks: int
    n_supersamples: int
    n_seeds: int  # = n_supersamples: the unit the intervals resample
    train_bits_per_byte: float
    heldout_bits_per_byte: float
    membership_surprisal_correlation: float | None  # Spearman; None with fewer than 4 masks
    compression_bound_bits_per_byte: float  # Occam bound on one model's expected smoothed loss
    compression_bound_weights_bits: float  # its weights file (bits), the precision choice included
    compression_bound_precision_bits: int  # bits per weight of that file
    compression_bound_train_bits_per_byte: float  # the quantised model's smoothed training loss
    compression_bound_vacuous: bool  # ≥ 8 bits/byte: no better than coding bytes uniformly


@dataclass(frozen=True)
class GeneralisationResult:
    """`measure_generalisation`'s result; `to_dict()` is the JSON."""

    points: list[GeneralisationPoint]
    memorisation: dict  # the smallest n's windows, most memorised first: {n, windows}
    config: GeneralisationConfig
    model_params: int
    seconds: float

    def to_dict(self) -> dict:
        return {
            "points": [asdict(p) for p in self.points],
            "memorisation": self.memorisation,
            "config": self.config.to_dict(),
            "loss_cap_bits": self.config.loss_cap_bits,
            "model_params": self.model_params,
            "seed": self.config.seed,
            "quick": self.config.mode == "quick",
            "seconds": self.seconds,
        }


def model_config(preset: str, window_bytes: int) -> GPTConfig:
    """The preset's architecture with a context of exactly one window."""
    presets = {DEFAULT_PRESET: MICRO, **MODEL_PRESETS}
    if preset not in presets:
        raise BitlensError(f"unknown preset {preset!r}; choose from {', '.join(presets)}")
    return replace(presets[preset], block_size=window_bytes)


def draw_supersample(
    train_bytes: torch.Tensor, n: int, window_bytes: int, rng: np.random.Generator
) -> torch.Tensor:
    """2n non-overlapping windows of window_bytes + 1 bytes, as (n, 2, window_bytes + 1) uint8."""
    span = window_bytes + 1
    slots = len(train_bytes) // span
    if 2 * n > slots:
        raise BitlensError(
            f"a supersample of n={n} needs {2 * n} windows of {span} bytes, but the training split "
            f"({len(train_bytes):,} bytes) holds only {slots}; use smaller sizes or a larger corpus"
        )
    starts = rng.choice(slots, size=2 * n, replace=False) * span
    idx = torch.as_tensor(starts)[:, None] + torch.arange(span)[None, :]
    return train_bytes[idx].view(n, 2, span)


def window_bits_per_byte(
    model: GPT, windows: torch.Tensor, smoothing: float, batch_size: int = 512
) -> np.ndarray:
    """Mean smoothed surprisal in bits of bytes 1..W of each (N, W + 1) window given the bytes
    before it, under (1 − ε)p + ε/256 with ε = `smoothing`: each at most log2(256/ε) bits."""
    surprisal, _ = window_scores(model, windows, batch_size=batch_size, smoothing=smoothing)
    return surprisal.mean(axis=1)


def train_on_mask(
    windows: torch.Tensor, mask: np.ndarray, cfg: GeneralisationConfig, seed: int
) -> tuple[np.ndarray, GPT]:
    """Train a fresh model on the masked member of each pair: the losses (n, 2) of all windows in
    bits/byte, and the model."""
    n = windows.shape[0]
    trained = windows[torch.arange(n), torch.as_tensor(mask)]  # (n, W + 1)
    torch.manual_seed(seed)
    model = GPT(model_config(cfg.preset, cfg.window_bytes))

    def batch_fn(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        w = trained[torch.randint(n, (cfg.batch_size,), generator=gen)].long()
        return w[:, :-1], w[:, 1:]

    tcfg = TrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_steps=max(1, cfg.steps // 10),
        eval_interval=cfg.steps + 1,
        log_interval=cfg.steps,
        checkpoint_interval=cfg.steps + 1,
        seed=seed,
    )
    train(model, trained, tcfg, batch_fn=batch_fn)
    return window_bits_per_byte(model, windows.view(2 * n, -1), cfg.smoothing).reshape(n, 2), model


BOUND_PRECISIONS = (2, 4, 8)  # bits per weight tried for the compression bound's weights file


def compression_bound(model: GPT, trained: torch.Tensor, cfg: GeneralisationConfig) -> dict:
    """The Occam bound (bits/byte) of `model`'s expected smoothed loss from its n training windows
    `trained` (n, W + 1): the smallest over BOUND_PRECISIONS, the choice paid with log2 of their
    count in the code length. Keys: compression_bound_bits_per_byte, compression_bound_weights_bits
    (the file, in bits), compression_bound_precision_bits, compression_bound_train_bits_per_byte
    (the quantised model's smoothed training loss)."""
    best: dict | None = None
    for b in BOUND_PRECISIONS:
        quantised, tensors = quantised_model(model, dict.fromkeys(model_state(model), b))
        file_bits = 8.0 * len(encode_weights(tensors, model.config)) + math.log2(len(BOUND_PRECISIONS))
        loss = float(window_bits_per_byte(quantised, trained, cfg.smoothing).mean())
        bound = compression_bound_bits_per_byte(file_bits, trained.shape[0], loss, cfg.smoothing)
        if best is None or bound < best["compression_bound_bits_per_byte"]:
            best = {
                "compression_bound_bits_per_byte": bound,
                "compression_bound_weights_bits": file_bits,
                "compression_bound_precision_bits": b,
                "compression_bound_train_bits_per_byte": loss,
            }
    assert best is not None
    return best


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (ties broken by order; the losses are continuous)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _membership_surprisal_correlation(losses: np.ndarray, masks: np.ndarray) -> float | None:
    """Spearman correlation of a window's membership bits with its held-out surprisal.

    Each is measured on its own half of the complementary mask pairs: the held-out loss enters
    both, so on the same runs its noise alone would correlate them. None with fewer than 4 masks.
    """
    pair = np.arange(len(masks)) // 2
    first = pair % 2 == 0
    if first.all():
        return None
    gain = membership(losses[~first], masks[~first]).membership_bits_per_byte
    reference = membership(losses[first], masks[first]).reference_bits_per_byte
    return _spearman(gain.ravel(), reference.ravel())


def measure_generalisation(
    data: bytes, config: GeneralisationConfig, progress: bool = False
) -> GeneralisationResult:
    """The supersample experiment on `data`'s training split, in bits (see the module docstring).

    Per n: the measured gap and its CMI bound (bits/byte, with intervals), the CMI (bits) against
    its permutation null, and the Spearman correlation of membership bits with held-out surprisal
    (on disjoint halves of the trainings); the memorisation view lists the smallest n's windows,
    most memorised first.
    """
    cfg = config
    if not cfg.sizes or min(cfg.sizes) < 1:
        raise BitlensError(f"sizes must be positive window counts, got {cfg.sizes}")
    if cfg.masks < 2 or cfg.masks % 2:
        raise BitlensError(f"the number of masks must be even and at least 2, got {cfg.masks}")
    if cfg.supersamples < 1 or cfg.null_draws < 1:
        raise BitlensError("supersamples and null_draws must be at least 1")
    if not 0.0 < cfg.smoothing <= 1.0:
        raise BitlensError(f"the smoothing ε must lie in (0, 1], got {cfg.smoothing}")
    train_bytes = split_corpus(data, cfg.window_bytes).train
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    total = len(cfg.sizes) * cfg.supersamples * cfg.masks
    try:
        with progress_bar(total, "f-CMI trainings", enabled=progress) as bar:
            measured = [_measure_size(train_bytes, n, cfg, rng, bar) for n in sorted(cfg.sizes)]
    finally:
        torch.set_num_threads(threads_before)
    return GeneralisationResult(
        points=[point for point, _ in measured],
        memorisation=measured[0][1],
        config=cfg,
        model_params=GPT(model_config(cfg.preset, cfg.window_bytes)).num_params(),
        seconds=time.perf_counter() - t0,
    )


def _measure_size(
    train_bytes: torch.Tensor, n: int, cfg: GeneralisationConfig, rng: np.random.Generator, bar
) -> tuple[GeneralisationPoint, dict]:
    """One n: every supersample's trainings → the point, and the first supersample's windows."""
    estimates: list[CmiEstimate] = []
    nulls: list[CmiNull] = []
    correlations, memorisation = [], None
    occam: dict = {}
    for s in range(cfg.supersamples):
        windows = draw_supersample(train_bytes, n, cfg.window_bytes, rng)
        masks = complementary_masks(cfg.masks, n, rng)
        losses = np.empty((cfg.masks, n, 2))
        for j in range(cfg.masks):
            # A mask and its complement (j, j + 1) share a training seed (common random numbers):
            # a learner that ignores its data then shows exactly zero gap and zero CMI.
            run_seed = int(np.random.SeedSequence([cfg.seed, n, s, j // 2]).generate_state(1)[0])
            losses[j], model = train_on_mask(windows, masks[j], cfg, run_seed)
            if not occam:  # the first model's weights file: the compression bound
                trained = windows[torch.arange(n), torch.as_tensor(masks[j])]
                occam = compression_bound(model, trained, cfg)
            bar.advance(1, status=f"n={n}")
        estimates.append(estimate_cmi(losses, masks, cfg.loss_cap_bits))
        null_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, n, s, 1]))
        nulls.append(permutation_null(losses, masks, cfg.null_draws, null_rng))
        correlations.append(_membership_surprisal_correlation(losses, masks))
        memorisation = memorisation or _memorised_windows(windows, membership(losses, masks), n)
    assert memorisation is not None  # cfg.supersamples >= 1
    known = [c for c in correlations if c is not None]
    point = GeneralisationPoint(
        n=n,
        **_cmi_figures(estimates, nulls, cfg),
        # None: fewer than 4 masks, no disjoint halves
        membership_surprisal_correlation=float(np.mean(known)) if len(known) == len(correlations) else None,
        **occam,
        compression_bound_vacuous=occam["compression_bound_bits_per_byte"] >= 8.0,
    )
    return point, memorisation


def cmi_status(cmi_ci95: list[float], p_value: float, floor_bits_per_window: float, n: int) -> str:
    """Where the CMI estimate sits: "floor" (the null is not rejected at SIGNIFICANCE), "ceiling"
    (its interval reaches 1 bit per pair less the floor: the masks are as readable as the
    estimator can show), else "informative"."""
    if p_value >= SIGNIFICANCE:
        return "floor"
    if cmi_ci95[1] >= n * (1.0 - floor_bits_per_window):
        return "ceiling"
    return "informative"


def _cmi_figures(estimates: list[CmiEstimate], nulls: list[CmiNull], cfg: GeneralisationConfig) -> dict:
    """The point's figures from its supersamples: means, intervals across them, the null."""
    n = estimates[0].n

    def mean_and_ci(key: str) -> tuple[float, list[float]]:
        ci = bootstrap_ci([getattr(e, key) for e in estimates], seed=cfg.seed)
        return ci.estimate, [ci.low, ci.high]

    gap, gap_ci = mean_and_ci("gap_bits_per_byte")
    bound, bound_ci = mean_and_ci("bound_bits_per_byte")
    cmi, cmi_ci = mean_and_ci("cmi_bits")
    # Independent null draws per supersample, averaged draw by draw: the null of the mean.
    null_of_mean = np.mean([null.cmi_bits for null in nulls], axis=0)
    floor = float(null_of_mean.mean())
    p_value = permutation_p_value(null_of_mean, cmi)
    status = cmi_status(cmi_ci, p_value, floor / n, n)
    pair_p = np.concatenate([null.pair_p_values for null in nulls])
    return {
        "gap_bits_per_byte": gap,
        "gap_ci95": gap_ci,
        "bound_bits_per_byte": bound,
        "bound_ci95": bound_ci,
        "cmi_bits": cmi,
        "cmi_ci95": cmi_ci,
        "cmi_bits_per_window": cmi / n,
        "cmi_bits_per_supersample": [e.cmi_bits for e in estimates],
        "cmi_null_floor_bits": floor,
        "cmi_floor_bits_per_window": floor / n,
        "cmi_null_p_value": p_value,
        "cmi_pairs_above_null": float((pair_p < SIGNIFICANCE).mean()),
        "cmi_status": status,
        "informative": status == "informative",
        "vacuous": bound >= cfg.loss_cap_bits,
        "loss_cap_bits": cfg.loss_cap_bits,
        "n_masks": cfg.masks,
        "n_supersamples": len(estimates),
        "n_seeds": len(estimates),
        "train_bits_per_byte": float(np.mean([e.train_bits_per_byte for e in estimates])),
        "heldout_bits_per_byte": float(np.mean([e.heldout_bits_per_byte for e in estimates])),
    }


def _memorised_windows(windows: torch.Tensor, m: Membership, n: int) -> dict:
    """Every window of one supersample, most memorised first: its predicted bytes and their bits."""
    rows: list[dict[str, Any]] = []
    predicted = windows.shape[2] - 1
    for i in range(n):
        for member in (0, 1):
            gain = float(m.membership_bits_per_byte[i, member])
            rows.append(
                {
                    "text": bytes(windows[i, member, 1:].tolist()).decode("utf-8", errors="replace"),
                    "membership_bits": gain * predicted,  # the whole window's loss drop
                    "membership_bits_per_byte": gain,
                    "reference_bits_per_byte": float(m.reference_bits_per_byte[i, member]),
                }
            )
    rows.sort(key=lambda r: -r["membership_bits_per_byte"])
    return {"n": n, "windows": rows}


def _yerr(values: list[float], intervals: list[list[float]]) -> np.ndarray:
    """Error-bar lengths (2, N) below and above each value from its [low, high] interval."""
    v, ci = np.asarray(values), np.asarray(intervals).reshape(-1, 2)
    return np.clip(np.stack([v - ci[:, 0], ci[:, 1] - v]), 0.0, None)


def plot_generalisation(result: dict, path: str | Path) -> list[Path]:
    """Three panels from `measure_generalisation`'s dict, saved as PNG and SVG next to `path`:
    gap and bound vs n with their intervals and the loss cap (bits/byte); CMI per window pair vs
    n with its interval, the permutation floor and 1 bit, informative points filled (bits); and
    each window's membership bits vs its held-out surprisal (bits/byte). Returns the two paths.
    """
    from bitlens.plotting import new_figure, plain_ticks, save_figure

    pts = sorted(result["points"], key=lambda p: p["n"])
    ns = [p["n"] for p in pts]
    gaps = [p["gap_bits_per_byte"] for p in pts]
    bounds = [p["bound_bits_per_byte"] for p in pts]
    fig, (ax, ax_cmi, ax_mem) = new_figure(ncols=3, width=14, height=4)
    ax.errorbar(
        ns, bounds, yerr=_yerr(bounds, [p["bound_ci95"] for p in pts]), fmt="o-", capsize=3, label="CMI bound"
    )
    ax.errorbar(
        ns,
        gaps,
        yerr=_yerr(gaps, [p["gap_ci95"] for p in pts]),
        fmt="s-",
        capsize=3,
        label="measured gap (held-out − train)",
    )
    cap = pts[0]["loss_cap_bits"]
    ax.axhline(cap, color="grey", ls=":", label=f"loss cap log2(256/ε) = {cap:.1f} (vacuous above)")
    if min(gaps + bounds) > 0:
        ax.set_yscale("log")
    else:
        ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("bits per byte")
    ax.set_title("Generalisation gap and its CMI bound (smoothed loss)")
    ax.legend(fontsize="small")
    per_pair = [p["cmi_bits_per_window"] for p in pts]
    ax_cmi.errorbar(
        ns,
        per_pair,
        yerr=_yerr(per_pair, [[c / p["n"] for c in p["cmi_ci95"]] for p in pts]),
        fmt="o-",
        capsize=3,
        mfc="white",
        label="CMI estimate (open: at floor or 1 bit)",
    )
    informative = [(p["n"], v) for p, v in zip(pts, per_pair, strict=True) if p["informative"]]
    if informative:
        ax_cmi.plot(*zip(*informative, strict=True), "o", color="C0", label="informative")
    ax_cmi.plot(
        ns,
        [p["cmi_floor_bits_per_window"] for p in pts],
        "--",
        color="grey",
        label="permutation null (floor)",
    )
    ax_cmi.axhline(1.0, color="grey", ls=":", lw=0.8)
    ax_cmi.set_ylim(0, 1.05)
    ax_cmi.set_ylabel("bits per window pair (max 1)")
    ax_cmi.set_title("Information the models hold about their mask")
    ax_cmi.legend(fontsize="small")
    for a in (ax, ax_cmi):
        a.set_xscale("log")
        plain_ticks(a.xaxis, ns)
        a.set_xlabel("training windows n")
    mem = result.get("memorisation")
    if mem:
        ref = [w["reference_bits_per_byte"] for w in mem["windows"]]
        gain = [w["membership_bits_per_byte"] for w in mem["windows"]]
        ax_mem.scatter(ref, gain, s=8, alpha=0.6)
        ax_mem.axhline(0, color="grey", lw=0.5)
        ax_mem.set_title(f"What gets memorised (n={mem['n']})")
    ax_mem.set_xlabel("surprisal when held out (bits/byte)")
    ax_mem.set_ylabel("loss drop when trained on (bits/byte)")
    return save_figure(fig, path)
