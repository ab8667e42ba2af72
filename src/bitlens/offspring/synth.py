"""Synthetic data: sampling from the parent with temperature and top-p, with a KV cache.

Each sample records its own surprisal under the sampling model (at temperature 1, without the
top-p cut: the bits the model itself assigns to what it wrote) and the entropy of the model's
next-byte distribution at each step, both in bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT, KVCache, top_p_filter
from bitlens.units import entropy_bits, surprisal_bits


@dataclass(frozen=True)
class Samples:
    """Sampled continuations: bytes (n, n_new) uint8 and per-byte figures (n, n_new) in bits."""

    tokens: torch.Tensor
    surprisal_bits: torch.Tensor  # −log2 p_model(sampled byte), untempered, untruncated
    entropy_bits: torch.Tensor  # H(p_model) at each step, untempered, untruncated

    @property
    def mean_surprisal_bits(self) -> float:
        return float(self.surprisal_bits.double().mean())


@torch.no_grad()
def sample(
    model: GPT,
    prompts: torch.Tensor,
    n_new: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 128,
) -> Samples:
    """Continue each prompt row (n, P) by n_new bytes; P + n_new − 1 must fit the context."""
    n, p = prompts.shape
    if p < 1 or n_new < 1:
        raise BitlensError("sampling needs a prompt of at least one byte and n_new ≥ 1")
    if p + n_new - 1 > model.config.block_size:
        raise BitlensError(f"prompt {p} + {n_new} new bytes exceed the context of {model.config.block_size}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise BitlensError(f"need temperature ≥ 0 and top_p in (0, 1], got {temperature}, {top_p}")
    was_training = model.training
    model.eval()
    toks, surp, ent = [], [], []
    try:
        for i in range(0, n, batch_size):
            rows = prompts[i : i + batch_size].long()
            cache = KVCache(model.config, len(rows))
            logits = model(rows, cache=cache)[:, -1, :]
            out, s_rows, h_rows = [], [], []
            for step in range(n_new):
                logits = logits.float()
                if temperature == 0:
                    nxt = logits.argmax(-1, keepdim=True)
                else:
                    probs = top_p_filter(torch.softmax(logits / temperature, dim=-1), top_p)
                    nxt = torch.multinomial(probs, 1, generator=generator)
                out.append(nxt)
                s_rows.append(surprisal_bits(logits, nxt.squeeze(1)))
                h_rows.append(entropy_bits(logits))
                if step + 1 < n_new:
                    logits = model(nxt, cache=cache)[:, -1, :]
            toks.append(torch.cat(out, dim=1))
            surp.append(torch.stack(s_rows, dim=1))
            ent.append(torch.stack(h_rows, dim=1))
    finally:
        model.train(was_training)
    return Samples(
        tokens=torch.cat(toks).to(torch.uint8), surprisal_bits=torch.cat(surp), entropy_bits=torch.cat(ent)
    )
