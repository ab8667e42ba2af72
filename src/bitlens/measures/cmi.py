"""The loss-difference CMI estimator (Harutyunyan et al. 2021; Wang & Mao 2023) on per-window losses, in bits.

Supersample protocol (Steinke & Zakynthinou 2020): n pairs of windows z̃[i, 0], z̃[i, 1]; a mask
U ∈ {0, 1}^n picks which member of each pair a model trains on. Over k trainings with the pairs
fixed, the model's losses on both members reveal some information about U_i. We estimate, per
pair, the mutual information between U_i and the loss difference ΔL_i = L(z̃[i,1]) − L(z̃[i,0]),
and turn it into a bound on the expected generalisation gap:

    gap_i = E[(−1)^{U_i} ΔL_i] ≤ C · sqrt(2 · I(ΔL_i; U_i) [nats])

(Donsker–Varadhan: with U independent of ΔL_i, (−1)^U ΔL_i is |ΔL_i|-subgaussian, and
|ΔL_i| ≤ C when every loss lies in [0, C]). The loss is bounded for real: the caller scores with
smoothed predictions (1 − ε)p + ε/256, whose loss never exceeds C = log2(256/ε) bits
(`bitlens.units.smoothing_cap_bits`), and `estimate_cmi` refuses losses above the cap it is given.
Contract of the estimator, and its honest limits:
- I(ΔL_i; U_i) is the plug-in MI of U_i with ΔL_i split at its median over the k trainings. It is
  exactly 0 when ΔL_i does not depend on U_i within the sample (for example a learner that ignores
  its data and runs with the same seed on a mask and its complement), and exactly H(U_i) = 1 bit
  when the split separates the two values of U_i (a lookup table that memorises).
- For ΔL_i independent of U_i the estimate is biased up (the floor, ≈ 1/(2k ln 2) bits per pair).
  `permutation_null` measures it: it re-draws the masks as they were drawn (each complementary
  couple flipped at random), which keeps the losses and breaks any link to membership; the mean
  of the null is the floor, and the share of null draws at or above the estimate is its p-value.
- The median split keeps only which side of the median ΔL_i falls on; that discards information
  and pulls the estimate down, against the floor's upward pull. The bound is an estimate from k
  trainings, not a certificate.
Losses are in bits per byte throughout; the bound and the gap come out in bits per byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def _split_mi_bits(labels: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Plug-in MI in bits between boolean labels (..., k, n) and a boolean split (k, n), per column.

    Counts are integers until the last division, so the same labels always give the same bits.
    """
    k = above.shape[0]
    n_both = (labels & above).sum(axis=-2)
    n_label, n_above = labels.sum(axis=-2), above.sum(axis=0)
    joint = np.stack([n_both, n_label - n_both, n_above - n_both, k - n_label - n_above + n_both]) / k
    h_label, h_above = _binary_entropy_bits(n_label / k), _binary_entropy_bits(n_above / k)
    return np.maximum(h_label + h_above - _entropy_bits(joint), 0.0)


def _above_median(values: np.ndarray) -> np.ndarray:
    return values > np.median(values, axis=0)


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
    return _split_mi_bits(labels == 1, _above_median(values))


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


def bound_bits_per_byte(pair_mi_bits: np.ndarray, loss_cap_bits: float) -> float:
    """The loss-difference CMI bound on the expected gap: mean over pairs of C · sqrt(2 ln2 · I_i).

    pair_mi_bits: I(ΔL_i; U_i) per pair, in bits (converted to nats here); loss_cap_bits: C, the
    most bits per byte a loss can take. Returns bits per byte.
    """
    return float((loss_cap_bits * np.sqrt(2 * LN2 * np.asarray(pair_mi_bits, dtype=np.float64))).mean())


@dataclass(frozen=True)
class CmiEstimate:
    """One supersample's figures; losses in bits per byte, information in bits."""

    n: int
    train_bits_per_byte: float  # mean loss of the windows each model trained on
    heldout_bits_per_byte: float  # mean loss of the other member of each pair
    gap_bits_per_byte: float  # held-out − train
    bound_bits_per_byte: float  # mean over pairs of C · sqrt(2 ln2 · I_i)
    cmi_bits: float  # Σ_i I(ΔL_i; U_i), bits about the mask held by n pairs of losses
    cmi_bits_per_window: float  # cmi_bits / n (1 bit = the mask fully readable)
    loss_cap_bits: float  # C: no loss exceeds it (bits per byte)
    pair_mi_bits: np.ndarray  # (n,) I(ΔL_i; U_i) per pair, bits


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


def estimate_cmi(losses: np.ndarray, masks: np.ndarray, loss_cap_bits: float) -> CmiEstimate:
    """Loss-difference CMI, its bound and the measured gap from k trainings on one supersample.

    losses[j, i, m]: bits/byte of window z̃[i, m] under model j, each in [0, loss_cap_bits];
    masks[j, i]: the member model j trained on. Losses outside [0, C] void the bound: refused.
    """
    losses, masks = _check(losses, masks)
    if not loss_cap_bits > 0:
        raise BitlensError(f"the loss cap must be positive bits, got {loss_cap_bits}")
    if losses.min() < 0 or losses.max() > loss_cap_bits * (1 + 1e-12):
        raise BitlensError(
            f"losses span [{losses.min():.4g}, {losses.max():.4g}] bits/byte, outside "
            f"[0, {loss_cap_bits:.4g}]: the bound needs losses bounded by the cap "
            "(score with smoothed predictions)"
        )
    n = losses.shape[1]
    trained = np.take_along_axis(losses, masks[:, :, None], axis=2)[:, :, 0]
    heldout = np.take_along_axis(losses, 1 - masks[:, :, None], axis=2)[:, :, 0]
    mi_bits = median_split_mi_bits(masks, losses[:, :, 1] - losses[:, :, 0])
    return CmiEstimate(
        n=n,
        train_bits_per_byte=float(trained.mean()),
        heldout_bits_per_byte=float(heldout.mean()),
        gap_bits_per_byte=float((heldout - trained).mean()),
        bound_bits_per_byte=bound_bits_per_byte(mi_bits, loss_cap_bits),
        cmi_bits=float(mi_bits.sum()),
        cmi_bits_per_window=float(mi_bits.mean()),
        loss_cap_bits=float(loss_cap_bits),
        pair_mi_bits=mi_bits,
    )


@dataclass(frozen=True)
class CmiNull:
    """The CMI estimate with the link between losses and masks broken, over `draws` re-drawn masks."""

    cmi_bits: np.ndarray  # (draws,) Σ_i I_i under each re-drawn set of masks, bits
    pair_p_values: np.ndarray  # (n,) per pair: share of draws whose I_i reaches the observed one

    @property
    def floor_bits(self) -> float:
        """The mean CMI (bits, summed over pairs) of losses that carry nothing about the mask."""
        return float(self.cmi_bits.mean())

    def p_value(self, cmi_bits: float) -> float:
        """One-sided permutation p-value of an estimate: (1 + #draws ≥ it) / (1 + draws)."""
        return permutation_p_value(self.cmi_bits, cmi_bits)


def permutation_p_value(null: np.ndarray, observed: float) -> float:
    """(1 + #{null ≥ observed}) / (1 + len(null)): never 0, exact for a randomisation test."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + (null >= observed - 1e-9).sum()) / (1 + null.size))


def permutation_null(losses: np.ndarray, masks: np.ndarray, draws: int, rng: np.random.Generator) -> CmiNull:
    """Re-draw the masks as `complementary_masks` draws them and re-estimate the CMI, `draws` times.

    Each complementary couple of trainings (U, 1 − U) has its bits flipped per pair with
    probability 1/2: the design's own randomisation, so under "losses independent of membership"
    the observed estimate is one more draw from this null (a valid randomisation test). The losses
    and their median split stay as they are.
    """
    losses, masks = _check(losses, masks)
    if draws < 1:
        raise BitlensError(f"the permutation null needs at least one draw, got {draws}")
    k, n = masks.shape
    if k % 2 or not (masks[0::2] + masks[1::2] == 1).all():
        raise BitlensError("the permutation null needs masks in complementary couples (U, 1 − U)")
    above = _above_median(losses[:, :, 1] - losses[:, :, 0])
    labels = masks == 1
    observed = _split_mi_bits(labels, above)
    totals, reached = np.empty(draws), np.zeros(n, dtype=np.int64)
    chunk = max(1, 4_000_000 // (k * n))  # about 4 MB of flipped labels at a time
    for lo in range(0, draws, chunk):
        m = min(chunk, draws - lo)
        flips = np.repeat(rng.integers(0, 2, size=(m, k // 2, n), dtype=np.int8).astype(bool), 2, axis=1)
        mi = _split_mi_bits(labels ^ flips, above)  # (m, n)
        totals[lo : lo + m] = mi.sum(axis=1)
        reached += (mi >= observed - 1e-9).sum(axis=0)
    return CmiNull(cmi_bits=totals, pair_p_values=(1 + reached) / (1 + draws))


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
