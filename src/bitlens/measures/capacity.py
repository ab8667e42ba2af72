"""Memorisation capacity in bits per parameter, after Morris et al. (2025).

N sequences of S uniformly random bytes carry exactly 8·N·S bits and nothing generalises from
them, so every bit a model saves on them is memorised: memorised bits = Σ_sequences
max(0, 8·S − surprisal of the sequence in bits). We train each model size to (near) saturation
on a sweep of N, full batch, no weight decay. Memorised bits first grow linearly (≈ 8·N·S, all
of it) and then plateau at the model's capacity; bits per parameter = the plateau (the largest
memorised total over the sweep) / parameters, a lower bound unless `plateau_reached` (the last
step of the sweep added < 5 % memorised bits). References: Morris et al. ≈3.6 bits/param (GPT
models trained to saturation), Allen-Zhu & Li ≈2 bits/param (at 1000 exposures per fact).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bitlens.data import START_BYTE
from bitlens.evaluate import window_scores
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

REFERENCE_BITS_PER_PARAMETER = {"morris_2025": 3.6, "allen_zhu_li": 2.0}
BITS_PER_RANDOM_BYTE = 8.0
PLATEAU_GROWTH = 0.05  # the last step of the sweep adds less than this share: a plateau


@dataclass(frozen=True)
class CapacityConfig:
    """Model sizes as (n_layer, n_embd), the sweep of sequence counts, and training length.

    `steps` full-batch steps means every sequence is seen `steps` times (exposures).
    """

    sizes: tuple[tuple[int, int], ...] = ((1, 8), (1, 16), (2, 16))
    n_sequences: tuple[int, ...] = (8, 32, 128, 256, 512)
    seq_len: int = 32
    steps: int = 400
    lr: float = 1e-2
    n_head: int = 2
    seed: int = 0

    @classmethod
    def quick(cls) -> CapacityConfig:
        return cls(sizes=((1, 8), (1, 16)), n_sequences=(8, 32, 128), steps=300)

    @classmethod
    def full(cls) -> CapacityConfig:
        return cls()

    def to_dict(self) -> dict:
        """The settings, as the result records them (the seed sits beside them)."""
        return {k: v for k, v in asdict(self).items() if k != "seed"}


def random_sequences(n: int, seq_len: int, seed: int) -> torch.Tensor:
    """(n, seq_len) int64 uniformly random bytes, a pure function of the seed."""
    return torch.randint(0, 256, (n, seq_len), generator=torch.Generator().manual_seed(seed))


def _windows(seqs: torch.Tensor) -> torch.Tensor:
    """(n, S + 1) windows: START_BYTE, then the sequence (so every byte of it is predicted)."""
    return torch.cat([torch.full((len(seqs), 1), START_BYTE, dtype=torch.long), seqs], 1)


def sequence_surprisal_bits(model: GPT, seqs: torch.Tensor) -> np.ndarray:
    """Each sequence's total surprisal −log2 p(sequence) under `model`, in bits (eval mode; the
    model's mode is restored)."""
    surprisal, _ = window_scores(model, _windows(seqs), batch_size=len(seqs))
    return torch.from_numpy(surprisal).sum(1).numpy()  # summed as a float64 tensor, as before


def memorised_bits(surprisal_bits_per_sequence: np.ndarray, seq_len: int) -> float:
    """Σ over sequences of max(0, 8·S − surprisal in bits): what the model stores about them."""
    saved = BITS_PER_RANDOM_BYTE * seq_len - surprisal_bits_per_sequence
    return float(np.clip(saved, 0.0, None).sum())


@dataclass(frozen=True)
class CapacityPoint:
    n_sequences: int
    data_bits: float  # 8 · N · S, the entropy of the training set
    memorised_bits: float
    train_bits_per_byte: float  # mean surprisal of the training bytes (8 = nothing stored)


def plateau_reached(points: list[CapacityPoint], growth: float = PLATEAU_GROWTH) -> bool:
    """Memorised bits stopped growing: the last (largest) dataset of the sweep adds less than
    `growth` × the memorised bits of the one before it. False with fewer than two points."""
    if len(points) < 2:
        return False
    before, last = points[-2].memorised_bits, points[-1].memorised_bits
    return last - before < growth * before


@dataclass(frozen=True)
class ModelCapacity:
    n_layer: int
    n_embd: int
    params: int
    non_embedding_params: int
    bits_per_parameter: float  # plateau (max memorised over the sweep) / params
    bits_per_non_embedding_parameter: float
    capacity_bits: float
    plateau_reached: bool  # memorised bits stopped growing (see `plateau_reached`)
    points: list[CapacityPoint]


def train_memoriser(config: GPTConfig, seqs: torch.Tensor, cfg: CapacityConfig) -> GPT:
    """Train a fresh model on `seqs`, full batch, `cfg.steps` steps, no weight decay."""
    torch.manual_seed(cfg.seed)
    model = GPT(config)
    x = _windows(seqs)[:, :-1]
    train_cfg = TrainConfig(
        steps=cfg.steps,
        batch_size=len(seqs),
        lr=cfg.lr,
        weight_decay=0.0,
        warmup_steps=min(20, cfg.steps),
        seed=cfg.seed,
        eval_interval=10**9,
        log_interval=10**9,
        checkpoint_interval=10**9,
    )
    train(model, None, train_cfg, batch_fn=lambda step, gen: (x, seqs))
    return model


def model_capacity(n_layer: int, n_embd: int, cfg: CapacityConfig, on_point=None) -> ModelCapacity:
    """Sweep the number of random sequences for one model size; the plateau in bits/param."""
    config = GPTConfig(block_size=cfg.seq_len, n_layer=n_layer, n_head=cfg.n_head, n_embd=n_embd)
    points = []
    params = non_emb = 0
    for n in cfg.n_sequences:
        seqs = random_sequences(n, cfg.seq_len, seed=cfg.seed * 1_000_003 + n)
        model = train_memoriser(config, seqs, cfg)
        surprisal = sequence_surprisal_bits(model, seqs)
        points.append(
            CapacityPoint(
                n_sequences=n,
                data_bits=BITS_PER_RANDOM_BYTE * n * cfg.seq_len,
                memorised_bits=memorised_bits(surprisal, cfg.seq_len),
                train_bits_per_byte=float(surprisal.sum() / (n * cfg.seq_len)),
            )
        )
        params, non_emb = model.num_params(), model.num_params() - model.embedding_params()
        if on_point:
            on_point()
    capacity = max(p.memorised_bits for p in points)
    return ModelCapacity(
        n_layer=n_layer,
        n_embd=n_embd,
        params=params,
        non_embedding_params=non_emb,
        bits_per_parameter=capacity / params,
        bits_per_non_embedding_parameter=capacity / non_emb,
        capacity_bits=capacity,
        plateau_reached=plateau_reached(points),
        points=points,
    )


@dataclass(frozen=True)
class CapacityResult:
    """`measure_capacity`'s result: one ModelCapacity per size, beside the published figures."""

    seed: int
    models: list[ModelCapacity]
    reference_bits_per_parameter: dict[str, float]
    config: CapacityConfig

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "models": [asdict(m) for m in self.models],
            "reference_bits_per_parameter": dict(self.reference_bits_per_parameter),
            "config": self.config.to_dict(),
        }


def measure_capacity(config: CapacityConfig, progress: bool = False) -> CapacityResult:
    """Memorisation capacity of each model size in `config` on uniformly random bytes, in
    bits/param, beside Morris et al. (≈3.6) and Allen-Zhu & Li (≈2)."""
    models = []
    with progress_bar(len(config.sizes) * len(config.n_sequences), "capacity", enabled=progress) as bar:
        for n_layer, n_embd in config.sizes:
            models.append(model_capacity(n_layer, n_embd, config, on_point=lambda: bar.advance(1)))
    return CapacityResult(
        seed=config.seed,
        models=models,
        reference_bits_per_parameter=dict(REFERENCE_BITS_PER_PARAMETER),
        config=config,
    )


def plot_capacity(result: dict, path: str | Path) -> list[Path]:
    """Memorised bits vs data bits per model size (linear, then a plateau), with reference lines."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=11)
    all_data = [p["data_bits"] for m in result["models"] for p in m["points"]]
    lim = np.array([min(all_data), max(all_data)])
    ax1.plot(lim, lim, color="grey", ls=":", label="all of it (8 bits/byte)")
    for m in result["models"]:
        ax1.plot(
            [p["data_bits"] for p in m["points"]],
            [p["memorised_bits"] for p in m["points"]],
            marker="o",
            label=f"{m['n_layer']}×{m['n_embd']}, {m['params']:,} params",
        )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("bits in the random training set")
    ax1.set_ylabel("memorised bits")
    ax1.legend(fontsize=8)
    params = [m["params"] for m in result["models"]]
    ax2.plot(params, [m["bits_per_parameter"] for m in result["models"]], marker="o", label="bitlens")
    for (name, v), ls in zip(result["reference_bits_per_parameter"].items(), ("--", "-."), strict=True):
        ax2.axhline(v, color="grey", ls=ls, label=name)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("bits per parameter (plateau)")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
