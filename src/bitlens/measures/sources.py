"""Synthetic byte sources whose entropy rate is known exactly: the known answers for every measure.

A source is a stationary k-th order Markov chain over a small alphabet of byte values. Order 0 is
an i.i.d. source; the uniform distribution over all 256 byte values is the random-byte source
(8 bits/byte, incompressible). The first k symbols are drawn from the stationary distribution, so
every position of a sample has the same marginal law and the exact entropy of n sampled bytes is
H(first k symbols) + (n − k) × entropy rate.

`lagged_source(k)` puts all of its information at order k: every byte is predictable from the
byte k places back and from nothing nearer, so a model must see k bytes back to beat log2 K.
`empirical_conditional_entropy_bits` and `empirical_lag_entropy_bits` measure that from a sample.
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

    `stationary_law`, when given, is a stationary distribution known in closed form: it is
    checked to be invariant under one step of the chain (to 1e-9) and used instead of the dense
    solve, which takes about a minute at MAX_STATES states. It is the law samples start from, so
    with it the chain need not be irreducible.
    """

    symbols: bytes
    order: int
    table: np.ndarray  # (K**order, K), rows sum to 1
    name: str = "markov"
    stationary_law: np.ndarray | None = None  # (K**order,), sums to 1; None: solved

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
        if self.stationary_law is not None:
            pi = np.asarray(self.stationary_law, dtype=np.float64)
            if pi.shape != (k**self.order,) or (pi < 0).any() or not np.isclose(pi.sum(), 1.0):
                raise BitlensError(f"stationary_law must be a distribution over {k**self.order} states")
            if not np.allclose(self.step_law(pi), pi, rtol=0.0, atol=1e-9):
                raise BitlensError("stationary_law is not stationary under the transition table")
            object.__setattr__(self, "stationary_law", pi)

    def step_law(self, pi: np.ndarray) -> np.ndarray:
        """The law of the state one step after a state with law `pi` (over the K**order states)."""
        k, n_states = self.alphabet_size, self.table.shape[0]
        if self.order == 0:
            return np.ones(1)
        nxt = (np.arange(n_states)[:, None] * k + np.arange(k)[None, :]) % n_states
        return np.bincount(nxt.ravel(), weights=(pi[:, None] * self.table).ravel(), minlength=n_states)

    @property
    def alphabet_size(self) -> int:
        return len(self.symbols)

    @cached_property
    def stationary(self) -> np.ndarray:
        """The stationary distribution over the K**order states (solved exactly, dense)."""
        k, n_states = self.alphabet_size, self.table.shape[0]
        if self.order == 0:
            return np.ones(1)
        if self.stationary_law is not None:
            return self.stationary_law
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


def lagged_source(order: int, alphabet_size: int = 16, p: float = 0.7, seed: int = 0) -> MarkovSource:
    """Order-k information only: x_t = perm(x_{t-k}) with probability p, else one of the other
    K − 1 symbols uniformly; perm is a fixed random permutation of the K symbols drawn from `seed`.

    Exact answers, in bits/byte (K = alphabet_size):

    - entropy rate h = −p log2 p − (1 − p) log2((1 − p) / (K − 1)); for K = 16, p = 0.7 that is
      2.0534 bits/byte.
    - H(X_t | any fewer than k previous bytes) = log2 K (4 bits/byte for K = 16): the stream is k
      independent interleaved chains (positions t, t + k, t + 2k, …), each with a uniform
      marginal, so the nearer k − 1 bytes belong to other chains and tell nothing about x_t.

    The transition matrix is doubly stochastic, so the stationary law over the K**k states is
    uniform (given in closed form, not solved). Built as a MarkovSource of order k whose state's
    most significant digit is x_{t-k}. p = 1 makes each chain a deterministic cycle after its
    first symbol (rate 0); uniform is then one of its stationary laws, the one sampled from.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise BitlensError(f"lagged_source needs order ≥ 1 (the lag of its information), got {order!r}")
    if not 2 <= alphabet_size <= len(DEFAULT_SYMBOLS):
        raise BitlensError(
            f"lagged_source needs alphabet_size in 2..{len(DEFAULT_SYMBOLS)}, got {alphabet_size}"
        )
    if alphabet_size**order > MAX_STATES:
        raise BitlensError(
            f"lagged_source order {order} over {alphabet_size} symbols has {alphabet_size**order} states, "
            f"more than {MAX_STATES}: use a smaller order or alphabet"
        )
    if not 0.0 < p <= 1.0:
        raise BitlensError(
            f"lagged_source needs p in (0, 1] (the probability of x_t = perm(x_{{t-k}})), got {p}"
        )
    k = alphabet_size
    perm = np.random.default_rng(seed).permutation(k)
    n_states = k**order
    oldest = np.arange(n_states) // k ** (order - 1)  # x_{t-k}: the most significant digit
    table = np.full((n_states, k), (1.0 - p) / (k - 1))
    table[np.arange(n_states), perm[oldest]] = p
    return MarkovSource(
        symbols=DEFAULT_SYMBOLS[:k],
        order=order,
        table=table,
        name=f"lagged-{order}",
        stationary_law=np.full(n_states, 1.0 / n_states),
    )


def empirical_conditional_entropy_bits(data: bytes, order: int) -> float:
    """Plug-in estimate of H(X_t | the previous `order` bytes), bits/byte, from the counts of
    (context, next) pairs over positions order..n−1: H(context, next) − H(context).

    The plug-in estimate is biased low, by about (cells(context, next) − cells(context)) /
    (2 N ln 2) bits for N = n − order positions: negligible for a few hundred cells, but ≈ 0.22
    bits for `lagged_source(3)` (65,536 cells) on 200 KB. `empirical_lag_entropy_bits` looks at
    one byte only and has no such bias.
    """
    if order < 0:
        raise BitlensError(f"order must be ≥ 0, got {order}")
    a = np.frombuffer(bytes(data), dtype=np.uint8)
    n = a.size - order
    if n < 1:
        raise BitlensError(f"need more than {order} bytes for an order-{order} estimate, got {a.size}")
    windows = np.lib.stride_tricks.sliding_window_view(a, order + 1)
    if order + 1 <= 7:  # each window as one base-256 integer, earliest byte most significant
        codes = np.zeros(n, dtype=np.int64)
        for i in range(order + 1):
            codes = codes * 256 + windows[:, i]
        joint = np.unique(codes, return_counts=True)[1]
        context = np.unique(codes // 256, return_counts=True)[1]
    else:  # each window as one opaque record
        rows = np.ascontiguousarray(windows).view(np.dtype((np.void, order + 1))).ravel()
        ctx = np.ascontiguousarray(windows[:, :order]).view(np.dtype((np.void, order))).ravel()
        joint = np.unique(rows, return_counts=True)[1]
        context = np.unique(ctx, return_counts=True)[1]
    return float(distribution_entropy_bits(joint / n) - distribution_entropy_bits(context / n))


def empirical_lag_entropy_bits(data: bytes, lag: int) -> float:
    """Plug-in estimate of H(X_t | X_{t-lag}) (one byte, `lag` places back), bits/byte.

    At most 65,536 (byte, byte) cells, so on a sample of a few tens of KB over a small alphabet
    the estimate is nearly unbiased. For `lagged_source(k)` it is log2 K for lags 1..k−1 and the
    entropy rate at lag k.
    """
    if lag < 1:
        raise BitlensError(f"lag must be ≥ 1, got {lag}")
    a = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    if a.size <= lag:
        raise BitlensError(f"need more than {lag} bytes for a lag-{lag} estimate, got {a.size}")
    n = a.size - lag
    joint = np.bincount(a[:-lag] * 256 + a[lag:], minlength=65_536)
    context = np.bincount(a[:-lag], minlength=256)
    return float(distribution_entropy_bits(joint / n) - distribution_entropy_bits(context / n))
