"""Training an offspring from scratch on windows, through `bitlens.train.train`.

A batch mixes fixed numbers of windows from each source (e.g. 11 real + 5 synthetic of 16),
each window with its float loss mask; batches are (x, y, mask) and a pure function of the step's
generator, so runs are reproducible from their seed.

With `OnlineSelection` the first source is chosen as the offspring trains (online RHO-LOSS,
Mindermann et al. 2022; Rho-1's selective language modelling, Lin et al. 2024): each step scores
candidates by the learner's *current* surprisal minus a fixed reference surprisal (bits per
target byte) and keeps the top ones, whole windows (document level: `per_batch` of
`ceil(per_batch / keep_ratio)` uniform candidates) or bytes (token level: the top `keep_ratio`
of the batch's targets carry loss).

A `LearningCurve` scores the model at chosen steps as it trains (held-out bits/byte); scoring
reads the model without changing it or the batches, so a run with a curve trains exactly as one
without.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.budget import steps_for_budget
from bitlens.offspring.select import select_tokens
from bitlens.train import TRAIN_PRESETS, LossFn, TrainConfig, TrainResult, cross_entropy_loss, train
from bitlens.units import surprisal_bits


@dataclass(frozen=True)
class WindowSource:
    """Windows (n, T+1) uint8, their loss mask (n, T) bool, and how many go in each batch."""

    windows: torch.Tensor
    mask: np.ndarray
    per_batch: int

    @classmethod
    def unmasked(cls, windows: torch.Tensor, per_batch: int) -> WindowSource:
        return cls(windows, np.ones((len(windows), windows.shape[1] - 1), dtype=bool), per_batch)


@dataclass(frozen=True)
class OnlineSelection:
    """Choose the first source's windows or bytes each step by learner − reference surprisal."""

    reference_bits: np.ndarray  # (n, T) bits per target byte of the first source's windows
    keep_ratio: float
    level: str  # "document" or "token"

    def candidates(self, per_batch: int) -> int:
        """Windows scored per step: enough that `per_batch` are keep_ratio of them (documents)."""
        return math.ceil(per_batch / self.keep_ratio) if self.level == "document" else per_batch


@dataclass
class LearningCurve:
    """Bits/byte of the training model at chosen steps (`score` gives held-out bits/byte).

    `points` fills with (steps done, bits/byte) as training passes each of `steps`; a step
    ≥ the run's length is never reached (the caller scores the finished model itself)."""

    steps: tuple[int, ...]
    score: Callable[[GPT], float]
    points: list[tuple[int, float]] = field(default_factory=list)

    def record(self, step: int, model: GPT) -> None:
        """Score `model` if `step` (optimizer steps done so far) is one of the curve's."""
        if step in self.steps:
            self.points.append((step, self.score(model)))


def offspring_train_config(
    preset: str, steps: int, batch_size: int, seed: int, lr: float | None = None
) -> TrainConfig:
    """The preset's optimiser settings (its peak `lr` unless given) for a short run: no
    evaluation, no checkpoints."""
    base = TRAIN_PRESETS[preset]
    return replace(
        base,
        lr=base.lr if lr is None else lr,
        steps=steps,
        batch_size=batch_size,
        warmup_steps=min(base.warmup_steps, max(1, steps // 10)),
        eval_interval=10**9,
        log_interval=max(1, steps),
        checkpoint_interval=10**9,
        seed=seed,
    )


def train_on_windows(
    preset: str,
    sources: list[WindowSource],
    budget_tokens: int,
    seed: int,
    loss_fn: LossFn = cross_entropy_loss,
    block_size: int | None = None,
    online: OnlineSelection | None = None,
    lr: float | None = None,
    curve: LearningCurve | None = None,
) -> tuple[GPT, TrainResult]:
    """A fresh `preset` model (initialised from `seed`) trained on `budget_tokens` tokens at peak
    learning rate `lr` (default: the preset's); `online` chooses the first source's windows or
    bytes as it trains, `curve` records the model's held-out bits/byte at its steps (module
    docstring)."""
    sources = [s for s in sources if s.per_batch > 0]
    if not sources or any(len(s.windows) == 0 for s in sources):
        raise BitlensError("an offspring needs at least one non-empty source of windows")
    batch_size = sum(s.per_batch for s in sources)
    window = sources[0].windows.shape[1] - 1
    masks = [torch.from_numpy(s.mask).float() for s in sources]
    n_draw = [s.per_batch for s in sources]
    if online is not None:
        n_draw[0] = online.candidates(sources[0].per_batch)

    def batch_fn(step: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        if curve is not None:  # the model as `step` optimizer steps left it
            curve.record(step, model)
        picks = [
            torch.randint(len(s.windows), (k,), generator=g) for s, k in zip(sources, n_draw, strict=True)
        ]
        chosen = [m[i] for m, i in zip(masks, picks, strict=True)]
        if online is not None:
            picks[0], chosen[0] = _choose_online(model, sources[0], masks[0], picks[0], online)
        w = torch.cat([s.windows[i] for s, i in zip(sources, picks, strict=True)]).long()
        return w[:, :-1], w[:, 1:], torch.cat(chosen)

    config = MODEL_PRESETS[preset]
    if block_size is not None:
        config = replace(config, block_size=block_size)
    if config.block_size < window:
        raise BitlensError(
            f"preset {preset!r} has a context of {config.block_size} bytes, "
            f"shorter than the {window}-byte training windows"
        )
    steps = steps_for_budget(budget_tokens, batch_size, window)
    torch.manual_seed(seed)
    model = GPT(config)
    cfg = offspring_train_config(preset, steps, batch_size, seed, lr)
    result = train(model, sources[0].windows.flatten(), cfg, batch_fn=batch_fn, loss_fn=loss_fn)
    return model, result


@torch.no_grad()
def _choose_online(
    model: GPT, source: WindowSource, mask: torch.Tensor, picks: torch.Tensor, online: OnlineSelection
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows (indices into the source) and loss mask of one step, chosen by the learner's
    current surprisal minus the reference surprisal, in bits (high = train on it)."""
    w = source.windows[picks].long()
    learner = surprisal_bits(model(w[:, :-1]), w[:, 1:]).double().numpy()
    reducible = learner - online.reference_bits[picks.numpy()]
    if online.level == "document":
        top = torch.from_numpy(
            np.sort(np.argsort(-reducible.mean(axis=1), kind="stable")[: source.per_batch])
        )
        return picks[top], mask[picks[top]]
    keep = torch.from_numpy(select_tokens(reducible, online.keep_ratio)).float()
    return picks, mask[picks] * keep
