"""Synthetic byte sources whose entropy rate is known exactly: the known answers for every measure.

A source is a stationary k-th order Markov chain over a small alphabet of byte values. Order 0 is
an i.i.d. source; the uniform distribution over all 256 byte values is the random-byte source
(8 bits/byte, incompressible). The first k symbols are drawn from the stationary distribution, so
every position of a sample has the same marginal law and the exact entropy of n sampled bytes is
H(first k symbols) + (n − k) × entropy rate.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bitlens.errors import BitlensError

MAX_STATES = 4096  # alphabet_size ** order; the stationary law is solved densely


def distribution_entropy_bits(p: np.ndarray) -> np.ndarray:
    """Entropy in bits along the last axis (0 · log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(-1)


@dataclass(frozen=True, eq=False)
class MarkovSource:
    """A stationary order-`order` Markov chain over the byte values in `symbols`.

    `table[s, j]` is P(next = symbols[j] | state s), where state s numbers the last `order`
    symbols in base K = len(symbols), most recent symbol last (least significant digit).
    Order 0 has a single state: an i.i.d. source. The chain must be irreducible (true for any
    table without zeros) so that its stationary distribution is unique.
    """

    symbols: bytes
    order: int
    table: np.ndarray  # (K**order, K), rows sum to 1
    name: str = "markov"

    def __post_init__(self) -> None:
        k = len(self.symbols)
        if k < 1 or len(set(self.symbols)) != k:
            raise BitlensError("a source needs distinct symbols")
        if self.order < 0 or k**self.order > MAX_STATES:
            raise BitlensError(f"order {self.order} over {k} symbols has more than {MAX_STATES} states")
        table = np.asarray(self.table, dtype=np.float64)
        if table.shape != (k**self.order, k):
            raise BitlensError(f"transition table must have shape {(k**self.order, k)}, got {table.shape}")
        if (table < 0).any() or not np.allclose(table.sum(1), 1.0):
            raise BitlensError("transition table rows must be probability distributions")
        object.__setattr__(self, "table", table / table.sum(1, keepdims=True))

    @property
    def alphabet_size(self) -> int:
        return len(self.symbols)

    @cached_property
    def stationary(self) -> np.ndarray:
        """The stationary distribution over the K**order states (solved exactly, dense)."""
        k, n_states = self.alphabet_size, self.table.shape[0]
        if self.order == 0:
            return np.ones(1)
        # From state s, emitting symbol j leads to state (s * K + j) mod K**order.
        step = np.zeros((n_states, n_states))
        for s in range(n_states):
            step[s, (s * k + np.arange(k)) % n_states] += self.table[s]
        a = np.vstack([step.T - np.eye(n_states), np.ones((1, n_states))])
        b = np.zeros(n_states + 1)
        b[-1] = 1.0
        pi = np.linalg.lstsq(a, b, rcond=None)[0]
        pi = np.clip(pi, 0.0, None)
        return pi / pi.sum()

    def entropy_rate_bits(self) -> float:
        """H(X_t | X_{t-k..t-1}) in bits per byte: Σ_s π(s) H(table[s])."""
        return float(self.stationary @ distribution_entropy_bits(self.table))

    def entropy_bits(self, n: int) -> float:
        """The exact entropy, in bits, of n bytes sampled from the stationary chain."""
        if n <= self.order:
            # The first n symbols of the stationary state: the marginal of its first n digits.
            marg = self.stationary.reshape((self.alphabet_size,) * self.order)
            marg = marg.sum(axis=tuple(range(n, self.order))) if n < self.order else marg
            return float(distribution_entropy_bits(marg.reshape(-1)))
        return float(distribution_entropy_bits(self.stationary)) + (n - self.order) * self.entropy_rate_bits()

    def sample(self, n: int, seed: int = 0) -> bytes:
        """n bytes from the stationary chain, a pure function of (source, n, seed)."""
        if n < 0:
            raise BitlensError("cannot sample a negative number of bytes")
        rng = np.random.default_rng(seed)
        k, n_states = self.alphabet_size, self.table.shape[0]
        u = rng.random(n + 1)
        if self.order == 0:
            idx = np.searchsorted(np.cumsum(self.table[0]), u[:n] * self.table[0].sum(), side="right")
            return bytes(np.frombuffer(self.symbols, np.uint8)[np.minimum(idx, k - 1)])
        cdfs = [list(np.cumsum(row)) for row in self.table]
        state = int(min(np.searchsorted(np.cumsum(self.stationary), u[n], side="right"), n_states - 1))
        digits = [(state // k**i) % k for i in reversed(range(self.order))]
        out = digits[:n]
        for t in range(self.order, n):
            cdf = cdfs[state]
            j = min(bisect.bisect_right(cdf, u[t] * cdf[-1]), k - 1)
            out.append(j)
            state = (state * k + j) % n_states
        return bytes(np.frombuffer(self.symbols, np.uint8)[np.asarray(out, dtype=np.int64)])


DEFAULT_SYMBOLS = b"abcdefghijklmnopqrstuvwxyzABCDEF"


def iid_source(probs, symbols: bytes | None = None) -> MarkovSource:
    """An i.i.d. source with the given symbol probabilities (entropy rate H(probs))."""
    p = np.asarray(probs, dtype=np.float64)
    symbols = symbols if symbols is not None else bytes(range(97, 97 + len(p)))
    return MarkovSource(symbols=symbols, order=0, table=p[None, :], name="iid")


def random_bytes_source() -> MarkovSource:
    """Uniformly random bytes: exactly 8 bits/byte, nothing to learn."""
    return MarkovSource(
        symbols=bytes(range(256)), order=0, table=np.full((1, 256), 1 / 256), name="random-bytes"
    )


def random_markov_source(
    order: int, alphabet_size: int = 8, seed: int = 0, concentration: float = 0.5
) -> MarkovSource:
    """An order-k chain whose rows are drawn from Dirichlet(concentration) (lower = more structure).

    Rows are floored at 1e-3 before normalising so the chain is irreducible.
    """
    if not 1 <= alphabet_size <= len(DEFAULT_SYMBOLS):
        raise BitlensError(f"alphabet_size must be in 1..{len(DEFAULT_SYMBOLS)}")
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.full(alphabet_size, concentration), size=alphabet_size**order)
    table = np.maximum(table, 1e-3)
    table /= table.sum(1, keepdims=True)
    return MarkovSource(
        symbols=DEFAULT_SYMBOLS[:alphabet_size], order=order, table=table, name=f"markov-{order}"
    )


def half_determined_source(alphabet_size: int = 16) -> MarkovSource:
    """Order-1: a uniform 'free' symbol, then a 'forced' symbol fixed by it, alternating.

    Free symbols carry log2(K) bits, forced ones 0 bits: entropy rate log2(K)/2. Half the bytes
    are predictable exactly, half not at all: a known answer for per-token dynamics.
    """
    k = alphabet_size
    if 2 * k > len(DEFAULT_SYMBOLS):
        raise BitlensError(f"alphabet_size must be at most {len(DEFAULT_SYMBOLS) // 2}")
    table = np.zeros((2 * k, 2 * k))
    table[:k, k:] = np.eye(k)  # free symbol i → forced symbol k + i
    table[k:, :k] = 1.0 / k  # forced symbol → a uniform free symbol
    return MarkovSource(symbols=DEFAULT_SYMBOLS[: 2 * k], order=1, table=table, name="half-determined")
