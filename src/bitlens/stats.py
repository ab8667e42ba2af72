"""Uncertainty, once, for every figure read as a finding: built on `scipy.stats`.

- `bootstrap_ci`: a percentile-BCa bootstrap interval of a statistic over seeds or items
  (`scipy.stats.bootstrap`), seeded, returned with the sample size;
- `t_interval`: Student's t interval of a mean (`scipy.stats.ttest_1samp`), for a handful of
  seeds: a bootstrap over 3 values never reaches past their range and covers far less than 95 %;
- `paired_test`: a paired comparison of two conditions measured on the same seeds or items
  (`scipy.stats.ttest_rel`, or the signed-rank `scipy.stats.wilcoxon`), with the mean
  difference and its bootstrap interval;
- `block_mean_ci`: the mean of per-item values (per-byte bits, per-position KL) with a bootstrap
  over blocks of consecutive items, since neighbouring bytes' losses are correlated;
- `holm`: Holm's step-down adjustment of a family of p-values (controls the family-wise error
  rate; Holm 1979), so a table of comparisons is read at the stated level.

Every result serialises to the keys the JSON of a measure carries: `ci95: [low, high]` and
`n_seeds` (or `n`). Units are those of the values passed in (bits, bits/byte, ...); nothing here
converts. An interval that contains 0 is "no effect detected", and `Interval.includes_zero`
says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from bitlens.errors import BitlensError

CONFIDENCE = 0.95
N_RESAMPLES = 9999


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, over n values."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high

    def to_dict(self, n_key: str = "n_seeds") -> dict:
        return {"estimate": self.estimate, "ci95": [self.low, self.high], n_key: self.n}


def _values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise BitlensError(f"no {name} to summarise")
    if not np.isfinite(x).all():
        raise BitlensError(f"{name} contain NaN or infinity")
    return x


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    vectorized: bool = False,
) -> Interval:
    """The statistic of `values` and its bootstrap interval (BCa; percentile when BCa is undefined).

    One value has no spread to resample: its interval is the point itself, and n = 1 says so.
    vectorized: `statistic(samples, axis=-1)` takes a batch of resamples at once (much faster).
    """
    x = _values(values)
    point = float(statistic(x))
    if x.size == 1 or np.all(x == x[0]):
        return Interval(point, point, point, int(x.size), confidence)

    def interval(method: str) -> tuple[float, float]:
        res = _st.bootstrap(
            (x,),
            statistic if vectorized else (lambda s, axis=-1: np.apply_along_axis(statistic, axis, s)),
            confidence_level=confidence,
            n_resamples=n_resamples,
            method=method,
            random_state=np.random.default_rng(seed),
        )
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    low, high = interval("BCa")
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa degenerates on tiny samples
        low, high = interval("percentile")
    return Interval(point, low, high, int(x.size), confidence)


def block_mean_ci(values: Sequence[float] | np.ndarray, n_blocks: int = 64, seed: int = 0) -> Interval:
    """The mean of `values` (one per item, in order) and its interval from a bootstrap over
    `n_blocks` blocks of consecutive items (near-equal sizes; a resample's mean is its blocks'
    total over their item count). `Interval.n` is the number of blocks, the resampled unit.
    """
    x = _values(values)
    k = max(1, min(n_blocks, x.size))
    block = (np.arange(x.size) * k) // x.size
    sums = np.bincount(block, weights=x, minlength=k)
    counts = np.bincount(block, minlength=k).astype(np.float64)
    point = float(x.mean())
    if k == 1 or np.all(x == x[0]):
        return Interval(point, point, point, k)

    def mean_of(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        i = idx.astype(np.int64)
        return sums[i].sum(axis=axis) / counts[i].sum(axis=axis)

    iv = bootstrap_ci(np.arange(k, dtype=np.float64), mean_of, seed=seed, vectorized=True)  # type: ignore[arg-type]
    return Interval(point, iv.low, iv.high, k)


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """The mean of `values` and its Student's t interval (`scipy.stats.ttest_1samp`).

    For means over a few seeds (2 to ~10), where the bootstrap is too narrow. One value has no
    spread: its interval is the point itself, and n = 1 says so.
    """
    x = _values(values)
    point = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return Interval(point, point, point, int(x.size), confidence)
    ci = _st.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return Interval(point, float(ci.low), float(ci.high), int(x.size), confidence)


def mean_ci95(values: Sequence[float]) -> list[float] | None:
    """The t interval of the mean over seeds (`t_interval`), or None for one seed: no spread."""
    if len(values) < 2:
        return None
    iv = t_interval(values)
    return [iv.low, iv.high]


@dataclass(frozen=True)
class PairedTest:
    """Condition a minus condition b on the same seeds: the mean difference, its interval, a p-value."""

    difference: Interval
    p_value: float
    test: str  # "t" (paired t-test) or "wilcoxon" (signed-rank)

    def to_dict(self) -> dict:
        return {**self.difference.to_dict(), "p_value": self.p_value, "test": self.test}


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    test: str = "t",
    seed: int = 0,
) -> PairedTest:
    """Two-sided paired test of a − b (same seeds in the same order); needs at least 2 pairs."""
    x, y = _values(a, "first values"), _values(b, "second values")
    if x.shape != y.shape:
        raise BitlensError(f"paired values differ in number: {x.size} and {y.size}")
    if x.size < 2:
        raise BitlensError("a paired test needs at least 2 pairs (seeds)")
    d = x - y
    if np.all(d == d[0]):  # no spread: the tests are undefined; the difference is exact
        p = 1.0 if d[0] == 0 else 0.0
    elif test == "t":
        p = float(_st.ttest_rel(x, y).pvalue)
    elif test == "wilcoxon":
        p = float(_st.wilcoxon(x, y).pvalue)
    else:
        raise BitlensError(f"unknown paired test {test!r}; choose t or wilcoxon")
    return PairedTest(bootstrap_ci(d, seed=seed), p, test)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values, in the input order: reject hypothesis i at level α iff adjusted[i] ≤ α.

    Sorted ascending, the k-th smallest (k from 0) is multiplied by (m − k), made monotone by a
    running maximum, and capped at 1.
    """
    p = _values(p_values, "p-values")
    if ((p < 0) | (p > 1)).any():
        raise BitlensError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out
