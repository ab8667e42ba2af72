"""Training an offspring from scratch on windows, through `bitlens.train.train`.

A batch mixes fixed numbers of windows from each source (e.g. 11 real + 5 synthetic of 16),
each window with its float loss mask; batches are (x, y, mask) and a pure function of the step's
generator, so runs are reproducible from their seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.budget import steps_for_budget
from bitlens.train import TRAIN_PRESETS, LossFn, TrainConfig, TrainResult, cross_entropy_loss, train


@dataclass(frozen=True)
class WindowSource:
    """Windows (n, T+1) uint8, their loss mask (n, T) bool, and how many go in each batch."""

    windows: torch.Tensor
    mask: np.ndarray
    per_batch: int

    @classmethod
    def unmasked(cls, windows: torch.Tensor, per_batch: int) -> WindowSource:
        return cls(windows, np.ones((len(windows), windows.shape[1] - 1), dtype=bool), per_batch)


def offspring_train_config(preset: str, steps: int, batch_size: int, seed: int) -> TrainConfig:
    """The preset's optimiser settings for a short run: no evaluation, no checkpoints."""
    base = TRAIN_PRESETS[preset]
    return replace(
        base,
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
) -> tuple[GPT, TrainResult]:
    """A fresh `preset` model (initialised from `seed`) trained on `budget_tokens` tokens."""
    sources = [s for s in sources if s.per_batch > 0]
    if not sources or any(len(s.windows) == 0 for s in sources):
        raise BitlensError("an offspring needs at least one non-empty source of windows")
    batch_size = sum(s.per_batch for s in sources)
    window = sources[0].windows.shape[1] - 1
    masks = [torch.from_numpy(s.mask).float() for s in sources]

    def batch_fn(step: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        picks = [torch.randint(len(s.windows), (s.per_batch,), generator=g) for s in sources]
        w = torch.cat([s.windows[i] for s, i in zip(sources, picks, strict=True)]).long()
        return w[:, :-1], w[:, 1:], torch.cat([m[i] for m, i in zip(masks, picks, strict=True)])

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
    cfg = offspring_train_config(preset, steps, batch_size, seed)
    result = train(model, sources[0].windows.flatten(), cfg, batch_fn=batch_fn, loss_fn=loss_fn)
    return model, result
