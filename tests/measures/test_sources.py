"""Synthetic sources: their entropy rates are exact, and samples follow them."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.errors import BitlensError
from bitlens.measures.sources import (
    MarkovSource,
    half_determined_source,
    iid_source,
    random_bytes_source,
    random_markov_source,
)


def test_iid_and_random_bytes_rates_are_exact():
    assert iid_source([0.5, 0.25, 0.25]).entropy_rate_bits() == pytest.approx(1.5)
    assert random_bytes_source().entropy_rate_bits() == pytest.approx(8.0)
    assert random_bytes_source().entropy_bits(1000) == pytest.approx(8000.0)
    assert half_determined_source(16).entropy_rate_bits() == pytest.approx(2.0)


def test_two_state_flip_chain_rate_is_binary_entropy():
    q = 0.1
    src = MarkovSource(symbols=b"ab", order=1, table=np.array([[1 - q, q], [q, 1 - q]]))
    h = -(q * math.log2(q) + (1 - q) * math.log2(1 - q))
    assert src.entropy_rate_bits() == pytest.approx(h)
    assert src.stationary == pytest.approx([0.5, 0.5])
    assert src.entropy_bits(10) == pytest.approx(1.0 + 9 * h)


def test_asymmetric_chain_stationary_law():
    # P(a→b) = 0.2, P(b→a) = 0.6: π(a) = 0.6 / 0.8 = 0.75.
    src = MarkovSource(symbols=b"ab", order=1, table=np.array([[0.8, 0.2], [0.6, 0.4]]))
    assert src.stationary == pytest.approx([0.75, 0.25])


def test_order2_sample_matches_entropy_rate():
    src = random_markov_source(order=2, alphabet_size=4, seed=3)
    a = np.frombuffer(src.sample(200_000, seed=1), np.uint8)
    tri = Counter(zip(a[:-2].tolist(), a[1:-1].tolist(), a[2:].tolist(), strict=True))
    bi = Counter(zip(a[:-2].tolist(), a[1:-1].tolist(), strict=True))
    n = len(a) - 2
    plug_in = -sum(c / n * math.log2(c / bi[k[:2]]) for k, c in tri.items())
    assert plug_in == pytest.approx(src.entropy_rate_bits(), abs=0.02)
    assert set(a.tolist()) <= set(src.symbols)


def test_half_determined_source_alternates_free_and_forced():
    src = half_determined_source(4)
    s = src.sample(1000, seed=0)
    free, forced = set(src.symbols[:4]), set(src.symbols[4:])
    for x, y in itertools.pairwise(s):
        if x in free:
            assert y == src.symbols[4 + src.symbols.index(x)]
        else:
            assert x in forced and y in free


@settings(max_examples=25, deadline=None)
@given(order=st.integers(0, 2), k=st.integers(2, 6), seed=st.integers(0, 10**6), n=st.integers(0, 300))
def test_sampling_is_deterministic_and_rates_are_bounded(order, k, seed, n):
    src = random_markov_source(order=order, alphabet_size=k, seed=seed)
    a, b = src.sample(n, seed), src.sample(n, seed)
    assert a == b and len(a) == n
    assert set(a) <= set(src.symbols)
    assert 0.0 <= src.entropy_rate_bits() <= math.log2(k) + 1e-9
    assert src.stationary.sum() == pytest.approx(1.0)


def _sequence_law(src: MarkovSource, n: int) -> dict[tuple[int, ...], float]:
    """P(first n symbols), by brute force from the chain's definition (symbol indices)."""
    k, order = src.alphabet_size, src.order
    law = {}
    for seq in itertools.product(range(k), repeat=max(n, order)):
        state = sum(d * k**i for i, d in enumerate(reversed(seq[:order])))
        p = src.stationary[state]
        for x in seq[order:]:
            p *= src.table[state, x]
            state = (state * k + x) % k**order
        law[seq] = law.get(seq, 0.0) + p
    if n < order:  # marginalise the digits beyond n
        short: dict[tuple[int, ...], float] = {}
        for seq, p in law.items():
            short[seq[:n]] = short.get(seq[:n], 0.0) + p
        law = short
    return law


@settings(max_examples=25, deadline=None)
@given(order=st.integers(0, 2), k=st.integers(2, 4), seed=st.integers(0, 10**6), extra=st.integers(-1, 2))
def test_stationary_law_and_exact_entropy_by_enumeration(order, k, seed, extra):
    """π is stationary (the law of the state after one step is π again), and entropy_bits(n) is
    the entropy of the enumerated law of n symbols."""
    src = random_markov_source(order=order, alphabet_size=k, seed=seed)
    states = k**order
    after = np.zeros(states)
    for s in range(states):
        for x in range(k):
            after[(s * k + x) % states] += src.stationary[s] * src.table[s, x]
    np.testing.assert_allclose(after, src.stationary, atol=1e-9)
    n = max(1, order + extra)
    law = np.array(list(_sequence_law(src, n).values()))
    assert law.sum() == pytest.approx(1.0)
    law = law[law > 0]
    assert src.entropy_bits(n) == pytest.approx(float(-(law * np.log2(law)).sum()), abs=1e-9)


def test_invalid_tables_are_rejected():
    with pytest.raises(BitlensError):
        MarkovSource(symbols=b"ab", order=1, table=np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(BitlensError):
        MarkovSource(symbols=b"ab", order=1, table=np.ones((1, 2)) / 2)
    with pytest.raises(BitlensError):
        MarkovSource(symbols=b"aa", order=0, table=np.ones((1, 2)) / 2)
