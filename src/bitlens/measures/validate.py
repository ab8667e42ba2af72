"""Known-answer checks: every measure against a source whose true answer is computed exactly.

- model_vs_entropy_rate: a model trained on a Markov source codes held-out bytes within 5 % of
  the source's entropy rate (bits/byte).
- prequential_vs_entropy_rate: the prequential code's last block approaches the entropy rate.
- random_bytes_incompressible: on uniformly random bytes (8 bits/byte) neither a trained model,
  nor the prequential code, nor a two-part code claims fewer than 8 bits/byte.
- capacity_linear_then_plateau: memorised bits of random sequences are ≈ all of them for few
  sequences, and stop growing once the data exceeds the model's capacity.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from bitlens.data import split_corpus
from bitlens.evaluate import evaluate
from bitlens.measures.capacity import CapacityConfig, model_capacity
from bitlens.measures.prequential import PrequentialConfig, prequential_code
from bitlens.measures.sources import MarkovSource, random_bytes_source, random_markov_source
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

# Small enough to train in seconds, context enough for order ≤ 2.
VALIDATION_MODEL = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
RANDOM_BYTES_SLACK_BITS = 0.02  # sampling noise allowed below 8 bits/byte on finite data


@dataclass
class Check:
    name: str
    source: str
    expected_bits_per_byte: float
    measured_bits_per_byte: float
    relative_error: float
    tolerance: float
    passed: bool
    seconds: float
    details: dict


def fit_heldout_bits_per_byte(data: bytes, model_cfg: GPTConfig = VALIDATION_MODEL,
                              steps: int = 300, seed: int = 0, lr: float = 1e-2) -> float:
    """Train a fresh model on the head of `data`; its bits/byte on the held-out tail."""
    split = split_corpus(data, model_cfg.block_size)
    torch.manual_seed(seed)
    model = GPT(model_cfg)
    cfg = TrainConfig(steps=steps, batch_size=32, lr=lr, warmup_steps=20, seed=seed,
                      eval_interval=10**9, log_interval=10**9, checkpoint_interval=10**9)
    train(model, split.train, cfg)
    return evaluate(model, split.val).bits_per_byte


def _check(name: str, source: MarkovSource, expected: float, measured: float, tolerance: float,
           passed: bool, t0: float, **details) -> Check:
    return Check(name=name, source=source.name, expected_bits_per_byte=expected,
                 measured_bits_per_byte=measured, relative_error=(measured - expected) / expected,
                 tolerance=tolerance, passed=bool(passed), seconds=time.perf_counter() - t0,
                 details=details)


def check_model_vs_entropy_rate(source: MarkovSource, n_bytes: int, steps: int, seed: int = 0,
                                tolerance: float = 0.05, lr: float = 1e-2) -> Check:
    t0 = time.perf_counter()
    rate = source.entropy_rate_bits()
    bpb = fit_heldout_bits_per_byte(source.sample(n_bytes, seed), steps=steps, seed=seed, lr=lr)
    return _check("model_vs_entropy_rate", source, rate, bpb, tolerance,
                  abs(bpb - rate) <= tolerance * rate, t0, bytes=n_bytes, steps=steps, lr=lr)


def check_prequential_vs_entropy_rate(source: MarkovSource, cfg: PrequentialConfig, seed: int = 0,
                                      tolerance: float = 0.10) -> Check:
    t0 = time.perf_counter()
    rate = source.entropy_rate_bits()
    r = prequential_code(source.sample(cfg.max_bytes, seed), VALIDATION_MODEL, cfg, seed=seed)
    last = r["blocks"][-1]["bits_per_byte"]
    return _check("prequential_vs_entropy_rate", source, rate, last, tolerance,
                  abs(last - rate) <= tolerance * rate, t0, bytes=r["bytes"],
                  prequential_bits_per_byte=r["bits_per_byte"]["prequential_bits"],
                  true_total_bits=source.entropy_bits(r["bytes"]),
                  prequential_bits=r["prequential_bits"])


def check_random_bytes_incompressible(n_bytes: int, steps: int, seed: int = 0) -> Check:
    """No measure may claim < 8 bits/byte on random bytes (up to finite-sample slack)."""
    t0 = time.perf_counter()
    source = random_bytes_source()
    data = source.sample(n_bytes, seed)
    heldout = fit_heldout_bits_per_byte(data, steps=steps, seed=seed)
    cfg = PrequentialConfig(max_bytes=n_bytes, first_block_bytes=1024, min_steps=10)
    r = prequential_code(data, VALIDATION_MODEL, cfg, seed=seed)
    bpb = r["bits_per_byte"]
    claims = {"heldout_model": heldout, "prequential": bpb["prequential_bits"],
              "two_part_fp16": bpb["two_part_bits"]["fp16"], "two_part_fp32": bpb["two_part_bits"]["fp32"]}
    lowest = min(claims.values())
    return _check("random_bytes_incompressible", source, 8.0, lowest, RANDOM_BYTES_SLACK_BITS / 8.0,
                  lowest >= 8.0 - RANDOM_BYTES_SLACK_BITS, t0, bits_per_byte=claims, bytes=n_bytes)


def check_capacity_plateau(cfg: CapacityConfig, seed: int = 0) -> Check:
    """Few sequences: ≥ 90 % memorised. Last two sweep points: within 30 % of each other,
    and the second-to-last already holds more data than was memorised (past capacity)."""
    t0 = time.perf_counter()
    n_layer, n_embd = cfg.sizes[0]
    m = model_capacity(n_layer, n_embd, cfg, seed)
    first, mid, last = m.points[0], m.points[-2], m.points[-1]
    linear = first.memorised_bits >= 0.9 * first.data_bits
    plateau = 0.85 <= last.memorised_bits / mid.memorised_bits <= 1.3
    saturated = mid.memorised_bits <= 0.6 * mid.data_bits
    # Expressed as bits per random byte of the largest set: memorised/stored bytes can't beat 8.
    measured = last.memorised_bits / (last.n_sequences * cfg.seq_len)
    return _check("capacity_linear_then_plateau", random_bytes_source(), 8.0, measured, 0.0,
                  linear and plateau and saturated, t0, params=m.params,
                  bits_per_parameter=m.bits_per_parameter, linear=linear, plateau=plateau,
                  saturated=saturated, points=[asdict(p) for p in m.points])


@dataclass(frozen=True)
class ValidationPlan:
    """Sizes of the known-answer checks: bytes of each source, training steps, sweep."""

    markov_order: int
    markov_bytes: int
    model_steps: int
    lr: float  # 1e-2 learns order 1 in 300 steps; order 2 needs 3e-3 (1e-2 stalls at order 0)
    prequential_bytes: int
    random_bytes: int
    random_steps: int
    capacity_sequences: tuple[int, ...]
    capacity_steps: int


QUICK_PLAN = ValidationPlan(markov_order=1, markov_bytes=65_536, model_steps=300, lr=1e-2,
                            prequential_bytes=65_536, random_bytes=16_384, random_steps=100,
                            capacity_sequences=(4, 64, 128), capacity_steps=300)
FULL_PLAN = ValidationPlan(markov_order=2, markov_bytes=1_048_576, model_steps=3000, lr=3e-3,
                           prequential_bytes=262_144, random_bytes=65_536, random_steps=300,
                           capacity_sequences=(4, 64, 128, 256), capacity_steps=600)


def validate_measures(seed: int = 0, quick: bool = False, progress: bool = False) -> dict:
    """Run the known-answer checks. quick: small sources (seconds each); default: the 1 MB
    order-2 check of the issue, and larger prequential and capacity runs.
    Keys: checks (list of {name, source, expected_bits_per_byte, measured_bits_per_byte,
    relative_error, tolerance, passed, seconds, details}), passed (all of them).
    """
    plan = QUICK_PLAN if quick else FULL_PLAN
    markov = random_markov_source(order=plan.markov_order, alphabet_size=8, seed=seed)
    preq = PrequentialConfig(max_bytes=plan.prequential_bytes, first_block_bytes=1_024,
                             min_steps=20, epochs_per_stage=8.0, lr=plan.lr)
    capacity = CapacityConfig(sizes=((1, 8),), n_sequences=plan.capacity_sequences,
                              steps=plan.capacity_steps)
    runs = [
        lambda: check_model_vs_entropy_rate(markov, plan.markov_bytes, plan.model_steps, seed=seed,
                                            lr=plan.lr),
        lambda: check_prequential_vs_entropy_rate(markov, preq, seed=seed),
        lambda: check_random_bytes_incompressible(plan.random_bytes, plan.random_steps, seed=seed),
        lambda: check_capacity_plateau(capacity, seed=seed),
    ]
    checks = []
    with progress_bar(len(runs), "validating", enabled=progress) as bar:
        for run in runs:
            checks.append(run())
            bar.advance(1, status=f"{checks[-1].name}: {'ok' if checks[-1].passed else 'FAILED'}")
    return {"seed": seed, "quick": quick, "plan": asdict(plan), "passed": all(c.passed for c in checks),
            "checks": [asdict(c) for c in checks]}
