"""Prequential (online) description length of a corpus, after Blier & Ollivier (2018).

The data is cut at doubling boundaries 0 = t_0 < t_1 < … < t_S = n. The first block is sent with
the uniform code (8 bits/byte). Then, for each s ≥ 1, a model trained on the first t_s bytes codes
block (t_s, t_{s+1}] at its surprisal. Sender and receiver run the same deterministic training,
so no weights are sent: L_preq = 8·t_1 + Σ_s Σ_{x ∈ block s+1} −log2 p_θs(x).

Training is continual: θ_s starts from θ_{s−1} and trains on the first t_s bytes only (a
deterministic function of what the receiver holds, so the code stays decodable). The final
model, trained on all n bytes, is not part of the code. Beside the online code it gives:
- the two-part code (`bitlens.measures.weights_code`): its weights quantised and entropy-coded
  into a file that decodes, then the data coded under the decoded model;
- information_in_weights = L_preq − L_final (B&O §3.4): a difference of two code lengths of the
  same n bytes, which depends on how long the final model trained, so it is reported at a few
  training lengths, and with L_final replaced by n × the final model's held-out bits/byte;
- for reference, the flat two-part codes L_final + (32 or 16) bits × parameters.
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
from bitlens.measures.weights_code import TwoPartCode, WeightsCodeConfig, two_part_code
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
    heldout_bytes: int = 32_768  # scored by the final model: the bytes after the coded ones
    final_training: tuple[float, ...] = (1.0, 2.0, 4.0)  # final-model lengths, × its stage's steps
    two_part: bool = True  # build the weights-file two-part code
    weights_search_bytes: int = 16_384  # bytes scored per candidate precision (weights_code)
    preset: str = "tiny"  # the model trained (see MODEL_PRESETS)
    seed: int = 0

    @classmethod
    def quick(cls) -> PrequentialConfig:
        return cls(
            max_bytes=8_192,
            first_block_bytes=1_024,
            epochs_per_stage=4.0,
            min_steps=15,
            batch_size=16,
            heldout_bytes=4_096,
            final_training=(1.0, 2.0),
            weights_search_bytes=2_048,
        )

    @classmethod
    def full(cls) -> PrequentialConfig:
        return cls()

    def to_dict(self) -> dict:
        """The code's settings, as the result records them (preset and seed sit beside them)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("preset", "seed")}
        return {**d, "final_training": list(self.final_training)}


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
    two_part_bits: float | None  # weights file + data file under the decoded weights (None: off)
    weights_file_bytes: int | None
    weight_bits_per_parameter: float | None  # weights-file bits / params
    weights_code: dict | None  # TwoPartCode.to_dict(): chosen precision per tensor, the search
    two_part_float_bits: dict[str, float]  # {fp32, fp16}: final model's bits + 32 or 16 × params
    final_model_bits: float
    information_in_weights_bits: float  # prequential − final model, both on the n coded bytes
    final_model_heldout_bits_per_byte: float | None  # on the heldout_bytes after the coded ones
    information_in_weights_heldout_bits: float | None  # prequential − n × the held-out rate
    heldout_bytes: int
    by_final_training: list[dict]  # the final-model figures at each length of config.final_training
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
        # one seed: every figure is a single training's, without an interval (see over_seeds)
        return {"preset": self.preset, "seed": self.seed, "n_seeds": 1, **self.code.to_dict()}


# The headline figures (bits/byte, and the weights file's size) summed up over seeds.
SEED_SUMMARY_KEYS = (
    "prequential_bits",
    "two_part_bits",
    "final_model_bits",
    "information_in_weights_bits",
    "information_in_weights_heldout_bits",
)


def over_seeds(results: list[dict]) -> dict:
    """Several seeds' results (`PrequentialResult.to_dict()`, same data and settings) summed up:
    for each headline figure in bits/byte, and for the weights file's size and bits per
    parameter, the mean with its Student's t interval over seeds (`ci95`, `n_seeds`)."""
    from bitlens.stats import t_interval

    if len({(r["bytes"], r["preset"]) for r in results}) != 1:
        raise BitlensError("over_seeds needs results of the same data and preset")
    summary: dict[str, dict] = {}
    for key in SEED_SUMMARY_KEYS:
        values = [r["bits_per_byte"][key] for r in results]
        if all(v is not None for v in values):
            summary[f"{key[: -len('_bits')]}_bits_per_byte"] = t_interval(values).to_dict()
    for key in ("weights_file_bytes", "weight_bits_per_parameter"):
        values = [r[key] for r in results]
        if all(v is not None for v in values):
            summary[key] = t_interval(values).to_dict()
    return {
        "preset": results[0]["preset"],
        "bytes": results[0]["bytes"],
        "seeds": [r["seed"] for r in results],
        "n_seeds": len(results),
        "summary": summary,
        "runs": results,
    }


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


def _final_model_figures(model: GPT, t: torch.Tensor, heldout: torch.Tensor | None, preq: float) -> dict:
    """The final model's code length of the n coded bytes and its held-out rate, and the two
    differences with the prequential code length `preq` (bits)."""
    n = len(t)
    final = float(score_bytes(model, t).surprisal_bits.sum())
    rate = float(score_bytes(model, heldout).surprisal_bits.mean()) if heldout is not None else None
    return {
        "final_model_bits": final,
        "final_model_heldout_bits_per_byte": rate,
        "information_in_weights_bits": preq - final,
        "information_in_weights_heldout_bits": preq - n * rate if rate is not None else None,
    }


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
    rest = b""
    if cfg.max_bytes > 0:
        data, rest = data[: cfg.max_bytes], data[cfg.max_bytes : cfg.max_bytes + cfg.heldout_bytes]
    heldout = bytes_to_tensor(rest) if cfg.heldout_bytes > 0 and len(rest) > model_cfg.block_size else None
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
    preq = float(sum(b.bits for b in blocks))
    final = _final_model_figures(model, t, heldout, preq)
    final_bits = final["final_model_bits"]
    final_fp16_bits = float(score_bytes(_fp16_rounded(model), t).surprisal_bits.sum())
    params = model.num_params()
    uniform = UNIFORM_BITS_PER_BYTE * n
    floats = {"fp32": final_bits + 32.0 * params, "fp16": final_fp16_bits + 16.0 * params}
    weights: TwoPartCode | None = None
    if cfg.two_part:
        weights = two_part_code(data, model, WeightsCodeConfig(search_bytes=cfg.weights_search_bytes))
    # Longer final training: the same model trained on, on all n bytes (not part of any code).
    final_steps = _stage_steps(n, model_cfg, cfg)
    by_training, done = [], 1.0
    for i, multiple in enumerate(sorted(cfg.final_training)):
        extra = round((multiple - done) * final_steps)
        if extra > 0:
            more_cfg = replace(train_cfg, steps=extra, warmup_steps=0, seed=seed * 1_000 + len(stages) + i)
            train(model, t, more_cfg)
            done = multiple
        figures = final if multiple == 1.0 else _final_model_figures(model, t, heldout, preq)
        by_training.append({"multiple": multiple, "train_steps": round(multiple * final_steps), **figures})
    per_byte = {
        "uniform_bits": uniform / n,
        "prequential_bits": preq / n,
        "two_part_bits": weights.two_part_bits / n if weights else None,
        "two_part_float_bits": {k: v / n for k, v in floats.items()},
        "final_model_bits": final_bits / n,
        "information_in_weights_bits": final["information_in_weights_bits"] / n,
        "information_in_weights_heldout_bits": (
            final["information_in_weights_heldout_bits"] / n if heldout is not None else None
        ),
    }
    return PrequentialCode(
        uniform_bits=uniform,
        prequential_bits=preq,
        two_part_bits=weights.two_part_bits if weights else None,
        weights_file_bytes=weights.weights_file_bytes if weights else None,
        weight_bits_per_parameter=weights.weight_bits_per_parameter if weights else None,
        weights_code=weights.to_dict() if weights else None,
        two_part_float_bits=floats,
        final_model_bits=final_bits,
        information_in_weights_bits=final["information_in_weights_bits"],
        final_model_heldout_bits_per_byte=final["final_model_heldout_bits_per_byte"],
        information_in_weights_heldout_bits=final["information_in_weights_heldout_bits"],
        heldout_bytes=len(heldout) if heldout is not None else 0,
        by_final_training=by_training,
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
    if not config.final_training or min(config.final_training) < 1.0:
        raise BitlensError("final_training lengths are multiples of the final stage's steps, each ≥ 1")
    code = prequential_code(data, MODEL_PRESETS[config.preset], config, progress=progress)
    return PrequentialResult(preset=config.preset, seed=config.seed, code=code)


def plot_prequential(result: dict, path: str | Path) -> list[Path]:
    """Bits/byte of each code (bars), of each prequential block (the online learning curve), and
    the information in the weights against the final model's training length."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2, ax3) = new_figure(ncols=3, width=16)
    bpb = result["bits_per_byte"]
    codes = [
        ("uniform", bpb["uniform_bits"], "grey"),
        ("prequential", bpb["prequential_bits"], "C0"),
        ("final model", bpb["final_model_bits"], "C2"),
    ]
    if bpb.get("two_part_bits") is not None:
        codes.append(("two-part\n(weights file)", bpb["two_part_bits"], "C1"))
    codes += [(f"two-part\nflat {k}", v, "C3") for k, v in bpb["two_part_float_bits"].items()]
    bars = ax1.bar([c[0] for c in codes], [c[1] for c in codes], color=[c[2] for c in codes])
    ax1.bar_label(bars, fmt="%.2f")
    ax1.set_yscale("log")  # flat two-part codes are tens of times larger than the rest
    ax1.set_ylabel("bits/byte (log scale)")
    title = f"{result['bytes']:,} bytes"
    if result.get("weight_bits_per_parameter") is not None:
        title += f"; weights file {result['weight_bits_per_parameter']:.2f} bits/param"
    ax1.set_title(title)
    ax1.tick_params(axis="x", labelsize=8)
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
    runs = result["by_final_training"]
    steps = [r["train_steps"] for r in runs]
    ax3.plot(
        steps,
        [r["information_in_weights_bits"] / 8192 for r in runs],
        "o-",
        label="final model: the coded bytes",
    )
    if runs[0]["information_in_weights_heldout_bits"] is not None:
        ax3.plot(
            steps,
            [r["information_in_weights_heldout_bits"] / 8192 for r in runs],
            "s--",
            label="final model: n × its held-out bits/byte",
        )
    ax3.set_xlabel("final model's training steps (last stage)")
    ax3.set_ylabel("prequential − final-model code length (KiB)")
    ax3.set_title("information in the weights")
    ax3.legend()
    return save_figure(fig, path)
