"""Training speed of bitlens vs a minimal plain-PyTorch loop on the identical model and batch.

Usage: python benchmarks/train_speed.py [--preset small] [--steps 30] [--json FILE]
Prints a table; the last line is a JSON object with ratio_vs_reference (≥ 0.9 wanted) and
achieved GFLOP/s against a measured matmul peak on this machine.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from bitlens.data import bundled_corpus_bytes, split_corpus
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.train import TrainConfig, train


def reference_loop(model: GPT, data: torch.Tensor, steps: int, batch: int, seed: int) -> float:
    """The simplest correct loop: AdamW, random windows, clip; returns seconds for `steps`."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    T = model.config.block_size
    g = torch.Generator().manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        ix = torch.randint(len(data) - T, (batch,), generator=g)
        w = torch.stack([data[i : i + T + 1] for i in ix.tolist()]).long()
        logits = model(w[:, :-1])
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - t0


def matmul_peak_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=list(MODEL_PRESETS))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="alternate ours/reference this many times")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cfg = MODEL_PRESETS[args.preset]
    data = split_corpus(bundled_corpus_bytes(), cfg.block_size).train
    tokens = args.steps * args.batch * cfg.block_size
    ours, ref = [], []
    for r in range(args.rounds):  # interleave so machine noise hits both alike
        torch.manual_seed(r)
        model = GPT(cfg)
        tc = TrainConfig(
            steps=args.steps,
            batch_size=args.batch,
            eval_interval=10**9,
            checkpoint_interval=10**9,
            log_interval=10**9,
            seed=r,
        )
        t0 = time.perf_counter()
        train(model, data, tc)
        ours.append(tokens / (time.perf_counter() - t0))
        torch.manual_seed(r)
        ref.append(tokens / reference_loop(GPT(cfg), data, args.steps, args.batch, seed=r))
    ours_tps, ref_tps = max(ours), max(ref)
    flops_tok = GPT(cfg).flops_per_token(train=True)
    peak = matmul_peak_gflops()
    result = {
        "preset": args.preset,
        "threads": torch.get_num_threads(),
        "tokens_per_second": ours_tps,
        "reference_tokens_per_second": ref_tps,
        "ratio_vs_reference": ours_tps / ref_tps,
        "achieved_gflops": ours_tps * flops_tok / 1e9,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": ours_tps * flops_tok / 1e9 / peak,
    }
    print(f"{'loop':<12}{'tokens/s':>12}{'GFLOP/s':>10}")
    print(f"{'bitlens':<12}{ours_tps:>12,.0f}{ours_tps * flops_tok / 1e9:>10.1f}")
    print(f"{'reference':<12}{ref_tps:>12,.0f}{ref_tps * flops_tok / 1e9:>10.1f}")
    print(f"matmul peak {peak:.1f} GFLOP/s; ratio_vs_reference {result['ratio_vs_reference']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
