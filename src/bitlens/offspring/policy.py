"""The curation policy and its evaluation: the contract the evolution search optimises.

A `CurationPolicy` is a genome: how to score the pool, at which level to select, how much to
keep, how much synthetic data to write and how, which target to distil, which offspring to train
and on how many tokens. `evaluate_policy` trains that offspring from scratch on a budget and
returns its held-out bits/byte, its cost in FLOPs and its fitness against a random selection of
the same budget. Everything is a pure function of (policy, context, seed, split).

The data come in four disjoint splits (`bitlens.offspring.splits`): the parent trained on the
head, the pool is held-out text the parent never saw, the reference model and anything that
chooses (evolution's fitness) read the validation split, and the test split is scored only by
calls that choose nothing (`offspring compare`, `offspring evaluate`, the re-check of winners).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.evaluate import window_logits, window_scores
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.batches import LearningCurve, OnlineSelection, WindowSource, train_on_windows
from bitlens.offspring.budget import FITNESS_UNIT, Cost, fitness, inference_flops, steps_for_budget
from bitlens.offspring.distill import SOFT_WEIGHT, HeldoutScore, distill_loss, heldout_score
from bitlens.offspring.parent import (
    is_token_parent,
    parent_heldout_bits_per_byte,
    parent_sample,
    parent_window_scores,
    refuse_soft_target,
)
from bitlens.offspring.select import (
    LEVELS,
    SCORES,
    bigram_surprisal_bits,
    choice_bits,
    make_windows,
    n_kept,
    select_documents,
    select_tokens,
    token_scores,
)
from bitlens.offspring.splits import DataSplits, data_splits
from bitlens.runs import load_model

if TYPE_CHECKING:
    from bitlens.hf import HFModel

# Batch size of every window scoring here (pool, test set): fixed, so the numbers never move.
SCORE_BATCH = 64
# Where an offspring may be scored: validation (what choosing reads) or test (never chosen on).
SCORING_SPLITS = ("validation", "test")


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
        for f in fields(self):
            _check_gene_type(f.name, getattr(self, f.name), type(f.default))
        checks = [
            (self.score in SCORES, f"score must be one of {', '.join(SCORES)}"),
            (self.level in LEVELS, f"level must be one of {', '.join(LEVELS)}"),
            (0.0 < self.keep_ratio <= 1.0, "keep_ratio must be in (0, 1]"),
            (0.0 <= self.synthetic_share <= 1.0, "synthetic_share must be in [0, 1]"),
            (self.temperature > 0.0, "temperature must be positive"),
            (0.0 < self.top_p <= 1.0, "top_p must be in (0, 1]"),
            (self.target in SOFT_WEIGHT, f"target must be one of {', '.join(SOFT_WEIGHT)}"),
            (
                self.offspring_preset in MODEL_PRESETS,
                f"offspring_preset must be one of {', '.join(MODEL_PRESETS)}",
            ),
            (self.budget_tokens >= 1, "budget_tokens must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise BitlensError(f"invalid curation policy: {message} ({self})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, genes: Mapping[str, Any]) -> CurationPolicy:
        """The policy with these genes; missing genes take their defaults, an unknown gene is an
        error naming the valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in genes if k not in names]
        if unknown:
            raise BitlensError(f"unknown policy gene {unknown[0]!r}; the genes are {', '.join(names)}")
        return cls(**genes)


def _check_gene_type(name: str, value: Any, kind: type) -> None:
    """A gene must have its default's type (an int is a valid float; a bool is never a number)."""
    ok = (
        isinstance(value, kind)
        if kind is str
        else (isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool))
    )
    if not ok:
        what = {str: "a string", float: "a number", int: "an integer"}[kind]
        raise BitlensError(f"invalid curation policy: gene {name}={value!r} must be {what}")


@dataclass(frozen=True)
class ContextConfig:
    """How much of the corpus an offspring context uses, in bytes, and how hard it trains helpers.

    The sizes are what is asked of `data_splits`; a held-out tail too short for them shrinks
    each in proportion (the result JSON records the ranges actually used). `parent_train_bytes`
    names the parent's head instead of `bitlens train`'s (the pool is the next stretch; nothing
    shrinks; see `bitlens.offspring.splits`). `seed` fixes the reference model (the pool, the
    splits and parent scores do not depend on it).
    """

    pool_bytes: int = 320_000  # the selection pool (held-out text the parent never saw)
    validation_bytes: int = 40_000  # the reference model trains on it; evolution scores on it
    test_bytes: int = 49_152  # scored once at the end, never used to choose
    window: int = 128  # bytes of context per training window
    batch_size: int = 16
    reference_steps: int = 150
    prompt_bytes: int = 16  # real bytes that prompt each synthetic window
    max_synthetic_windows: int = 2048
    seed: int = 0
    parent_train_bytes: int | None = None  # None: `bitlens train`'s head (all but the last 10 %)

    @classmethod
    def quick(cls) -> ContextConfig:
        return cls(pool_bytes=32_000, validation_bytes=8_000, test_bytes=4_096, reference_steps=20)

    @classmethod
    def full(cls) -> ContextConfig:
        return cls()

    def data_splits(self, corpus: bytes) -> DataSplits:
        """The byte ranges these sizes cut from `corpus`."""
        return data_splits(
            corpus,
            self.window,
            self.pool_bytes,
            self.validation_bytes,
            self.test_bytes,
            self.parent_train_bytes,
        )

    def parent_text(self, corpus: bytes) -> bytes:
        """The bytes of `corpus` the parent trains on (its parent_train split)."""
        return self.data_splits(corpus).take(corpus, "parent_train").numpy().tobytes()

    def is_quick(self) -> bool:
        """Whether these are the quick sizes (any seed)."""
        return replace(self, seed=0) == ContextConfig.quick()


@dataclass
class OffspringContext:
    """Everything an evaluation shares: the parent, the pool, held-out sets and cached scores.

    Picklable (tensors, arrays and a small GPT), so it can be shipped to worker processes; the
    caches fill on first use and make repeated evaluations cheap. The parent may also be a local
    Hugging Face LM (`bitlens.offspring.parent`): it then scores and writes bytes through its
    tokens, and the offspring's KL to it is None.
    """

    parent: GPT | HFModel
    pool: torch.Tensor  # (n, window + 1) uint8, from the pool split
    parent_train: torch.Tensor  # uint8 bytes the parent trained on (the bigram control fits here)
    validation: torch.Tensor  # uint8 bytes: the reference trains here; evolution scores here
    test: torch.Tensor  # uint8 bytes, never trained on nor used to choose anything
    config: ContextConfig
    splits: DataSplits
    token_bits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    helper_flops: dict[str, float] = field(default_factory=dict, repr=False)
    baselines: dict[tuple, float] = field(default_factory=dict, repr=False)  # by policy, seed
    parent_bits: dict[str, float] = field(default_factory=dict, repr=False)  # by split
    parent_logits: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # by split

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
            s, h = parent_window_scores(self.parent, self.pool, batch_size=SCORE_BATCH, with_entropy=True)
            assert h is not None
            self.token_bits["parent"], self.token_bits["parent_entropy"] = s, h
            self.helper_flops["parent"] = inference_flops(self.parent, scored_tokens)  # type: ignore[arg-type]
        elif name == "reference":
            ref = _train_reference(self.validation, self.config)
            self.token_bits["reference"] = window_scores(ref.model, self.pool, batch_size=SCORE_BATCH)[0]
            self.helper_flops["reference"] = ref.flops + inference_flops(ref.model, scored_tokens)
        elif name == "bigram":
            self.token_bits["bigram"] = bigram_surprisal_bits(self.pool, self.parent_train)
            self.helper_flops["bigram"] = 0.0  # counting, no model FLOPs
        else:
            raise BitlensError(f"no per-token figure named {name!r}")

    def split_windows(self, split: str) -> torch.Tensor:
        """The windows of a scoring split: "validation" (may be chosen on) or "test" (never)."""
        if split not in SCORING_SPLITS:
            raise BitlensError(f"offspring are scored on {' or '.join(SCORING_SPLITS)}, not {split!r}")
        return make_windows(self.validation if split == "validation" else self.test, self.window)

    def heldout(self, model: GPT, split: str) -> HeldoutScore:
        """Score a model on a split's windows: bits/byte and KL to the parent (one forward; None
        for a token-level parent, which has no next-byte distribution)."""
        windows = self.split_windows(split)
        if is_token_parent(self.parent):
            return heldout_score(model, windows)
        if split not in self.parent_logits:
            self.parent_logits[split] = window_logits(
                self.parent,  # type: ignore[arg-type]
                windows,
                batch_size=SCORE_BATCH,
            )
        return heldout_score(model, windows, self.parent_logits[split])

    def initial_kl_bits(self, preset: str, seed: int, split: str) -> float | None:
        """KL(parent ‖ offspring at initialisation) in bits per held-out byte of `split` (cached;
        None for a token-level parent)."""
        if is_token_parent(self.parent):
            return None
        key = ("initial_kl", preset, seed, split)
        if key not in self.baselines:
            torch.manual_seed(seed)
            kl = self.heldout(GPT(MODEL_PRESETS[preset]), split).kl_to_parent_bits
            assert kl is not None  # heldout() has the byte parent's logits
            self.baselines[key] = kl
        return self.baselines[key]

    def parent_heldout_bits_per_byte(self, split: str) -> float:
        if split not in self.parent_bits:
            if is_token_parent(self.parent):
                self.parent_bits[split] = parent_heldout_bits_per_byte(
                    self.parent, self.split_windows(split), SCORE_BATCH
                )
            else:
                self.parent_bits[split] = self.heldout(self.parent, split).bits_per_byte  # type: ignore[arg-type]
        return self.parent_bits[split]


@dataclass(frozen=True)
class _Reference:
    model: GPT
    flops: float


def _train_reference(data: torch.Tensor, config: ContextConfig) -> _Reference:
    """The reference (irreducible-loss) model: a tiny model trained on the clean held-out set."""
    windows = make_windows(data, config.window)
    budget = config.reference_steps * config.batch_size * config.window
    model, result = train_on_windows(
        "tiny",
        [WindowSource.unmasked(windows, config.batch_size)],
        budget,
        config.seed,
        block_size=config.window,
    )
    return _Reference(model=model.eval(), flops=result.flops)


def context_from_model(parent: GPT | HFModel, corpus: bytes, config: ContextConfig) -> OffspringContext:
    """Cut `corpus` into its four splits (`data_splits`): the parent's training text, the pool
    (held-out text, in windows), validation and test."""
    splits = config.data_splits(corpus)
    return OffspringContext(
        parent=parent.eval(),
        pool=make_windows(splits.take(corpus, "pool"), config.window),
        parent_train=splits.take(corpus, "parent_train"),
        validation=splits.take(corpus, "validation"),
        test=splits.take(corpus, "test"),
        config=config,
        splits=splits,
    )


def build_context(parent_dir: str, corpus: bytes, config: ContextConfig) -> OffspringContext:
    """A context for `evaluate_policy` from a trained parent (a run directory, or hf:DIR for a
    local Hugging Face LM) and a corpus."""
    return context_from_model(load_model(parent_dir), corpus, config)


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
    curve: list[tuple[int, float]] = field(default_factory=list)  # (steps done, held-out
    # bits/byte) during training, then the finished model's (empty unless curve steps were asked)


@dataclass(frozen=True)
class _Selection:
    """The real windows an offspring trains on, their loss mask, and what the choice can carry."""

    windows: torch.Tensor  # (k, T + 1) uint8
    mask: np.ndarray  # (k, T) bool
    choice_bits: float
    label_bits_per_token: float  # mean parent label bits over the kept (masked-in) targets


def _select(
    policy: CurationPolicy, ctx: OffspringContext, bits: dict[str, np.ndarray], seed: int
) -> _Selection:
    """Apply the policy's score at its level to the pool (an online score keeps all of it: it
    chooses as the offspring trains)."""
    pool, window, n = ctx.pool, ctx.window, len(ctx.pool)
    if SCORES[policy.score].online:
        return _online_selection(policy, ctx, bits)
    scores = token_scores(policy.score, bits, seed)
    if policy.level == "document":
        keep = select_documents(scores, policy.keep_ratio)
        windows, mask = pool[keep], np.ones((len(keep), window), dtype=bool)
        choice, label_rows = choice_bits(n, len(keep)), keep
    else:
        windows, mask = pool, select_tokens(scores, policy.keep_ratio)
        choice, label_rows = choice_bits(n * window, int(mask.sum())), np.arange(n)
    soft = SOFT_WEIGHT[policy.target]
    labels = (1 - soft) * bits["parent"][label_rows] + soft * bits["parent_entropy"][label_rows]
    return _Selection(windows, mask, choice, float(labels[mask].mean()))


def _online_selection(
    policy: CurationPolicy, ctx: OffspringContext, bits: dict[str, np.ndarray]
) -> _Selection:
    """The whole pool, chosen from step by step: log2 C per step × steps bounds what the choices
    carry; labels are the mean over the pool (the bytes chosen are not known in advance)."""
    batch, window = ctx.config.batch_size, ctx.window
    steps = steps_for_budget(policy.budget_tokens, batch, window)
    if policy.level == "document":
        per_step = choice_bits(math.ceil(batch / policy.keep_ratio), batch)
    else:
        per_step = choice_bits(batch * window, n_kept(batch * window, policy.keep_ratio))
    soft = SOFT_WEIGHT[policy.target]
    labels = (1 - soft) * bits["parent"] + soft * bits["parent_entropy"]
    mask = np.ones((len(ctx.pool), window), dtype=bool)
    return _Selection(ctx.pool, mask, steps * per_step, float(labels.mean()))


@dataclass(frozen=True)
class _Synthetic:
    source: WindowSource
    parent_flops: float
    label_bits_per_token: float
    mask_share: float  # share of the synthetic targets that carry loss


def _synthesize(
    policy: CurationPolicy, ctx: OffspringContext, real: torch.Tensor, per_batch: int, gen: torch.Generator
) -> _Synthetic:
    """Windows the parent writes from real prompts (`per_batch` of them in each batch)."""
    config, window = ctx.config, ctx.window
    want = math.ceil(policy.synthetic_share * policy.budget_tokens / window)
    n_windows = max(1, min(config.max_synthetic_windows, want))
    prompts = real[torch.randint(len(real), (n_windows,), generator=gen)]
    head = prompts[:, : config.prompt_bytes]
    samples = parent_sample(
        ctx.parent, head, window + 1 - config.prompt_bytes, policy.temperature, policy.top_p, gen
    )
    synthetic = torch.cat([head.to(torch.uint8), samples.tokens], dim=1)
    mask = np.zeros((n_windows, window), dtype=bool)
    mask[:, config.prompt_bytes - 1 :] = True  # targets that the parent wrote
    soft = SOFT_WEIGHT[policy.target]
    label_bits = float(((1 - soft) * samples.surprisal_bits + soft * samples.entropy_bits).double().mean())
    return _Synthetic(
        WindowSource(synthetic, mask, per_batch),
        inference_flops(ctx.parent, n_windows * window),  # type: ignore[arg-type]
        label_bits,
        float(mask.mean()),
    )


def train_offspring(
    policy: CurationPolicy,
    ctx: OffspringContext,
    seed: int,
    split: str,
    curve_steps: Sequence[int] = (),
    lr: float | None = None,
) -> OffspringRun:
    """Select, synthesise, train an offspring from scratch on the policy's budget, score it on
    `split` ("validation" or "test"; the selection itself never reads either). With
    `curve_steps`, also score it on `split` after each of those optimizer steps (its learning
    curve; the training itself is unchanged). `lr`: peak learning rate (None: the preset's)."""
    refuse_soft_target(ctx.parent, policy.target, SOFT_WEIGHT[policy.target])
    batch_size = ctx.config.batch_size
    needs = SCORES[policy.score].needs
    bits = ctx.bits(tuple(dict.fromkeys(needs + ("parent", "parent_entropy"))))
    real = _select(policy, ctx, bits, seed)
    parent_flops = ctx.helper_flops["parent"] if "parent" in needs else 0.0
    reference_flops = ctx.helper_flops.get("reference", 0.0) if "reference" in needs else 0.0

    gen = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    n_synth_per_batch = round(policy.synthetic_share * batch_size)
    sources = [WindowSource(real.windows, real.mask, batch_size - n_synth_per_batch)]
    online = None
    real_loss_share = float(real.mask.mean())
    if SCORES[policy.score].online:
        online = OnlineSelection(bits["parent"], policy.keep_ratio, policy.level)
        if policy.level == "token":
            per_batch = sources[0].per_batch * ctx.window
            real_loss_share = n_kept(per_batch, policy.keep_ratio) / per_batch
    synth_label_bits, synth_mask_share = 0.0, 0.0
    if n_synth_per_batch > 0:
        synth = _synthesize(policy, ctx, real.windows, n_synth_per_batch, gen)
        sources.append(synth.source)
        parent_flops += synth.parent_flops
        synth_label_bits, synth_mask_share = synth.label_bits_per_token, synth.mask_share
    curve = None
    if curve_steps:
        curve = LearningCurve(tuple(curve_steps), lambda m: ctx.heldout(m, split).bits_per_byte)
    model, result = train_on_windows(
        policy.offspring_preset,
        sources,
        policy.budget_tokens,
        seed,
        loss_fn=distill_loss(policy.target, None if is_token_parent(ctx.parent) else ctx.parent),  # type: ignore[arg-type]
        online=online,
        lr=lr,
        curve=curve,
    )
    heldout = ctx.heldout(model, split)
    if curve is not None:
        curve.points.append((result.steps, heldout.bits_per_byte))
    online_flops = 0.0
    if online is not None and sources[0].per_batch > 0:
        scored = result.steps * online.candidates(sources[0].per_batch) * ctx.window
        online_flops = inference_flops(model, scored)
    if SOFT_WEIGHT[policy.target] > 0:
        parent_flops += inference_flops(ctx.parent, result.tokens)  # type: ignore[arg-type]
    real_share = sources[0].per_batch / batch_size
    loss_share = real_share * real_loss_share + (1 - real_share) * synth_mask_share
    return OffspringRun(
        model=model,
        heldout=heldout,
        tokens=result.tokens,
        loss_tokens=round(result.tokens * loss_share),
        cost=Cost(
            offspring_train_flops=result.flops,
            parent_flops=parent_flops,
            reference_flops=reference_flops,
            online_scoring_flops=online_flops,
        ),
        choice_bits=real.choice_bits,
        label_bits_per_token=real_share * real.label_bits_per_token + (1 - real_share) * synth_label_bits,
        curve=[] if curve is None else curve.points,
    )


def baseline_policy(policy: CurationPolicy) -> CurationPolicy:
    """The fitness baseline: a random selection at the same level, keep ratio and budget."""
    return CurationPolicy(
        score="random",
        level=policy.level,
        keep_ratio=policy.keep_ratio,
        offspring_preset=policy.offspring_preset,
        budget_tokens=policy.budget_tokens,
    )


@dataclass(frozen=True)
class PolicyResult:
    """One policy evaluated (bits per byte on the context's held-out windows, FLOPs).

    fitness: bits/byte gained over `baseline_bits_per_byte` (random selection, same budget) per
    TFLOP of total cost (offspring training + parent + reference).
    """

    policy: CurationPolicy
    seed: int
    heldout_bits_per_byte: float
    baseline_bits_per_byte: float
    parent_bits_per_byte: float
    improvement_vs_parent_bits_per_byte: float  # parent − offspring
    tokens: int
    loss_tokens: int
    flops: float
    cost: Cost
    fitness: float
    fitness_unit: str
    choice_bits: float
    heldout_bytes: int
    heldout_split: str  # where the held-out figures were scored: "validation" or "test"
    kl_to_parent_bits: float | None  # KL(p_parent ‖ q_offspring), bits per held-out byte; None
    # for a token-level parent (no next-byte distribution)
    label_bits_per_token: float

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**d, "policy": self.policy.to_dict(), "cost": self.cost.to_dict()}


def _baseline_bits_per_byte(
    policy: CurationPolicy, run: OffspringRun, ctx: OffspringContext, seed: int, split: str
) -> float:
    """Held-out bits/byte of the policy's random-selection baseline (trained once per seed)."""
    base = baseline_policy(policy)
    key = (*sorted(base.to_dict().items()), seed, split)
    if policy == base:
        ctx.baselines[key] = run.heldout.bits_per_byte
    elif key not in ctx.baselines:
        ctx.baselines[key] = train_offspring(base, ctx, seed, split).heldout.bits_per_byte
    return ctx.baselines[key]


def evaluate_offspring(
    policy: CurationPolicy, ctx: OffspringContext, seed: int, split: str = "validation"
) -> tuple[PolicyResult, GPT]:
    """Train the policy's offspring and score it on `split` (deterministic in policy, context,
    seed and split); returns the result and the trained offspring. Anything that chooses
    (evolution) must stay on "validation"; "test" is for figures that choose nothing."""
    run = train_offspring(policy, ctx, seed, split)
    baseline = _baseline_bits_per_byte(policy, run, ctx, seed, split)
    parent = ctx.parent_heldout_bits_per_byte(split)
    flops = run.cost.total_flops
    result = PolicyResult(
        policy=policy,
        seed=seed,
        heldout_bits_per_byte=run.heldout.bits_per_byte,
        baseline_bits_per_byte=baseline,
        parent_bits_per_byte=parent,
        improvement_vs_parent_bits_per_byte=parent - run.heldout.bits_per_byte,
        tokens=run.tokens,
        loss_tokens=run.loss_tokens,
        flops=flops,
        cost=run.cost,
        fitness=fitness(baseline, run.heldout.bits_per_byte, flops),
        fitness_unit=FITNESS_UNIT,
        choice_bits=run.choice_bits,
        heldout_bytes=run.heldout.bytes,
        heldout_split=split,
        kl_to_parent_bits=run.heldout.kl_to_parent_bits,
        label_bits_per_token=run.label_bits_per_token,
    )
    return result, run.model


def evaluate_policy(
    policy: CurationPolicy, ctx: OffspringContext, seed: int, split: str = "validation"
) -> PolicyResult:
    """`evaluate_offspring` without the model."""
    return evaluate_offspring(policy, ctx, seed, split)[0]
