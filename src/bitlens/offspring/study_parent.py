"""The parent of the distillation studies: trained here, from a fixed seed, on the parent_train
split, with the offspring's own recipe (`train_on_windows`: windows of the context, its batch
size, the study's peak learning rate), so its steps, tokens and FLOPs are known and the
born-again offspring can be held to its budget. The offspring context (pool, validation, test;
`bitlens.offspring.splits`) is cut around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.policy import ContextConfig, OffspringContext, context_from_model
from bitlens.offspring.select import make_windows

# Peak learning rate of the study's parent and offspring: short tiny runs leave the unigram
# plateau (~4.5 bits/byte) in ~60 steps of 16 × 128 bytes at 1e-2 (3.9 bits/byte on the default
# corpus's test split) and not at the preset's 3e-3 (4.3).
STUDY_LR = 1e-2
SPLIT = "test"  # nothing here chooses: every figure is scored on the test split


@dataclass(frozen=True)
class ParentConfig:
    """The study's parent: a `preset` model trained `steps` steps from `seed` on parent_train,
    in the windows and batches of `context` (whose sizes also cut pool, validation and test)."""

    preset: str = "tiny"
    steps: int = 600
    seed: int = 1337
    lr: float = STUDY_LR
    context: ContextConfig = field(default_factory=ContextConfig.full)

    def __post_init__(self) -> None:
        if self.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {self.preset!r}; choose from {', '.join(MODEL_PRESETS)}")
        if self.steps < 1:
            raise BitlensError(f"the parent needs at least one training step, got {self.steps}")

    @classmethod
    def quick(cls) -> ParentConfig:
        return cls(steps=40, context=ContextConfig.quick())

    @classmethod
    def full(cls) -> ParentConfig:
        return cls()


@dataclass
class StudyParent:
    """A trained parent, the offspring context cut around it, and what its training spent."""

    model: GPT
    ctx: OffspringContext
    config: ParentConfig
    tokens: int
    flops: float

    @property
    def test_bits_per_byte(self) -> float:
        return self.ctx.parent_heldout_bits_per_byte(SPLIT)

    def train_windows(self) -> torch.Tensor:
        """The parent_train split in (n, T + 1) windows: what the parent was trained on."""
        return make_windows(self.ctx.parent_train, self.ctx.window)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.config.preset,
            "params": self.model.num_params(),
            "steps": self.config.steps,
            "seed": self.config.seed,
            "lr": self.config.lr,
            "batch_size": self.ctx.config.batch_size,
            "window_bytes": self.ctx.window,
            "tokens": self.tokens,
            "train_flops": self.flops,
            "trained_on": "parent_train",
            "test_bits_per_byte": self.test_bits_per_byte,
        }


def train_parent(corpus: bytes, config: ParentConfig) -> StudyParent:
    """Train the parent on the parent_train split of `corpus` and cut the offspring context."""
    c = config.context
    splits = c.data_splits(corpus)
    windows = make_windows(splits.take(corpus, "parent_train"), c.window)
    budget = config.steps * c.batch_size * c.window
    model, result = train_on_windows(
        config.preset, [WindowSource.unmasked(windows, c.batch_size)], budget, config.seed, lr=config.lr
    )
    ctx = context_from_model(model, corpus, c)
    return StudyParent(model=model, ctx=ctx, config=config, tokens=result.tokens, flops=result.flops)
