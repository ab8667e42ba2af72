"""Learning speed: held-out bits/byte against training steps, on a source whose information sits
only at order k, for bitlens models and a plain-PyTorch reference trained by one plain loop.

The source (`bitlens.measures.sources.lagged_source`) repeats the byte k positions back through a
fixed permutation with probability p, else draws one of the other K−1 symbols: its entropy rate
is known exactly, and any context shorter than k gives log2 K bits/byte (nothing to learn below
order k). `--source markov` uses instead a random order-k chain over 16 symbols (Dirichlet(0.5)
rows; at k = 2 its empirical conditional entropies are about 4.00, 3.91 and 3.05 bits/byte at
orders 0, 1, 2: nearly all of its information sits at order 2, as in the issue that asked for this
benchmark). Every model sees the same batches (same seed), the same AdamW settings and the same
evaluation windows, so the rows differ only in the model. Rows:

- `tiny`, `small`, ... : bitlens `GPT` at that preset (block size 128), as the package builds it;
- `tiny-legacy`: the same size with the head tied to the embedding and GPT-2's std-0.02 init, the
  model bitlens built before the learning-speed fix (the "before" row);
- `reference`: `nn.TransformerEncoderLayer` blocks (pre-norm, GELU), learned positions, an untied
  head, PyTorch's default init, at the `tiny` size.

Usage: PYTHONPATH=src python benchmarks/learning_speed.py [--order 2] [--source lagged] [--steps 1500]
           [--models tiny,tiny-legacy,reference] [--json FILE]
Prints a table of held-out bits/byte at the logged steps, the first logged step within 5 % of
the true rate, and writes the same as JSON. Figures are ratios within one run (the same data and
batches), not wall-clock claims.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bitlens.measures.sources import (
    empirical_conditional_entropy_bits,
    lagged_source,
    random_markov_source,
)
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig

BLOCK = 128
LOG_STEPS = (100, 250, 500, 750, 1000, 1250, 1500, 2000, 3000)
WITHIN = 0.05  # "reaches the rate": held-out bits/byte within 5 % of the entropy rate
TIE = 0.01  # bits/byte: differences this small at one step are evaluation noise (5,120 held-out bytes)


class Reference(nn.Module):
    """A plain PyTorch byte transformer: the yardstick, not part of bitlens."""

    def __init__(self, n_layer: int = 4, d: int = 64, n_head: int = 4, block: int = BLOCK) -> None:
        super().__init__()
        self.wte = nn.Embedding(256, d)
        self.wpe = nn.Embedding(block, d)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d, n_head, 4 * d, 0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 256, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        return self.head(self.ln(x))


def legacy_gpt(cfg: GPTConfig) -> GPT:
    """bitlens' GPT as it was built before the fix: tied head, std-0.02 init, scaled projections."""
    model = GPT(GPTConfig(**{**cfg.to_dict(), "tie_embeddings": True}))
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("c_proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std)
    return model


def build(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if name == "reference":
        return Reference()
    preset = name.removesuffix("-legacy")
    cfg = GPTConfig(**{**MODEL_PRESETS[preset].to_dict(), "block_size": BLOCK})
    return legacy_gpt(cfg) if name.endswith("-legacy") else GPT(cfg)


@torch.no_grad()
def heldout_bits_per_byte(model: nn.Module, val: torch.Tensor, skip: int) -> float:
    """Mean bits/byte on 40 disjoint windows, ignoring each window's first `skip` predictions."""
    model.eval()
    n = 40
    x = val[: n * BLOCK].view(n, BLOCK)
    y = val[1 : n * BLOCK + 1].view(n, BLOCK)
    nats = F.cross_entropy(model(x)[:, skip:].flatten(0, 1), y[:, skip:].flatten()).item()
    model.train()
    return nats / math.log(2)


def train_curve(
    name: str, train: torch.Tensor, val: torch.Tensor, steps: int, lr: float, seed: int, skip: int
) -> dict:
    """The plain loop every row shares: AdamW (β 0.9/0.95, decay 0.1 on matrices), 50 warm-up
    steps, clip 1.0, batch 32 × 128 random windows drawn from the same generator."""
    model = build(name, seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    g = torch.Generator().manual_seed(seed)
    curve: dict[int, float] = {}
    t0 = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / 50)
        ix = torch.randint(len(train) - BLOCK - 1, (32,), generator=g)
        w = torch.stack([train[i : i + BLOCK + 1] for i in ix.tolist()])
        loss = F.cross_entropy(model(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step in LOG_STEPS or step == steps:
            curve[step] = heldout_bits_per_byte(model, val, skip)
    params = sum(p.numel() for p in model.parameters())
    return {"curve": curve, "seconds": time.perf_counter() - t0, "params": params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=2, help="the order k where the information sits")
    ap.add_argument(
        "--source",
        choices=("lagged", "markov"),
        default="lagged",
        help="lagged: information only at order k; markov: an order-k chain over 16 symbols with "
        "Dirichlet(0.5) rows (information at every order up to k)",
    )
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--models", default="tiny,tiny-legacy,reference")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    source = (
        lagged_source(args.order) if args.source == "lagged" else random_markov_source(args.order, 16, seed=0)
    )
    rate = source.entropy_rate_bits()
    train_bytes = source.sample(400_000, seed=1)
    val_bytes = source.sample(40 * BLOCK + 1, seed=2)
    train = torch.tensor(np.frombuffer(train_bytes, dtype=np.uint8).astype(np.int64))
    val = torch.tensor(np.frombuffer(val_bytes, dtype=np.uint8).astype(np.int64))
    empirical = {k: empirical_conditional_entropy_bits(train_bytes, k) for k in range(args.order + 1)}
    print(
        f"source {source.name}: entropy rate {rate:.4f} bits/byte; empirical H(X | k previous) on "
        "the training bytes: " + ", ".join(f"k={k} {h:.3f}" for k, h in empirical.items())
    )
    rows = {}
    for name in args.models.split(","):
        rows[name] = train_curve(name, train, val, args.steps, args.lr, args.seed, skip=8)
        hit = [s for s, b in sorted(rows[name]["curve"].items()) if b <= rate * (1 + WITHIN)]
        rows[name]["steps_to_within_5pct"] = hit[0] if hit else None
        curve = "  ".join(f"{s}:{b:.3f}" for s, b in rows[name]["curve"].items())
        print(
            f"{name:>12} ({rows[name]['params']:,} params, {rows[name]['seconds']:.0f} s): {curve}  "
            f"→ within 5 % at step {rows[name]['steps_to_within_5pct']}",
            flush=True,
        )
    if "reference" in rows:
        ref = rows["reference"]["curve"]
        for name, row in rows.items():
            if name != "reference":
                row["at_least_as_fast_as_reference"] = all(row["curve"][s] <= ref[s] + TIE for s in ref)
    record = {
        "benchmark": "learning_speed",
        "source": source.name,
        "source_kind": args.source,
        "order": args.order,
        "alphabet_size": source.alphabet_size,
        "entropy_rate_bits_per_byte": rate,
        "empirical_conditional_entropy_bits": empirical,
        "train_bytes": len(train_bytes),
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "within": WITHIN,
        "tie_bits_per_byte": TIE,
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}))


if __name__ == "__main__":
    main()
