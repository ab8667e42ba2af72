"""Memorisation capacity in bits per parameter, after Morris et al. (2025), as a fitted slope.

N sequences of S uniformly random bytes carry exactly 8·N·S bits (the entropy baseline: the true
generator is uniform, so nothing generalises). What a model saves below that baseline is
memorised: memorised bits = Σ_sequences max(0, 8·S − surprisal of the sequence in bits), Morris's
H(x|θ_uniform) − H(x|θ_uniform, θ̂). Each (model size, seed) is trained, full batch where it fits,
no weight decay, constant learning rate, until its memorised bits stop moving (`Saturation`: the
growth over the last `window` steps is ≤ `rel_tol` of the total; a step cap ends runs that never
get there, recorded as `saturated: false`). The dataset grows over a sweep sized from the model's
parameters; the model's capacity is the most it memorised over the sweep, shown to be a
plateau when memorised bits stopped growing at the sweep's end (`plateau`). The result is the
slope of capacity against parameters, fitted per seed and summarised over seeds with a
bootstrap interval (`bitlens.stats`). After training, the weights are rounded to bf16, int8
and int4 (`quantise_symmetric`) and memorised bits are measured again, so each precision has
its own slope, set beside the published anchors (`ANCHORS_BITS_PER_PARAMETER`).
`LookupMemoriser` is a reference memoriser whose capacity is known exactly (validate's check).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import stats as _st

from bitlens.data import START_BYTE, VOCAB_SIZE
from bitlens.errors import BitlensError
from bitlens.evaluate import window_scores
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.runs import atomic_write_json
from bitlens.stats import bootstrap_ci
from bitlens.train import TrainConfig, cross_entropy_loss, lr_at, make_optimizer, train_threads

BITS_PER_RANDOM_BYTE = 8.0  # log2 256: the entropy of a uniformly random byte
PRECISIONS = ("fp32", "bf16", "int8", "int4")
PLATEAU_GROWTH = 0.05  # a step of the data sweep that adds less than this share has stopped growing
PLATEAU_SPAN = 2  # ... for this many consecutive steps: the plateau
GUESS_BITS_PER_PARAMETER = 3.6  # sizes the data sweep (Morris's figure), not an assumption of the fit
QUANTISATION = (
    "symmetric per-output-channel rounding of every weight matrix (embeddings, attention, MLP, "
    "head): scale = max|row| / (2^(b−1) − 1), q = round(w / scale); biases and norms stay fp32. "
    "bf16 = every weight rounded to bfloat16. Weights trained in fp32; all compute in fp32."
)
# Published bits per parameter. Morris et al. 2025: GPT models 500K-1.5B params trained to
# saturation on random sequences (by training precision). Allen-Zhu & Li 2024 (Physics of LMs
# 3.3): synthetic biographies, by exposures per fact and after quantisation of the weights.
ANCHORS_BITS_PER_PARAMETER: dict[str, dict[str, float]] = {
    "morris_2025": {"overall": 3.6, "fp32": 3.83, "bf16": 3.51},
    "allen_zhu_li_2024": {"1000_exposures": 2.0, "100_exposures": 1.0, "int8": 2.0, "int4": 0.7},
}
# The anchor each precision of ours is read against.
ANCHOR_FOR_PRECISION = {
    "fp32": ("morris_2025", "fp32"),
    "bf16": ("morris_2025", "bf16"),
    "int8": ("allen_zhu_li_2024", "int8"),
    "int4": ("allen_zhu_li_2024", "int4"),
}


@dataclass(frozen=True)
class Saturation:
    """When training stops: memorised bits are measured every `check_every` steps; training is
    saturated once (after `min_steps`) they grew by ≤ `rel_tol` × their value over the last
    `window` steps while above `min_share` of the data's bits (below it the model has not started
    memorising: a flat start is not a plateau), and stops at `max_steps` either way."""

    check_every: int = 50
    window: int = 200  # a multiple of check_every
    rel_tol: float = 0.01
    min_steps: int = 200
    max_steps: int = 5000
    min_share: float = 0.01


@dataclass(frozen=True)
class CapacityConfig:
    """Model sizes as (n_layer, n_embd); the data sweep as multiples of a guessed capacity
    (GUESS_BITS_PER_PARAMETER × parameters, in bits); `n_seeds` seeds from `seed` on."""

    sizes: tuple[tuple[int, int], ...] = ((1, 8), (1, 16))
    data_multiples: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    seq_len: int = 32
    n_seeds: int = 3
    seed: int = 0
    lr: float = 1e-2
    batch_size: int = 1024  # sequences per step; larger sets are cycled through in epochs
    n_head: int = 2
    saturation: Saturation = field(
        default_factory=lambda: Saturation(check_every=25, window=100, min_steps=100, max_steps=150)
    )
    device: str = "cpu"  # where models train ("cuda": a GPU; its numbers differ in the last bits)

    def __post_init__(self) -> None:
        if torch.device(self.device).type == "cuda" and not torch.cuda.is_available():
            raise BitlensError(f"device {self.device!r} is not available here (no GPU); use cpu")

    @classmethod
    def quick(cls) -> CapacityConfig:
        """Seconds (the demo): two tiny sizes, two seeds, 60 steps (runs will not saturate)."""
        return cls(
            sizes=((1, 4), (1, 8)),
            n_seeds=2,
            data_multiples=(0.25, 0.5, 1.0),
            saturation=Saturation(check_every=20, window=40, min_steps=40, max_steps=60),
        )

    @classmethod
    def full(cls) -> CapacityConfig:
        """A few minutes (the demo's full mode): two sizes, three seeds, at most 150 steps; a
        demonstration of the instrument, not saturated (the benchmark runs `study`)."""
        return cls()

    @classmethod
    def study(cls) -> CapacityConfig:
        """The benchmark (hours on CPU: about 50 min per seed on one core; minutes on a GPU):
        1.1k to 41k parameters (1.55 decades; 68 % non-embedding at the top, four layers of
        width 24), three seeds, the data from ¼ to 4× the guessed capacity, each run trained at lr
        1e-2 until memorised bits grow < 1 % over 1000 steps, capped at 10k steps. (At lr 3e-3 a
        probe was still growing 5 % per 500 steps after 1500; at 1e-2 the top size at 2× the
        guess met the criterion at 3,300 steps.)"""
        return cls(
            sizes=((1, 2), (1, 4), (1, 8), (2, 16), (4, 24)),
            data_multiples=(0.25, 0.5, 1.0, 2.0, 4.0),
            lr=1e-2,
            batch_size=512,
            saturation=Saturation(
                check_every=100, window=1000, rel_tol=0.01, min_steps=1000, max_steps=10_000
            ),
        )

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n_seeds)]

    def model_config(self, n_layer: int, n_embd: int) -> GPTConfig:
        return GPTConfig(block_size=self.seq_len, n_layer=n_layer, n_head=self.n_head, n_embd=n_embd)

    def n_sequences(self, params: int) -> list[int]:
        """The sweep for a model of `params` parameters: dataset entropy = multiple × guess."""
        per_sequence = BITS_PER_RANDOM_BYTE * self.seq_len
        guess = GUESS_BITS_PER_PARAMETER * params
        return sorted({max(2, round(m * guess / per_sequence)) for m in self.data_multiples})

    def to_dict(self) -> dict:
        """The settings, as the result records them (the seeds sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k != "seed"}


def random_sequences(n: int, seq_len: int, seed: int) -> torch.Tensor:
    """(n, seq_len) int64 uniformly random bytes, a pure function of the seed (nested: the first
    m rows for seed s are the same whatever n ≥ m)."""
    return torch.randint(0, 256, (n, seq_len), generator=torch.Generator().manual_seed(seed))


def _windows(seqs: torch.Tensor) -> torch.Tensor:
    """(n, S + 1) windows: START_BYTE, then the sequence (so every byte of it is predicted)."""
    return torch.cat([torch.full((len(seqs), 1), START_BYTE, dtype=torch.long), seqs], 1)


def sequence_surprisal_bits(model: nn.Module, seqs: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Each sequence's total surprisal −log2 p(sequence) under `model` (a GPT or any module with
    its forward: START-prefixed bytes → next-byte logits), in bits (eval mode; mode restored)."""
    surprisal, _ = window_scores(cast(GPT, model), _windows(seqs), batch_size=batch_size)
    return torch.from_numpy(surprisal).sum(1).numpy()


def memorised_bits(surprisal_bits_per_sequence: np.ndarray, seq_len: int) -> float:
    """Σ over sequences of max(0, 8·S − surprisal in bits): what the model stores about them
    above the entropy baseline of uniformly random bytes."""
    saved = BITS_PER_RANDOM_BYTE * seq_len - surprisal_bits_per_sequence
    return float(np.clip(saved, 0.0, None).sum())


# --- precision ---------------------------------------------------------------------------------


def quantise_symmetric(w: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """`w` rounded to `bits`-bit signed integers and back (same dtype): scale = max|w| / (2^(b−1) − 1)
    per row (dim 0) or per tensor, q = round(w / scale) ∈ [−(2^(b−1) − 1), 2^(b−1) − 1]. Every
    entry moves by at most scale / 2. An all-zero row stays zero."""
    if bits < 2:
        raise BitlensError(f"symmetric quantisation needs at least 2 bits, got {bits}")
    q_max = 2 ** (bits - 1) - 1
    x = w.float()
    amax = (
        x.abs().amax(dim=tuple(range(1, x.dim())), keepdim=True)
        if per_channel and x.dim() > 1
        else x.abs().max()
    )
    scale = torch.where(amax > 0, amax / q_max, torch.ones_like(amax))
    return (torch.round(x / scale).clamp(-q_max, q_max) * scale).to(w.dtype)


def at_precision(model: GPT, precision: str) -> GPT:
    """A copy of `model` with its weights as `precision` stores them (see QUANTISATION)."""
    if precision not in PRECISIONS:
        raise BitlensError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    out = copy.deepcopy(model)
    if precision == "fp32":
        return out
    with torch.no_grad():
        for p in out.parameters():
            if precision == "bf16":
                p.copy_(p.to(torch.bfloat16).float())
            elif p.dim() >= 2:
                p.copy_(quantise_symmetric(p, int(precision[3:])))
    return out


# --- training to saturation --------------------------------------------------------------------


@dataclass(frozen=True)
class SaturationRecord:
    """How a run stopped: saturated or capped, after `steps`, and the criterion's numbers."""

    saturated: bool
    steps: int
    window_growth_bits: float  # memorised bits gained over the last window (at the stop)
    window_growth_relative: float  # ... as a share of the memorised bits at the stop
    memorised_bits_by_step: list[tuple[int, float]]  # every check, from step 0


def train_to_saturation(model: GPT, seqs: torch.Tensor, cfg: CapacityConfig, seed: int) -> SaturationRecord:
    """Train `model` in place on `seqs` (AdamW without weight decay, warm-up then a constant
    learning rate, gradient clip 1) until `cfg.saturation` says memorised bits stopped moving."""
    sat = cfg.saturation
    if sat.window % sat.check_every:
        raise BitlensError("the saturation window must be a multiple of check_every")
    tc = TrainConfig(
        steps=sat.max_steps, lr=cfg.lr, min_lr_ratio=1.0, warmup_steps=20, weight_decay=0.0, seed=seed
    )
    model.to(cfg.device)
    opt = make_optimizer(model, tc)
    x = _windows(seqs).to(cfg.device)
    n, per_epoch = len(seqs), math.ceil(len(seqs) / cfg.batch_size)
    data_bits = BITS_PER_RANDOM_BYTE * seqs.numel()
    history = {0: memorised_bits(sequence_surprisal_bits(model, seqs), cfg.seq_len)}
    growth, relative = float("nan"), float("nan")
    gen = torch.Generator().manual_seed(seed)
    order = torch.arange(n)
    model.train()
    with train_threads(tc):
        for step in range(sat.max_steps):
            if step % per_epoch == 0 and per_epoch > 1:
                order = torch.randperm(n, generator=gen)
            rows = order[(step % per_epoch) * cfg.batch_size :][: cfg.batch_size].to(cfg.device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, tc)
            loss = cross_entropy_loss(model, (x[rows, :-1], x[rows, 1:]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            done = step + 1
            if done % sat.check_every:
                continue
            now = history[done] = memorised_bits(sequence_surprisal_bits(model, seqs), cfg.seq_len)
            if done < max(sat.min_steps, sat.window):
                continue
            growth = now - history[done - sat.window]
            relative = growth / now if now > 0 else float("inf")
            if now > sat.min_share * data_bits and growth <= sat.rel_tol * now:
                model.eval()
                return SaturationRecord(True, done, growth, relative, list(history.items()))
    model.eval()
    return SaturationRecord(False, sat.max_steps, growth, relative, list(history.items()))


# --- the sweep and the plateau -----------------------------------------------------------------


@dataclass(frozen=True)
class CapacityPoint:
    """One training set of the sweep, after training to saturation."""

    n_sequences: int
    data_bits: float  # 8 · N · S: the entropy baseline of the training set
    memorised_bits: float  # fp32 weights
    memorised_bits_by_precision: dict[str, float]
    train_bits_per_byte: float  # mean surprisal of the training bytes (8 = nothing stored)
    saturation: SaturationRecord


def plateau(
    memorised: list[float], saturated: list[bool], growth: float = PLATEAU_GROWTH, span: int = PLATEAU_SPAN
) -> tuple[float, bool]:
    """(capacity in bits, plateau reached) from memorised bits over a sweep of growing datasets.

    The capacity is the most the model memorised over the sweep (Morris et al. define capacity as
    the maximum over datasets). The plateau is reached when each of the last `span` steps of the
    sweep adds less than `growth` × the memorised bits before it (a fall counts: past capacity,
    memorised bits drift down as the data outgrows the model), on runs that all saturated; the
    maximum is then the capacity the sweep found. Otherwise growth has not been shown to stop, and
    the maximum is a lower bound (reached = False).
    """
    capacity = max(memorised, default=0.0)
    if len(memorised) < span + 1:
        return capacity, False
    tail = memorised[-(span + 1) :]
    stopped = min(tail[:-1]) > 0 and all(b - a < growth * a for a, b in zip(tail, tail[1:], strict=False))
    return capacity, bool(stopped and all(saturated[-(span + 1) :]))


def tail_mean_bits(memorised: list[float], span: int = PLATEAU_SPAN) -> float:
    """The mean memorised bits over the sweep's last span + 1 points: the study's first estimator
    of capacity, kept beside the maximum (below it where memorised bits fall past the peak)."""
    return float(np.mean(memorised[-(span + 1) :])) if memorised else 0.0


@dataclass(frozen=True)
class CapacityRun:
    """One model size and seed: its capacity (the plateau of memorised bits) at each precision."""

    n_layer: int
    n_embd: int
    seed: int
    parameters: int
    non_embedding_parameters: int
    memorised_bits: float  # the fp32 capacity: the sweep's maximum (a lower bound unless plateau_reached)
    bits_per_parameter: float
    plateau_reached: bool
    tail_mean_bits: float  # fp32: the mean over the sweep's last points (`tail_mean_bits`)
    saturated: bool  # every run of the sweep saturated
    memorised_bits_by_precision: dict[str, float]  # the capacity (sweep maximum) at each precision
    plateau_reached_by_precision: dict[str, bool]
    points: list[CapacityPoint]


def _train_point(config: GPTConfig, seqs: torch.Tensor, cfg: CapacityConfig, seed: int) -> CapacityPoint:
    """Train a fresh model on `seqs` to saturation; memorised bits at every precision."""
    torch.manual_seed(seed)
    model = GPT(config)
    record = train_to_saturation(model, seqs, cfg, seed)
    by_precision = {
        p: memorised_bits(sequence_surprisal_bits(at_precision(model, p), seqs), cfg.seq_len)
        for p in PRECISIONS
    }
    n = len(seqs)
    surprisal = sequence_surprisal_bits(model, seqs)
    return CapacityPoint(
        n_sequences=n,
        data_bits=BITS_PER_RANDOM_BYTE * n * cfg.seq_len,
        memorised_bits=by_precision["fp32"],
        memorised_bits_by_precision=by_precision,
        train_bits_per_byte=float(surprisal.sum() / (n * cfg.seq_len)),
        saturation=record,
    )


def point_settings(cfg: CapacityConfig) -> dict:
    """What a point's result depends on besides its size, seed and N (a saved point trained
    under other settings is refused, not reused)."""
    return {
        "seq_len": cfg.seq_len,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "n_head": cfg.n_head,
        "saturation": asdict(cfg.saturation),
        "device": cfg.device,
    }


def _cached_point(path: Path, settings: dict, train: Callable[[], CapacityPoint]) -> CapacityPoint:
    """The point saved at `path` if there is one (trained under `settings`), else `train()`,
    saved there atomically: an hours-long study resumes where it stopped."""
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            if saved["settings"] != settings:
                raise BitlensError(f"{path} was trained under other settings; use another points folder")
            d = saved["point"]
            sat = {
                **d["saturation"],
                "memorised_bits_by_step": [tuple(x) for x in d["saturation"]["memorised_bits_by_step"]],
            }
            return CapacityPoint(**{**d, "saturation": SaturationRecord(**sat)})
        except (json.JSONDecodeError, KeyError, TypeError):
            raise BitlensError(f"{path} is not a capacity point record") from None
    point = train()
    atomic_write_json(path, {"settings": settings, "point": asdict(point)})
    return point


def capacity_run(
    n_layer: int,
    n_embd: int,
    seed: int,
    cfg: CapacityConfig,
    on_point: Callable[[], None] | None = None,
    points_dir: Path | None = None,
) -> CapacityRun:
    """Sweep the dataset for one model size and seed; each point trained to saturation. With
    `points_dir`, each point is kept there as JSON when done and read back on the next call
    (one file per size, seed and N)."""
    config = cfg.model_config(n_layer, n_embd)
    params = GPT(config).num_params()
    ns = cfg.n_sequences(params)
    data = random_sequences(max(ns), cfg.seq_len, seed=seed * 1_000_003 + 7)
    points = []
    for n in ns:
        seqs = data[:n]
        if points_dir is None:
            points.append(_train_point(config, seqs, cfg, seed))
        else:
            path = Path(points_dir) / f"{n_layer}x{n_embd}-seed{seed}-n{n}.json"
            train = partial(_train_point, config, seqs, cfg, seed)
            points.append(_cached_point(path, point_settings(cfg), train))
        if on_point:
            on_point()
    saturated = [p.saturation.saturated for p in points]
    plateaus = {
        pr: plateau([p.memorised_bits_by_precision[pr] for p in points], saturated) for pr in PRECISIONS
    }
    model = GPT(config)
    return CapacityRun(
        n_layer=n_layer,
        n_embd=n_embd,
        seed=seed,
        parameters=params,
        non_embedding_parameters=params - model.embedding_params(),
        memorised_bits=plateaus["fp32"][0],
        bits_per_parameter=plateaus["fp32"][0] / params,
        plateau_reached=plateaus["fp32"][1],
        tail_mean_bits=tail_mean_bits([p.memorised_bits for p in points]),
        saturated=all(saturated),
        memorised_bits_by_precision={pr: v[0] for pr, v in plateaus.items()},
        plateau_reached_by_precision={pr: v[1] for pr, v in plateaus.items()},
        points=points,
    )


# --- the slope ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlopeFit:
    """Capacity (bits) against parameters: a least-squares line per seed; the slope's mean over
    seeds with its bootstrap interval (bits per parameter)."""

    slope_bits_per_parameter: float
    slope_ci95: tuple[float, float]
    n_seeds: int
    slope_by_seed: list[float]
    intercept_bits_by_seed: list[float]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["slope_ci95"] = list(self.slope_ci95)
        return d


def fit_slope(parameters: list[int], capacity_bits: list[float], seeds: list[int]) -> SlopeFit:
    """Fit capacity = slope · parameters + intercept for each seed (scipy's linregress), then
    summarise the per-seed slopes: mean and bootstrap 95 % interval (`bitlens.stats`)."""
    slopes, intercepts = [], []
    for s in sorted(set(seeds)):
        xs = [p for p, q in zip(parameters, seeds, strict=True) if q == s]
        ys = [c for c, q in zip(capacity_bits, seeds, strict=True) if q == s]
        if len(set(xs)) < 2:
            raise BitlensError("a slope needs at least two model sizes per seed")
        fit = _st.linregress(xs, ys)
        slopes.append(float(fit.slope))
        intercepts.append(float(fit.intercept))
    ci = bootstrap_ci(slopes)
    return SlopeFit(ci.estimate, (ci.low, ci.high), ci.n, slopes, intercepts)


@dataclass(frozen=True)
class CapacityResult:
    """`measure_capacity`'s result: the fp32 slope (headline), one slope per precision, every run."""

    fit: SlopeFit
    fit_by_precision: dict[str, SlopeFit]
    fit_tail_mean: SlopeFit  # fp32, capacity read as the tail mean instead of the maximum
    runs: list[CapacityRun]
    config: CapacityConfig

    def to_dict(self) -> dict:
        params = [r.parameters for r in self.runs]
        top = max(self.runs, key=lambda r: r.parameters)
        return {
            **self.fit.to_dict(),
            "precision": {
                p: {
                    **f.to_dict(),
                    "anchor_bits_per_parameter": _anchor(p),
                    "anchor": "/".join(ANCHOR_FOR_PRECISION[p]),
                }
                for p, f in self.fit_by_precision.items()
            },
            "tail_mean": {
                **self.fit_tail_mean.to_dict(),
                "estimator": "capacity = mean memorised bits over the sweep's last points (fp32)",
            },
            "anchors_bits_per_parameter": ANCHORS_BITS_PER_PARAMETER,
            "quantisation": QUANTISATION,
            "saturation_criterion": asdict(self.config.saturation),
            "all_saturated": all(r.saturated for r in self.runs),
            "all_plateau_reached": all(r.plateau_reached for r in self.runs),
            "parameter_decades": math.log10(max(params) / min(params)),
            "top_non_embedding_share": top.non_embedding_parameters / top.parameters,
            "seeds": self.config.seeds(),
            "runs": [asdict(r) for r in self.runs],
            "config": self.config.to_dict(),
        }


def _anchor(precision: str) -> float:
    paper, key = ANCHOR_FOR_PRECISION[precision]
    return ANCHORS_BITS_PER_PARAMETER[paper][key]


def measure_capacity(
    config: CapacityConfig, progress: bool = False, points_dir: Path | None = None
) -> CapacityResult:
    """Capacity of every size and seed in `config` on uniformly random bytes, and the slope of
    capacity against parameters (bits/parameter) at each precision, beside the anchors.
    `points_dir`: keep every trained point there and reuse the ones already done (resume)."""
    if len(config.sizes) < 2:
        raise BitlensError("capacity needs at least two model sizes to fit a slope")
    runs = []
    n_points = len(config.seeds()) * sum(
        len(config.n_sequences(GPT(config.model_config(*s)).num_params())) for s in config.sizes
    )
    with progress_bar(n_points, "capacity", enabled=progress) as bar:
        for seed in config.seeds():
            for n_layer, n_embd in config.sizes:
                runs.append(capacity_run(n_layer, n_embd, seed, config, lambda: bar.advance(1), points_dir))
    params, seeds = [r.parameters for r in runs], [r.seed for r in runs]
    by_precision = {
        p: fit_slope(params, [r.memorised_bits_by_precision[p] for r in runs], seeds) for p in PRECISIONS
    }
    tail = fit_slope(params, [r.tail_mean_bits for r in runs], seeds)
    return CapacityResult(by_precision["fp32"], by_precision, tail, runs, config)


# --- a memoriser of known capacity ---------------------------------------------------------------


class LookupMemoriser(nn.Module):
    """Holds K sequences by heart (a table of K·S bytes) and predicts a sequence by which of them
    it is: while some stored sequence has the prefix x_<t, p(x_t) = (1 − ε)·c(x_≤t)/c(x_<t) + ε/256
    (c counts stored sequences with that prefix), else 1/256. A stored sequence (all distinct)
    then costs log2 K bits, plus at most S·log2(1/(1 − ε)); a sequence it does not hold costs
    ≥ 8·S bits bar a stored prefix. Its memorised bits on the K stored ones are K·(8·S − log2 K),
    its capacity. Input: START-prefixed bytes, as the GPT's; output: next-byte log-probabilities.
    """

    def __init__(self, store: torch.Tensor, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("store", store.long())
        self.eps = eps

    @classmethod
    def fit(cls, seqs: torch.Tensor, capacity_sequences: int) -> LookupMemoriser:
        """'Training' with a capacity of K sequences: keep the first K of `seqs`."""
        return cls(seqs[:capacity_sequences])

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        store = cast(torch.Tensor, self.store)[:, :T]
        eq = (idx[:, None, 1:] == store[None, :, : T - 1]).float()  # (B, K, T − 1)
        match = torch.cat([torch.ones(B, len(store), 1), eq.cumprod(-1)], -1)  # prefix x_<t agrees
        counts = torch.einsum("bkt,ktv->btv", match, F.one_hot(store, VOCAB_SIZE).float())
        total = counts.sum(-1, keepdim=True)
        p = torch.where(
            total > 0, (1 - self.eps) * counts / total.clamp(min=1) + self.eps / VOCAB_SIZE, 1.0 / VOCAB_SIZE
        )
        return p.log()


def plot_capacity(result: dict, path: str | Path) -> list[Path]:
    """Left: memorised bits against the data's entropy, per size (seed-mean). Right: capacity
    against parameters, mean over seeds with 95 % bootstrap error bars, the fitted slope with its
    interval as a band, and the anchors as lines."""
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=11)
    runs = result["runs"]
    sizes = sorted({(r["n_layer"], r["n_embd"], r["parameters"]) for r in runs}, key=lambda s: s[2])
    all_data = [p["data_bits"] for r in runs for p in r["points"]]
    lim = np.array([min(all_data), max(all_data)])
    ax1.plot(lim, lim, color="grey", ls=":", label="all of it (8 bits/byte)")
    capacity_mean, capacity_err = [], []
    for n_layer, n_embd, params in sizes:
        mine = [r for r in runs if (r["n_layer"], r["n_embd"]) == (n_layer, n_embd)]
        xs = [p["data_bits"] for p in mine[0]["points"]]
        ys = np.mean([[p["memorised_bits"] for p in r["points"]] for r in mine], axis=0)
        ax1.plot(xs, ys, marker="o", label=f"{n_layer}×{n_embd}, {params:,} params")
        ci = bootstrap_ci([r["memorised_bits"] for r in mine])
        capacity_mean.append(ci.estimate)
        capacity_err.append([ci.estimate - ci.low, ci.high - ci.estimate])
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("bits in the random training set (entropy baseline)")
    ax1.set_ylabel("memorised bits (mean over seeds)")
    ax1.legend(fontsize=8)
    px = np.array([s[2] for s in sizes], dtype=float)
    ax2.errorbar(
        px, capacity_mean, yerr=np.array(capacity_err).T, fmt="o", capsize=3, label="capacity (fp32)"
    )
    grid = np.geomspace(px.min(), px.max(), 50)
    slope, (lo, hi) = result["slope_bits_per_parameter"], result["slope_ci95"]
    intercept = float(np.mean(result["intercept_bits_by_seed"]))
    ax2.plot(grid, slope * grid + intercept, color="C0", label=f"fit: {slope:.2f} bits/param")
    ax2.fill_between(
        grid, lo * grid + intercept, hi * grid + intercept, color="C0", alpha=0.2, label="95 % CI"
    )
    anchors = result["anchors_bits_per_parameter"]
    lines = (
        ("Morris et al. fp32", anchors["morris_2025"]["fp32"]),
        ("Allen-Zhu & Li", anchors["allen_zhu_li_2024"]["1000_exposures"]),
    )
    for (name, v), ls in zip(lines, ("--", "-."), strict=True):
        ax2.plot(grid, v * grid, color="grey", ls=ls, label=f"{name} ({v} bits/param)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("capacity: the most memorised over the sweep\n(a lower bound where no plateau)")
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
