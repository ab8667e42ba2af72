"""Context mixing: the network's next-byte distribution combined with fast-learning byte counts.

A transformer trained from scratch learns slowly: on the first hundred kilobytes of a file it
codes worse than a table of byte counts. Practical online compressors (cmix, NNCP-era hybrids,
StateSMix) therefore mix the network with count models that learn from a single occurrence.
`ContextMixer` does that for the online and adaptive coding modes:

- count models of orders 1..K: for each context (the last k bytes; orders above 2 hashed into
  2^hash_bits buckets), 256 byte counts in uint8 that are halved when one saturates (so old
  statistics fade). Order k's distribution interpolates its counts with order k−1's
  (Witten–Bell: weight u/(N+u) on the lower order, u = distinct bytes seen, N = total), down to
  an adaptive order-0 model. A word model (context: the letters since the last non-letter,
  backing off to order 2) joins them;
- a geometric mixer: p(x) ∝ exp(Σ_i w_i · log p_i(x)) over the network and each order's
  interpolated distribution, with one weight vector per "confidence" (the highest order whose
  context was seen before, times a bucket of that context's count), trained online by gradient
  ascent on log p(x) (learning rate `rate`, in nats). Weights start at 1 on the highest order
  and 0 elsewhere, the network included: the untrained network is near uniform, and the mixer
  learns to trust it as it learns. Rates of 0.001–0.003 work (0.01 oscillates). Counts alone,
  no network, code the first 256 KiB of enwik8 at ≈ 2.18 bits/byte (xz -9e 2.414) and the whole 1 MB at 2.104
  (xz -9e 2.326); the word model gave −0.065, 2^18 instead of 2^17 buckets −0.02;
- a floor: p ← (1 − 2⁻²⁰) p + 2⁻²⁰/256, so no byte is ever impossible (at most ≈ 28 bits).

Everything is float64 numpy on the CPU and a pure function of the bytes seen so far, so the
encoder and the decoder compute identical probabilities. All streams share the counts and the
weights (they are parts of one file). Log-probabilities are in nats, code lengths in bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOOR = 2.0**-20


@dataclass(frozen=True)
class MixConfig:
    """Count orders and mixer settings. Memory: 256 bytes × contexts per table (64 MiB per
    hashed table at hash_bits 18: ≈ 270 MiB with the defaults, touched only where used)."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 6)
    hash_bits: int = 18
    rate: float = 0.002  # mixer learning rate per byte (nats of log-likelihood gradient)
    word: bool = True  # add a model whose context is the current word (letters since a non-letter)
    count_buckets: int = 3  # weight sets per confidence level, by the top context's count


_MULT = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)


class ContextMixer:
    """Mix the network's log-probabilities with count models, for S streams in lockstep."""

    def __init__(self, n_streams: int, config: MixConfig = MixConfig()) -> None:
        self.config = config
        self.S = n_streams
        self.orders = tuple(sorted(config.orders))
        if not self.orders or self.orders[0] < 1:
            raise ValueError("mixing orders must be positive")
        self.rows = [256**k if k <= 2 else 1 << config.hash_bits for k in self.orders]
        if config.word:
            self.rows.append(1 << config.hash_bits)
        self.counts = [np.zeros((r, 256), dtype=np.uint8) for r in self.rows]
        self.order0 = np.zeros(256, dtype=np.float64)
        self.history = np.zeros((n_streams, max(self.orders)), dtype=np.uint64)  # newest last
        self.word_hash = np.zeros(n_streams, dtype=np.uint64)
        m = len(self.rows) + 1  # network + one input per count model
        levels = (len(self.orders) + 1) * config.count_buckets
        self.weights = np.zeros((levels, m))  # one row per confidence level (× count bucket)
        self.weights[:, len(self.orders)] = 1.0  # start on the highest order
        self._pending: tuple | None = None

    def _contexts(self) -> list[np.ndarray]:
        h = self.history
        out = []
        for k in self.orders:
            if k == 1:
                out.append(h[:, -1].astype(np.int64))
            elif k == 2:
                out.append((h[:, -1] | (h[:, -2] << np.uint64(8))).astype(np.int64))
            else:
                acc = np.full(self.S, k, dtype=np.uint64)
                for j in range(1, k + 1):
                    acc = acc * _PRIME + h[:, -j] + np.uint64(1)
                out.append(((acc * _MULT) >> np.uint64(64 - self.config.hash_bits)).astype(np.int64))
        if self.config.word:
            acc = (self.word_hash + np.uint64(7)) * _MULT
            out.append((acc >> np.uint64(64 - self.config.hash_bits)).astype(np.int64))
        return out

    def predict(self, net_logp: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Mixed probabilities (m, 256) float64 for the m active streams; net_logp (S, 256) nats."""
        ctx = self._contexts()
        lower = np.broadcast_to((self.order0 + 1.0) / (self.order0.sum() + 256.0), (self.S, 256))
        inputs = [net_logp.astype(np.float64)]
        confidence = np.zeros(self.S, dtype=np.int64)
        top_total = np.zeros(self.S)
        below_word = lower
        for i, (table, c_idx) in enumerate(zip(self.counts, ctx)):
            word = i == len(self.orders)
            if word:  # the word model backs off to order 2 (or the highest order below it)
                lower = below_word
            c = table[c_idx].astype(np.float64)
            total = c.sum(axis=1, keepdims=True)
            distinct = np.count_nonzero(c, axis=1)[:, None].astype(np.float64)
            seen = total > 0
            lower = np.where(seen, (c + distinct * lower) / np.maximum(total + distinct, 1.0), lower)
            inputs.append(np.log(lower))
            if not word:
                confidence = np.where(seen[:, 0], i + 1, confidence)
                top_total = np.where(seen[:, 0], total[:, 0], top_total)
                if self.orders[i] <= 2:
                    below_word = lower
        if self.config.count_buckets > 1:
            bucket = np.minimum(np.log2(top_total + 1).astype(np.int64) // 2, self.config.count_buckets - 1)
            confidence = confidence * self.config.count_buckets + bucket
        stack = np.stack(inputs, axis=1)[active]  # (m, inputs, 256)
        conf = confidence[active]
        z = np.einsum("mi,miv->mv", self.weights[conf], stack)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p = (1.0 - FLOOR) * p + FLOOR / 256.0
        self._pending = (ctx, active, stack, conf, p)
        return p

    def update(self, symbols: np.ndarray) -> None:
        """Learn from the bytes just coded (one per active stream, in `predict`'s order)."""
        if self._pending is None:
            raise RuntimeError("ContextMixer.update needs a predict first")
        ctx, active, stack, conf, p = self._pending
        x = np.asarray(symbols, dtype=np.int64)
        rows = np.arange(len(x))
        # d log p(x) / d w_i = log p_i(x) − E_p[log p_i]  (before the floor, which is tiny)
        grad = stack[rows, :, x] - np.einsum("mv,miv->mi", p, stack)
        np.add.at(self.weights, conf, self.config.rate * grad)
        np.add.at(self.order0, x, 1.0)
        for table, c_idx in zip(self.counts, ctx):
            at = c_idx[active]
            full = table[at, x] == 255
            if full.any():  # halve every count of a saturated context
                hit = np.unique(at[full])
                table[hit] >>= 1
            np.add.at(table, (at, x), 1)
        hist = self.history[active]
        self.history[active] = np.concatenate([hist[:, 1:], x[:, None].astype(np.uint64)], axis=1)
        if self.config.word:
            letter = ((x | 32) >= ord("a")) & ((x | 32) <= ord("z")) | (x >= 128)
            grown = (self.word_hash[active] + np.uint64(1)) * _PRIME + (x | 32).astype(np.uint64)
            self.word_hash[active] = np.where(letter, grown, np.uint64(0))
        self._pending = None


def mixture_code_bits(p: np.ndarray, symbols: np.ndarray) -> float:
    """Σ −log2 p(symbol) over rows of p (bits)."""
    return float(-np.log2(p[np.arange(len(symbols)), symbols]).sum())


def max_bits_per_byte() -> float:
    """The most any byte can cost after the floor (bits)."""
    return -math.log2(FLOOR / 256.0)
