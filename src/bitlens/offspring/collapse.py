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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bitlens.data import START_BYTE, VOCAB_SIZE, split_corpus
from bitlens.errors import BitlensError
from bitlens.offspring.batches import WindowSource, train_on_windows
from bitlens.offspring.distill import heldout_score
from bitlens.offspring.select import make_windows
from bitlens.offspring.synth import sample
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import progress_bar

MODES = ("replace", "accumulate")


@dataclass(frozen=True)
class CollapseSizes:
    real_bytes: int  # real training windows, spread over the training split
    test_bytes: int  # real held-out bytes
    budget_tokens: int  # training tokens per generation
    window: int = 128
    batch_size: int = 16
    tail_share: float = 0.1
    surprise_threshold_bits: float = 10.0  # a byte of probability < 2^-10 counts as forgotten


QUICK_COLLAPSE = CollapseSizes(real_bytes=12_800, test_bytes=4_096, budget_tokens=16_384)
FULL_COLLAPSE = CollapseSizes(real_bytes=96_000, test_bytes=32_768, budget_tokens=393_216)


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


def run_collapse(
    data: bytes,
    mode: str = "replace",
    generations: int = 5,
    seed: int = 0,
    quick: bool = False,
    progress: bool = False,
    preset: str = "tiny",
    temperature: float = 1.0,
    top_p: float = 0.9,
    sizes: CollapseSizes | None = None,
) -> dict[str, Any]:
    """Train generation 0 on real data and `generations` more on generated data; report bits.

    Keys: mode, generations (generation, heldout_bits_per_byte, sample_entropy_bits, tail_mass,
    heldout_share_below_threshold, sample_unigram_entropy_bits, train_windows), real_tail_mass, real_unigram_entropy_bits,
    tail_share, temperature, top_p, budget_tokens, seed.
    """
    if mode not in MODES:
        raise BitlensError(f"unknown collapse mode {mode!r}; choose from {', '.join(MODES)}")
    if generations < 1:
        raise BitlensError(f"need at least one generation after generation 0, got {generations}")
    sizes = sizes or (QUICK_COLLAPSE if quick else FULL_COLLAPSE)
    window = sizes.window
    split = split_corpus(data, window)
    all_windows = make_windows(split.train, window)
    n_real = min(len(all_windows), max(1, sizes.real_bytes // window))
    pick = torch.from_numpy(np.linspace(0, len(all_windows) - 1, n_real).round().astype(np.int64))
    real = all_windows[pick]
    test = make_windows(split.val[: sizes.test_bytes], window)
    tail = tail_set(real, sizes.tail_share)
    prompts = torch.full((n_real, 1), START_BYTE, dtype=torch.uint8)
    pool, samples_prev, rows = [real], None, []
    with progress_bar(generations + 1, f"collapse ({mode})", enabled=progress) as bar:
        for g in range(generations + 1):
            if g == 0:
                train_windows = real
            elif mode == "replace":
                train_windows = samples_prev
            else:
                train_windows = torch.cat(pool)
            model, _ = train_on_windows(preset, [WindowSource.unmasked(train_windows,
                                                                        sizes.batch_size)],
                                        sizes.budget_tokens, seed * 1_000 + g)
            heldout = heldout_score(model, test)
            gen = torch.Generator().manual_seed(seed * 1_000_003 + g)
            s = sample(model, prompts, window, temperature, top_p, gen)
            samples_prev = torch.cat([prompts, s.tokens], dim=1)
            pool.append(samples_prev)
            rows.append({
                "generation": g,
                "heldout_bits_per_byte": heldout.bits_per_byte,
                "sample_entropy_bits": s.mean_surprisal_bits,
                "tail_mass": tail_mass(samples_prev, tail),
                "heldout_share_below_threshold":
                    float((heldout.surprisal_bits > sizes.surprise_threshold_bits).mean()),
                "sample_unigram_entropy_bits": unigram_entropy_bits(s.tokens),
                "train_windows": len(train_windows),
            })
            bar.advance(1, status=f"gen {g}: {heldout.bits_per_byte:.3f} bits/byte")
    return {
        "mode": mode,
        "generations": rows,
        "real_tail_mass": tail_mass(real, tail),
        "real_unigram_entropy_bits": unigram_entropy_bits(real[:, 1:]),
        "tail_share": sizes.tail_share,
        "surprise_threshold_bits": sizes.surprise_threshold_bits,
        "temperature": temperature,
        "top_p": top_p,
        "budget_tokens": sizes.budget_tokens,
        "heldout_bytes": test.shape[0] * window,
        "offspring_preset": preset,
        "seed": seed,
        "quick": quick,
    }


def plot_collapse(results: list[dict], path: str | Path) -> list[Path]:
    """Held-out bits/byte, sample entropy and tail mass per generation, one line per mode."""
    if isinstance(results, dict):
        results = [results]
    fig, axes = new_figure(ncols=4, width=15.2, height=3.6)
    panels = [("heldout_bits_per_byte", "held-out bits/byte (real data)"),
              ("sample_entropy_bits", "sample entropy (bits/byte)"),
              ("tail_mass", "tail mass of samples"),
              ("heldout_share_below_threshold", "real bytes below threshold")]
    for ax, (key, label) in zip(axes, panels):
        for r in results:
            gens = [row["generation"] for row in r["generations"]]
            ax.plot(gens, [row.get(key, np.nan) for row in r["generations"]], marker="o",
                    label=r["mode"])
        if key == "tail_mass" and results:
            ax.axhline(results[0]["real_tail_mass"], ls="--", color="grey", lw=0.8,
                       label="real data")
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    return save_figure(fig, path)
