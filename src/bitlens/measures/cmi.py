"""The functional-CMI estimator (Harutyunyan et al. 2021) on per-window losses, in bits.

Supersample protocol (Steinke & Zakynthinou 2020): n pairs of windows z̃[i, 0], z̃[i, 1]; a mask
U ∈ {0, 1}^n picks which member of each pair a model trains on. Over k trainings with the pairs
fixed, the model's losses on both members reveal some information about U_i. We estimate, per
pair, the mutual information between U_i and the loss difference ΔL_i = L(z̃[i,1]) − L(z̃[i,0])
(the loss-difference form of f-CMI, Wang & Mao 2023), and turn it into a bound on the expected
generalisation gap:

    gap_i = E[(−1)^{U_i} ΔL_i] ≤ σ_i · sqrt(2 · I(ΔL_i; U_i) [nats])

(Donsker–Varadhan; (−1)^U (ΔL_i − c) is σ_i-subgaussian when U is independent of ΔL_i, with
σ_i = half the range of ΔL_i). Contract of the estimator, and its honest limits:
- I(ΔL_i; U_i) is the plug-in MI of U_i with ΔL_i split at its median over the k trainings. It is
  exactly 0 when ΔL_i does not depend on U_i within the sample (for example a learner that ignores
  its data and runs with the same seed on a mask and its complement), and exactly H(U_i) = 1 bit
  when the split separates the two values of U_i (a lookup table that memorises). For noisy,
  independent ΔL_i it is biased up by `independence_floor_bits(k)` per pair (0.11 bits at k = 8),
  which floors the CMI; the split also discards what ΔL_i says beyond its side of the median,
  which pulls the other way (the runs and tests check that the bound still covers the gap).
- σ_i is the half-range of ΔL_i seen over the k trainings, standing in for its true bound: the
  log loss is unbounded, so the figure is an estimate of the bound, not a certificate.
Losses are in bits per byte throughout; the bound and the gap come out in bits per byte.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from bitlens.errors import BitlensError
from bitlens.units import LN2


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of the distributions along axis 0 (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, -p * np.log2(p), 0.0).sum(axis=0)


def _binary_entropy_bits(p: np.ndarray) -> np.ndarray:
    """h(p) in bits, elementwise."""
    return _entropy_bits(np.stack([p, 1 - p]))


def median_split_mi_bits(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Plug-in MI in bits between binary labels and values split at their median, per column.

    labels: (k, n) in {0, 1}; values: (k, n) real. Returns (n,) bits in [0, 1]. Equal values always
    fall in the same bin, so a constant column has MI 0. Under independence the estimate is
    biased up; `independence_floor_bits(k)` is the exact bias for balanced labels.
    """
    labels = np.asarray(labels)
    values = np.asarray(values, dtype=np.float64)
    if labels.shape != values.shape or labels.ndim != 2:
        raise BitlensError(f"labels {labels.shape} and values {values.shape} must be equal (k, n) arrays")
    k = labels.shape[0]
    above = values > np.median(values, axis=0)
    u = labels == 1
    cells = [u & above, u & ~above, ~u & above, ~u & ~above]
    joint = np.stack([c.sum(axis=0) for c in cells]) / k
    h_u, h_above = _binary_entropy_bits(u.mean(axis=0)), _binary_entropy_bits(above.mean(axis=0))
    return np.maximum(h_u + h_above - _entropy_bits(joint), 0.0)


def independence_floor_bits(k: int) -> float:
    """Expected `median_split_mi_bits` of k independent, distinct values under balanced labels.

    With k/2 labels of each kind and k/2 values above the median, the count of label-1 values
    above it is hypergeometric; this is the exact mean of the plug-in MI over that count, the
    floor the estimate shows for a pair the models know nothing about (≈ 1/(2k ln 2) for large k).
    """
    if k < 2 or k % 2:
        raise BitlensError(f"k must be even and at least 2, got {k}")
    h = k // 2
    a = np.arange(h + 1)
    weights = np.array([math.comb(h, int(i)) * math.comb(h, h - int(i)) for i in a]) / math.comb(k, h)
    joint = np.stack([a, h - a, h - a, a]) / k
    mi = 2.0 - _entropy_bits(joint)  # both marginals are uniform: 1 bit each
    return float((weights * mi).sum())


@dataclass(frozen=True)
class CmiEstimate:
    """One supersample's figures; losses in bits per byte, information in bits."""

    n: int
    train_bits_per_byte: float  # mean loss of the windows each model trained on
    heldout_bits_per_byte: float  # mean loss of the other member of each pair
    gap_bits_per_byte: float  # held-out − train
    bound_bits_per_byte: float  # mean over pairs of σ_i · sqrt(2 ln2 · I_i)
    cmi_bits: float  # Σ_i I(ΔL_i; U_i), bits about the mask held by n pairs of losses
    cmi_bits_per_window: float  # cmi_bits / n (1 bit = the mask fully readable)

    def to_dict(self) -> dict:
        return asdict(self)


def _check(losses: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    losses = np.asarray(losses, dtype=np.float64)
    masks = np.asarray(masks)
    if losses.ndim != 3 or losses.shape[2] != 2 or masks.shape != losses.shape[:2]:
        raise BitlensError(
            f"expected losses (k, n, 2) and masks (k, n); got {losses.shape} and {masks.shape}"
        )
    if not np.isin(masks, (0, 1)).all():
        raise BitlensError("masks must hold 0 or 1 (which member of each pair was trained on)")
    return losses, masks.astype(np.int64)


def estimate_cmi(losses: np.ndarray, masks: np.ndarray) -> CmiEstimate:
    """f-CMI bound and measured gap from k trainings on one supersample of n pairs.

    losses[j, i, m]: bits/byte of window z̃[i, m] under model j; masks[j, i]: the member model j
    trained on.
    """
    losses, masks = _check(losses, masks)
    n = losses.shape[1]
    trained = np.take_along_axis(losses, masks[:, :, None], axis=2)[:, :, 0]
    heldout = np.take_along_axis(losses, 1 - masks[:, :, None], axis=2)[:, :, 0]
    delta = losses[:, :, 1] - losses[:, :, 0]
    mi_bits = median_split_mi_bits(masks, delta)
    sigma = (delta.max(axis=0) - delta.min(axis=0)) / 2
    bound = sigma * np.sqrt(2 * LN2 * mi_bits)
    return CmiEstimate(
        n=n,
        train_bits_per_byte=float(trained.mean()),
        heldout_bits_per_byte=float(heldout.mean()),
        gap_bits_per_byte=float((heldout - trained).mean()),
        bound_bits_per_byte=float(bound.mean()),
        cmi_bits=float(mi_bits.sum()),
        cmi_bits_per_window=float(mi_bits.mean()),
    )


@dataclass(frozen=True)
class Membership:
    """Per window (n, 2): how many bits/byte lower its loss is when it was trained on."""

    membership_bits_per_byte: np.ndarray  # mean loss held out − mean loss trained on
    reference_bits_per_byte: np.ndarray  # mean loss under the models that did not train on it


def membership(losses: np.ndarray, masks: np.ndarray) -> Membership:
    """The memorisation view of the same trainings: each window's loss drop from membership.

    Every window must be trained on by some models and held out by others (complementary masks
    guarantee it). With balanced masks the mean over windows equals the measured gap.
    """
    losses, masks = _check(losses, masks)
    member = np.stack([masks == 0, masks == 1], axis=2)  # (k, n, 2): model j trained on z̃[i, m]
    n_in, n_out = member.sum(axis=0), (~member).sum(axis=0)
    if (n_in == 0).any() or (n_out == 0).any():
        raise BitlensError("every window needs models that trained on it and models that did not")
    mean_in = np.where(member, losses, 0.0).sum(axis=0) / n_in
    mean_out = np.where(~member, losses, 0.0).sum(axis=0) / n_out
    return Membership(membership_bits_per_byte=mean_out - mean_in, reference_bits_per_byte=mean_out)


def complementary_masks(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """k masks over n pairs, in complementary pairs (U, 1 − U): each member trains in k/2 runs."""
    if k < 2 or k % 2:
        raise BitlensError(f"the number of masks must be even and at least 2, got {k}")
    half = rng.integers(0, 2, size=(k // 2, n))
    return np.stack([half, 1 - half], axis=1).reshape(k, n)
