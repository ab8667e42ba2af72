"""Model collapse: training each generation only (replace) or also (accumulate) on the previous
generation's samples, and watching the Shumailov et al. (2024) signatures, in bits.

Generation 0 trains on real windows; generation g+1 trains from scratch, on the same token
budget, on the samples of generation g (`replace`) or on the real windows and every generation's
samples so far (`accumulate`, after Gerstgrasser et al. 2024; the pool grows, the budget does
not). Each generation writes as many windows as the real set holds, unprompted (after the
virtual start byte), with temperature and top-p. Per generation:

- heldout_bits_per_byte: cross-entropy on real held-out windows;
- sample_entropy_bits: mean surprisal of the generation's samples under the model that wrote
  them (untempered, untruncated): its entropy rate on its own text, bits/byte;
- tail_mass: share of the samples' byte bigrams that fall in the real data's tail, the rarest
  bigram types that together hold `tail_share` (10 %) of the real bigrams. Real data has
  tail_mass ≈ tail_share by construction; tail cutting drives it down;
- heldout_share_below_threshold: share of real held-out bytes to which the model gives
  probability below 2^-`surprise_threshold_bits` (the real data the model has pushed into its
  tail; forgetting drives it up).

Generation 0 may instead be a given model (`run_collapse(..., generation0=model)`): a trained
bitlens run or a pretrained Hugging Face LM (`hf:DIR`), which is not trained again; it is
measured and writes generation 1's data as any generation does. A token-level model's bits
are its tokens' bits spread over their bytes (`bitlens.offspring.parent`), and it writes the
same number of bytes per window, continuing the start byte (a newline) as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bitlens.data import START_BYTE, VOCAB_SIZE
from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.distill import heldout_score
from bitlens.offspring.parent import parent_sample, parent_window_scores
from bitlens.offspring.select import make_windows
from bitlens.offspring.splits import DataSplits, data_splits
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import progress_bar

if TYPE_CHECKING:
    from bitlens.hf import HFModel

MODES = ("replace", "accumulate")


@dataclass(frozen=True)
class CollapseConfig:
    """One collapse run: `generations` generations after generation 0, sizes in bytes/tokens."""

    mode: str = "replace"  # replace | accumulate
    generations: int = 5  # generations after generation 0 (which trains on real data)
    seed: int = 0
    preset: str = "tiny"  # every generation's model
    temperature: float = 1.0
    top_p: float = 0.9
    real_bytes: int = 96_000  # real training windows, spread over the parent_train split
    test_bytes: int = 32_768  # real held-out bytes: the test split (nothing here chooses)
    budget_tokens: int = 393_216  # training tokens per generation
    window: int = 128
    batch_size: int = 16
    tail_share: float = 0.1
    surprise_threshold_bits: float = 10.0  # a byte of probability < 2^-10 counts as forgotten

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BitlensError(f"unknown collapse mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.generations < 1:
            raise BitlensError(f"need at least one generation after generation 0, got {self.generations}")
        if self.preset not in MODEL_PRESETS:
            raise BitlensError(f"unknown preset {self.preset!r}; choose from {', '.join(MODEL_PRESETS)}")

    @classmethod
    def quick(cls) -> CollapseConfig:
        return cls(real_bytes=12_800, test_bytes=4_096, budget_tokens=16_384)

    @classmethod
    def full(cls) -> CollapseConfig:
        return cls()

    def is_quick(self) -> bool:
        """Whether the sizes are the quick ones (whatever the mode, seed and sampling)."""
        q = CollapseConfig.quick()
        return replace(self, **{k: getattr(q, k) for k in _RUN_SETTINGS}) == q


# The fields of a CollapseConfig that choose what to run rather than how big it is.
_RUN_SETTINGS = ("mode", "generations", "seed", "preset", "temperature", "top_p")


def bigram_ids(windows: torch.Tensor) -> np.ndarray:
    """Byte bigrams inside each window, as ids a·256 + b."""
    w = windows.long().numpy()
    return (w[:, :-1] * VOCAB_SIZE + w[:, 1:]).ravel()


def tail_set(real_windows: torch.Tensor, tail_share: float) -> np.ndarray:
    """Boolean (65536,) set of the rarest real bigram types holding ≤ tail_share of real bigrams."""
    counts = np.bincount(bigram_ids(real_windows), minlength=VOCAB_SIZE * VOCAB_SIZE)
    seen = np.flatnonzero(counts)
    order = seen[np.argsort(counts[seen], kind="stable")]
    cumulative = np.cumsum(counts[order]) / counts.sum()
    tail = np.zeros(VOCAB_SIZE * VOCAB_SIZE, dtype=bool)
    tail[order[cumulative <= tail_share]] = True
    return tail


def tail_mass(windows: torch.Tensor, tail: np.ndarray) -> float:
    """Share of the windows' bigrams that lie in the tail set."""
    return float(tail[bigram_ids(windows)].mean())


def unigram_entropy_bits(windows: torch.Tensor) -> float:
    """Entropy in bits of the empirical byte distribution of the windows."""
    counts = np.bincount(windows.long().numpy().ravel(), minlength=VOCAB_SIZE)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class CollapseGeneration:
    """One generation's model, on real held-out data and on its own samples (bits per byte)."""

    generation: int
    heldout_bits_per_byte: float
    sample_entropy_bits: float
    tail_mass: float
    heldout_share_below_threshold: float
    sample_unigram_entropy_bits: float
    train_windows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CollapseResult:
    """A collapse run: every generation, and the real data's own tail mass and entropy."""

    mode: str
    generations: list[CollapseGeneration]
    real_tail_mass: float
    real_unigram_entropy_bits: float
    tail_share: float
    surprise_threshold_bits: float
    temperature: float
    top_p: float
    budget_tokens: int
    heldout_bytes: int
    offspring_preset: str
    seed: int
    quick: bool  # the sizes were the quick ones
    splits: dict[str, dict[str, int]]  # byte ranges; collapse uses parent_train and test only
    generation0: str = "trained"  # "trained" on real data, or the given model's name

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "generations": [g.to_dict() for g in self.generations],
        }


def collapse_splits(data: bytes, config: CollapseConfig) -> DataSplits:
    """The corpus splits of a collapse run: generation 0 trains on parent_train, every
    generation is scored on test; no pool or validation (nothing is selected or chosen)."""
    return data_splits(data, config.window, 0, 0, config.test_bytes)


def _real_and_test(data: bytes, config: CollapseConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Real training windows spread over the parent_train split, and the test split's windows."""
    splits, window = collapse_splits(data, config), config.window
    all_windows = make_windows(splits.take(data, "parent_train"), window)
    n_real = min(len(all_windows), max(1, config.real_bytes // window))
    pick = torch.from_numpy(np.linspace(0, len(all_windows) - 1, n_real).round().astype(np.int64))
    return all_windows[pick], make_windows(splits.take(data, "test"), window)


def _train_generation(config: CollapseConfig, g: int, windows: torch.Tensor) -> GPT:
    """Generation g's model, trained from scratch on `windows` for the token budget."""
    model, _ = train_on_windows(
        config.preset,
        [WindowSource.unmasked(windows, config.batch_size)],
        config.budget_tokens,
        config.seed * 1_000 + g,
    )
    return model


def _generations(
    config: CollapseConfig,
    real: torch.Tensor,
    test: torch.Tensor,
    tail: np.ndarray,
    generation0: GPT | HFModel | None = None,
) -> Iterator[CollapseGeneration]:
    """Train and measure generation 0 (real windows; or take `generation0` as it is), then each
    later one (generated windows)."""
    prompts = torch.full((len(real), 1), START_BYTE, dtype=torch.uint8)
    pool, samples = [real], real
    for g in range(config.generations + 1):
        if g == 0:
            train_windows = real
        elif config.mode == "replace":
            train_windows = samples
        else:
            train_windows = torch.cat(pool)
        model: GPT | HFModel
        if g == 0 and generation0 is not None:
            model = generation0
            bits = parent_window_scores(model, test, batch_size=64)[0]
            heldout_bits, heldout_surprisal = float(bits.mean()), bits
        else:
            model = _train_generation(config, g, train_windows)
            heldout = heldout_score(model, test)
            heldout_bits, heldout_surprisal = heldout.bits_per_byte, heldout.surprisal_bits
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + g)
        s = parent_sample(model, prompts, config.window, config.temperature, config.top_p, gen)
        samples = torch.cat([prompts, s.tokens], dim=1)
        pool.append(samples)
        yield CollapseGeneration(
            generation=g,
            heldout_bits_per_byte=heldout_bits,
            sample_entropy_bits=s.mean_surprisal_bits,
            tail_mass=tail_mass(samples, tail),
            heldout_share_below_threshold=float((heldout_surprisal > config.surprise_threshold_bits).mean()),
            sample_unigram_entropy_bits=unigram_entropy_bits(s.tokens),
            train_windows=len(train_windows),
        )


def run_collapse(
    data: bytes,
    config: CollapseConfig,
    progress: bool = False,
    generation0: GPT | HFModel | None = None,
) -> CollapseResult:
    """Train generation 0 on real data (or take `generation0`, a trained or pretrained model) and
    `config.generations` more on generated data; report each generation in bits (see the module
    docstring)."""
    real, test = _real_and_test(data, config)
    tail = tail_set(real, config.tail_share)
    generation0_name = "trained" if generation0 is None else getattr(generation0, "name", "") or "given"
    rows = []
    with progress_bar(config.generations + 1, f"collapse ({config.mode})", enabled=progress) as bar:
        for row in _generations(config, real, test, tail, generation0):
            rows.append(row)
            bar.advance(1, status=f"gen {row.generation}: {row.heldout_bits_per_byte:.3f} bits/byte")
    return CollapseResult(
        mode=config.mode,
        generations=rows,
        real_tail_mass=tail_mass(real, tail),
        real_unigram_entropy_bits=unigram_entropy_bits(real[:, 1:]),
        tail_share=config.tail_share,
        surprise_threshold_bits=config.surprise_threshold_bits,
        temperature=config.temperature,
        top_p=config.top_p,
        budget_tokens=config.budget_tokens,
        heldout_bytes=test.shape[0] * config.window,
        offspring_preset=config.preset,
        seed=config.seed,
        quick=config.is_quick(),
        splits=collapse_splits(data, config).to_dict(),
        generation0=generation0_name,
    )


def plot_collapse(results: list[dict], path: str | Path) -> list[Path]:
    """Held-out bits/byte, sample entropy and tail mass per generation, one line per mode."""
    if isinstance(results, dict):
        results = [results]
    fig, axes = new_figure(ncols=4, width=15.2, height=3.6)
    panels = [
        ("heldout_bits_per_byte", "held-out bits/byte (real data)"),
        ("sample_entropy_bits", "sample entropy (bits/byte)"),
        ("tail_mass", "tail mass of samples"),
        ("heldout_share_below_threshold", "real bytes below threshold"),
    ]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for r in results:
            gens = [row["generation"] for row in r["generations"]]
            ax.plot(gens, [row.get(key, np.nan) for row in r["generations"]], marker="o", label=r["mode"])
        if key == "tail_mass" and results:
            ax.axhline(results[0]["real_tail_mass"], ls="--", color="grey", lw=0.8, label="real data")
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    return save_figure(fig, path)
