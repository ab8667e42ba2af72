"""Training: AdamW, cosine schedule with warm-up, gradient clipping, evaluation in bits/byte.

`train` is a function of a model, data and a config. With a run directory it also writes
`metrics.jsonl` and atomic checkpoints, and `resume=True` continues a run killed at any moment
to the same weights as an uninterrupted run (batches and dropout are seeded per step, and the
optimizer state travels in the checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import torch
import torch.nn.functional as F

from bitlens.data import get_batch, split_corpus
from bitlens.determinism import deterministic
from bitlens.errors import BitlensError
from bitlens.evaluate import evaluate
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.progress import progress_bar
from bitlens.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    apply_weights,
    atomic_save_tensors,
    atomic_write_bytes,
    atomic_write_json,
    environment_info,
    load_tensors,
    model_state,
    read_config,
    save_model,
)
from bitlens.units import nats_to_bits


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # the cosine decays to lr × min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 200  # steps between held-out evaluations (and at the last step)
    eval_bytes: int = 32_768  # held-out bytes scored at each evaluation
    log_interval: int = 10
    checkpoint_interval: int = 100
    seed: int = 1337
    threads: int | None = None  # torch threads; None leaves torch's default
    deterministic: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# Default training length per model preset; `--steps` overrides.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(steps=600, batch_size=32, lr=3e-3),
    "shallow": TrainConfig(steps=600, batch_size=32, lr=3e-3),
    "small": TrainConfig(steps=1650, batch_size=32, lr=3e-3),
    "base": TrainConfig(steps=3000, batch_size=32, lr=1e-3),
}

Batch = tuple[torch.Tensor, ...]
BatchFn = Callable[[int, torch.Generator], Batch]
LossFn = Callable[[GPT, Batch], torch.Tensor]


@dataclass
class TrainResult:
    steps: int
    tokens: int
    flops: float
    seconds: float
    tokens_per_second: float
    params: int
    val_bits_per_byte: float | None
    train_bits_per_byte: float | None
    metrics: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("metrics")
        return d


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr × min_lr_ratio at cfg.steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms or biases)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=False)


def cross_entropy_loss(model: GPT, batch: Batch) -> torch.Tensor:
    """Mean next-byte cross-entropy in nats (PyTorch's unit; convert with nats_to_bits)."""
    x, y = batch[0], batch[1]
    logits = model(x)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator for one step's batch: a pure function of (seed, step), so resumes agree."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            out[f"optimizer.{idx}.{key}"] = t
    return out


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    sd = opt.state_dict()
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def save_checkpoint(path: Path, model: GPT, opt: torch.optim.Optimizer, meta: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model_state(model).items()}
    tensors.update(_optimizer_tensors(opt))
    atomic_save_tensors(path, tensors, {k: json.dumps(v) for k, v in meta.items()})


def load_checkpoint(path: Path, model: GPT, opt: torch.optim.Optimizer) -> dict:
    """Restore model and optimizer from a checkpoint; returns its metadata (step, tokens, …)."""
    from safetensors import safe_open

    tensors = load_tensors(path)
    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    apply_weights(model, weights, str(path))
    _load_optimizer(opt, tensors)
    return meta


def _read_metrics(path: Path, upto_step: int) -> list[dict]:
    """Metrics lines logged at or before `upto_step` (a torn last line from a crash is dropped)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


@dataclass(frozen=True)
class _Counters:
    """What a checkpoint records: steps done, tokens and FLOPs so far, seconds spent before."""

    step: int = 0
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0


class _RunFiles:
    """A run directory's training files: `metrics.jsonl` (one line per logged step, flushed at
    once) and the checkpoint (model + optimizer + counters, written atomically)."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = run_dir / CHECKPOINT_FILE
        self.metrics_path = run_dir / METRICS_FILE
        self._metrics: IO[str] | None = None

    def restore(self, model: GPT, opt: torch.optim.Optimizer, resume: bool) -> tuple[_Counters, list[dict]]:
        """The counters and metrics to continue from (the checkpoint's, with resume), and a
        metrics file cut back to them."""
        counters, metrics = _Counters(), []
        if resume and self.checkpoint_path.exists():
            meta = load_checkpoint(self.checkpoint_path, model, opt)
            counters = _Counters(
                int(meta["step"]), int(meta["tokens"]), float(meta["flops"]), float(meta.get("seconds", 0.0))
            )
            metrics = _read_metrics(self.metrics_path, counters.step)
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(m) + "\n" for m in metrics).encode())
        return counters, metrics

    def __enter__(self) -> _RunFiles:
        self._metrics = open(self.metrics_path, "a")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._metrics is not None:
            self._metrics.close()

    def log(self, row: dict[str, Any]) -> None:
        assert self._metrics is not None
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def checkpoint(self, model: GPT, opt: torch.optim.Optimizer, counters: _Counters) -> None:
        save_checkpoint(self.checkpoint_path, model, opt, asdict(counters))


def _random_windows(train_data: torch.Tensor, batch_size: int, block: int) -> BatchFn:
    """The default batches: `batch_size` random windows of `block` + 1 bytes."""
    if len(train_data) < block + 1:
        raise BitlensError(
            f"training data has {len(train_data)} bytes, fewer than one context window ({block + 1})"
        )

    def batch_fn(step: int, gen: torch.Generator) -> Batch:
        return get_batch(train_data, batch_size, block, gen)

    return batch_fn


def _optimizer_step(
    model: GPT, opt: torch.optim.Optimizer, cfg: TrainConfig, step: int, batch_fn: BatchFn, loss_fn: LossFn
) -> tuple[float, int]:
    """One step on its seeded batch; returns its loss in bits per token and its token count."""
    torch.manual_seed(cfg.seed * 7_919 + step)  # dropout, if any, is seeded per step
    batch = batch_fn(step, step_generator(cfg.seed, step))
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    loss = loss_fn(model, batch)
    if not torch.isfinite(loss):
        raise BitlensError(f"training diverged: loss is {loss.item()} at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return float(nats_to_bits(loss.item())), batch[0].numel()


def train_threads(cfg: TrainConfig) -> AbstractContextManager[None]:
    """The torch settings a run trains under (cfg.threads, deterministic kernels), restored after."""
    return deterministic(cfg.threads or torch.get_num_threads(), kernels=cfg.deterministic)


def train(
    model: GPT,
    train_data: torch.Tensor | None,
    cfg: TrainConfig,
    val_data: torch.Tensor | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    batch_fn: BatchFn | None = None,
    loss_fn: LossFn = cross_entropy_loss,
) -> TrainResult:
    """Train `model` in place for cfg.steps steps and return what happened, in bits.

    train_data/val_data: uint8 byte tensors. batch_fn(step, generator) may replace the default
    random-window batches (e.g. masked or soft-label batches for `loss_fn`); its first tensor's
    numel counts the tokens. Losses leave PyTorch in nats and are reported in bits. Runs under
    cfg.threads torch threads and (cfg.deterministic) deterministic kernels, restored afterwards.
    With `run_dir`, logs metrics.jsonl and checkpoints; `resume` continues from the checkpoint.
    """
    if batch_fn is None:
        if train_data is None:
            raise BitlensError("train() needs train_data or a batch_fn")
        batch_fn = _random_windows(train_data, cfg.batch_size, model.config.block_size)
    opt = make_optimizer(model, cfg)
    files = _RunFiles(Path(run_dir)) if run_dir is not None else None
    start, metrics = files.restore(model, opt, resume) if files else (_Counters(), [])
    val_bpb = _last_val_bits_per_byte(metrics)
    last = _Step(start, None, False, None, val_bpb)
    t0 = time.perf_counter()
    with (
        train_threads(cfg),
        files or nullcontext(),
        progress_bar(cfg.steps, "training", enabled=progress) as bar,
    ):
        bar.advance(start.step)
        for last in _steps(model, opt, cfg, start, val_bpb, val_data, batch_fn, loss_fn):
            if last.row is not None:
                metrics.append(last.row)
                if files:
                    files.log(last.row)
            if files and last.checkpoint:
                files.checkpoint(model, opt, last.counters)
            bar.advance(1, status=last.status())
    model.eval()
    seconds = start.seconds + time.perf_counter() - t0
    return TrainResult(
        steps=cfg.steps,
        tokens=last.counters.tokens,
        flops=last.counters.flops,
        seconds=seconds,
        tokens_per_second=last.counters.tokens / max(seconds, 1e-9),
        params=model.num_params(),
        val_bits_per_byte=last.val_bits_per_byte,
        train_bits_per_byte=last.train_bits_per_byte,
        metrics=metrics,
    )


def _last_val_bits_per_byte(metrics: list[dict]) -> float | None:
    return next((m["val_bits_per_byte"] for m in reversed(metrics) if "val_bits_per_byte" in m), None)


@dataclass(frozen=True)
class _Step:
    """Where training stands after a step, and what the caller should record."""

    counters: _Counters
    row: dict[str, Any] | None  # a metrics row, when this step is logged or evaluated
    checkpoint: bool  # a checkpoint is due
    train_bits_per_byte: float | None  # the last logged mean training loss
    val_bits_per_byte: float | None  # the last held-out evaluation

    def status(self) -> str:
        c = self.counters
        status = f"{self.train_bits_per_byte:.3f} bits/byte" if self.train_bits_per_byte else ""
        if self.val_bits_per_byte is not None:
            status += f" · val {self.val_bits_per_byte:.3f}"
        return f"{status} · {c.tokens / max(c.seconds, 1e-9):,.0f} tok/s"


def _steps(
    model: GPT,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    start: _Counters,
    val_bpb: float | None,
    val_data: torch.Tensor | None,
    batch_fn: BatchFn,
    loss_fn: LossFn,
) -> Iterator[_Step]:
    """Steps start.step … cfg.steps − 1, yielding after each (the model as that step left it).
    The training loss is averaged in bits over the steps since the last logged one."""
    model.train()
    flops_per_token = model.flops_per_token(train=True)
    t0 = time.perf_counter()
    c = start
    window_bits, window_n = 0.0, 0
    train_bpb: float | None = None
    for step in range(start.step, cfg.steps):
        loss_bits, n_tok = _optimizer_step(model, opt, cfg, step, batch_fn, loss_fn)
        done = step + 1
        c = _Counters(
            done,
            c.tokens + n_tok,
            c.flops + n_tok * flops_per_token,
            start.seconds + time.perf_counter() - t0,
        )
        window_bits += loss_bits
        window_n += 1
        logged = done % cfg.log_interval == 0 or done == cfg.steps
        evaluated = val_data is not None and (done % cfg.eval_interval == 0 or done == cfg.steps)
        if logged:
            train_bpb = window_bits / window_n
            window_bits, window_n = 0.0, 0
        row = None
        if logged or evaluated:
            row = {
                "step": done,
                "tokens": c.tokens,
                "flops": c.flops,
                "lr": lr_at(step, cfg),
                "train_bits_per_byte": train_bpb,
                "seconds": c.seconds,
            }
        if evaluated and val_data is not None and row is not None:
            val_bpb = evaluate(model, val_data[: cfg.eval_bytes]).bits_per_byte
            model.train()
            row["val_bits_per_byte"] = val_bpb
        checkpoint = done % cfg.checkpoint_interval == 0 or done == cfg.steps
        yield _Step(c, row, checkpoint, train_bpb, val_bpb)


def resolve_train_config(preset: str, **overrides: Any) -> TrainConfig:
    """The preset's training config with the given non-None fields replaced."""
    if preset not in TRAIN_PRESETS:
        raise BitlensError(f"unknown preset {preset!r}; choose from {', '.join(TRAIN_PRESETS)}")
    return replace(TRAIN_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class RunResult:
    """A finished training run: where it lives and what it measured (bits per byte)."""

    run_dir: str
    preset: str
    params: int
    steps: int
    tokens: int
    flops: float
    seconds: float
    tokens_per_second: float
    val_bits_per_byte: float
    val_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def train_run(
    corpus: bytes,
    out_dir: str | Path,
    preset: str = "small",
    steps: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    progress: bool = False,
    corpus_name: str = "",
    train_overrides: dict[str, Any] | None = None,
) -> RunResult:
    """Train a preset model on `corpus` into a run directory; evaluate the whole held-out split.

    A fresh run refuses a directory that already holds a run (use resume=True to continue it).
    A resumed run keeps its recorded config: `steps`, `seed` or `train_overrides` that differ
    from it are an error (equal ones are fine), so a resume always reaches the same weights.
    """
    out = Path(out_dir)
    if (out / CONFIG_FILE).exists() and not resume:
        raise BitlensError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    overrides = {"steps": steps, "seed": seed, **(train_overrides or {})}
    if resume and (out / CONFIG_FILE).exists():
        preset, model_cfg, cfg = _recorded_run(out, preset, overrides)
    else:
        preset, model_cfg, cfg = _new_run(out, preset, overrides, corpus, corpus_name)
    split = split_corpus(corpus, model_cfg.block_size)
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg)
    with train_threads(cfg):  # the final evaluation runs under the training's settings too
        result = train(
            model, split.train, cfg, val_data=split.val, run_dir=out, resume=resume, progress=progress
        )
        save_model(model, out / WEIGHTS_FILE)
        final = evaluate(model, split.val, progress=progress)
    run = RunResult(
        run_dir=str(out),
        preset=preset,
        params=model.num_params(),
        steps=result.steps,
        tokens=result.tokens,
        flops=result.flops,
        seconds=result.seconds,
        tokens_per_second=result.tokens_per_second,
        val_bits_per_byte=final.bits_per_byte,
        val_bytes=final.bytes,
    )
    atomic_write_json(out / "result.json", run.to_dict())
    return run


def _new_run(
    out: Path, preset: str, overrides: dict[str, Any], corpus: bytes, corpus_name: str
) -> tuple[str, GPTConfig, TrainConfig]:
    """The preset's model and training config with the overrides; recorded in config.json."""
    if preset not in MODEL_PRESETS:
        raise BitlensError(f"unknown preset {preset!r}; choose from {', '.join(MODEL_PRESETS)}")
    model_cfg = MODEL_PRESETS[preset]
    cfg = resolve_train_config(preset, **overrides)
    if cfg.threads is None:
        cfg = replace(cfg, threads=torch.get_num_threads())
    atomic_write_json(
        out / CONFIG_FILE,
        {
            "preset": preset,
            "model": model_cfg.to_dict(),
            "train": cfg.to_dict(),
            "corpus": corpus_name,
            "corpus_bytes": len(corpus),
            "corpus_sha256": hashlib.sha256(corpus).hexdigest(),
            "environment": environment_info(),
        },
    )
    return preset, model_cfg, cfg


def _recorded_run(out: Path, preset: str, overrides: dict[str, Any]) -> tuple[str, GPTConfig, TrainConfig]:
    """The preset, model and training config recorded in `out`; refuses overrides that differ."""
    saved = read_config(out)
    cfg = TrainConfig.from_dict(saved["train"])
    recorded = cfg.to_dict()
    conflicts = [
        f"--{k.replace('_', '-')} {v} (recorded: {recorded.get(k)})"
        for k, v in overrides.items()
        if v is not None and recorded.get(k) != v
    ]
    if conflicts:
        raise BitlensError(
            f"cannot resume {out} with {', '.join(conflicts)}: a resumed run keeps "
            "its recorded settings; drop the option or train into another --out"
        )
    return saved.get("preset", preset), GPTConfig.from_dict(saved["model"]), cfg
