"""Model collapse: training each generation on earlier generations' samples, and watching the
Shumailov et al. (2024) signatures, in bits.

Generation 0 trains on real windows; generation g+1 trains from scratch, on the same token
budget in every arm, on (the `MODES`):

- `replace`: the samples of generation g only;
- `accumulate`: the real windows and every generation's samples so far, drawn uniformly (after
  Gerstgrasser et al. 2024; the pool grows, the budget does not, so the real share of the
  tokens falls as 1/(g+2));
- `accumulate-real`: every generation's samples so far, but every batch keeps exactly
  `real_share` (default 0.25) of its windows, hence of its tokens, from the real windows
  (Shumailov et al.'s "10 % of the original data preserved", with accumulation).

Each generation writes as many windows as the real set holds, unprompted (after the
virtual start byte), with temperature and top-p. Per generation:

- heldout_bits_per_byte: cross-entropy on real held-out windows;
- sample_entropy_bits: mean surprisal of the generation's samples under the model that wrote
  them (untempered, untruncated): its entropy rate on its own text, bits/byte;
- tail_mass: share of the samples' byte bigrams that fall in the real data's tail, the rarest
  bigram types that together hold `tail_share` (10 %) of the real bigrams. Real data has
  tail_mass ≈ tail_share by construction; tail cutting drives it down;
- rare_byte_mass: the same for single bytes: the share of sampled bytes that are among the
  rarest real byte values holding at most `tail_share` of the real bytes;
- sample_unigram_entropy_bits: entropy of the samples' empirical byte distribution, bits;
- heldout_share_below_threshold: share of real held-out bytes to which the model gives
  probability below 2^-`surprise_threshold_bits` (the real data the model has pushed into its
  tail; forgetting drives it up);
- real_share: the share of its training tokens that are real (expected, for `accumulate`).

Several seeds, arms and top-p values at once, with intervals: `bitlens.offspring.collapse_arms`.

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
from bitlens.plotting import integer_ticks, new_figure, save_figure
from bitlens.progress import progress_bar

if TYPE_CHECKING:
    from bitlens.hf import HFModel

MODES = ("replace", "accumulate", "accumulate-real")


@dataclass(frozen=True)
class CollapseConfig:
    """One collapse run: `generations` generations after generation 0, sizes in bytes/tokens."""

    mode: str = "replace"  # one of MODES
    generations: int = 5  # generations after generation 0 (which trains on real data)
    seed: int = 0
    preset: str = "tiny"  # every generation's model
    temperature: float = 1.0
    top_p: float = 0.9
    real_share: float = 0.25  # accumulate-real: share of every batch's windows that are real
    real_bytes: int = 96_000  # real training windows, spread over the parent_train split
    test_bytes: int = 32_768  # real held-out bytes: the test split (nothing here chooses)
    budget_tokens: int = 393_216  # training tokens per generation, the same in every arm
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
        if not 0.0 < self.real_share < 1.0:
            raise BitlensError(f"real_share must lie strictly between 0 and 1, got {self.real_share}")
        per_batch = self.real_share * self.batch_size
        if self.mode == "accumulate-real" and abs(per_batch - round(per_batch)) > 1e-9:
            raise BitlensError(
                f"real_share {self.real_share} of a {self.batch_size}-window batch is not a whole "
                "number of windows; choose a share whose product with the batch size is whole"
            )

    @classmethod
    def quick(cls) -> CollapseConfig:
        return cls(real_bytes=12_800, test_bytes=4_096, budget_tokens=16_384)

    @classmethod
    def full(cls) -> CollapseConfig:
        return cls()

    @property
    def real_per_batch(self) -> int:
        """accumulate-real: the real windows in every batch of `batch_size`."""
        return round(self.real_share * self.batch_size)

    def is_quick(self) -> bool:
        """Whether the sizes are the quick ones (whatever the mode, seed and sampling)."""
        q = CollapseConfig.quick()
        return replace(self, **{k: getattr(q, k) for k in _RUN_SETTINGS}) == q


# The fields of a CollapseConfig that choose what to run rather than how big it is.
_RUN_SETTINGS = ("mode", "generations", "seed", "preset", "temperature", "top_p", "real_share")


def bigram_ids(windows: torch.Tensor) -> np.ndarray:
    """Byte bigrams inside each window, as ids a·256 + b."""
    w = windows.long().numpy()
    return (w[:, :-1] * VOCAB_SIZE + w[:, 1:]).ravel()


def _rarest(ids: np.ndarray, n_types: int, tail_share: float) -> np.ndarray:
    """Boolean (n_types,) set of the rarest seen types of `ids` that hold ≤ tail_share of them."""
    counts = np.bincount(ids, minlength=n_types)
    seen = np.flatnonzero(counts)
    order = seen[np.argsort(counts[seen], kind="stable")]
    cumulative = np.cumsum(counts[order]) / counts.sum()
    tail = np.zeros(n_types, dtype=bool)
    tail[order[cumulative <= tail_share]] = True
    return tail


def tail_set(real_windows: torch.Tensor, tail_share: float) -> np.ndarray:
    """Boolean (65536,) set of the rarest real bigram types holding ≤ tail_share of real bigrams."""
    return _rarest(bigram_ids(real_windows), VOCAB_SIZE * VOCAB_SIZE, tail_share)


def tail_mass(windows: torch.Tensor, tail: np.ndarray) -> float:
    """Share of the windows' bigrams that lie in the tail set."""
    return float(tail[bigram_ids(windows)].mean())


def rare_byte_set(real_bytes: torch.Tensor, tail_share: float) -> np.ndarray:
    """Boolean (256,) set of the rarest real byte values holding ≤ tail_share of the real bytes."""
    return _rarest(real_bytes.long().numpy().ravel(), VOCAB_SIZE, tail_share)


def rare_byte_mass(byte_rows: torch.Tensor, rare: np.ndarray) -> float:
    """Share of the bytes that are in the rare set."""
    return float(rare[byte_rows.long().numpy().ravel()].mean())


def unigram_entropy_bits(windows: torch.Tensor) -> float:
    """Entropy in bits of the empirical byte distribution of the windows."""
    counts = np.bincount(windows.long().numpy().ravel(), minlength=VOCAB_SIZE)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def training_sources(
    config: CollapseConfig, real: torch.Tensor, samples: list[torch.Tensor]
) -> tuple[list[WindowSource], float]:
    """Generation len(samples)'s training batches, as sources of `batch_size` windows in all, and
    the share of its training tokens that are real (`samples`: each earlier generation's windows)."""
    b = config.batch_size
    if not samples:
        return [WindowSource.unmasked(real, b)], 1.0
    if config.mode == "replace":
        return [WindowSource.unmasked(samples[-1], b)], 0.0
    if config.mode == "accumulate":
        pool = torch.cat([real, *samples])
        return [WindowSource.unmasked(pool, b)], len(real) / len(pool)
    k = config.real_per_batch
    sources = [WindowSource.unmasked(real, k), WindowSource.unmasked(torch.cat(samples), b - k)]
    return sources, k / b


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
    rare_byte_mass: float
    real_share: float  # share of the training tokens that are real (expected, for accumulate)

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
    real_rare_byte_mass: float
    generation0: str = "trained"  # "trained" on real data, or the given model's name
    real_share: float | None = None  # accumulate-real's share of real windows per batch

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


@dataclass(frozen=True)
class RealData:
    """What every generation of a run on one corpus is measured against: the real training
    windows, the test windows, and the real data's tail sets (bigrams and single bytes)."""

    real: torch.Tensor
    test: torch.Tensor
    tail: np.ndarray
    rare: np.ndarray

    @classmethod
    def of(cls, data: bytes, config: CollapseConfig) -> RealData:
        real, test = _real_and_test(data, config)
        return cls(
            real, test, tail_set(real, config.tail_share), rare_byte_set(real[:, 1:], config.tail_share)
        )


def _train_generation(config: CollapseConfig, g: int, sources: list[WindowSource]) -> GPT:
    """Generation g's model, trained from scratch on the sources for the token budget."""
    model, _ = train_on_windows(config.preset, sources, config.budget_tokens, config.seed * 1_000 + g)
    return model


def train_generation0(config: CollapseConfig, real: RealData) -> GPT:
    """Generation 0: trained on the real windows alone (the same model in every arm and top-p)."""
    return _train_generation(config, 0, training_sources(config, real.real, [])[0])


def _heldout_surprisal_bits(model: GPT | HFModel, test: torch.Tensor) -> np.ndarray:
    """Per target byte of the test windows, (n, T) bits (a token model's spread over bytes)."""
    if isinstance(model, GPT):
        return heldout_score(model, test).surprisal_bits
    return parent_window_scores(model, test, batch_size=64)[0]


def _generations(
    config: CollapseConfig, real: RealData, generation0: GPT | HFModel
) -> Iterator[CollapseGeneration]:
    """Measure generation 0 (trained on real windows, or given), then train and measure each
    later one on the data its arm prescribes (`training_sources`)."""
    prompts = torch.full((len(real.real), 1), START_BYTE, dtype=torch.uint8)
    samples: list[torch.Tensor] = []
    model = generation0
    for g in range(config.generations + 1):
        sources, real_share = training_sources(config, real.real, samples)
        if g > 0:
            model = _train_generation(config, g, sources)
        surprisal = _heldout_surprisal_bits(model, real.test)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + g)
        s = parent_sample(model, prompts, config.window, config.temperature, config.top_p, gen)
        samples.append(torch.cat([prompts, s.tokens], dim=1))
        yield CollapseGeneration(
            generation=g,
            heldout_bits_per_byte=float(surprisal.mean()),
            sample_entropy_bits=s.mean_surprisal_bits,
            tail_mass=tail_mass(samples[-1], real.tail),
            heldout_share_below_threshold=float((surprisal > config.surprise_threshold_bits).mean()),
            sample_unigram_entropy_bits=unigram_entropy_bits(s.tokens),
            train_windows=sum(len(src.windows) for src in sources),
            rare_byte_mass=rare_byte_mass(s.tokens, real.rare),
            real_share=real_share,
        )


def run_collapse(
    data: bytes,
    config: CollapseConfig,
    progress: bool = False,
    generation0: GPT | HFModel | None = None,
    real: RealData | None = None,
    generation0_name: str | None = None,
) -> CollapseResult:
    """Train generation 0 on real data (or take `generation0`, a trained or pretrained model) and
    `config.generations` more on generated data; report each generation in bits (see the module
    docstring). `real`: `RealData.of(data, config)`, when the caller already has it;
    `generation0_name`: what the result calls generation 0 (default: "trained" when it is trained
    here, else the given model's name; "trained" for a model from `train_generation0`)."""
    real = RealData.of(data, config) if real is None else real
    if generation0_name is None:
        generation0_name = "trained" if generation0 is None else getattr(generation0, "name", "") or "given"
    model0 = train_generation0(config, real) if generation0 is None else generation0
    rows = []
    label = f"collapse ({config.mode}, top-p {config.top_p:g}, seed {config.seed})"
    with progress_bar(config.generations + 1, label, enabled=progress) as bar:
        for row in _generations(config, real, model0):
            rows.append(row)
            bar.advance(1, status=f"gen {row.generation}: {row.heldout_bits_per_byte:.3f} bits/byte")
    return CollapseResult(
        mode=config.mode,
        generations=rows,
        real_tail_mass=tail_mass(real.real, real.tail),
        real_unigram_entropy_bits=unigram_entropy_bits(real.real[:, 1:]),
        tail_share=config.tail_share,
        surprise_threshold_bits=config.surprise_threshold_bits,
        temperature=config.temperature,
        top_p=config.top_p,
        budget_tokens=config.budget_tokens,
        heldout_bytes=real.test.shape[0] * config.window,
        offspring_preset=config.preset,
        seed=config.seed,
        quick=config.is_quick(),
        splits=collapse_splits(data, config).to_dict(),
        generation0=generation0_name,
        real_rare_byte_mass=rare_byte_mass(real.real[:, 1:], real.rare),
        real_share=config.real_share if config.mode == "accumulate-real" else None,
    )


_PANELS = (
    ("heldout_bits_per_byte", "held-out bits/byte (real data)"),
    ("sample_entropy_bits", "sample entropy (bits/byte)"),
    ("sample_unigram_entropy_bits", "sample unigram entropy (bits)"),
    ("tail_mass", "rare-bigram mass of samples"),
    ("rare_byte_mass", "rare-byte mass of samples"),
    ("heldout_share_below_threshold", "real bytes below threshold"),
)


def _style(r: dict, results: list[dict]) -> dict[str, Any]:
    """An arm's line: a colour per mode, a line style per top-p, and its legend label (with the
    top-p when the lines differ in it)."""
    top_ps = sorted({float(x.get("top_p", 1.0)) for x in results}, reverse=True)
    label = r["mode"] if len(top_ps) == 1 else f"{r['mode']}, top-p {r['top_p']:g}"
    colour = f"C{MODES.index(r['mode'])}" if r["mode"] in MODES else None
    return {
        "color": colour,
        "ls": ("-", "--", ":", "-.")[top_ps.index(float(r.get("top_p", 1.0))) % 4],
        "label": label,
    }


def plot_collapse(results: list[dict], path: str | Path) -> list[Path]:
    """Per generation, one line per run or arm: held-out bits/byte, sample entropy, unigram
    entropy, rare-bigram and rare-byte mass, real bytes below threshold; a band over the 95 %
    interval where an arm carries `<figure>_ci95` (its mean over seeds). Saves PNG and SVG."""
    if isinstance(results, dict):
        results = [results]
    fig, axes = new_figure(ncols=3, nrows=2, width=15.2, height=7.2)
    for i, (ax, (key, label)) in enumerate(zip(axes.ravel(), _PANELS, strict=True)):
        for r in results:
            rows = r["generations"]
            gens = [row["generation"] for row in rows]
            values = [row.get(key, np.nan) for row in rows]
            (line,) = ax.plot(gens, values, marker="o", ms=3, **_style(r, results))
            cis = [row.get(f"{key}_ci95") for row in rows]
            if any(ci is not None for ci in cis):
                low = [ci[0] if ci else np.nan for ci in cis]
                high = [ci[1] if ci else np.nan for ci in cis]
                ax.fill_between(gens, low, high, color=line.get_color(), alpha=0.15, lw=0)
        real_key = {"tail_mass": "real_tail_mass", "rare_byte_mass": "real_rare_byte_mass"}.get(key)
        if real_key and results and results[0].get(real_key) is not None:
            ax.axhline(results[0][real_key], ls="--", color="grey", lw=0.8, label="real data")
            ax.legend(handles=ax.get_lines()[-1:], fontsize=7)
        if i == 0:
            ax.legend(fontsize=7)
        integer_ticks(ax.xaxis)
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
    return save_figure(fig, path)
