"""The parent of a byte-level offspring: a bitlens `GPT` (it reads bytes) or a local Hugging Face
LM (`bitlens.hf.HFModel`, it reads tokens). The offspring loop asks the parent for three things,
all per byte: its surprisal and entropy on byte windows (selection), byte continuations of real
prompts (synthetic data), and its held-out bits per byte. This module answers them for both.

A token-level parent has no next-*byte* distribution, so what needs one refuses in one line:
soft and mixed distillation targets (KL to the parent's next-byte distribution) and the
offspring's KL to the parent (reported as None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.evaluate import window_scores
from bitlens.model import GPT
from bitlens.offspring.synth import Samples, sample
from bitlens.tokens import token_name

if TYPE_CHECKING:
    from bitlens.hf import HFModel


def is_token_parent(parent: GPT | HFModel) -> bool:
    """Whether the parent reads tokens (an hf: model) rather than bytes."""
    return token_name(parent) == "token"


def refuse_soft_target(parent: GPT | HFModel, target: str, soft_weight: float) -> None:
    """One line when a target needs the parent's next-byte distribution and it has none."""
    if soft_weight > 0 and is_token_parent(parent):
        raise BitlensError(
            f"target {target!r} distils the parent's next-byte distribution, which a token-level "
            "parent (hf:) does not have; use target 'hard' (its samples) or a byte-level parent"
        )


def parent_window_scores(
    parent: GPT | HFModel, windows: torch.Tensor, batch_size: int, with_entropy: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per target byte of every (n, T + 1) window, read on its own: the parent's surprisal and
    (if asked) predictive entropy in bits, (n, T). Exact per byte for a byte parent; a token
    parent's token bits are spread over their bytes (`bitlens.hf.score_byte_windows`)."""
    if is_token_parent(parent):
        from bitlens.hf import score_byte_windows

        return score_byte_windows(parent, windows, with_entropy=with_entropy)  # type: ignore[arg-type]
    return window_scores(parent, windows, batch_size=batch_size, with_entropy=with_entropy)  # type: ignore[arg-type]


def parent_sample(
    parent: GPT | HFModel,
    prompts: torch.Tensor,
    n_new: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
) -> Samples:
    """Continue each prompt row (n, P) of bytes by `n_new` bytes (see `bitlens.offspring.synth`).

    A token parent continues each prompt as text, one prompt at a time, and the first `n_new`
    bytes of its continuation are kept (`bitlens.hf.sample_bytes`); its per-byte bits are its
    tokens' bits spread over their bytes."""
    if not is_token_parent(parent):
        return sample(parent, prompts, n_new, temperature, top_p, generator)  # type: ignore[arg-type]
    from bitlens.hf import sample_bytes

    rows = [
        sample_bytes(parent, bytes(p.to(torch.uint8).numpy().tobytes()), n_new, temperature, top_p, generator)  # type: ignore[arg-type]
        for p in prompts
    ]
    return Samples(
        tokens=torch.tensor(
            np.frombuffer(b"".join(r[0] for r in rows), dtype=np.uint8).reshape(len(rows), n_new)
        ),
        surprisal_bits=torch.from_numpy(np.stack([r[1] for r in rows])).float(),
        entropy_bits=torch.from_numpy(np.stack([r[2] for r in rows])).float(),
    )


def parent_heldout_bits_per_byte(parent: GPT | HFModel, windows: torch.Tensor, batch_size: int) -> float:
    """The parent's mean surprisal in bits over the target bytes of held-out windows."""
    return float(parent_window_scores(parent, windows, batch_size)[0].mean())
