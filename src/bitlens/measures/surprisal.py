"""Surprisal and predictive entropy per byte, their averages, and the most/least surprising spans.

For each byte x_t of the data, surprisal −log2 p(x_t | x_<t) is what the byte costs to code
under the model; the predictive entropy H(p_t) is what the model *expected* it to cost. Their
averages are bits per byte; their gap (surprisal − entropy) shows miscalibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bitlens.errors import BitlensError
from bitlens.model import GPT
from bitlens.tokens import score_bytes_any

if TYPE_CHECKING:
    from bitlens.hf import HFModel

HIST_EDGES_BITS = np.arange(0.0, 16.5, 0.5)  # histogram bins in bits; the last bin takes the rest


@dataclass(frozen=True)
class SurprisalConfig:
    """How much of the data is scored (bytes) and how the extremes are reported."""

    max_bytes: int = 262_144  # score the first max_bytes bytes (0 = all)
    span: int = 32  # length in bytes of the most/least surprising spans
    top_k: int = 5  # spans reported on each side
    seed: int = 0  # nothing here is random; accepted for a uniform interface

    @classmethod
    def quick(cls) -> SurprisalConfig:
        return cls(max_bytes=16_384)

    @classmethod
    def full(cls) -> SurprisalConfig:
        return cls()


@dataclass(frozen=True)
class SurprisalScores:
    """Per-byte surprisal and entropy in bits (float64 arrays over `data`)."""

    data: bytes
    surprisal_bits: np.ndarray
    entropy_bits: np.ndarray

    def save_npz(self, path: str | Path) -> None:
        """Write the per-byte arrays (`surprisal_bits`, `entropy_bits`, `bytes`) to a .npz file."""
        np.savez_compressed(
            path,
            surprisal_bits=self.surprisal_bits,
            entropy_bits=self.entropy_bits,
            bytes=np.frombuffer(self.data, dtype=np.uint8),
        )


def score_surprisal(model: GPT | HFModel, data: bytes, progress: bool = False) -> SurprisalScores:
    """Score every byte of `data`: surprisal and predictive entropy, in bits. For a tokenizer
    model (`bitlens.hf.HFModel`) each token's surprisal and entropy are spread equally over its
    bytes (`bitlens.tokens.spread_over_bytes`), so totals and bits/byte are exactly `eval`'s."""
    s = score_bytes_any(model, data, with_entropy=True, progress=progress)
    assert s.entropy_bits is not None
    return SurprisalScores(data=data, surprisal_bits=s.surprisal_bits, entropy_bits=s.entropy_bits)


def extreme_spans(values_bits: np.ndarray, data: bytes, span: int, k: int, most: bool) -> list[dict]:
    """The k non-overlapping spans of `span` bytes with the highest (most) or lowest mean value.

    Greedy: take the best window, exclude every window overlapping it, repeat.
    """
    n = len(values_bits)
    span = min(span, n)
    csum = np.concatenate([[0.0], np.cumsum(values_bits)])
    means = (csum[span:] - csum[:-span]) / span  # mean over [i, i + span)
    order = np.argsort(-means if most else means, kind="stable")
    taken = np.zeros(n, dtype=bool)
    out: list[dict] = []
    for i in order:
        if len(out) == k:
            break
        if taken[i : i + span].any():
            continue
        taken[i : i + span] = True
        out.append(
            {
                "text": data[i : i + span].decode("utf-8", errors="replace"),
                "start": int(i),
                "mean_surprisal_bits": float(means[i]),
            }
        )
    return out


def _profile(values_bits: np.ndarray, points: int = 200) -> list[float]:
    """The mean of `values_bits` over `points` equal slices of the data (for a position plot)."""
    chunks = np.array_split(values_bits, min(points, len(values_bits)))
    return [float(c.mean()) for c in chunks]


@dataclass(frozen=True)
class SurprisalResult:
    """The summary of per-byte scores, every figure in bits; `to_dict()` is the JSON.

    `scores` keeps the per-byte arrays (not part of the JSON; see SurprisalScores.save_npz).
    """

    bytes: int
    bits_per_byte: float  # mean surprisal
    entropy_bits_per_byte: float  # mean predictive entropy
    total_bits: float
    calibration_gap_bits_per_byte: float  # surprisal − entropy
    span_bytes: int
    most_surprising: list[dict]  # {text, start, mean_surprisal_bits}
    least_surprising: list[dict]
    histogram: dict  # {edges_bits, surprisal_counts, entropy_counts}
    profile: dict  # {surprisal_bits, entropy_bits}: slice means along the data
    scores: SurprisalScores = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "scores"}


def summarise(scores: SurprisalScores, span: int = 32, top_k: int = 5) -> SurprisalResult:
    """The summary of per-byte scores (all figures in bits)."""
    s, h = scores.surprisal_bits, scores.entropy_bits
    edges = HIST_EDGES_BITS
    clip = edges[-1] - 1e-9
    return SurprisalResult(
        bytes=int(len(s)),
        bits_per_byte=float(s.mean()),
        entropy_bits_per_byte=float(h.mean()),
        total_bits=float(s.sum()),
        calibration_gap_bits_per_byte=float(s.mean() - h.mean()),
        span_bytes=int(min(span, len(s))),
        most_surprising=extreme_spans(s, scores.data, span, top_k, most=True),
        least_surprising=extreme_spans(s, scores.data, span, top_k, most=False),
        histogram={
            "edges_bits": [float(e) for e in edges],
            "surprisal_counts": np.histogram(np.minimum(s, clip), edges)[0].tolist(),
            "entropy_counts": np.histogram(np.minimum(h, clip), edges)[0].tolist(),
        },
        profile={"surprisal_bits": _profile(s), "entropy_bits": _profile(h)},
        scores=scores,
    )


def measure_surprisal(
    model: GPT | HFModel, data: bytes, config: SurprisalConfig, progress: bool = False
) -> SurprisalResult:
    """Per-byte surprisal and entropy of the first `config.max_bytes` bytes of `data` under
    `model`, summarised in bits. Deterministic. The per-byte arrays are in `result.scores`.
    """
    data = data[: config.max_bytes] if config.max_bytes > 0 else data
    if not data:
        raise BitlensError("nothing to score: the data is empty")
    scores = score_surprisal(model, data, progress=progress)
    return summarise(scores, span=config.span, top_k=config.top_k)


def plot_surprisal(result: dict, path: str | Path) -> list[Path]:
    """Histogram of per-byte surprisal and entropy (bits), and both along the data.

    Writes `path` with a .png and a .svg suffix.
    """
    from bitlens.plotting import new_figure, save_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=11)
    hist = result["histogram"]
    edges = np.asarray(hist["edges_bits"])
    centers = (edges[:-1] + edges[1:]) / 2
    w = (edges[1] - edges[0]) * 0.45
    ax1.bar(centers - w / 2, hist["surprisal_counts"], width=w, label="surprisal −log₂ p(x)")
    ax1.bar(centers + w / 2, hist["entropy_counts"], width=w, label="entropy H(p)")
    ax1.set_xlabel("bits")
    ax1.set_ylabel("bytes")
    ax1.set_title(
        f"{result['bits_per_byte']:.3f} bits/byte surprisal, {result['entropy_bits_per_byte']:.3f} entropy"
    )
    ax1.legend()
    prof = result["profile"]
    x = np.linspace(0, result["bytes"], len(prof["surprisal_bits"]))
    ax2.plot(x, prof["surprisal_bits"], label="surprisal")
    ax2.plot(x, prof["entropy_bits"], label="entropy")
    ax2.set_xlabel("byte offset")
    ax2.set_ylabel("bits/byte (slice mean)")
    ax2.legend()
    return save_figure(fig, path)
