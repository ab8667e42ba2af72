"""Memorisation capacity in bits per parameter, after Morris et al. (2025).

N sequences of S uniformly random bytes carry exactly 8·N·S bits and nothing generalises from
them, so every bit a model saves on them is memorised: memorised bits = Σ_sequences
max(0, 8·S − surprisal of the sequence in bits). We train each model size to (near) saturation
on a sweep of N, full batch, no weight decay. Memorised bits first grow linearly (≈ 8·N·S, all
of it) and then plateau at the model's capacity; bits per parameter = the plateau (the largest
memorised total over the sweep) / parameters. References: Morris et al. ≈3.6 bits/param (GPT
models trained to saturation), Allen-Zhu & Li ≈2 bits/param (at 1000 exposures per fact).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bitlens.data import START_BYTE
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train
from bitlens.units import surprisal_bits

REFERENCE_BITS_PER_PARAMETER = {"morris_2025": 3.6, "allen_zhu_li": 2.0}
BITS_PER_RANDOM_BYTE = 8.0


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

    def to_dict(self) -> dict:
        return asdict(self)


QUICK = CapacityConfig(sizes=((1, 8), (1, 16)), n_sequences=(8, 32, 128), steps=300)


def random_sequences(n: int, seq_len: int, seed: int) -> torch.Tensor:
    """(n, seq_len) int64 uniformly random bytes, a pure function of the seed."""
    return torch.randint(0, 256, (n, seq_len), generator=torch.Generator().manual_seed(seed))


def _inputs(seqs: torch.Tensor) -> torch.Tensor:
    """Each sequence's inputs: START_BYTE then all but its last byte (so every byte is scored)."""
    return torch.cat([torch.full((len(seqs), 1), START_BYTE, dtype=torch.long), seqs[:, :-1]], 1)


@torch.no_grad()
def sequence_surprisal_bits(model: GPT, seqs: torch.Tensor) -> np.ndarray:
    """Each sequence's total surprisal −log2 p(sequence) under `model`, in bits."""
    model.eval()
    return surprisal_bits(model(_inputs(seqs)), seqs).double().sum(1).numpy()


def memorised_bits(surprisal_bits_per_sequence: np.ndarray, seq_len: int) -> float:
    """Σ over sequences of max(0, 8·S − surprisal in bits): what the model stores about them."""
    saved = BITS_PER_RANDOM_BYTE * seq_len - surprisal_bits_per_sequence
    return float(np.clip(saved, 0.0, None).sum())


def _embedding_params(model: GPT) -> int:
    return model.wte.weight.numel() + model.wpe.weight.numel()


@dataclass
class CapacityPoint:
    n_sequences: int
    data_bits: float  # 8 · N · S, the entropy of the training set
    memorised_bits: float
    train_bits_per_byte: float  # mean surprisal of the training bytes (8 = nothing stored)


@dataclass
class ModelCapacity:
    n_layer: int
    n_embd: int
    params: int
    non_embedding_params: int
    bits_per_parameter: float  # plateau (max memorised over the sweep) / params
    bits_per_non_embedding_parameter: float
    capacity_bits: float
    plateau_reached: bool  # the largest N held > 1.5× the capacity (data exceeded what fits)
    points: list[CapacityPoint] = field(default_factory=list)


def train_memoriser(config: GPTConfig, seqs: torch.Tensor, cfg: CapacityConfig, seed: int) -> GPT:
    """Train a fresh model on `seqs`, full batch, `cfg.steps` steps, no weight decay."""
    torch.manual_seed(seed)
    model = GPT(config)
    x = _inputs(seqs)
    train_cfg = TrainConfig(steps=cfg.steps, batch_size=len(seqs), lr=cfg.lr, weight_decay=0.0,
                            warmup_steps=min(20, cfg.steps), seed=seed, eval_interval=10**9,
                            log_interval=10**9, checkpoint_interval=10**9)
    train(model, None, train_cfg, batch_fn=lambda step, gen: (x, seqs))
    return model


def model_capacity(n_layer: int, n_embd: int, cfg: CapacityConfig, seed: int = 0,
                   on_point=None) -> ModelCapacity:
    """Sweep the number of random sequences for one model size; the plateau in bits/param."""
    config = GPTConfig(block_size=cfg.seq_len, n_layer=n_layer, n_head=cfg.n_head, n_embd=n_embd)
    points = []
    params = non_emb = 0
    for n in cfg.n_sequences:
        seqs = random_sequences(n, cfg.seq_len, seed=seed * 1_000_003 + n)
        model = train_memoriser(config, seqs, cfg, seed)
        surprisal = sequence_surprisal_bits(model, seqs)
        points.append(CapacityPoint(
            n_sequences=n, data_bits=BITS_PER_RANDOM_BYTE * n * cfg.seq_len,
            memorised_bits=memorised_bits(surprisal, cfg.seq_len),
            train_bits_per_byte=float(surprisal.sum() / (n * cfg.seq_len))))
        params, non_emb = model.num_params(), model.num_params() - _embedding_params(model)
        if on_point:
            on_point()
    capacity = max(p.memorised_bits for p in points)
    return ModelCapacity(
        n_layer=n_layer, n_embd=n_embd, params=params, non_embedding_params=non_emb,
        bits_per_parameter=capacity / params, bits_per_non_embedding_parameter=capacity / non_emb,
        capacity_bits=capacity, plateau_reached=points[-1].data_bits > 1.5 * capacity, points=points,
    )


def measure_capacity(
    seed: int = 0,
    quick: bool = False,
    progress: bool = False,
    config: CapacityConfig | None = None,
) -> dict:
    """Memorisation capacity of several model sizes on uniformly random bytes, in bits/param.

    quick: 2 sizes × 3 dataset sizes × 300 steps; default: 3 sizes × 5 × 400.
    Keys: models (list of {params, bits_per_parameter, points, …}),
    reference_bits_per_parameter {morris_2025: 3.6, allen_zhu_li: 2.0}.
    """
    cfg = config or (QUICK if quick else CapacityConfig())
    models = []
    with progress_bar(len(cfg.sizes) * len(cfg.n_sequences), "capacity", enabled=progress) as bar:
        for n_layer, n_embd in cfg.sizes:
            models.append(model_capacity(n_layer, n_embd, cfg, seed, on_point=lambda: bar.advance(1)))
    return {
        "seed": seed,
        "models": [asdict(m) for m in models],
        "reference_bits_per_parameter": dict(REFERENCE_BITS_PER_PARAMETER),
        "config": cfg.to_dict(),
    }


def plot_capacity(result: dict, path: str | Path) -> list[Path]:
    """Memorised bits vs data bits per model size (linear, then a plateau), with reference lines."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=11)
    all_data = [p["data_bits"] for m in result["models"] for p in m["points"]]
    lim = np.array([min(all_data), max(all_data)])
    ax1.plot(lim, lim, color="grey", ls=":", label="all of it (8 bits/byte)")
    for m in result["models"]:
        ax1.plot([p["data_bits"] for p in m["points"]], [p["memorised_bits"] for p in m["points"]],
                 marker="o", label=f"{m['n_layer']}×{m['n_embd']}, {m['params']:,} params")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("bits in the random training set")
    ax1.set_ylabel("memorised bits")
    ax1.legend(fontsize=8)
    params = [m["params"] for m in result["models"]]
    ax2.plot(params, [m["bits_per_parameter"] for m in result["models"]], marker="o", label="bitlens")
    for (name, v), ls in zip(result["reference_bits_per_parameter"].items(), ("--", "-.")):
        ax2.axhline(v, color="grey", ls=ls, label=name)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("bits per parameter (plateau)")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
