"""Token dynamics over a series of checkpoints, with statistics that do not hold their answer.

The same held-out bytes are scored (surprisal in bits) at every checkpoint of a series: by
default a model trained here with ≈15 log-spaced checkpoints (and a second seed for the noise
null); or a series the user names (`hf:DIR` checkpoints such as Pythia's, bitlens runs; see
`bitlens.measures.series`). A tokenizer model's per-token bits are spread over each token's
bytes, as `eval` does, so the unit classified is always the byte (for a bitlens model byte =
token). The classes and their statistics (gain vs starting-bit shares, end-on-start regression,
two-seed noise null, threshold sweep, intervals over blocks of bytes) are in
`bitlens.measures.token_classes`.

Trained here, the start is the first checkpoint whose held-out bits/byte is at or below the
unigram entropy of the training bytes (a model at step 0 is near-uniform: every byte would
start High); a named series starts at its first checkpoint unless told a step.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bitlens.data import get_batch, split_corpus
from bitlens.errors import BitlensError
from bitlens.measures.series import ScoredCheckpoint, score_series, step_file
from bitlens.measures.sources import distribution_entropy_bits
from bitlens.measures.token_classes import (
    CLASSES,
    N_RESAMPLES,
    RHO1_MAPPING,
    RHO1_PROPORTIONS,
    SWEEP_QUANTILES,
    Blocks,
    class_statistics,
    distance_to_rho1,
    noise_null,
    ratio_statistic,
    regression,
    shares,
    threshold_sweep,
)
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


@dataclass(frozen=True)
class DynamicsConfig:
    """Training length (steps) and checkpoints, the held-out bytes scored, and the statistics."""

    steps: int | None = None  # None: the preset's training length
    batch_size: int | None = None  # windows per step; None: the preset's
    checkpoints: int = 15
    heldout_bytes: int = 65_536
    start_step: int | None = None  # None: the first checkpoint at or below the unigram entropy
    threshold_bits: float | None = None  # None: the final mean held-out loss
    bins: int = 8
    noise_null: bool = True  # train a second seed for the noise null
    null_seed: int | None = None  # that seed (None: seed + 1)
    n_blocks: int = 64  # blocks of consecutive held-out bytes the bootstrap resamples
    preset: str = "tiny"  # the model trained (see MODEL_PRESETS), with its TRAIN_PRESETS schedule
    seed: int = 0

    @classmethod
    def quick(cls) -> DynamicsConfig:
        """Seconds: 80 steps of 16 windows per seed (off the unigram plateau by about step 40)."""
        return cls(steps=80, batch_size=16, heldout_bytes=4_096, checkpoints=8, n_blocks=32)

    @classmethod
    def full(cls) -> DynamicsConfig:
        return cls()

    def to_dict(self) -> dict:
        """The settings, as the result records them (preset and seed sit beside them)."""
        return {k: v for k, v in asdict(self).items() if k not in ("preset", "seed")}


@dataclass(frozen=True)
class Series:
    """Per-byte losses (bits) of one series of checkpoints, and where it comes from."""

    labels: list[str]  # the checkpoint specs (or "step N" when trained here)
    steps: list[int | None]
    bits: list[np.ndarray]  # per checkpoint, per held-out byte
    params: int
    tokens_per_step: int | None = None  # training tokens per step, when trained here


@dataclass(frozen=True)
class TokenDynamics:
    """What moved between the start and the end checkpoint, per held-out byte, with intervals."""

    source: str  # "trained" (here) or "checkpoints" (named by the user)
    unit: str  # what is classified: "byte"
    tokens: int  # held-out units classified (bytes)
    params: int
    start: str
    end: str
    start_step: int | None
    end_step: int | None
    threshold_bits: float
    threshold_rule: str
    unigram_bits_per_byte: float | None
    classes: dict  # {class: {tokens, proportion, gain_share, start_bits_share, ...}}
    rho1_proportions: dict[str, float]
    rho1_mapping: str
    distance_to_rho1: float  # total variation distance of the class split from Rho-1's
    information_gained_bits: float  # Σ start − end surprisal
    gain_bits_per_byte: dict  # mean start − end, with its interval
    information_gained_from_init_bits: float | None  # Σ step-0 − end, when trained here
    regression: dict  # end loss on start loss
    noise_null: dict | None  # the same statistics between two seeds' final checkpoints
    threshold_sweep: list[dict]
    checkpoints: list[dict]  # {label, step, tokens_trained, bits_per_byte, ci95, classes}
    by_frequency: list[dict] | None  # trained here only (frequencies of the training bytes)
    bootstrap: dict
    model: dict | None
    config: dict

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


# --- the series: trained here, or named ------------------------------------------------------


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


def train_series(
    train_data: torch.Tensor,
    model_cfg: GPTConfig,
    train_cfg: TrainConfig,
    at_steps: list[int],
    run_dir: Path,
    progress: bool = False,
) -> list[str]:
    """Train one seed, saving the weights at each step of `at_steps` into `run_dir` (a run
    directory: config.json + checkpoints/step-N.safetensors); the saved files, in step order."""
    from bitlens.runs import atomic_write_json, save_model

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", {"model": model_cfg.to_dict(), "train": asdict(train_cfg)})
    torch.manual_seed(train_cfg.seed)
    model = GPT(model_cfg)
    saved: list[str] = []

    def save(step: int) -> None:
        path = step_file(run_dir, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
        saved.append(str(path))

    train_with_checkpoints(model, train_data, train_cfg, at_steps, save, progress=progress)
    return saved


def _series(scored: list[ScoredCheckpoint], tokens_per_step: int | None = None) -> Series:
    steps = [s.step for s in scored]
    labels = [f"step {s.step}" if tokens_per_step and s.step is not None else s.spec for s in scored]
    return Series(labels, steps, [s.surprisal_bits for s in scored], scored[-1].params, tokens_per_step)


def whole_utf8(data: bytes) -> bytes:
    """`data` without a partial UTF-8 character at either end (a tokenizer reads text)."""
    i = 0
    while i < min(3, len(data)) and 0x80 <= data[i] < 0xC0:
        i += 1
    data = data[i:]
    for cut in range(4):
        try:
            (data[: len(data) - cut] if cut else data).decode("utf-8")
            return data[: len(data) - cut] if cut else data
        except UnicodeDecodeError:
            continue
    return data


# --- the analysis ----------------------------------------------------------------------------


def analyse(
    series: Series,
    start_index: int,
    cfg: DynamicsConfig,
    null: tuple[np.ndarray, np.ndarray] | None,
    source: str,
    n_seeds: int = 1,
    unigram_bits: float | None = None,
    frequency: np.ndarray | None = None,
) -> TokenDynamics:
    """The statistics of a scored series, from `series.bits[start_index]` to its last checkpoint."""
    start, end = series.bits[start_index], series.bits[-1]
    if len(start) != len(end):
        raise BitlensError("the checkpoints scored different numbers of held-out bytes")
    if cfg.threshold_bits is not None:
        threshold, rule = float(cfg.threshold_bits), "given"
    else:
        threshold, rule = float(end.mean()), "the end checkpoint's mean loss"
    blocks = Blocks(len(start), cfg.n_blocks, n_seeds=n_seeds, seed=cfg.seed)
    ones = blocks.sums(np.ones_like(start))
    gain = start - end
    classes = class_statistics(start, end, threshold, blocks)
    pooled = np.concatenate([start, end])
    sweep = sorted({*np.quantile(pooled, SWEEP_QUANTILES).tolist(), threshold})
    null_blocks = Blocks(len(start), cfg.n_blocks, n_seeds=2, seed=cfg.seed)  # two seeds behind it
    null_stats = noise_null(null[0], null[1], threshold, null_blocks) if null is not None else None
    checkpoints = []
    for label, step, bits in zip(series.labels, series.steps, series.bits, strict=True):
        mean = blocks.interval(float(bits.mean()), ratio_statistic(blocks.sums(bits), ones))
        assert mean is not None
        checkpoints.append(
            {
                "label": label,
                "step": step,
                "tokens_trained": step * series.tokens_per_step
                if series.tokens_per_step and step is not None
                else None,
                "bits_per_byte": mean["estimate"],
                "ci95": mean["ci95"],
                "classes": shares(start, bits, threshold)[0],  # start → this checkpoint
            }
        )
    return TokenDynamics(
        source=source,
        unit="byte",
        tokens=int(len(start)),
        params=series.params,
        start=series.labels[start_index],
        end=series.labels[-1],
        start_step=series.steps[start_index],
        end_step=series.steps[-1],
        threshold_bits=threshold,
        threshold_rule=rule,
        unigram_bits_per_byte=unigram_bits,
        classes=classes,
        rho1_proportions=dict(RHO1_PROPORTIONS),
        rho1_mapping=RHO1_MAPPING,
        distance_to_rho1=distance_to_rho1(
            {c: float(v["proportion"]["estimate"]) for c, v in classes.items()}
        ),
        information_gained_bits=float(gain.sum()),
        gain_bits_per_byte=blocks.interval(float(gain.mean()), ratio_statistic(blocks.sums(gain), ones))
        or {},
        information_gained_from_init_bits=float((series.bits[0] - end).sum())
        if source == "trained"
        else None,
        regression=regression(start, end, blocks),
        noise_null=null_stats,
        threshold_sweep=threshold_sweep(start, end, sweep, null),
        checkpoints=checkpoints,
        by_frequency=_by_frequency(frequency, start, end, cfg.bins) if frequency is not None else None,
        bootstrap={
            "over": "blocks of consecutive held-out bytes",
            "n_blocks": blocks.n_blocks,
            "n_resamples": N_RESAMPLES,
            "method": "BCa (percentile where BCa is undefined)",
        },
        model=None,
        config=cfg.to_dict(),
    )


def _by_frequency(freq: np.ndarray, start: np.ndarray, end: np.ndarray, bins: int) -> list[dict]:
    """Per bin of training-byte frequency (log-spaced): bytes, mean start/end loss, gain (bits)."""
    edges = np.geomspace(freq.min(), freq.max() * (1 + 1e-9), bins + 1)
    idx = np.clip(np.searchsorted(edges, freq, side="right") - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        m = idx == i
        if m.any():
            out.append(
                {
                    "frequency_lo": float(edges[i]),
                    "frequency_hi": float(edges[i + 1]),
                    "tokens": int(m.sum()),
                    "mean_start_bits": float(start[m].mean()),
                    "mean_end_bits": float(end[m].mean()),
                    "information_gained_bits": float((start[m] - end[m]).sum()),
                }
            )
    return out


def measure_dynamics(
    data: bytes,
    config: DynamicsConfig,
    progress: bool = False,
    model_config: GPTConfig | None = None,
    checkpoints: list[str] | None = None,
    null_checkpoints: tuple[str, str] | None = None,
    backend: str = "serial",
    workers: int = 1,
    address: str | None = None,
    save_dir: str | Path | None = None,
) -> DynamicsResult:
    """Per-byte losses over a checkpoint series and their statistics, in bits.

    Without `checkpoints`: train a `config.preset` model on the head of `data` (seed
    `config.seed`, and a second seed for the noise null), save ≈`config.checkpoints`
    log-spaced checkpoints into `save_dir` (a temporary folder when None) and score the tail.
    With `checkpoints` (specs, see `bitlens.measures.series`): score the last 10 % of `data` (its
    validation split, whole UTF-8 characters) at each, from the first (or the last one saved at or
    before `config.start_step`) to the last; `null_checkpoints` names two seeds' final
    checkpoints. Each checkpoint is one task on `backend` ("serial", "local", "ray").
    """
    from bitlens.measures.series import expand_specs

    def score(specs: list[str], heldout: bytes) -> list[ScoredCheckpoint]:
        return score_series(specs, heldout, backend=backend, workers=workers, address=address)

    if checkpoints is not None:
        specs = expand_specs(checkpoints)
        if len(specs) < 2:
            raise BitlensError("a series needs at least two checkpoints (a start and an end)")
        heldout = whole_utf8(bytes(split_corpus(data, 1).val.numpy().tobytes()))[: config.heldout_bytes]
        null_specs = expand_specs(list(null_checkpoints)) if null_checkpoints else []
        if null_checkpoints and len(null_specs) != 2:
            raise BitlensError("the noise null needs exactly two checkpoints (two seeds' final ones)")
        scored = score(specs + null_specs, heldout)
        null = (scored[-2].surprisal_bits, scored[-1].surprisal_bits) if null_specs else None
        series = _series(scored[: len(specs)])
        start_index = 0
        if config.start_step is not None:
            known = [
                (i, s) for i, s in enumerate(series.steps[:-1]) if s is not None and s <= config.start_step
            ]
            if not known:
                raise BitlensError(
                    f"no checkpoint of the series is named with a step at or before {config.start_step}"
                )
            start_index = known[-1][0]
        d = analyse(series, start_index, config, null, "checkpoints", n_seeds=1)
        return DynamicsResult(preset="checkpoints", seed=config.seed, dynamics=d)

    if model_config is None:
        if config.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {config.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        model_config = MODEL_PRESETS[config.preset]
    base = TRAIN_PRESETS.get(config.preset, TRAIN_PRESETS["tiny"])
    train_cfg = replace(
        base,
        steps=config.steps or base.steps,
        batch_size=config.batch_size or base.batch_size,
        seed=config.seed,
    )
    split = split_corpus(data, model_config.block_size)
    heldout = bytes(split.val[: config.heldout_bytes].numpy().tobytes())
    at = checkpoint_steps(train_cfg.steps, config.checkpoints)
    with tempfile.TemporaryDirectory(prefix="bitlens-dynamics-") as tmp:
        root = Path(save_dir) if save_dir is not None else Path(tmp)
        specs = train_series(split.train, model_config, train_cfg, at, root / f"seed-{config.seed}", progress)
        null_specs = []
        null_seed = config.seed + 1 if config.null_seed is None else config.null_seed
        if config.noise_null:
            if null_seed == config.seed:
                raise BitlensError(f"the noise null needs a second seed, not the same one ({null_seed})")
            null_cfg = replace(train_cfg, seed=null_seed)
            null_specs = train_series(
                split.train,
                model_config,
                null_cfg,
                [train_cfg.steps],
                root / f"seed-{null_seed}",
                progress,
            )
        scored = score(specs + null_specs, heldout)
    null = (scored[len(specs) - 1].surprisal_bits, scored[-1].surprisal_bits) if null_specs else None
    series = _series(scored[: len(specs)], train_cfg.batch_size * model_config.block_size)
    counts = np.bincount(split.train.numpy(), minlength=256).astype(float)
    unigram_bits = float(distribution_entropy_bits(counts / counts.sum()))
    means = [float(b.mean()) for b in series.bits]
    if config.start_step is not None:
        start_index = max(i for i, s in enumerate(at) if s <= config.start_step)
    else:  # the first checkpoint that codes as well as byte frequencies (else the last but one)
        start_index = next((i for i, m in enumerate(means) if m <= unigram_bits), len(at) - 2)
    targets = np.frombuffer(heldout, dtype=np.uint8)
    freq = np.maximum(counts[targets] / counts.sum(), 0.5 / counts.sum())  # unseen: half a count
    d = analyse(series, start_index, config, null, "trained", 1, unigram_bits, freq)
    d = replace(d, model=model_config.to_dict())
    return DynamicsResult(preset=config.preset, seed=config.seed, dynamics=d)


def plot_dynamics(result: dict, path: str | Path) -> list[Path]:
    """Class split beside Rho-1's and the noise null's, held-out loss over the series, gain share
    beside starting-bits share per class, and the split over the threshold sweep; 95 % intervals
    as error bars and bands."""
    from bitlens.plotting import new_figure, save_figure

    fig, axes = new_figure(ncols=2, nrows=2, width=13, height=9)
    ax1, ax2, ax3, ax4 = axes.ravel()
    x = np.arange(len(CLASSES))
    cls = result["classes"]

    def bars(ax, offset, ivs, label):
        est = [iv["estimate"] if iv else np.nan for iv in ivs]
        err = np.array(
            [[iv["estimate"] - iv["ci95"][0], iv["ci95"][1] - iv["estimate"]] if iv else [0, 0] for iv in ivs]
        )
        ax.bar(x + offset, est, width=0.27, yerr=err.T, capsize=3, label=label)

    bars(ax1, -0.27, [cls[c]["proportion"] for c in CLASSES], "this series")
    ax1.bar(x, [result["rho1_proportions"][c] for c in CLASSES], width=0.27, label="Rho-1")
    if result.get("noise_null"):
        bars(ax1, 0.27, [result["noise_null"]["classes"][c] for c in CLASSES], "two seeds (noise null)")
    ax1.set_xticks(x, CLASSES)
    ax1.set_ylabel("share of held-out bytes")
    ax1.set_title(f"classes at threshold {result['threshold_bits']:.2f} bits")
    ax1.legend(fontsize=8)

    cps = result["checkpoints"]
    steps = [c["step"] for c in cps]
    trained = all(s is not None for s in steps) and result["source"] == "trained"
    xs = np.array([max(s, 1) for s in steps] if trained else range(len(cps)), dtype=float)
    mean = np.array([c["bits_per_byte"] for c in cps])
    ax2.plot(xs, mean, marker="o")
    ax2.fill_between(xs, [c["ci95"][0] for c in cps], [c["ci95"][1] for c in cps], alpha=0.3, label="95% CI")
    start = next(i for i, c in enumerate(cps) if c["label"] == result["start"])
    ax2.axvline(xs[start], color="grey", ls=":", label="start checkpoint")
    if trained:
        ax2.set_xscale("log")
        ax2.set_xlabel("training step (step 0 drawn at 1)")
    else:
        ax2.set_xlabel("checkpoint (in the order given)")
    ax2.set_ylabel("held-out bits/byte")
    ax2.legend(fontsize=8)

    bars(ax3, -0.14, [cls[c]["gain_share"] for c in CLASSES], "share of the gain")
    bars(ax3, 0.14, [cls[c]["start_bits_share"] for c in CLASSES], "share of the starting bits")
    ax3.axhline(0, color="black", lw=0.5)
    ax3.set_xticks(x, CLASSES)
    ax3.set_title("gain vs starting bits, per class")
    ax3.legend(fontsize=8)

    sweep = result["threshold_sweep"]
    th = [r["threshold_bits"] for r in sweep]
    for c in CLASSES:
        ax4.plot(th, [r["proportions"][c] for r in sweep], marker=".", label=c)
    if sweep and "null_proportions" in sweep[0]:
        off = [r["null_proportions"]["H->L"] + r["null_proportions"]["L->H"] for r in sweep]
        ax4.plot(th, off, color="black", ls="--", label="null: H->L + L->H")
    ax4.axvline(result["threshold_bits"], color="grey", ls=":")
    ax4.set_xlabel("threshold (bits)")
    ax4.set_ylabel("share of held-out bytes")
    ax4.set_title("threshold sweep")
    ax4.legend(fontsize=8)
    return save_figure(fig, path)
