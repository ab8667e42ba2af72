"""Information gained per token during training: which bytes does gradient descent encode?

A model trains with ≈15 log-spaced checkpoints; at each, the same held-out bytes are scored
(surprisal in bits). Each held-out token is classed by its loss at a start checkpoint and at the
end, High or Low against a threshold, into L→L, H→L, L→H, H→H as Rho-1 (Lin et al. 2024) does,
next to its 51/26/12/11 %. Information gained by a token = its start surprisal − end surprisal
(bits); we total it per class, and bin it by byte frequency (in the training data) and by start
surprisal.

At step 0 a model is near-uniform (≈8 bits on every byte), so every token would start High.
Rho-1 starts from a pretrained model; by default we start at the first checkpoint whose held-out
bits/byte is at or below the unigram entropy of the training bytes: the model has learned byte
frequencies, and what it gains from there on is information from context.
The threshold is the final model's mean held-out loss (bits/byte): a token is Low when the model
codes it in fewer bits than the average byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bitlens.data import get_batch, split_corpus
from bitlens.errors import BitlensError
from bitlens.evaluate import score_bytes
from bitlens.measures.sources import distribution_entropy_bits
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import (
    TRAIN_PRESETS,
    TrainConfig,
    cross_entropy_loss,
    lr_at,
    make_optimizer,
    step_generator,
)

RHO1_PROPORTIONS = {"L->L": 0.51, "H->L": 0.26, "L->H": 0.12, "H->H": 0.11}
CLASSES = tuple(RHO1_PROPORTIONS)


@dataclass(frozen=True)
class DynamicsConfig:
    """Training length (steps), checkpoints, and the held-out set (bytes) that is scored."""

    steps: int | None = None  # None: the preset's training length
    checkpoints: int = 15
    heldout_bytes: int = 65_536
    start_step: int | None = None  # None: the first checkpoint at or below the unigram entropy
    threshold_bits: float | None = None  # None: the final mean held-out loss
    bins: int = 8
    preset: str = "tiny"  # the model trained (see MODEL_PRESETS), with its TRAIN_PRESETS schedule
    seed: int = 0

    @classmethod
    def quick(cls) -> DynamicsConfig:
        return cls(steps=150, heldout_bytes=4_096, checkpoints=10)

    @classmethod
    def full(cls) -> DynamicsConfig:
        return cls()

    def to_dict(self) -> dict:
        """The settings, as the result records them (preset and seed sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k not in ("preset", "seed")}


@dataclass(frozen=True)
class TokenDynamics:
    """What training gained on each held-out token, in bits, by Rho-1 class and by bins."""

    tokens: int
    params: int
    start_step: int
    end_step: int
    threshold_bits: float
    unigram_bits_per_byte: float
    classes: dict  # {class: {proportion, tokens, information_gained_bits, mean_start/end_bits}}
    rho1_proportions: dict[str, float]
    information_gained_bits: float  # Σ start − end surprisal
    information_gained_from_init_bits: float  # Σ step-0 − end surprisal
    checkpoints: list[dict]  # {step, tokens_trained, bits_per_byte}
    by_frequency: list[dict]
    by_start_surprisal: list[dict]
    spearman_start_surprisal_vs_gain: float
    spearman_frequency_vs_gain: float
    gain_share_of_top20pct_start_surprisal: float | None
    model: dict  # the GPTConfig trained
    config: dict  # DynamicsConfig.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DynamicsResult:
    """`measure_dynamics`'s result: the preset and seed, then the token dynamics."""

    preset: str
    seed: int
    dynamics: TokenDynamics

    def to_dict(self) -> dict:
        return {"preset": self.preset, "seed": self.seed, **self.dynamics.to_dict()}


def checkpoint_steps(steps: int, n: int) -> list[int]:
    """Step 0 and ≈n−1 log-spaced steps in [1, steps] (the last one is `steps`)."""
    logs = np.unique(np.round(np.geomspace(1, steps, max(2, n - 1))).astype(int))
    return [0, *logs.tolist()]


def train_with_checkpoints(
    model: GPT,
    train_data: torch.Tensor,
    cfg: TrainConfig,
    at_steps: list[int],
    on_checkpoint,
    progress: bool = False,
) -> None:
    """The trainer's loop (AdamW, warm-up + cosine, clipping), calling on_checkpoint(step)
    after each step in `at_steps` (0 = before training). Same batches as `train` for a seed.
    """
    block = model.config.block_size
    opt = make_optimizer(model, cfg)
    wanted = set(at_steps)
    if 0 in wanted:
        on_checkpoint(0)
    with progress_bar(cfg.steps, "training", enabled=progress) as bar:
        for step in range(cfg.steps):
            model.train()
            x, y = get_batch(train_data, cfg.batch_size, block, step_generator(cfg.seed, step))
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            loss = cross_entropy_loss(model, (x, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if step + 1 in wanted:
                model.eval()
                on_checkpoint(step + 1)
            bar.advance(1)
    model.eval()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def _binned(
    key: np.ndarray, start: np.ndarray, end: np.ndarray, edges: np.ndarray, lo_name: str, hi_name: str
) -> list[dict]:
    """Per bin of `key`: token count, mean start/end loss and information gained (bits)."""
    idx = np.clip(np.searchsorted(edges, key, side="right") - 1, 0, len(edges) - 2)
    out = []
    for i in range(len(edges) - 1):
        m = idx == i
        if not m.any():
            continue
        gain = start[m] - end[m]
        out.append(
            {
                lo_name: float(edges[i]),
                hi_name: float(edges[i + 1]),
                "tokens": int(m.sum()),
                "mean_start_bits": float(start[m].mean()),
                "mean_end_bits": float(end[m].mean()),
                "mean_gain_bits": float(gain.mean()),
                "information_gained_bits": float(gain.sum()),
            }
        )
    return out


def classify(start_bits: np.ndarray, end_bits: np.ndarray, threshold_bits: float) -> dict:
    """Rho-1's four classes: proportion, token count and information gained (Σ start − end)."""
    hi_start, hi_end = start_bits >= threshold_bits, end_bits >= threshold_bits
    masks = {
        "L->L": ~hi_start & ~hi_end,
        "H->L": hi_start & ~hi_end,
        "L->H": ~hi_start & hi_end,
        "H->H": hi_start & hi_end,
    }
    n = len(start_bits)
    return {
        c: {
            "proportion": float(m.sum() / n),
            "tokens": int(m.sum()),
            "information_gained_bits": float((start_bits[m] - end_bits[m]).sum()),
            "mean_start_bits": float(start_bits[m].mean()) if m.any() else None,
            "mean_end_bits": float(end_bits[m].mean()) if m.any() else None,
        }
        for c, m in masks.items()
    }


def token_dynamics(
    data: bytes,
    model_cfg: GPTConfig,
    train_cfg: TrainConfig,
    cfg: DynamicsConfig,
    progress: bool = False,
) -> TokenDynamics:
    """Train on the head of `data`, score held-out bytes at log-spaced checkpoints, summarise.

    Training follows `train_cfg` (its seed included); `cfg` says what is scored and how."""
    split = split_corpus(data, model_cfg.block_size)
    heldout = split.val[: cfg.heldout_bytes]
    at = checkpoint_steps(train_cfg.steps, cfg.checkpoints)
    torch.manual_seed(train_cfg.seed)
    model = GPT(model_cfg)
    losses: dict[int, np.ndarray] = {}

    def score(step: int) -> None:
        losses[step] = score_bytes(model, heldout).surprisal_bits

    train_with_checkpoints(model, split.train, train_cfg, at, score, progress=progress)
    steps = sorted(losses)
    counts = np.bincount(split.train.numpy(), minlength=256).astype(float)
    unigram_bits = float(distribution_entropy_bits(counts / counts.sum()))
    if cfg.start_step is not None:
        start_step = max(s for s in steps if s <= cfg.start_step)
    else:  # the first checkpoint that codes as well as byte frequencies (else the last but one)
        start_step = next((s for s in steps if losses[s].mean() <= unigram_bits), steps[-2])
    init, start, end = losses[0], losses[start_step], losses[steps[-1]]
    threshold = cfg.threshold_bits if cfg.threshold_bits is not None else float(end.mean())

    targets = split.val[: len(heldout)].numpy()
    freq = counts[targets] / counts.sum()  # each held-out byte's frequency in the training data
    freq = np.maximum(freq, 0.5 / counts.sum())  # unseen bytes sit at half a count
    freq_edges = np.geomspace(freq.min(), freq.max() * (1 + 1e-9), cfg.bins + 1)
    s_edges = np.quantile(start, np.linspace(0, 1, cfg.bins + 1))
    s_edges[-1] += 1e-9
    gain = start - end
    top = start >= np.quantile(start, 0.8)
    tokens_per_step = train_cfg.batch_size * model_cfg.block_size
    return TokenDynamics(
        tokens=int(len(heldout)),
        params=model.num_params(),
        start_step=start_step,
        end_step=steps[-1],
        threshold_bits=threshold,
        unigram_bits_per_byte=unigram_bits,
        classes=classify(start, end, threshold),
        rho1_proportions=dict(RHO1_PROPORTIONS),
        information_gained_bits=float(gain.sum()),
        information_gained_from_init_bits=float((init - end).sum()),
        checkpoints=[
            {"step": s, "tokens_trained": s * tokens_per_step, "bits_per_byte": float(losses[s].mean())}
            for s in steps
        ],
        by_frequency=_binned(freq, start, end, freq_edges, "frequency_lo", "frequency_hi"),
        by_start_surprisal=_binned(start, start, end, s_edges, "start_bits_lo", "start_bits_hi"),
        spearman_start_surprisal_vs_gain=_spearman(start, gain),
        spearman_frequency_vs_gain=_spearman(freq, gain),
        gain_share_of_top20pct_start_surprisal=float(gain[top].sum() / gain.sum()) if gain.sum() else None,
        model=model_cfg.to_dict(),
        config=cfg.to_dict(),
    )


def measure_dynamics(
    data: bytes,
    config: DynamicsConfig,
    progress: bool = False,
    model_config: GPTConfig | None = None,
) -> DynamicsResult:
    """Per-token information gained while training a `config.preset` model on `data`, in bits.

    `model_config` replaces the preset's architecture (the preset still names the schedule;
    an unknown preset then trains with tiny's).
    """
    if model_config is None:
        if config.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {config.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        model_config = MODEL_PRESETS[config.preset]
    base = TRAIN_PRESETS.get(config.preset, TRAIN_PRESETS["tiny"])
    train_cfg = replace(base, steps=config.steps or base.steps, seed=config.seed)
    dynamics = token_dynamics(data, model_config, train_cfg, config, progress=progress)
    return DynamicsResult(preset=config.preset, seed=config.seed, dynamics=dynamics)


def plot_dynamics(result: dict, path: str | Path) -> list[Path]:
    """Class proportions beside Rho-1's, held-out loss over training, and gain vs start surprisal."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2, ax3) = new_figure(ncols=3, width=15)
    x = np.arange(len(CLASSES))
    ours = [result["classes"][c]["proportion"] for c in CLASSES]
    ax1.bar(x - 0.2, ours, width=0.4, label="bitlens")
    ax1.bar(x + 0.2, [result["rho1_proportions"][c] for c in CLASSES], width=0.4, label="Rho-1")
    for xi, c in zip(x, CLASSES, strict=True):
        ax1.annotate(
            f"{result['classes'][c]['information_gained_bits'] / 8192:,.1f} KiB",
            (xi - 0.2, result["classes"][c]["proportion"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax1.set_xticks(x, CLASSES)
    ax1.set_ylabel("share of held-out tokens")
    ax1.set_title(f"classes (label: information gained), threshold {result['threshold_bits']:.2f} bits")
    ax1.legend()
    cps = [c for c in result["checkpoints"] if c["step"] > 0]
    ax2.plot([c["step"] for c in cps], [c["bits_per_byte"] for c in cps], marker="o")
    ax2.axvline(result["start_step"], color="grey", ls=":", label="start checkpoint")
    ax2.set_xscale("log")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("held-out bits/byte")
    ax2.legend()
    bins = result["by_start_surprisal"]
    ax3.plot([b["mean_start_bits"] for b in bins], [b["mean_gain_bits"] for b in bins], marker="o")
    ax3.set_xlabel("start surprisal (bits, mean of each equal-count bin)")
    ax3.set_ylabel("mean information gained (bits/token)")
    ax3.set_title(f"Spearman ρ = {result['spearman_start_surprisal_vs_gain']:.2f}")
    return save_figure(fig, path)
