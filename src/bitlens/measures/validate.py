"""Known-answer checks: every measure against a source whose true answer is computed exactly.

- model_vs_entropy_rate: a model trained on a Markov source codes held-out bytes within 5 % of
  the source's entropy rate (bits/byte).
- model_learns_order_k (one check per k of the config): on `lagged_source(k)`, whose bytes are
  predictable only from the byte k places back (log2 K = 4 bits/byte given any nearer context,
  2.053 bits/byte given it), a trained model codes held-out bytes within 5 % of the entropy rate
  (25 % in the quick run, whose short training does not always finish learning the lag; a model
  that has not learnt it sits at 4 bits/byte, +95 %). The sample's empirical conditional
  entropies at orders 0..k are recorded beside it.
- prequential_vs_entropy_rate: the prequential code's last block approaches the entropy rate.
- random_bytes_incompressible: on uniformly random bytes (8 bits/byte) neither a trained model,
  nor the prequential code, nor a two-part code (the weights file or flat fp16/fp32 weights)
  claims fewer than 8 bits/byte.
- capacity_memorises_random_bytes: a model with far more capacity than a tiny set of random
  sequences, trained on it long enough, memorises ≥ 90 % of its entropy (8 bits/byte; memorised
  bits can never exceed it). The rest of the capacity sweep is reported as a measurement.
- capacity_of_a_lookup_memoriser: the capacity pipeline (memorised bits above the 8 bits/byte
  baseline, the sweep, the plateau) run on `LookupMemoriser`, which holds exactly K sequences by
  heart: its capacity is K·(8·S − log2 K) bits, i.e. 8 − log2(K)/S bits per stored byte, and the
  plateau must be found.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import torch

from bitlens.data import split_corpus
from bitlens.errors import BitlensError
from bitlens.evaluate import evaluate
from bitlens.measures.capacity import (
    BITS_PER_RANDOM_BYTE,
    CapacityConfig,
    LookupMemoriser,
    capacity_run,
    memorised_bits,
    plateau,
    random_sequences,
    sequence_surprisal_bits,
)
from bitlens.measures.prequential import PrequentialConfig, prequential_code
from bitlens.measures.sources import (
    MarkovSource,
    empirical_conditional_entropy_bits,
    empirical_lag_entropy_bits,
    lagged_source,
    random_bytes_source,
    random_markov_source,
)
from bitlens.model import GPT, GPTConfig
from bitlens.progress import progress_bar
from bitlens.train import TrainConfig, train

# Small enough to train in seconds; its 32-byte context covers every order checked.
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


def within(measured: float, expected: float, tolerance: float) -> bool:
    """Whether `measured` lies within a relative `tolerance` of `expected` (the rate checks' criterion)."""
    return abs(measured - expected) <= tolerance * expected


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
        within(bpb, rate, tolerance),
        t0,
        bytes=n_bytes,
        steps=steps,
        lr=lr,
    )


def check_model_learns_order_k(
    order: int, n_bytes: int, steps: int, seed: int = 0, tolerance: float = 0.05, lr: float = 3e-3
) -> Check:
    """A model trained on `lagged_source(order)` codes held-out bytes within `tolerance` of its
    entropy rate. Any context shorter than `order` bytes leaves log2 K bits/byte; the details
    record the sample's plug-in H(X_t | previous j bytes) for j = 0..order (biased low when the
    contexts are many: order 3 on 64 KB reads ≈ 1.5 for a rate of 2.05) and H(X_t | X_{t-j}) for
    j = 1..order (one byte back, nearly unbiased), so a reader sees where the information sits."""
    block = VALIDATION_MODEL.block_size
    if not 1 <= order < block:
        raise BitlensError(
            f"model_learns_order_k needs an order in 1..{block - 1} (the model sees {block} bytes)"
        )
    t0 = time.perf_counter()
    source = lagged_source(order, seed=seed)
    rate = source.entropy_rate_bits()
    data = source.sample(n_bytes, seed)
    bpb = fit_heldout_bits_per_byte(data, steps=steps, seed=seed, lr=lr)
    below_order = math.log2(source.alphabet_size)  # H(X_t | any fewer than `order` bytes)
    return _check(
        f"model_learns_order_{order}",
        source,
        rate,
        bpb,
        tolerance,
        within(bpb, rate, tolerance),
        t0,
        bytes=n_bytes,
        steps=steps,
        lr=lr,
        order=order,
        entropy_below_order_bits=below_order,
        order_k_information_learned=(below_order - bpb) / (below_order - rate),
        conditional_entropy_bits_by_order=[
            empirical_conditional_entropy_bits(data, j) for j in range(order + 1)
        ],
        entropy_given_byte_at_lag_bits=[empirical_lag_entropy_bits(data, j) for j in range(1, order + 1)],
    )


def check_prequential_vs_entropy_rate(
    source: MarkovSource, cfg: PrequentialConfig, tolerance: float = 0.10
) -> Check:
    """The code's last block (its best model) within `tolerance` of the source's entropy rate;
    the source is sampled with `cfg.seed`."""
    t0 = time.perf_counter()
    rate = source.entropy_rate_bits()
    # Only the online code is checked here: no two-part code, no longer final training.
    cfg = replace(cfg, two_part=False, final_training=(1.0,), heldout_bytes=0)
    r = prequential_code(source.sample(cfg.max_bytes, cfg.seed), VALIDATION_MODEL, cfg)
    last = r.blocks[-1].bits_per_byte
    return _check(
        "prequential_vs_entropy_rate",
        source,
        rate,
        last,
        tolerance,
        within(last, rate, tolerance),
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
    cfg = replace(cfg, final_training=(1.0,), weights_search_bytes=2_048)
    bpb = prequential_code(data, VALIDATION_MODEL, cfg).bits_per_byte
    claims = {
        "heldout_model": heldout,
        "prequential": bpb["prequential_bits"],
        "two_part_weights_file": bpb["two_part_bits"],
        "two_part_flat_fp16": bpb["two_part_float_bits"]["fp16"],
        "two_part_flat_fp32": bpb["two_part_float_bits"]["fp32"],
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
    entirely: memorised bits per byte within `tolerance` of the data's 8 bits/byte. The run's
    plateau and saturation are reported as details, not checked."""
    t0 = time.perf_counter()
    n_layer, n_embd = cfg.sizes[0]
    run = capacity_run(n_layer, n_embd, cfg.seed, cfg)
    first = run.points[0]
    measured = first.memorised_bits / (first.n_sequences * cfg.seq_len)
    return _check(
        "capacity_memorises_random_bytes",
        random_bytes_source(),
        BITS_PER_RANDOM_BYTE,
        measured,
        tolerance,
        measured >= (1 - tolerance) * BITS_PER_RANDOM_BYTE,
        t0,
        params=run.parameters,
        bytes=first.n_sequences * cfg.seq_len,
        bits_per_parameter=run.bits_per_parameter,
        plateau_reached=run.plateau_reached,
        points=[asdict(p) for p in run.points],
    )


def check_capacity_lookup(
    capacity_sequences: int = 64,
    seq_len: int = 32,
    multiples: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
    seed: int = 0,
    tolerance: float = 1e-4,
) -> Check:
    """A real known answer for capacity: `LookupMemoriser` holding K sequences by heart, swept
    over datasets of K × `multiples` random sequences, has capacity K·(8·S − log2 K) bits. The
    check passes when the plateau is found and the capacity per stored byte is within
    `tolerance` of 8 − log2(K)/S bits."""
    t0 = time.perf_counter()
    k = capacity_sequences
    ns = [max(1, round(k * m)) for m in multiples]
    data = random_sequences(max(ns), seq_len, seed=seed)
    memorised = [
        memorised_bits(sequence_surprisal_bits(LookupMemoriser.fit(data[:n], k), data[:n]), seq_len)
        for n in ns
    ]
    capacity, reached = plateau(memorised, [True] * len(ns))
    expected = BITS_PER_RANDOM_BYTE - math.log2(k) / seq_len
    measured = capacity / (k * seq_len)
    return _check(
        "capacity_of_a_lookup_memoriser",
        random_bytes_source(),
        expected,
        measured,
        tolerance,
        reached and abs(measured - expected) <= tolerance * expected,
        t0,
        capacity_sequences=k,
        seq_len=seq_len,
        expected_capacity_bits=k * (BITS_PER_RANDOM_BYTE * seq_len - math.log2(k)),
        capacity_bits=capacity,
        plateau_reached=reached,
        n_sequences=ns,
        memorised_bits=memorised,
    )


@dataclass(frozen=True)
class ValidationConfig:
    """Sizes of the known-answer checks: bytes of each source, training steps, sweep."""

    markov_order: int = 2
    markov_bytes: int = 1_048_576
    model_steps: int = 3000
    lr: float = 3e-3  # 1e-2 learns order 1 in 300 steps; order 2 needs 3e-3 (1e-2 stalls at order 0)
    lagged_orders: tuple[int, ...] = (2, 3)  # one model_learns_order_k check per order
    lagged_bytes: int = 262_144
    lagged_steps: int = 2000
    lagged_lr: float = 3e-3
    lagged_tolerance: float = 0.05
    prequential_bytes: int = 262_144
    random_bytes: int = 65_536
    random_steps: int = 300
    capacity_multiples: tuple[float, ...] = (0.05, 0.5, 1.0, 2.0)  # × the guessed capacity
    capacity_steps: int = 600
    lookup_sequences: int = 256  # the lookup memoriser's capacity K, in sequences
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
            # The lag is learnt in a sudden drop from 4 bits/byte (+95 %) late in training: at
            # 600-800 steps it had often not happened yet. At 1000 steps the check measured
            # +1.5 % to +3.8 % for seeds 0-5, and other samples of seed 0's source +2.4 % to
            # +14 %; 25 % passes those and still fails a model that has not learnt the lag.
            lagged_orders=(2,),
            lagged_bytes=65_536,
            lagged_steps=1000,
            lagged_lr=3e-3,
            lagged_tolerance=0.25,
            prequential_bytes=65_536,
            random_bytes=16_384,
            random_steps=100,
            capacity_multiples=(0.05, 0.5, 1.0),
            capacity_steps=300,
            lookup_sequences=64,
            mode="quick",
        )

    @classmethod
    def full(cls) -> ValidationConfig:
        """The 1 MB order-2 check of the issue, order 2 and 3 lagged sources, and larger
        prequential and capacity runs."""
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
        sizes=((1, 8),),
        data_multiples=config.capacity_multiples,
        saturation=replace(CapacityConfig().saturation, max_steps=config.capacity_steps),
        seed=seed,
    )
    runs = [
        lambda: check_model_vs_entropy_rate(
            markov, config.markov_bytes, config.model_steps, seed=seed, lr=config.lr
        ),
        *(
            lambda k=k: check_model_learns_order_k(
                k,
                config.lagged_bytes,
                config.lagged_steps,
                seed=seed,
                tolerance=config.lagged_tolerance,
                lr=config.lagged_lr,
            )
            for k in config.lagged_orders
        ),
        lambda: check_prequential_vs_entropy_rate(markov, preq),
        lambda: check_random_bytes_incompressible(config.random_bytes, config.random_steps, seed=seed),
        lambda: check_capacity_memorises(capacity),
        lambda: check_capacity_lookup(config.lookup_sequences, seed=seed),
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
