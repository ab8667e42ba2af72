"""Known-answer checks: every measure against a source whose true answer is computed exactly.

- model_vs_entropy_rate: a model trained on a Markov source codes held-out bytes within 5 % of
  the source's entropy rate (bits/byte).
- prequential_vs_entropy_rate: the prequential code's last block approaches the entropy rate.
- random_bytes_incompressible: on uniformly random bytes (8 bits/byte) neither a trained model,
  nor the prequential code, nor a two-part code claims fewer than 8 bits/byte.
- capacity_memorises_random_bytes: a model with far more capacity than a tiny set of random
  sequences, trained on it long enough, memorises ≥ 90 % of its entropy (8 bits/byte; memorised
  bits can never exceed it). The rest of the capacity sweep is reported as a measurement.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from bitlens.data import split_corpus
from bitlens.evaluate import evaluate
from bitlens.measures.capacity import BITS_PER_RANDOM_BYTE, CapacityConfig, model_capacity
from bitlens.measures.prequential import PrequentialConfig, prequential_code
from bitlens.measures.sources import MarkovSource, random_bytes_source, random_markov_source
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

# Small enough to train in seconds, context enough for order ≤ 2.
VALIDATION_MODEL = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
RANDOM_BYTES_SLACK_BITS = 0.02  # sampling noise allowed below 8 bits/byte on finite data


@dataclass(frozen=True)
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


def fit_heldout_bits_per_byte(
    data: bytes, model_cfg: GPTConfig = VALIDATION_MODEL, steps: int = 300, seed: int = 0, lr: float = 1e-2
) -> float:
    """Train a fresh model on the head of `data`; its bits/byte on the held-out tail."""
    split = split_corpus(data, model_cfg.block_size)
    torch.manual_seed(seed)
    model = GPT(model_cfg)
    cfg = TrainConfig(
        steps=steps,
        batch_size=32,
        lr=lr,
        warmup_steps=20,
        seed=seed,
        eval_interval=10**9,
        log_interval=10**9,
        checkpoint_interval=10**9,
    )
    train(model, split.train, cfg)
    return evaluate(model, split.val).bits_per_byte


def _check(
    name: str,
    source: MarkovSource,
    expected: float,
    measured: float,
    tolerance: float,
    passed: bool,
    t0: float,
    **details,
) -> Check:
    return Check(
        name=name,
        source=source.name,
        expected_bits_per_byte=expected,
        measured_bits_per_byte=measured,
        relative_error=(measured - expected) / expected,
        tolerance=tolerance,
        passed=bool(passed),
        seconds=time.perf_counter() - t0,
        details=details,
    )


def check_model_vs_entropy_rate(
    source: MarkovSource, n_bytes: int, steps: int, seed: int = 0, tolerance: float = 0.05, lr: float = 1e-2
) -> Check:
    t0 = time.perf_counter()
    rate = source.entropy_rate_bits()
    bpb = fit_heldout_bits_per_byte(source.sample(n_bytes, seed), steps=steps, seed=seed, lr=lr)
    return _check(
        "model_vs_entropy_rate",
        source,
        rate,
        bpb,
        tolerance,
        abs(bpb - rate) <= tolerance * rate,
        t0,
        bytes=n_bytes,
        steps=steps,
        lr=lr,
    )


def check_prequential_vs_entropy_rate(
    source: MarkovSource, cfg: PrequentialConfig, tolerance: float = 0.10
) -> Check:
    """The code's last block (its best model) within `tolerance` of the source's entropy rate;
    the source is sampled with `cfg.seed`."""
    t0 = time.perf_counter()
    rate = source.entropy_rate_bits()
    r = prequential_code(source.sample(cfg.max_bytes, cfg.seed), VALIDATION_MODEL, cfg)
    last = r.blocks[-1].bits_per_byte
    return _check(
        "prequential_vs_entropy_rate",
        source,
        rate,
        last,
        tolerance,
        abs(last - rate) <= tolerance * rate,
        t0,
        bytes=r.bytes,
        prequential_bits_per_byte=r.bits_per_byte["prequential_bits"],
        true_total_bits=source.entropy_bits(r.bytes),
        prequential_bits=r.prequential_bits,
    )


def check_random_bytes_incompressible(n_bytes: int, steps: int, seed: int = 0) -> Check:
    """No measure may claim < 8 bits/byte on random bytes (up to finite-sample slack)."""
    t0 = time.perf_counter()
    source = random_bytes_source()
    data = source.sample(n_bytes, seed)
    heldout = fit_heldout_bits_per_byte(data, steps=steps, seed=seed)
    cfg = PrequentialConfig(max_bytes=n_bytes, first_block_bytes=1024, min_steps=10, seed=seed)
    bpb = prequential_code(data, VALIDATION_MODEL, cfg).bits_per_byte
    claims = {
        "heldout_model": heldout,
        "prequential": bpb["prequential_bits"],
        "two_part_fp16": bpb["two_part_bits"]["fp16"],
        "two_part_fp32": bpb["two_part_bits"]["fp32"],
    }
    lowest = min(claims.values())
    return _check(
        "random_bytes_incompressible",
        source,
        8.0,
        lowest,
        RANDOM_BYTES_SLACK_BITS / 8.0,
        lowest >= 8.0 - RANDOM_BYTES_SLACK_BITS,
        t0,
        bits_per_byte=claims,
        bytes=n_bytes,
    )


def check_capacity_memorises(cfg: CapacityConfig, tolerance: float = 0.10) -> Check:
    """The smallest set of the sweep (far below the model's capacity) is memorised almost
    entirely: memorised bits per byte within `tolerance` of the data's 8 bits/byte. The sweep's
    bits/param and whether memorised bits plateaued are reported as details, not checked."""
    t0 = time.perf_counter()
    n_layer, n_embd = cfg.sizes[0]
    m = model_capacity(n_layer, n_embd, cfg)
    first = m.points[0]
    measured = first.memorised_bits / (first.n_sequences * cfg.seq_len)
    return _check(
        "capacity_memorises_random_bytes",
        random_bytes_source(),
        BITS_PER_RANDOM_BYTE,
        measured,
        tolerance,
        measured >= (1 - tolerance) * BITS_PER_RANDOM_BYTE,
        t0,
        params=m.params,
        bytes=first.n_sequences * cfg.seq_len,
        bits_per_parameter=m.bits_per_parameter,
        plateau_reached=m.plateau_reached,
        points=[asdict(p) for p in m.points],
    )


@dataclass(frozen=True)
class ValidationConfig:
    """Sizes of the known-answer checks: bytes of each source, training steps, sweep."""

    markov_order: int = 2
    markov_bytes: int = 1_048_576
    model_steps: int = 3000
    lr: float = 3e-3  # 1e-2 learns order 1 in 300 steps; order 2 needs 3e-3 (1e-2 stalls at order 0)
    prequential_bytes: int = 262_144
    random_bytes: int = 65_536
    random_steps: int = 300
    capacity_sequences: tuple[int, ...] = (4, 64, 128, 256)
    capacity_steps: int = 600
    seed: int = 0
    mode: str = "full"  # "quick" or "full": the constructor used, recorded as the result's `quick`

    @classmethod
    def quick(cls) -> ValidationConfig:
        """Small sources: seconds per check."""
        return cls(
            markov_order=1,
            markov_bytes=65_536,
            model_steps=300,
            lr=1e-2,
            prequential_bytes=65_536,
            random_bytes=16_384,
            random_steps=100,
            capacity_sequences=(4, 64, 128),
            capacity_steps=300,
            mode="quick",
        )

    @classmethod
    def full(cls) -> ValidationConfig:
        """The 1 MB order-2 check of the issue, and larger prequential and capacity runs."""
        return cls()

    def to_dict(self) -> dict:
        """The plan, as the result records it (seed and mode sit beside it)."""
        return {k: v for k, v in asdict(self).items() if k not in ("seed", "mode")}


@dataclass(frozen=True)
class ValidationResult:
    seed: int
    quick: bool
    plan: dict  # ValidationConfig.to_dict()
    passed: bool  # all checks passed
    checks: list[Check]

    def to_dict(self) -> dict:
        return asdict(self)


def validate_measures(config: ValidationConfig, progress: bool = False) -> ValidationResult:
    """Run the known-answer checks of `config`."""
    seed = config.seed
    markov = random_markov_source(order=config.markov_order, alphabet_size=8, seed=seed)
    preq = PrequentialConfig(
        max_bytes=config.prequential_bytes,
        first_block_bytes=1_024,
        min_steps=20,
        epochs_per_stage=8.0,
        lr=config.lr,
        seed=seed,
    )
    capacity = CapacityConfig(
        sizes=((1, 8),), n_sequences=config.capacity_sequences, steps=config.capacity_steps, seed=seed
    )
    runs = [
        lambda: check_model_vs_entropy_rate(
            markov, config.markov_bytes, config.model_steps, seed=seed, lr=config.lr
        ),
        lambda: check_prequential_vs_entropy_rate(markov, preq),
        lambda: check_random_bytes_incompressible(config.random_bytes, config.random_steps, seed=seed),
        lambda: check_capacity_memorises(capacity),
    ]
    checks = []
    with progress_bar(len(runs), "validating", enabled=progress) as bar:
        for run in runs:
            checks.append(run())
            bar.advance(1, status=f"{checks[-1].name}: {'ok' if checks[-1].passed else 'FAILED'}")
    return ValidationResult(
        seed=seed,
        quick=config.mode == "quick",
        plan=config.to_dict(),
        passed=all(c.passed for c in checks),
        checks=checks,
    )
