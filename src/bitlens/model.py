"""A small decoder-only transformer over bytes (nanoGPT-like), with a KV cache.

Read top to bottom: config and presets, attention, MLP, block, the model.
Notable:
- `forward` returns logits; `forward_hidden` also returns every layer's residual stream
  (entry 0 is the embedding, entry l the output of block l), which the lenses read.
- `KVCache` + `forward(idx, cache=...)` decode incrementally; the outputs match the full forward
  pass up to float rounding (tested). Compression uses only the incremental path on both sides.
- The output head is its own matrix and every layer keeps PyTorch's default initialisation. A
  tied head (e_i·e_j is symmetric) and GPT-2's std-0.02 init kept a small model on the unigram
  plateau for hundreds of steps on a source whose information sits at order 2;
  `benchmarks/learning_speed.py` measures that against a plain PyTorch reference. Runs saved
  with a tied head (configs without `tie_embeddings`) still load as they were.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitlens.data import VOCAB_SIZE


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 256  # context window, in bytes
    vocab_size: int = VOCAB_SIZE
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    tie_embeddings: bool = False  # share the byte embedding with the output head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        """From a saved config; one written before `tie_embeddings` existed had a tied head."""
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        fields.setdefault("tie_embeddings", True)
        return cls(**fields)


# ~0.2M, ~0.5M, ~1M and ~3M parameters. `shallow` (two wide layers, a 64-byte window) is the
# online coder's default: per coded byte it learns faster than `tiny` and runs fewer layers per
# step, and its short window halves the tokens each training step costs.
MODEL_PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(block_size=128, n_layer=4, n_head=4, n_embd=64),
    "shallow": GPTConfig(block_size=64, n_layer=2, n_head=4, n_embd=128),
    "small": GPTConfig(block_size=128, n_layer=5, n_head=4, n_embd=128),
    "base": GPTConfig(block_size=256, n_layer=6, n_head=6, n_embd=192),
}


class KVCache:
    """Keys and values of every layer for positions [0, length), preallocated to block_size."""

    def __init__(self, config: GPTConfig, batch_size: int, dtype=torch.float32, device=None):
        hd = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hd)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
        self.length = 0
        self.block_size = config.block_size

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            start = cache.length
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            k_all = cache.k[layer][:, :, : start + T]
            v_all = cache.v[layer][:, :, : start + T]
            if T == 1:  # one new query attends to everything cached
                y = F.scaled_dot_product_attention(q, k_all, v_all)
            else:  # a prefill after `start` cached positions: causal with an offset
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once). non_embedding drops the position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def embedding_params(self) -> int:
        """Parameters in the byte and position tables and, when untied, the output head."""
        n = self.wte.weight.numel() + self.wpe.weight.numel()
        return n if self.config.tie_embeddings else n + self.lm_head.weight.numel()

    def _run(self, idx: torch.Tensor, cache: KVCache | None, hidden: list | None) -> torch.Tensor:
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        if hidden is not None:
            hidden.append(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
            if hidden is not None:
                hidden.append(x)
        if cache is not None:
            cache.length += T
        return x

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Residual stream → next-byte logits (final norm, then unembedding)."""
        return self.lm_head(self.ln_f(h))

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) int64 → logits (B, T, V). With a cache, idx continues the cached prefix."""
        return self.lm_head(self.features(idx, cache))

    def features(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) → the final normalised hidden state (B, T, n_embd) that lm_head reads."""
        return self.ln_f(self._run(idx, cache, None))

    def forward_hidden(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the residual stream after the embedding and after each block (n_layer+1)."""
        hidden: list[torch.Tensor] = []
        x = self._run(idx, None, hidden)
        return self.unembed(x), hidden

    def flops_per_token(self, train: bool = True, context: int | None = None) -> float:
        """FLOPs per token: 6·N (train) or 2·N (forward) plus attention (PaLM appendix B).

        N counts every matmul weight (the linear layers, the unembedding included; the embedding
        tables are lookups and norms are negligible); attention adds 12·L·d·T (train) or 4·L·d·T
        (forward) for context T.
        """
        c = self.config
        T = c.block_size if context is None else context
        n = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        if train:
            return 6.0 * n + 12.0 * c.n_layer * c.n_embd * T
        return 2.0 * n + 4.0 * c.n_layer * c.n_embd * T

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        n_new: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample n_new bytes after prompt (B, T0) with temperature and nucleus (top-p) sampling."""
        out = prompt.long()
        for _ in range(n_new):
            ctx = out[:, -self.config.block_size :]
            logits = self(ctx)[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                probs = top_p_filter(torch.softmax(logits / temperature, dim=-1), top_p)
                nxt = torch.multinomial(probs, 1, generator=generator)
            out = torch.cat([out, nxt], dim=1)
        return out[:, prompt.shape[1] :]


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the most likely bytes whose mass reaches top_p (unnormalised)."""
    if top_p >= 1.0:
        return probs
    sp, si = probs.sort(dim=-1, descending=True)
    keep = sp.cumsum(-1) - sp < top_p  # the most likely byte is always kept
    return torch.zeros_like(probs).scatter(-1, si, sp * keep)
