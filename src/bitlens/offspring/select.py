"""Selecting training data from a pool: per-token scores in bits, document and token level.

The pool is a corpus cut into windows of `block_size + 1` bytes (one training example each:
inputs window[:-1], targets window[1:]). Every score is a (n_windows, block_size) array of bits,
one per target byte, high = keep first:

- random: uniform noise (the baseline);
- surprisal: the parent's surprisal −log2 p_parent(x_t | window prefix);
- low-surprisal: minus the parent's surprisal (easy bytes first);
- static-excess: parent surprisal − reference surprisal, both fixed before training (the
  reference is a small model trained on the validation split). RHO-LOSS (Mindermann et al. 2022)
  uses the *current learner's* loss minus the reference loss, recomputed as the learner trains;
  this is its static stand-in with the parent as the learner, not RHO-LOSS itself;
- bigram: the surprisal of an add-one byte-bigram count model fitted on the parent's training
  text (no parent involved): the control that tells what the parent's scores add over counting;
- learnability: byte-bigram surprisal − parent surprisal (the bits the parent's context model
  saves over bigram statistics: what the parent knows that counting pairs does not);
- rho-loss: online RHO-LOSS as its source defines it: the offspring's *current* surprisal minus
  the reference (parent) surprisal, recomputed every step as it trains
  (`bitlens.offspring.batches.OnlineSelection`); it has no static score.

Document level keeps the top windows by mean score; token level keeps the top bytes over the
whole pool as a loss mask (Rho-1's selective language modelling, with static scores).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from bitlens.data import VOCAB_SIZE
from bitlens.errors import BitlensError

LEVELS = ("document", "token")

# The per-token figures a score may combine, each (n_windows, block_size) bits.
TokenBits = Mapping[str, np.ndarray]
ScoreFn = Callable[[TokenBits, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Score:
    """A selection score: the per-token figures it needs and how it combines them (bits, high =
    keep first)."""

    name: str
    needs: tuple[str, ...]  # keys of TokenBits it reads (so a context computes only these)
    fn: ScoreFn
    online: bool = False  # scored as the offspring trains, not once before (fn is never called)


def _no_static_score(bits: TokenBits, rng: np.random.Generator) -> np.ndarray:
    raise BitlensError("rho-loss is scored online, as the offspring trains: it has no static score")


SCORES: dict[str, Score] = {
    s.name: s
    for s in (
        Score("random", (), lambda b, rng: rng.random(next(iter(b.values())).shape)),
        Score("surprisal", ("parent",), lambda b, rng: b["parent"]),
        Score("low-surprisal", ("parent",), lambda b, rng: -b["parent"]),
        Score("static-excess", ("parent", "reference"), lambda b, rng: b["parent"] - b["reference"]),
        Score("bigram", ("bigram",), lambda b, rng: b["bigram"]),
        Score("learnability", ("parent", "bigram"), lambda b, rng: b["bigram"] - b["parent"]),
        Score("rho-loss", ("parent",), _no_static_score, online=True),
    )
}


def uses_parent(score: str) -> bool:
    """Whether a named score reads the parent's bits (the controls, random and bigram, do not)."""
    return "parent" in SCORES[score].needs


def make_windows(data: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cut a uint8 tensor into (n, block_size + 1) windows that overlap by one byte."""
    n = (len(data) - 1) // block_size
    if n < 1:
        raise BitlensError(f"{len(data)} bytes hold no window of {block_size + 1} bytes")
    idx = torch.arange(n)[:, None] * block_size + torch.arange(block_size + 1)[None, :]
    return data[idx]


def bigram_surprisal_bits(windows: torch.Tensor, fit_data: torch.Tensor) -> np.ndarray:
    """Surprisal in bits of each target byte of (n, T + 1) windows under an add-one byte-bigram
    model fitted on the bytes `fit_data` (the parent's training text, never the pool)."""
    a = fit_data[:-1].long().numpy()
    b = fit_data[1:].long().numpy()
    counts = np.ones((VOCAB_SIZE, VOCAB_SIZE))
    np.add.at(counts, (a, b), 1.0)
    log_p = np.log2(counts / counts.sum(axis=1, keepdims=True))
    w = windows.long().numpy()
    return -log_p[w[:, :-1], w[:, 1:]]


def token_scores(score: str, bits: TokenBits, seed: int) -> np.ndarray:
    """The (n_windows, block_size) score array of a named strategy (high = keep first)."""
    if score not in SCORES:
        raise BitlensError(f"unknown selection score {score!r}; choose from {', '.join(SCORES)}")
    rule = SCORES[score]
    missing = [k for k in rule.needs if k not in bits]
    if missing:
        raise BitlensError(f"score {score!r} needs per-token bits for {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    return np.asarray(rule.fn(bits, rng), dtype=np.float64)


def n_kept(n: int, keep_ratio: float) -> int:
    """How many of n items a keep ratio keeps (at least one)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise BitlensError(f"keep ratio must be in (0, 1], got {keep_ratio}")
    return max(1, min(n, round(keep_ratio * n)))


def select_documents(scores: np.ndarray, keep_ratio: float) -> np.ndarray:
    """Indices of the windows with the highest mean score (sorted), keep_ratio of them."""
    k = n_kept(len(scores), keep_ratio)
    order = np.argsort(-scores.mean(axis=1), kind="stable")
    return np.sort(order[:k])


def select_tokens(scores: np.ndarray, keep_ratio: float) -> np.ndarray:
    """A boolean loss mask of the scores' shape keeping the top keep_ratio of all bytes."""
    flat = scores.ravel()
    k = n_kept(flat.size, keep_ratio)
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(scores.shape)


def choice_bits(n: int, k: int) -> float:
    """log2 C(n, k): the most information a choice of k items out of n can carry, in bits."""
    if not 0 <= k <= n:
        raise BitlensError(f"cannot choose {k} of {n}")
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2.0)
