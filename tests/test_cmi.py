"""The f-CMI estimator on learners with known answers (bitlens.measures.cmi)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.errors import BitlensError
from bitlens.measures.cmi import (
    bound_bits_per_byte,
    complementary_masks,
    estimate_cmi,
    independence_floor_bits,
    median_split_mi_bits,
    membership,
    permutation_null,
    permutation_p_value,
)

CAP = 8.0  # the synthetic losses below lie in [0, 8] bits/byte


class LookupTable:
    """Memorises its training windows exactly: 0 bits on a seen window, 8 bits/byte otherwise."""

    def __init__(self, windows: list[bytes]):
        self.seen = set(windows)

    def loss_bits_per_byte(self, window: bytes) -> float:
        return 0.0 if window in self.seen else 8.0


def _supersample(n: int, rng) -> list[list[bytes]]:
    return [[rng.bytes(16), rng.bytes(16)] for _ in range(n)]


def _losses(learner_cls, pairs, masks) -> np.ndarray:
    out = np.empty((len(masks), len(pairs), 2))
    for j, mask in enumerate(masks):
        learner = learner_cls([pair[m] for pair, m in zip(pairs, mask, strict=True)])
        out[j] = [[learner.loss_bits_per_byte(w) for w in pair] for pair in pairs]
    return out


def test_lookup_table_holds_one_bit_per_window_far_above_the_null():
    rng = np.random.default_rng(0)
    n, k = 40, 32
    pairs, masks = _supersample(n, rng), complementary_masks(k, n, rng)
    losses = _losses(LookupTable, pairs, masks)
    est = estimate_cmi(losses, masks, CAP)
    assert est.cmi_bits == pytest.approx(n)  # log2 2 per window: the mask is fully readable
    assert est.cmi_bits_per_window == pytest.approx(1.0)
    assert est.train_bits_per_byte == 0.0 and est.heldout_bits_per_byte == 8.0
    assert est.gap_bits_per_byte == pytest.approx(8.0)
    # C · sqrt(2 ln 2 · 1 bit): above the cap, so vacuous, as it must be when I = 1 bit
    assert est.bound_bits_per_byte == pytest.approx(CAP * math.sqrt(2 * math.log(2)))
    null = permutation_null(losses, masks, draws=500, rng=rng)
    # Re-drawn masks match a perfect split of 16 couples only by chance (2 / 2^16 per pair)
    assert null.p_value(est.cmi_bits) == pytest.approx(1 / 501)
    assert (null.pair_p_values < 0.05).all()
    assert null.floor_bits / n < 0.1


def test_learner_that_ignores_its_data_has_zero_cmi():
    class Unigram:  # a fixed model: its loss depends on the window, never on the training set
        def __init__(self, windows):
            pass

        def loss_bits_per_byte(self, window: bytes) -> float:
            return float(np.mean([1 + (b % 7) for b in window]))

    rng = np.random.default_rng(1)
    pairs, masks = _supersample(30, rng), complementary_masks(6, 30, rng)
    losses = _losses(Unigram, pairs, masks)
    est = estimate_cmi(losses, masks, CAP)
    assert est.cmi_bits == 0.0 and est.bound_bits_per_byte == 0.0
    null = permutation_null(losses, masks, draws=50, rng=rng)
    assert null.floor_bits == 0.0 and null.p_value(est.cmi_bits) == 1.0  # nothing to find
    assert est.gap_bits_per_byte == pytest.approx(0.0, abs=1e-12)
    assert est.train_bits_per_byte > 1.0


def test_independent_noise_reads_the_floor_and_no_gap():
    rng = np.random.default_rng(2)
    k, n = 8, 20_000
    masks = complementary_masks(k, n, rng)
    est = estimate_cmi(rng.normal(4.0, 0.3, size=(k, n, 2)), masks, CAP)
    assert est.cmi_bits_per_window == pytest.approx(independence_floor_bits(k), rel=0.03)
    assert abs(est.gap_bits_per_byte) < 0.01


@pytest.mark.parametrize("seed", range(4))
def test_losses_independent_of_membership_sit_within_the_permutation_null(seed):
    rng = np.random.default_rng(10 + seed)
    k, n = 32, 500
    masks = complementary_masks(k, n, rng)
    losses = rng.gamma(4.0, 0.8, size=(k, n, 2)).clip(0, CAP)
    est = estimate_cmi(losses, masks, CAP)
    null = permutation_null(losses, masks, draws=400, rng=rng)
    # The null's mean is the exact floor for independent values: hypergeometric counts
    assert null.floor_bits / n == pytest.approx(independence_floor_bits(k), rel=0.02)
    assert np.quantile(null.cmi_bits, 0.01) < est.cmi_bits < np.quantile(null.cmi_bits, 0.99)
    assert null.p_value(est.cmi_bits) > 0.01
    # Per pair, a valid test rejects about 5% at the 5% level (fewer: the MI takes few values)
    assert (null.pair_p_values < 0.05).mean() < 0.07


def test_a_weak_membership_effect_is_found_above_the_null():
    # 0.3 bits/byte lower when trained on, under noise of 0.5: unreadable for one pair, plain
    # over 500 of them.
    rng = np.random.default_rng(11)
    k, n = 32, 500
    masks = complementary_masks(k, n, rng)
    trained = np.stack([masks == 0, masks == 1], axis=2)
    losses = (4.0 - 0.3 * trained + rng.normal(0, 0.5, size=(k, n, 2))).clip(0, CAP)
    est = estimate_cmi(losses, masks, CAP)
    null = permutation_null(losses, masks, draws=200, rng=rng)
    assert null.p_value(est.cmi_bits) == pytest.approx(1 / 201)
    assert null.floor_bits < est.cmi_bits < 0.5 * n  # informative: between the floor and 1 bit/pair


def test_bound_matches_a_hand_computation():
    # One pair, 8 trainings in 4 complementary couples; ΔL above its median for 3 of the 4
    # trainings on member 0: I(ΔL; U) = 1 − h(1/4) bits, and the bound is C · sqrt(2 ln 2 · I).
    masks = np.array([[0, 1, 0, 1, 0, 1, 1, 0]]).T
    delta = np.array([[5.0, 1.0, 6.0, 2.0, 7.0, 3.0, 8.0, 4.0]]).T  # above: U = 0, 0, 0, 1
    losses = np.concatenate([np.full((8, 1, 1), 1.0), 1.0 + delta[:, :, None]], axis=2)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    est = estimate_cmi(losses, masks, 10.0)
    assert est.cmi_bits == pytest.approx(1 - h)
    assert est.bound_bits_per_byte == pytest.approx(10.0 * math.sqrt(2 * math.log(2) * (1 - h)))
    # Mean over pairs: one fully readable pair (1 bit) and one unreadable (0) at C = 12.
    assert bound_bits_per_byte(np.array([1.0, 0.0]), 12.0) == pytest.approx(6.0 * math.sqrt(2 * math.log(2)))
    assert permutation_p_value(np.array([0.0, 1.0, 2.0, 3.0]), 2.0) == pytest.approx(3 / 5)


def test_losses_above_the_cap_and_loose_masks_are_refused():
    rng = np.random.default_rng(6)
    masks = complementary_masks(4, 3, rng)
    with pytest.raises(BitlensError, match="outside"):
        estimate_cmi(np.full((4, 3, 2), 9.0), masks, CAP)
    with pytest.raises(BitlensError, match="complementary"):
        permutation_null(np.ones((4, 3, 2)), np.zeros((4, 3), dtype=int), draws=5, rng=rng)


@pytest.mark.parametrize("shift", [0.02, 0.2, 1.0, 3.0])
def test_bound_exceeds_the_gap_when_membership_lowers_the_loss(shift):
    # Each window has its own difficulty; training on it lowers its loss by `shift` bits/byte,
    # plus training noise. The gap is `shift`; the bound, with the cap, must sit above it.
    rng = np.random.default_rng(3)
    k, n = 8, 2_000
    masks = complementary_masks(k, n, rng)
    difficulty = rng.normal(6.0, 0.5, size=(1, n, 2))
    trained = np.stack([masks == 0, masks == 1], axis=2)
    losses = difficulty - shift * trained + rng.normal(0, 0.2, size=(k, n, 2))  # within [0, 12]
    est = estimate_cmi(losses, masks, 12.0)
    assert est.gap_bits_per_byte == pytest.approx(shift, abs=0.02)
    assert est.bound_bits_per_byte >= est.gap_bits_per_byte
    assert est.cmi_bits_per_window <= 1.0


def test_floor_is_the_exact_mean_and_tends_to_miller_madow():
    rng = np.random.default_rng(4)
    for k in (2, 4, 6, 10):
        masks = complementary_masks(k, 50_000, rng)
        mc = median_split_mi_bits(masks, rng.random(masks.shape)).mean()
        assert mc == pytest.approx(independence_floor_bits(k), rel=0.03, abs=1e-3)
    assert independence_floor_bits(2) == pytest.approx(1.0)  # two values always separate
    assert independence_floor_bits(400) == pytest.approx(1 / (2 * 400 * math.log(2)), rel=0.02)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_membership_averages_to_the_gap(half_k, n, seed):
    rng = np.random.default_rng(seed)
    masks = complementary_masks(2 * half_k, n, rng)
    losses = rng.gamma(2.0, 1.5, size=(2 * half_k, n, 2))
    m = membership(losses, masks)
    gap = estimate_cmi(losses, masks, float(losses.max())).gap_bits_per_byte
    assert m.membership_bits_per_byte.mean() == pytest.approx(gap)
    assert (m.reference_bits_per_byte > 0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_split_mi_is_a_bounded_invariant(half_k, n, seed):
    rng = np.random.default_rng(seed)
    masks = complementary_masks(2 * half_k, n, rng)
    values = rng.normal(size=masks.shape)
    mi = median_split_mi_bits(masks, values)
    assert ((mi >= 0) & (mi <= 1 + 1e-12)).all()
    np.testing.assert_allclose(median_split_mi_bits(1 - masks, values), mi, atol=1e-12)  # label names
    np.testing.assert_allclose(median_split_mi_bits(masks, np.exp(3 * values)), mi, atol=1e-12)  # monotone


def test_bad_inputs_raise():
    rng = np.random.default_rng(5)
    with pytest.raises(BitlensError, match="even"):
        complementary_masks(3, 4, rng)
    with pytest.raises(BitlensError, match="expected losses"):
        estimate_cmi(np.zeros((4, 3)), np.zeros((4, 3), dtype=int), CAP)
    with pytest.raises(BitlensError, match="0 or 1"):
        estimate_cmi(np.zeros((2, 3, 2)), np.full((2, 3), 2), CAP)
    with pytest.raises(BitlensError, match="trained on it"):
        membership(np.zeros((2, 3, 2)), np.zeros((2, 3), dtype=int))
