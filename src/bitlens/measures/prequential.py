"""Prequential (online) description length of a corpus, after Blier & Ollivier (2018).

The data is cut at doubling boundaries 0 = t_0 < t_1 < … < t_S = n. The first block is sent with
the uniform code (8 bits/byte). Then, for each s ≥ 1, a model trained on the first t_s bytes codes
block (t_s, t_{s+1}] at its surprisal. Sender and receiver run the same deterministic training,
so no weights are sent: L_preq = 8·t_1 + Σ_s Σ_{x ∈ block s+1} −log2 p_θs(x).

Training is continual: θ_s starts from θ_{s−1} and trains on the first t_s bytes only (a
deterministic function of what the receiver holds, so the code stays decodable). The final
model, trained on all n bytes, is not part of the code; its cross-entropy on the data gives
information_in_weights = L_preq − L_final (B&O §3.4), and the two-part codes
L_final + (32 or 16) × parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bitlens.data import bytes_to_tensor
from bitlens.errors import BitlensError
from bitlens.evaluate import score_bytes
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

UNIFORM_BITS_PER_BYTE = 8.0


@dataclass(frozen=True)
class PrequentialConfig:
    """How the online code is built. Data sizes in bytes; training length in passes over data."""

    max_bytes: int = 262_144  # code the first max_bytes of the data (0 = all)
    first_block_bytes: int = 2_048
    epochs_per_stage: float = 4.0  # steps at stage s ≈ epochs × t_s / (batch × block)
    min_steps: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    preset: str = "tiny"  # the model trained (see MODEL_PRESETS)
    seed: int = 0

    @classmethod
    def quick(cls) -> PrequentialConfig:
        return cls(max_bytes=32_768, first_block_bytes=1_024, epochs_per_stage=4.0, min_steps=15)

    @classmethod
    def full(cls) -> PrequentialConfig:
        return cls()

    def to_dict(self) -> dict:
        """The code's settings, as the result records them (preset and seed sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k not in ("preset", "seed")}


@dataclass(frozen=True)
class PrequentialBlock:
    """One block of the code: bytes [start, end), sent in `bits`."""

    start: int
    end: int
    bytes: int
    bits: float
    bits_per_byte: float
    train_steps: int  # steps trained before coding this block (0: the uniform first block)


@dataclass(frozen=True)
class PrequentialCode:
    """The online code of some data and the codes it is compared with, in bits."""

    uniform_bits: float
    prequential_bits: float
    two_part_bits: dict[str, float]  # {fp32, fp16}: final model's bits + weights at that precision
    final_model_bits: float
    information_in_weights_bits: float  # prequential − final model
    bytes: int
    bits_per_byte: dict  # the figures above (same names) divided by bytes
    compression_ratio: float  # prequential / uniform (Blier & Ollivier's ratio)
    params: int
    train_steps: int
    blocks: list[PrequentialBlock]
    model: dict  # the GPTConfig trained
    config: dict  # PrequentialConfig.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PrequentialResult:
    """`measure_prequential`'s result: the preset and seed, then the code's figures."""

    preset: str
    seed: int
    code: PrequentialCode

    def to_dict(self) -> dict:
        return {"preset": self.preset, "seed": self.seed, **self.code.to_dict()}


def block_boundaries(n: int, first: int) -> list[int]:
    """Doubling boundaries [0, first, 2·first, 4·first, …, n]."""
    if n <= first:
        raise BitlensError(f"need more than {first} bytes for a prequential code, got {n}")
    out = [0, first]
    while out[-1] < n:
        out.append(min(2 * out[-1], n))
    return out


def _stage_steps(prefix_bytes: int, model_cfg: GPTConfig, cfg: PrequentialConfig) -> int:
    per_step = cfg.batch_size * model_cfg.block_size
    return max(cfg.min_steps, math.ceil(cfg.epochs_per_stage * prefix_bytes / per_step))


def _score_block(model: GPT, data: torch.Tensor, start: int, end: int) -> np.ndarray:
    """Surprisal in bits of data[start:end], with up to half a context of preceding bytes."""
    a = max(0, start - model.config.block_size // 2)
    return score_bytes(model, data[a:end]).surprisal_bits[start - a :]


def _fp16_rounded(model: GPT) -> GPT:
    """A copy of `model` whose weights are rounded to float16 (computed in float32)."""
    copy = GPT(model.config)
    copy.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return copy.eval()


def prequential_code(
    data: bytes, model_cfg: GPTConfig, cfg: PrequentialConfig, progress: bool = False
) -> PrequentialCode:
    """Build the online code of `data` with `model_cfg` models (seed `cfg.seed`), in bits."""
    seed = cfg.seed
    if cfg.max_bytes > 0:
        data = data[: cfg.max_bytes]
    first = max(cfg.first_block_bytes, model_cfg.block_size + 1)
    bounds = block_boundaries(len(data), first)
    t = bytes_to_tensor(data)
    n = len(t)
    torch.manual_seed(seed)
    model = GPT(model_cfg)
    train_cfg = TrainConfig(
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=0.0,
        seed=seed,
        eval_interval=10**9,
        log_interval=10**9,
        checkpoint_interval=10**9,
    )
    blocks = [
        PrequentialBlock(
            start=0,
            end=first,
            bytes=first,
            bits=UNIFORM_BITS_PER_BYTE * first,
            bits_per_byte=UNIFORM_BITS_PER_BYTE,
            train_steps=0,
        )
    ]
    stages = bounds[1:]  # train on [0, t_s), code [t_s, t_{s+1}); the last stage is the final model
    total_steps = 0
    with progress_bar(len(stages), "prequential", enabled=progress) as bar:
        for s, prefix in enumerate(stages):
            steps = _stage_steps(prefix, model_cfg, cfg)
            stage_cfg = replace(train_cfg, steps=steps, warmup_steps=min(10, steps), seed=seed * 1_000 + s)
            train(model, t[:prefix], stage_cfg)
            total_steps += steps
            if prefix < n:
                end = bounds[s + 2]
                bits = float(_score_block(model, t, prefix, end).sum())
                blocks.append(
                    PrequentialBlock(
                        start=prefix,
                        end=end,
                        bytes=end - prefix,
                        bits=bits,
                        bits_per_byte=bits / (end - prefix),
                        train_steps=steps,
                    )
                )
                bar.advance(1, status=f"block {prefix:,}–{end:,}: {bits / (end - prefix):.3f} bits/byte")
            else:
                bar.advance(1, status="final model")
    final_bits = float(score_bytes(model, t).surprisal_bits.sum())
    final_fp16_bits = float(score_bytes(_fp16_rounded(model), t).surprisal_bits.sum())
    params = model.num_params()
    uniform = UNIFORM_BITS_PER_BYTE * n
    preq = float(sum(b.bits for b in blocks))
    two_part = {"fp32": final_bits + 32.0 * params, "fp16": final_fp16_bits + 16.0 * params}
    per_byte = {
        "uniform_bits": uniform / n,
        "prequential_bits": preq / n,
        "two_part_bits": {k: v / n for k, v in two_part.items()},
        "final_model_bits": final_bits / n,
        "information_in_weights_bits": (preq - final_bits) / n,
    }
    return PrequentialCode(
        uniform_bits=uniform,
        prequential_bits=preq,
        two_part_bits=two_part,
        final_model_bits=final_bits,
        information_in_weights_bits=preq - final_bits,
        bytes=n,
        bits_per_byte=per_byte,
        compression_ratio=preq / uniform,
        params=params,
        train_steps=total_steps,
        blocks=blocks,
        model=model_cfg.to_dict(),
        config=cfg.to_dict(),
    )


def measure_prequential(data: bytes, config: PrequentialConfig, progress: bool = False) -> PrequentialResult:
    """The prequential, uniform and two-part description lengths of `data`, in bits, with a
    `config.preset` model (see MODEL_PRESETS) on the first `config.max_bytes` bytes.
    """
    if config.preset not in MODEL_PRESETS:
        raise BitlensError(f"unknown preset {config.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
    code = prequential_code(data, MODEL_PRESETS[config.preset], config, progress=progress)
    return PrequentialResult(preset=config.preset, seed=config.seed, code=code)


def plot_prequential(result: dict, path: str | Path) -> list[Path]:
    """Bits/byte of each code (bars) and of each prequential block (the online learning curve)."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=11)
    bpb = result["bits_per_byte"]
    names = ["uniform", "prequential", "final model", "two-part fp16", "two-part fp32"]
    values = [
        bpb["uniform_bits"],
        bpb["prequential_bits"],
        bpb["final_model_bits"],
        bpb["two_part_bits"]["fp16"],
        bpb["two_part_bits"]["fp32"],
    ]
    bars = ax1.bar(names, values, color=["grey", "C0", "C2", "C3", "C3"])
    ax1.bar_label(bars, fmt="%.2f")
    ax1.set_yscale("log")  # two-part codes are tens of times larger than the rest
    ax1.set_ylabel("bits/byte (log scale)")
    ax1.set_title(
        f"{result['bytes']:,} bytes; information in weights "
        f"{result['information_in_weights_bits'] / 8192:,.1f} KiB"
    )
    ax1.tick_params(axis="x", rotation=20)
    blocks = result["blocks"]
    ax2.hlines(
        [b["bits_per_byte"] for b in blocks],
        [max(b["start"], 1) for b in blocks],
        [b["end"] for b in blocks],
        label="prequential block",
    )
    ax2.axhline(bpb["final_model_bits"], color="C2", ls="--", label="final model")
    ax2.set_xscale("log")
    ax2.set_xlabel("bytes seen (block end)")
    ax2.set_ylabel("bits/byte")
    ax2.legend()
    return save_figure(fig, path)
