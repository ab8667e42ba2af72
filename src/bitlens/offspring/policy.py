"""The curation policy and its evaluation: the contract the evolution search optimises.

A `CurationPolicy` is a genome: how to score the pool, at which level to select, how much to
keep, how much synthetic data to write and how, which target to distil, which offspring to train
and on how many tokens. `evaluate_policy` trains that offspring from scratch on a budget and
returns its held-out bits/byte, its cost in FLOPs and its fitness against a random selection of
the same budget. Everything is a pure function of (policy, context, seed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from bitlens.data import split_corpus
from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.budget import (
    FITNESS_UNIT,
    Cost,
    fitness,
    inference_flops,
)
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.distill import (
    SOFT_WEIGHT,
    HeldoutScore,
    distill_loss,
    heldout_score,
    window_logits,
)
from bitlens.offspring.select import (
    LEVELS,
    SCORE_NEEDS,
    SCORES,
    bigram_surprisal_bits,
    choice_bits,
    make_windows,
    select_documents,
    select_tokens,
    token_scores,
    window_bits,
)
from bitlens.offspring.synth import synthesize_windows
from bitlens.runs import load_run


@dataclass(frozen=True)
class CurationPolicy:
    """One genome of the parent → offspring loop (see the module docstring)."""

    score: str = "random"
    level: str = "document"
    keep_ratio: float = 0.3
    synthetic_share: float = 0.0  # share of each batch drawn from parent samples
    temperature: float = 1.0
    top_p: float = 1.0
    target: str = "hard"  # hard (cross-entropy on bytes), soft (KL to the parent), mix
    offspring_preset: str = "tiny"
    budget_tokens: int = 32_768  # offspring training tokens (forwarded, masked or not)

    def __post_init__(self) -> None:
        checks = [
            (self.score in SCORES, f"score must be one of {', '.join(SCORES)}"),
            (self.level in LEVELS, f"level must be one of {', '.join(LEVELS)}"),
            (0.0 < self.keep_ratio <= 1.0, "keep_ratio must be in (0, 1]"),
            (0.0 <= self.synthetic_share <= 1.0, "synthetic_share must be in [0, 1]"),
            (self.temperature > 0.0, "temperature must be positive"),
            (0.0 < self.top_p <= 1.0, "top_p must be in (0, 1]"),
            (self.target in SOFT_WEIGHT, f"target must be one of {', '.join(SOFT_WEIGHT)}"),
            (self.offspring_preset in MODEL_PRESETS,
             f"offspring_preset must be one of {', '.join(MODEL_PRESETS)}"),
            (self.budget_tokens >= 1, "budget_tokens must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise BitlensError(f"invalid curation policy: {message} ({self})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CurationPolicy":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class ContextSizes:
    """How much of the corpus a context uses, in bytes, and how hard it trains helpers."""

    pool_bytes: int  # the selection pool, windows spread evenly over the training split
    reference_bytes: int  # clean held-out set the reference model trains on
    test_bytes: int  # held-out set every offspring is scored on
    window: int = 128  # bytes of context per training window
    batch_size: int = 16
    reference_steps: int = 100
    prompt_bytes: int = 16  # real bytes that prompt each synthetic window
    max_synthetic_windows: int = 2048


QUICK_SIZES = ContextSizes(pool_bytes=32_000, reference_bytes=8_000, test_bytes=4_096,
                           reference_steps=20)
FULL_SIZES = ContextSizes(pool_bytes=320_000, reference_bytes=40_000, test_bytes=49_152,
                          reference_steps=150)


@dataclass
class OffspringContext:
    """Everything an evaluation shares: the parent, the pool, held-out sets and cached scores.

    Picklable (tensors, arrays and a small GPT), so it can be shipped to worker processes; the
    caches fill on first use and make repeated evaluations cheap.
    """

    parent: GPT
    pool: torch.Tensor  # (n, window + 1) uint8
    reference_data: torch.Tensor  # uint8 bytes, disjoint from pool and test
    test: torch.Tensor  # uint8 bytes, never trained on by parent, reference or offspring
    sizes: ContextSizes
    seed: int = 0
    quick: bool = False
    token_bits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    helper_flops: dict[str, float] = field(default_factory=dict, repr=False)
    baselines: dict[tuple, float] = field(default_factory=dict, repr=False)  # by policy, seed
    parent_bits_per_byte: float | None = None
    parent_test_logits: torch.Tensor | None = field(default=None, repr=False)

    @property
    def window(self) -> int:
        return self.pool.shape[1] - 1

    def bits(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Per-token bits over the pool for the named models, computed once and cached."""
        for name in names:
            if name not in self.token_bits:
                self._compute(name)
        return {n: self.token_bits[n] for n in names}

    def _compute(self, name: str) -> None:
        scored_tokens = self.pool.shape[0] * self.window
        if name in ("parent", "parent_entropy"):
            s, h = window_bits(self.parent, self.pool, with_entropy=True)
            self.token_bits["parent"], self.token_bits["parent_entropy"] = s, h
            self.helper_flops["parent"] = inference_flops(self.parent, scored_tokens)
        elif name == "reference":
            ref = _train_reference(self.reference_data, self.sizes, self.seed)
            self.token_bits["reference"] = window_bits(ref.model, self.pool)[0]
            self.helper_flops["reference"] = ref.flops + inference_flops(ref.model, scored_tokens)
        elif name == "bigram":
            self.token_bits["bigram"] = bigram_surprisal_bits(self.pool, self.pool.flatten())
            self.helper_flops["bigram"] = 0.0  # counting, no model FLOPs
        else:
            raise BitlensError(f"no per-token figure named {name!r}")

    def heldout(self, model: GPT) -> HeldoutScore:
        """Score a model on the test windows: bits/byte and KL to the parent (one forward)."""
        if self.parent_test_logits is None:
            self.parent_test_logits = window_logits(self.parent, self.test_windows())
        return heldout_score(model, self.test_windows(), self.parent_test_logits)

    def initial_kl_bits(self, preset: str, seed: int) -> float:
        """KL(parent ‖ offspring at initialisation) in bits per held-out byte (cached)."""
        key = ("initial_kl", preset, seed)
        if key not in self.baselines:
            torch.manual_seed(seed)
            self.baselines[key] = self.heldout(GPT(MODEL_PRESETS[preset])).kl_to_parent_bits
        return self.baselines[key]

    def test_windows(self) -> torch.Tensor:
        return make_windows(self.test, self.window)

    def parent_heldout_bits_per_byte(self) -> float:
        if self.parent_bits_per_byte is None:
            self.parent_bits_per_byte = self.heldout(self.parent).bits_per_byte
        return self.parent_bits_per_byte


@dataclass(frozen=True)
class _Reference:
    model: GPT
    flops: float


def _train_reference(data: torch.Tensor, sizes: ContextSizes, seed: int) -> _Reference:
    """The reference (irreducible-loss) model: a tiny model trained on the clean held-out set."""
    windows = make_windows(data, sizes.window)
    budget = sizes.reference_steps * sizes.batch_size * sizes.window
    model, result = train_on_windows("tiny", [WindowSource.unmasked(windows, sizes.batch_size)],
                                     budget, seed, block_size=sizes.window)
    return _Reference(model=model.eval(), flops=result.flops)


def context_from_model(
    parent: GPT, corpus: bytes, seed: int = 0, quick: bool = False,
    sizes: ContextSizes | None = None,
) -> OffspringContext:
    """Cut `corpus` into pool (from its training split), reference set and test set (from its
    held-out split, the last 10 %, which the parent never trained on)."""
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    split = split_corpus(corpus, sizes.window)
    windows = make_windows(split.train, sizes.window)
    n_pool = min(len(windows), max(1, sizes.pool_bytes // sizes.window))
    pick = torch.from_numpy(np.linspace(0, len(windows) - 1, n_pool).round().astype(np.int64))
    val = split.val
    n_ref = min(sizes.reference_bytes, len(val) // 3)
    if n_ref < 2 * (sizes.window + 1):
        raise BitlensError(
            f"held-out split of {len(val)} bytes is too small for a reference and a test set")
    test = val[n_ref : n_ref + sizes.test_bytes]
    return OffspringContext(parent=parent.eval(), pool=windows[pick], reference_data=val[:n_ref],
                            test=test, sizes=sizes, seed=seed, quick=quick)


def build_context(parent_dir: str, corpus: bytes, seed: int, quick: bool) -> OffspringContext:
    """A context for `evaluate_policy` from a trained parent run directory and a corpus."""
    return context_from_model(load_run(parent_dir), corpus, seed=seed, quick=quick)


@dataclass
class OffspringRun:
    """One trained offspring and what it cost (bits per byte on the context's test set)."""

    model: GPT
    heldout: HeldoutScore
    tokens: int
    loss_tokens: int  # tokens that carried loss (fewer than `tokens` under a token mask)
    cost: Cost
    choice_bits: float
    label_bits_per_token: float  # what one training label states: H(p_parent) for soft labels,
    # −log2 p_parent(byte) for hard ones (≈ H for parent samples), averaged over loss tokens


def train_offspring(policy: CurationPolicy, ctx: OffspringContext, seed: int) -> OffspringRun:
    """Select, synthesise, train an offspring from scratch on the policy's budget, score it."""
    sizes, pool, window = ctx.sizes, ctx.pool, ctx.window
    needs = SCORE_NEEDS[policy.score]
    bits = ctx.bits(tuple(dict.fromkeys(needs + ("parent", "parent_entropy"))))
    scores = token_scores(policy.score, bits, seed)
    parent_flops = ctx.helper_flops["parent"] if "parent" in needs else 0.0
    reference_flops = ctx.helper_flops.get("reference", 0.0) if "reference" in needs else 0.0
    n = len(pool)
    if policy.level == "document":
        keep = select_documents(scores, policy.keep_ratio)
        real = pool[keep]
        real_mask = np.ones((len(keep), window), dtype=bool)
        choice = choice_bits(n, len(keep))
        label_source = keep
    else:
        real = pool
        real_mask = select_tokens(scores, policy.keep_ratio)
        choice = choice_bits(n * window, int(real_mask.sum()))
        label_source = np.arange(n)

    soft = SOFT_WEIGHT[policy.target]
    parent_s = bits["parent"][label_source]
    parent_h = bits["parent_entropy"][label_source]
    real_label_bits = float(((1 - soft) * parent_s + soft * parent_h)[real_mask].mean())

    gen = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    n_synth_per_batch = round(policy.synthetic_share * sizes.batch_size)
    sources = [WindowSource(real, real_mask, sizes.batch_size - n_synth_per_batch)]
    synth_label_bits, synth_mask_share = 0.0, 0.0
    if n_synth_per_batch > 0:
        want = math.ceil(policy.synthetic_share * policy.budget_tokens / window)
        n_windows = max(1, min(sizes.max_synthetic_windows, want))
        prompts = real[torch.randint(len(real), (n_windows,), generator=gen)]
        synthetic, samples = synthesize_windows(ctx.parent, prompts, sizes.prompt_bytes,
                                                policy.temperature, policy.top_p, gen)
        synth_mask = np.zeros((n_windows, window), dtype=bool)
        synth_mask[:, sizes.prompt_bytes - 1 :] = True  # targets that the parent wrote
        sources.append(WindowSource(synthetic, synth_mask, n_synth_per_batch))
        parent_flops += inference_flops(ctx.parent, n_windows * window)
        synth_label_bits = float(((1 - soft) * samples.surprisal_bits
                                  + soft * samples.entropy_bits).double().mean())
        synth_mask_share = float(synth_mask.mean())
    model, result = train_on_windows(policy.offspring_preset, sources, policy.budget_tokens, seed,
                                     loss_fn=distill_loss(policy.target, ctx.parent))
    if soft > 0:
        parent_flops += inference_flops(ctx.parent, result.tokens)
    real_share = sources[0].per_batch / sizes.batch_size
    loss_share = real_share * real_mask.mean() + (1 - real_share) * synth_mask_share
    return OffspringRun(
        model=model,
        heldout=ctx.heldout(model),
        tokens=result.tokens,
        loss_tokens=round(result.tokens * loss_share),
        cost=Cost(offspring_train_flops=result.flops, parent_flops=parent_flops,
                  reference_flops=reference_flops),
        choice_bits=choice,
        label_bits_per_token=real_share * real_label_bits + (1 - real_share) * synth_label_bits,
    )


def baseline_policy(policy: CurationPolicy) -> CurationPolicy:
    """The fitness baseline: a random selection at the same level, keep ratio and budget."""
    return CurationPolicy(score="random", level=policy.level, keep_ratio=policy.keep_ratio,
                          offspring_preset=policy.offspring_preset,
                          budget_tokens=policy.budget_tokens)


def evaluate_policy(
    policy: CurationPolicy, ctx: OffspringContext, seed: int, return_model: bool = False
) -> dict[str, Any] | tuple[dict[str, Any], GPT]:
    """Train the policy's offspring and score it (deterministic in policy, context and seed).

    Keys: heldout_bits_per_byte, baseline_bits_per_byte (random selection, same budget),
    tokens, flops (total cost: offspring training + parent + reference), fitness (bits/byte
    gained over the baseline per TFLOP), improvement_vs_parent_bits_per_byte (parent − offspring),
    and the details: cost, choice_bits, kl_to_parent_bits, label_bits_per_token, loss_tokens.
    """
    run = train_offspring(policy, ctx, seed)
    base = baseline_policy(policy)
    key = (*sorted(base.to_dict().items()), seed)
    if policy == base:
        ctx.baselines[key] = run.heldout.bits_per_byte
    elif key not in ctx.baselines:
        ctx.baselines[key] = train_offspring(base, ctx, seed).heldout.bits_per_byte
    baseline = ctx.baselines[key]
    flops = run.cost.total_flops
    result = {
        "policy": policy.to_dict(),
        "seed": seed,
        "heldout_bits_per_byte": run.heldout.bits_per_byte,
        "baseline_bits_per_byte": baseline,
        "parent_bits_per_byte": ctx.parent_heldout_bits_per_byte(),
        "improvement_vs_parent_bits_per_byte":
            ctx.parent_heldout_bits_per_byte() - run.heldout.bits_per_byte,
        "tokens": run.tokens,
        "loss_tokens": run.loss_tokens,
        "flops": flops,
        "cost": run.cost.to_dict(),
        "fitness": fitness(baseline, run.heldout.bits_per_byte, flops),
        "fitness_unit": FITNESS_UNIT,
        "choice_bits": run.choice_bits,
        "heldout_bytes": run.heldout.bytes,
        "kl_to_parent_bits": run.heldout.kl_to_parent_bits,
        "label_bits_per_token": run.label_bits_per_token,
    }
    return (result, run.model) if return_model else result
