"""Generalisation in bits: the f-CMI bound next to the measured gap, and what gets memorised.

How much does a model know about *its* training windows, and does that bound how much worse it
does on windows it never saw? For each training-set size n:
1. draw a supersample of 2n non-overlapping windows from the corpus's training split, in pairs;
2. train k models (k even; masks come in complementary pairs, and a mask and its complement share
   the training seed), each on one member of every pair chosen by its mask;
3. score every window under every model (bits per byte) and hand the losses to
   `bitlens.measures.cmi`: the measured gap (held-out − trained, bits/byte), the f-CMI bound on
   it, the CMI in bits, and each window's membership bits (the memorisation view).
Training length is a fixed number of steps for every n, so small n means many epochs.
"""

from __future__ import annotations

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
    Membership,
    complementary_masks,
    estimate_cmi,
    independence_floor_bits,
    membership,
)
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

# Each supersample trains `masks` models per size, so the default model is far smaller than `tiny`.
MICRO = GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)
DEFAULT_PRESET = "micro"


@dataclass(frozen=True)
class GeneralisationConfig:
    sizes: tuple[int, ...] = (75, 250, 1000, 4000)  # n: pairs per supersample = training windows
    supersamples: int = 1  # independent draws of the 2n windows per size
    masks: int = 8  # trainings per supersample (even: complementary pairs)
    steps: int = 300  # optimizer steps per training, whatever n is
    batch_size: int = 32  # windows per step
    window_bytes: int = 16  # bytes predicted per window (the model sees window_bytes of context)
    lr: float = 1e-2
    preset: str = DEFAULT_PRESET  # "micro" (2 × 32) or a bitlens model preset
    threads: int | None = 1  # torch threads while training; small models run best on one
    seed: int = 0  # windows, masks and training seeds
    mode: str = "full"  # "quick" or "full": the constructor used, recorded as the result's `quick`

    @classmethod
    def quick(cls) -> GeneralisationConfig:
        return cls(sizes=(25, 100, 400), masks=6, steps=120, mode="quick")

    @classmethod
    def full(cls) -> GeneralisationConfig:
        return cls()

    def to_dict(self) -> dict:
        """The settings, as the result records them (seed and mode sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k not in ("seed", "mode")}


@dataclass(frozen=True)
class GeneralisationPoint:
    """One training-set size n, averaged over its supersamples: losses in bits/byte."""

    n: int
    gap_bits_per_byte: float  # held-out − train
    bound_bits_per_byte: float  # the f-CMI bound on the gap
    cmi_bits: float
    cmi_bits_per_window: float
    train_bits_per_byte: float
    heldout_bits_per_byte: float
    cmi_floor_bits_per_window: float  # the estimate for pairs the models ignore
    membership_surprisal_correlation: float | None  # Spearman; None with fewer than 4 masks


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


def window_bits_per_byte(model: GPT, windows: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Mean surprisal in bits of bytes 1..W of each (N, W + 1) window given the bytes before it."""
    surprisal, _ = window_scores(model, windows, batch_size=batch_size)
    # averaged in float32, as the scorer's float32 figures always were here (same numbers)
    return torch.from_numpy(surprisal).float().mean(dim=1).double().numpy()


def train_on_mask(
    windows: torch.Tensor, mask: np.ndarray, cfg: GeneralisationConfig, seed: int
) -> np.ndarray:
    """Train a fresh model on the masked member of each pair; losses (n, 2) of all windows, bits/byte."""
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
    return window_bits_per_byte(model, windows.view(2 * n, -1)).reshape(n, 2)


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

    Per n: the measured gap and its f-CMI bound (bits/byte), the CMI (bits), and the Spearman
    correlation of membership bits with held-out surprisal (on disjoint halves of the trainings);
    the memorisation view lists the smallest n's windows, most memorised first.
    """
    cfg = config
    if not cfg.sizes or min(cfg.sizes) < 1:
        raise BitlensError(f"sizes must be positive window counts, got {cfg.sizes}")
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
    """One n: every supersample's trainings → the averaged point, and the first one's windows."""
    estimates, correlations, memorisation = [], [], None
    for s in range(cfg.supersamples):
        windows = draw_supersample(train_bytes, n, cfg.window_bytes, rng)
        masks = complementary_masks(cfg.masks, n, rng)
        losses = np.empty((cfg.masks, n, 2))
        for j in range(cfg.masks):
            # A mask and its complement (j, j + 1) share a training seed (common random numbers):
            # a learner that ignores its data then shows exactly zero gap and zero CMI.
            run_seed = int(np.random.SeedSequence([cfg.seed, n, s, j // 2]).generate_state(1)[0])
            losses[j] = train_on_mask(windows, masks[j], cfg, run_seed)
            bar.advance(1, status=f"n={n}")
        estimates.append(estimate_cmi(losses, masks))
        correlations.append(_membership_surprisal_correlation(losses, masks))
        memorisation = memorisation or _memorised_windows(windows, membership(losses, masks), n)
    assert memorisation is not None  # cfg.supersamples >= 1
    known = [c for c in correlations if c is not None]
    figures = (
        "gap_bits_per_byte",
        "bound_bits_per_byte",
        "cmi_bits",
        "cmi_bits_per_window",
        "train_bits_per_byte",
        "heldout_bits_per_byte",
    )
    point = GeneralisationPoint(
        n=n,
        **{key: float(np.mean([getattr(e, key) for e in estimates])) for key in figures},
        cmi_floor_bits_per_window=independence_floor_bits(cfg.masks),
        # None: fewer than 4 masks, no disjoint halves
        membership_surprisal_correlation=float(np.mean(known)) if len(known) == len(correlations) else None,
    )
    return point, memorisation


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


def plot_generalisation(result: dict, path: str | Path) -> list[Path]:
    """Three panels from `measure_generalisation`'s dict, saved as PNG and SVG next to `path`:
    gap and bound vs n (bits/byte), CMI per window vs n with the estimator's floor (bits), and
    each window's membership bits vs its held-out surprisal (bits/byte). Returns the two paths.
    """
    from bitlens.plotting import new_figure, plain_ticks, save_figure

    pts = sorted(result["points"], key=lambda p: p["n"])
    ns = [p["n"] for p in pts]
    gaps = [p["gap_bits_per_byte"] for p in pts]
    bounds = [p["bound_bits_per_byte"] for p in pts]
    fig, (ax, ax_cmi, ax_mem) = new_figure(ncols=3, width=14, height=4)
    ax.plot(ns, bounds, "o-", label="f-CMI bound")
    ax.plot(ns, gaps, "s-", label="measured gap (held-out − train)")
    if min(gaps + bounds) > 0:
        ax.set_yscale("log")
    else:
        ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("bits per byte")
    ax.set_title("Generalisation gap and its f-CMI bound")
    ax.legend()
    ax_cmi.plot(ns, [p["cmi_bits_per_window"] for p in pts], "o-", label="CMI estimate")
    ax_cmi.plot(
        ns,
        [p["cmi_floor_bits_per_window"] for p in pts],
        "--",
        color="grey",
        label="estimate for a pair the models ignore",
    )
    ax_cmi.set_ylim(0, 1.05)
    ax_cmi.set_ylabel("bits per window pair (max 1)")
    ax_cmi.set_title("Information the models hold about their mask")
    ax_cmi.legend()
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
