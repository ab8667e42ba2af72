"""Rho-1's four token classes and statistics of them that do not hold their answer, in bits.

A held-out unit (a byte here) is High or Low at the start and at the end of training against a
threshold: L->L, H->L, L->H, H->H. Mapping to Rho-1 (Lin et al. 2024, Fig. 2): 51 % L->L (stays
low), 26 % H->L (learned), 12 % L->H (got worse), 11 % H->H (stays high) [the figure as three
secondary summaries report it]. A class is defined by how its loss moved, so "H->L holds most of
the gain" is true by construction; the statistics here can come out either way: each class's
share of the gain beside its share of the starting bits, end loss regressed on start loss, the
same split between two seeds' final losses (a noise null), and the split over a threshold sweep.

Intervals come from `bitlens.stats.bootstrap_ci` over blocks of consecutive units (neighbouring
bytes' losses are correlated, so resampling single bytes would be too narrow); every interval is
{estimate, ci95, n_seeds, n_blocks}.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats as st

from bitlens.stats import bootstrap_ci

RHO1_PROPORTIONS = {"L->L": 0.51, "H->L": 0.26, "L->H": 0.12, "H->H": 0.11}
RHO1_MAPPING = "L->L 51% (stays low), H->L 26% (learned), L->H 12% (got worse), H->H 11% (stays high)"
CLASSES = tuple(RHO1_PROPORTIONS)
SWEEP_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
N_RESAMPLES = 1999


def class_masks(start_bits: np.ndarray, end_bits: np.ndarray, threshold_bits: float) -> dict:
    """Rho-1's four classes as boolean masks: High means a loss at or above the threshold."""
    hi_start, hi_end = start_bits >= threshold_bits, end_bits >= threshold_bits
    return {
        "L->L": ~hi_start & ~hi_end,
        "H->L": hi_start & ~hi_end,
        "L->H": ~hi_start & hi_end,
        "H->H": hi_start & hi_end,
    }


def classify(start_bits: np.ndarray, end_bits: np.ndarray, threshold_bits: float) -> dict:
    """Rho-1's four classes: proportion, token count and information gained (Σ start − end)."""
    n = len(start_bits)
    return {
        c: {
            "proportion": float(m.sum() / n),
            "tokens": int(m.sum()),
            "information_gained_bits": float((start_bits[m] - end_bits[m]).sum()),
            "mean_start_bits": float(start_bits[m].mean()) if m.any() else None,
            "mean_end_bits": float(end_bits[m].mean()) if m.any() else None,
        }
        for c, m in class_masks(start_bits, end_bits, threshold_bits).items()
    }


class Blocks:
    """Per-block sums of per-byte values, so a statistic of sums can be bootstrapped over blocks
    of consecutive bytes (`n_blocks` blocks of near-equal size)."""

    def __init__(self, n: int, n_blocks: int, n_seeds: int = 1, seed: int = 0) -> None:
        self.n_blocks = max(1, min(n_blocks, n))
        self.block = (np.arange(n) * self.n_blocks) // n
        self.n_seeds, self.seed = n_seeds, seed

    def sums(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.block, weights=values.astype(np.float64), minlength=self.n_blocks)

    def interval(self, point: float | None, statistic: Callable[[np.ndarray], float]) -> dict | None:
        """`point` with the bootstrap interval of `statistic(block indices)`; None if undefined."""
        if point is None or not np.isfinite(point):
            return None

        def stat(idx: np.ndarray) -> float:
            v = statistic(idx.astype(np.int64))
            return v if np.isfinite(v) else point  # a resample with no such bytes: no evidence

        with warnings.catch_warnings():  # BCa is undefined on a constant statistic: percentile then
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", getattr(st, "DegenerateDataWarning", RuntimeWarning))
            iv = bootstrap_ci(
                np.arange(self.n_blocks, dtype=np.float64), stat, n_resamples=N_RESAMPLES, seed=self.seed
            )
        return {
            "estimate": point,
            "ci95": [iv.low, iv.high],
            "n_seeds": self.n_seeds,
            "n_blocks": self.n_blocks,
        }


def ratio_statistic(num: np.ndarray, den: np.ndarray) -> Callable[[np.ndarray], float]:
    """Σ num / Σ den over the chosen blocks (per-block sums), NaN when Σ den is 0."""

    def f(idx: np.ndarray) -> float:
        d = den[idx].sum()
        return float(num[idx].sum() / d) if d != 0 else float("nan")

    return f


def _point(num: float, den: float) -> float | None:
    return float(num / den) if den != 0 else None


def class_statistics(start: np.ndarray, end: np.ndarray, threshold: float, blocks: Blocks) -> dict:
    """Per class: bytes, proportion, share of the total gain, share of the starting bits and
    their ratio (each with its interval), mean start and end loss (bits)."""
    gain = start - end
    ones, g_all, s_all = (blocks.sums(x) for x in (np.ones_like(start), gain, start))
    out = {}
    for c, m in class_masks(start, end, threshold).items():
        cnt, g, s = blocks.sums(m.astype(np.float64)), blocks.sums(gain * m), blocks.sums(start * m)
        gain_share = _point(g.sum(), g_all.sum())
        start_share = _point(s.sum(), s_all.sum())
        ratio = gain_share / start_share if gain_share is not None and start_share else None

        def ratio_stat(idx, g=g, s=s):  # NaN (no evidence) where a resample has no start bits here
            den = ratio_statistic(s, s_all)(idx)
            return ratio_statistic(g, g_all)(idx) / den if den != 0 else float("nan")

        out[c] = {
            "tokens": int(m.sum()),
            "proportion": blocks.interval(float(m.mean()), ratio_statistic(cnt, ones)),
            "gain_share": blocks.interval(gain_share, ratio_statistic(g, g_all)),
            "start_bits_share": blocks.interval(start_share, ratio_statistic(s, s_all)),
            "gain_over_start_share": blocks.interval(ratio, ratio_stat),
            "information_gained_bits": float(gain[m].sum()),
            "mean_start_bits": float(start[m].mean()) if m.any() else None,
            "mean_end_bits": float(end[m].mean()) if m.any() else None,
        }
    return out


def regression(x: np.ndarray, y: np.ndarray, blocks: Blocks) -> dict:
    """y regressed on x by least squares (`scipy.stats.linregress`), bits on bits: slope,
    intercept and r² with block-bootstrap intervals; the OLS intervals (t, n − 2 df) beside
    them, which assume independent bytes and are too narrow when neighbours correlate."""
    if np.ptp(x) == 0:
        return {"slope": None, "intercept": None, "r_squared": None, "n": int(len(x))}
    fit = st.linregress(x, y)
    t = float(st.t.ppf(0.975, len(x) - 2)) if len(x) > 2 else float("nan")
    n, sx, sy = (blocks.sums(v) for v in (np.ones_like(x), x, y))
    sxx, sxy, syy = blocks.sums(x * x), blocks.sums(x * y), blocks.sums(y * y)

    def moments(idx):
        return n[idx].sum(), sx[idx].sum(), sy[idx].sum(), sxx[idx].sum(), sxy[idx].sum(), syy[idx].sum()

    def slope(idx):
        N, X, Y, XX, XY, _ = moments(idx)
        return (N * XY - X * Y) / (N * XX - X * X)

    def intercept(idx):
        N, X, Y, *_ = moments(idx)
        return (Y - slope(idx) * X) / N

    def r2(idx):
        N, X, Y, XX, XY, YY = moments(idx)
        return (N * XY - X * Y) ** 2 / ((N * XX - X * X) * (N * YY - Y * Y))

    r_squared = float(fit.rvalue**2) if np.ptp(y) > 0 else 0.0
    return {
        "slope": blocks.interval(float(fit.slope), slope),
        "intercept": blocks.interval(float(fit.intercept), intercept),
        "r_squared": blocks.interval(r_squared, r2) if np.ptp(y) > 0 else None,
        "slope_ols_ci95": [float(fit.slope - t * fit.stderr), float(fit.slope + t * fit.stderr)],
        "intercept_ols_ci95": [
            float(fit.intercept - t * fit.intercept_stderr),
            float(fit.intercept + t * fit.intercept_stderr),
        ],
        "n": int(len(x)),
    }


def distance_to_rho1(proportions: dict[str, float]) -> float:
    """Total variation distance between a class split and Rho-1's (0: the same; 1: disjoint)."""
    return 0.5 * sum(abs(proportions[c] - RHO1_PROPORTIONS[c]) for c in CLASSES)


def shares(start: np.ndarray, end: np.ndarray, threshold: float) -> tuple[dict, dict, dict]:
    """Per class: proportion of units, share of the total gain, share of the starting bits."""
    gain, g_all, s_all = start - end, float((start - end).sum()), float(start.sum())
    masks = class_masks(start, end, threshold)
    prop = {c: float(m.mean()) for c, m in masks.items()}
    g = {c: _point(float(gain[m].sum()), g_all) for c, m in masks.items()}
    s = {c: _point(float(start[m].sum()), s_all) for c, m in masks.items()}
    return prop, g, s


def threshold_sweep(
    start: np.ndarray, end: np.ndarray, thresholds: list[float], null: tuple[np.ndarray, np.ndarray] | None
) -> list[dict]:
    """At each threshold (bits): the class split, each class's gain and starting-bits shares,
    the distance to Rho-1, and the noise null's split (two seeds' final losses)."""
    rows = []
    for th in thresholds:
        prop, gain_share, start_share = shares(start, end, th)
        row = {
            "threshold_bits": float(th),
            "proportions": prop,
            "gain_share": gain_share,
            "start_bits_share": start_share,
            "distance_to_rho1": distance_to_rho1(prop),
        }
        if null is not None:
            row["null_proportions"] = shares(null[0], null[1], th)[0]
        rows.append(row)
    return rows


def noise_null(end_a: np.ndarray, end_b: np.ndarray, threshold: float, blocks: Blocks) -> dict:
    """Seed A's final losses against seed B's (same data): the class split, the share of bytes
    off the diagonal (H->L + L->H: "moved" by seed noise alone), the mean |difference| per byte,
    and B's loss regressed on A's."""
    masks = class_masks(end_a, end_b, threshold)
    cnt = {c: blocks.sums(m.astype(np.float64)) for c, m in masks.items()}
    ones = blocks.sums(np.ones_like(end_a))
    off = cnt["H->L"] + cnt["L->H"]
    absdiff = np.abs(end_a - end_b)
    return {
        "classes": {
            c: blocks.interval(float(m.mean()), ratio_statistic(cnt[c], ones)) for c, m in masks.items()
        },
        "off_diagonal": blocks.interval(float(off.sum() / ones.sum()), ratio_statistic(off, ones)),
        "mean_abs_change_bits": blocks.interval(
            float(absdiff.mean()), ratio_statistic(blocks.sums(absdiff), ones)
        ),
        "regression": regression(end_a, end_b, blocks),
    }
