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
  backing off to order 2) joins them, and a two-word model (context: the last finished word and
  the letters since, backing off to the word model; paq8's word bigram);
- a match model: the byte that followed the last occurrence of the current 6-byte context,
  followed byte by byte while it predicts right, its probability the hit rate measured so far at
  that match length (paq8/lpaq);
- a geometric mixer: p(x) ∝ exp(Σ_i w_i · log p_i(x)) over the network and every model above,
  with one weight vector per "confidence" (the highest order whose context was seen before, times
  a bucket of that context's count, times a bucket of the match length), trained online by
  gradient ascent on log p(x) (learning rate `rate`, in nats). Weights start at 1 on the highest
  order and 0 elsewhere, the network included: the untrained network knows nothing, and the mixer
  learns to trust it as it learns. Rates of 0.001–0.003 work (0.01 oscillates);
- a second weight set chosen by the last byte, and a second layer that mixes the two sets'
  outputs the same way (paq8's mixer with several selectors; `MixConfig.selectors`). On
  enwik8-head it lowered the online + mix code length from 1.960 to 1.938 bits/byte; a third set
  chosen by the network's confidence added nothing (replays of the same network's probabilities);
- an APM (secondary estimation, paq's SSE): the probability of one byte (the match's, else the
  top order's most likely) is refined through an adaptive table indexed by the last byte, the
  match state and stretch(p), interpolated between its two nearest cells, and averaged 1:3 with
  the mixer's; the other bytes are scaled to match;
- a floor: p ← (1 − 2⁻²⁰) p + 2⁻²⁰/256, so no byte is ever impossible (at most ≈ 28 bits).

What each part earns, without the network, is `benchmarks/mixer_parts.py` (on the first 256 KiB
of four files: the word model 0.03–0.06 bits/byte, the match model 0.007–0.06, the APM
0.004–0.008, the two-word model 0.013–0.026; benchmarks/RESULTS.md). Tried and not kept: a
second APM indexed by the last two bytes (≤ 0.001), a weight set chosen by the last two bytes
(worse), halving counts at 127 or 60 instead of 255 (worse), other escape weights (≤ 0.001).
With `counts_only`, a second mixer and APM without the network's input run in the same pass
over the same count models: what the network saves.

Everything is numpy on the CPU (float32 for the 256-wide arrays, float64 for the coder's final
probabilities) and a pure function of the bytes seen so far, so the encoder and the decoder
compute identical probabilities. All streams share the counts, the match model's history and the
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
    hashed table at hash_bits 18: ≈ 335 MiB with the defaults, touched only where used), plus
    the match model's 2^hash_bits positions and its copy of the text (9 bytes per coded byte)."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 6)
    hash_bits: int = 18
    rate: float = 0.002  # mixer learning rate per byte (nats of log-likelihood gradient)
    word: bool = True  # add a model whose context is the current word (letters since a non-letter)
    word2: bool = True  # and one whose context is the previous word and the current one
    count_buckets: int = 3  # weight sets per confidence level, by the top context's count
    match: bool = True  # add a match model (the byte that followed the last occurrence of the context)
    apm: bool = True  # secondary estimation (APM/SSE) of one byte's probability after the mixer
    # what picks each weight set (see SELECTORS); more than one adds a second mixing layer
    selectors: tuple[str, ...] = ("confidence", "byte")

    def __post_init__(self) -> None:
        object.__setattr__(self, "selectors", tuple(self.selectors))
        sel = self.selectors
        known = all(k in SELECTORS for k in sel) and len(set(sel)) == len(sel)
        if not sel or sel[0] != "confidence" or not known:
            raise ValueError(f"mixer selectors start with 'confidence' and come from {SELECTORS}, got {sel}")
        if self.word2 and not self.word:
            raise ValueError("the two-word model (word2) backs off to the word model: set word=True too")


_MULT = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)
MATCH_MIN = 6  # bytes of context a match must share before it predicts
MATCH_LEVELS = 16  # match lengths 0..15+ each keep their own hit rate
APM_CELLS = 33  # interpolation points over stretch(p) in [-8, 8]
APM_RATE = 0.02
# What chooses a weight set of the mixer, per stream and byte: the confidence level (highest order
# seen × its count bucket × the match bucket), the last byte, or how sure the network is (a bucket of
# its largest probability × the match bucket; mixers without the network skip it).
SELECTORS = ("confidence", "byte", "network")
NET_CONFIDENCE = np.array([0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97], dtype=np.float32)


def _match_bucket(length: np.ndarray, found: np.ndarray) -> np.ndarray:
    """0: no match; 1: a match shorter than 8 bytes past MATCH_MIN; 2: shorter than 32; 3: longer."""
    return np.where(found, 1 + (length >= 8).astype(np.int64) + (length >= 32), 0)


class MatchModel:
    """The byte that followed the last earlier occurrence of the current MATCH_MIN-byte context
    (paq8/lpaq's match model), for S streams over one shared history; a match is followed as long
    as it keeps predicting right. Its input to the mixer puts the hit rate measured so far at the
    match's length on the predicted byte and spreads the rest evenly; without a match it is uniform
    (a constant input, which the mixer's gradient ignores)."""

    def __init__(self, n_streams: int, capacity: int, hash_bits: int) -> None:
        self.S, self.cap = n_streams, max(1, capacity)
        # stream s at s·cap + i (capacity: the most bytes a stream codes); one spare byte so that a
        # position just past the last stream's end, which a match may point at, stays readable
        self.text = np.zeros(n_streams * self.cap + 1, dtype=np.uint8)
        self.n = np.zeros(n_streams, dtype=np.int64)  # bytes seen per stream
        self.last = np.full(1 << hash_bits, -1, dtype=np.int64)  # context hash → flat position after it
        self.ptr = np.full(n_streams, -1, dtype=np.int64)  # flat position of the predicted byte
        self.length = np.zeros(n_streams, dtype=np.int64)  # bytes predicted right in a row
        self.hits = np.zeros(MATCH_LEVELS)
        self.total = np.zeros(MATCH_LEVELS)
        self.shift = np.uint64(64 - hash_bits)

    def predicted(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found (m,) bool, predicted byte (m,) int64) for the active streams."""
        ptr = self.ptr[active]
        found = ptr >= 0
        return found, np.where(found, self.text[np.maximum(ptr, 0)], 0).astype(np.int64)

    def log_probs(self, active: np.ndarray) -> np.ndarray:
        """The model's log-probabilities (m, 256) in nats."""
        found, byte = self.predicted(active)
        level = np.minimum(self.length[active], MATCH_LEVELS - 1)
        q = (self.hits[level] + 0.5) / (self.total[level] + 1.0)
        q = np.where(found, q, 1.0 / 256.0)
        out = np.repeat(np.log((1.0 - q) / 255.0).astype(np.float32)[:, None], 256, axis=1)
        rows = np.arange(len(q))
        out[rows, byte] = np.log(q)
        return out

    def update(self, active: np.ndarray, x: np.ndarray) -> None:
        streams = np.flatnonzero(active)
        found, byte = self.predicted(active)
        level = np.minimum(self.length[streams], MATCH_LEVELS - 1)
        hit = found & (byte == x)
        np.add.at(self.total, level[found], 1.0)
        np.add.at(self.hits, level[hit], 1.0)
        if self.total.max() > 4096:  # let old statistics fade
            self.total *= 0.5
            self.hits *= 0.5
        self.length[streams] = np.where(hit, self.length[streams] + 1, 0)
        self.ptr[streams] = np.where(hit, self.ptr[streams] + 1, -1)
        at = streams * self.cap + self.n[streams]
        self.text[at] = x
        self.n[streams] += 1
        ready = self.n[streams] >= MATCH_MIN
        if not ready.any():
            return
        s, at = streams[ready], at[ready] + 1  # the position after the context just completed
        acc = np.full(len(s), MATCH_MIN, dtype=np.uint64)
        for j in range(MATCH_MIN):
            acc = acc * _PRIME + self.text[at - 1 - j].astype(np.uint64) + np.uint64(1)
        h = ((acc * _MULT) >> self.shift).astype(np.int64)
        lost = self.ptr[s] < 0
        candidate = self.last[h]
        self.ptr[s] = np.where(lost, candidate, self.ptr[s])
        self.length[s] = np.where(lost, 0, self.length[s])
        self.last[h] = at  # later streams sharing the context overwrite earlier ones, same on both sides


class _Head:
    """Geometric mixing of some inputs, one weight set per selector, then an APM.

    Each weight set k, chosen per stream by its selector's value, mixes the inputs into
    p_k(x) ∝ exp(Σ_i w_ki · log p_i(x)) and learns on its own log-loss. With more than one set, a
    second layer mixes their outputs the same way, p(x) ∝ exp(Σ_k v_k · log p_k(x)) (v chosen by
    the first selector, starting at 1/K each). The APM (paq's secondary estimation) then refines
    the probability of one target byte through an adaptive table indexed by a small context and
    by stretch(p), interpolating between its two nearest cells, and scales the other bytes to
    match."""

    def __init__(
        self, n_inputs: int, levels: tuple[int, ...], start: int, rate: float, apm_contexts: int
    ) -> None:
        self.weights = []
        for n_levels in levels:
            w = np.zeros((n_levels, n_inputs), dtype=np.float32)
            w[:, start] = 1.0
            self.weights.append(w)
        self.final = np.full((levels[0], len(levels)), 1.0 / len(levels), dtype=np.float32)
        self.rate = rate
        centres = np.linspace(-8.0, 8.0, APM_CELLS)
        self.apm = np.tile(1.0 / (1.0 + np.exp(-centres)), (apm_contexts, 1)) if apm_contexts else None
        self._pending: tuple | None = None

    def predict(
        self, stack: np.ndarray, sels: list[np.ndarray], target: np.ndarray, apm_ctx: np.ndarray
    ) -> np.ndarray:
        zs = [np.einsum("mi,miv->mv", w[sel], stack) for w, sel in zip(self.weights, sels)]
        outs = [_softmax(z) for z in zs]  # each weight set's own distribution (it learns on that)
        if len(zs) == 1:
            layer1, mixed = None, outs[0]
        else:
            layer1 = np.stack([_log_softmax(z) for z in zs], axis=1)  # (m, K, 256) nats
            mixed = _softmax(np.einsum("mk,mkv->mv", self.final[sels[0]], layer1))
        p = mixed.astype(np.float64)
        apm_state = None
        if self.apm is not None:
            rows = np.arange(len(p))
            pt = np.clip(p[rows, target], 1e-6, 1.0 - 1e-6)
            st = np.clip(np.log(pt / (1.0 - pt)), -8.0, 8.0 - 1e-9)
            pos = (st + 8.0) * (APM_CELLS - 1) / 16.0
            lo = pos.astype(np.int64)
            frac = pos - lo
            refined = (1.0 - frac) * self.apm[apm_ctx, lo] + frac * self.apm[apm_ctx, lo + 1]
            new_t = np.clip(0.25 * pt + 0.75 * refined, 1e-6, 1.0 - 1e-6)
            p = p * ((1.0 - new_t) / (1.0 - pt))[:, None]
            p[rows, target] = new_t
            apm_state = (lo, frac, apm_ctx, target)
        p = (1.0 - FLOOR) * p + FLOOR / 256.0
        self._pending = (stack, sels, outs, layer1, mixed, apm_state)
        return p

    def update(self, x: np.ndarray) -> None:
        assert self._pending is not None
        stack, sels, outs, layer1, mixed, apm_state = self._pending
        rows = np.arange(len(x))
        rate = np.float32(self.rate)
        # d log p(x) / d w_i = log p_i(x) − E_p[log p_i], under the weight set's own output p
        for w, sel, out in zip(self.weights, sels, outs):
            grad = stack[rows, :, x] - np.einsum("mv,miv->mi", out, stack)
            np.add.at(w, sel, rate * grad)
        if layer1 is not None:
            grad = layer1[rows, :, x] - np.einsum("mv,mkv->mk", mixed, layer1)
            np.add.at(self.final, sels[0], rate * grad)
        if apm_state is not None and self.apm is not None:
            lo, frac, ctx, target = apm_state
            y = (x == target).astype(np.float64)
            for cell, share in ((lo, 1.0 - frac), (lo + 1, frac)):
                np.add.at(self.apm, (ctx, cell), APM_RATE * share * (y - self.apm[ctx, cell]))
        self._pending = None


def _softmax(z: np.ndarray) -> np.ndarray:
    """softmax over the last axis (float32 in, float32 out)."""
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log of softmax over the last axis (nats)."""
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class ContextMixer:
    """Mix the network's log-probabilities with count models, for S streams in lockstep.

    With `counts_only`, a second mixer with the same count models but no network input runs
    beside the first (its own weights and APM) and adds its code length to `counts_only_bits`:
    what the coder would pay without the network, measured in the same pass. A mixer made with
    `network=False` has no network input at all (the counts-only coder)."""

    def __init__(
        self,
        n_streams: int,
        config: MixConfig = MixConfig(),
        capacity: int = 1 << 16,
        network: bool = True,
        counts_only: bool = False,
    ) -> None:
        self.config = config
        self.S = n_streams
        self.orders = tuple(sorted(config.orders))
        if not self.orders or self.orders[0] < 1:
            raise ValueError("mixing orders must be positive")
        self.rows = [256**k if k <= 2 else 1 << config.hash_bits for k in self.orders]
        self.rows += [1 << config.hash_bits] * (config.word + config.word2)
        self.counts = [np.zeros((r, 256), dtype=np.uint8) for r in self.rows]
        self.order0 = np.zeros(256, dtype=np.float64)
        self.history = np.zeros((n_streams, max(self.orders)), dtype=np.uint64)  # newest last
        self.word_hash = np.zeros(n_streams, dtype=np.uint64)
        self.prev_word = np.zeros(n_streams, dtype=np.uint64)  # hash of the last finished word
        self.match = MatchModel(n_streams, capacity, config.hash_bits) if config.match else None
        self.network = network
        n_counts = len(self.rows) + (1 if config.match else 0)
        n_levels = {
            "confidence": (len(self.orders) + 1) * config.count_buckets * (4 if config.match else 1),
            "byte": 256,
            "network": (len(NET_CONFIDENCE) + 1) * 4,
        }
        self.selectors = tuple(k for k in config.selectors if network or k != "network")
        counts_selectors = tuple(k for k in self.selectors if k != "network")
        apm_contexts = 256 * 4 if config.apm else 0  # last byte × match bucket
        top = len(self.orders) - 1  # the highest order's input among the count inputs
        levels = tuple(n_levels[k] for k in self.selectors)
        self.head = _Head(n_counts + network, levels, top + network, config.rate, apm_contexts)
        self._shadow_selectors = counts_selectors
        self.shadow = (
            _Head(n_counts, tuple(n_levels[k] for k in counts_selectors), top, config.rate, apm_contexts)
            if counts_only and network
            else None
        )
        self.counts_only_bits = 0.0
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
        if self.config.word2:
            acc = ((self.prev_word + np.uint64(11)) * _PRIME + self.word_hash) * _MULT
            out.append((acc >> np.uint64(64 - self.config.hash_bits)).astype(np.int64))
        return out

    def _count_inputs(self, ctx: list[np.ndarray], active: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """The count models' log-probabilities (each (m, 256), nats) and the confidence level (m,)."""
        order0 = ((self.order0 + 1.0) / (self.order0.sum() + 256.0)).astype(np.float32)
        lower = np.broadcast_to(order0, (self.S, 256))
        inputs = []
        confidence = np.zeros(self.S, dtype=np.int64)
        top_total = np.zeros(self.S)
        below_word = lower
        for i, (table, c_idx) in enumerate(zip(self.counts, ctx)):
            word = i >= len(self.orders)
            if i == len(self.orders):  # the word model backs off to order 2 (or the highest below it)
                lower = below_word  # and the two-word model to the word model
            c = table[c_idx]
            total = c.sum(axis=1, keepdims=True, dtype=np.float32)
            distinct = np.count_nonzero(c, axis=1)[:, None].astype(np.float32)
            seen = total > 0
            lower = np.where(seen, (c + distinct * lower) / np.maximum(total + distinct, 1.0), lower)
            inputs.append(np.log(lower)[active])
            if not word:
                confidence = np.where(seen[:, 0], i + 1, confidence)
                top_total = np.where(seen[:, 0], total[:, 0], top_total)
                if self.orders[i] <= 2:
                    below_word = lower
        if self.config.count_buckets > 1:
            bucket = np.minimum(np.log2(top_total + 1).astype(np.int64) // 2, self.config.count_buckets - 1)
            confidence = confidence * self.config.count_buckets + bucket
        return inputs, confidence[active]

    def predict(self, net_logp: np.ndarray | None, active: np.ndarray) -> np.ndarray:
        """Mixed probabilities (m, 256) float64 for the m active streams; net_logp (S, 256) nats
        (None for a mixer without the network)."""
        ctx = self._contexts()
        inputs, sel = self._count_inputs(ctx, active)
        target = np.zeros(len(sel), dtype=np.int64)
        match_bucket = np.zeros(len(sel), dtype=np.int64)
        if self.match is not None:
            found, predicted = self.match.predicted(active)
            inputs.append(self.match.log_probs(active))
            match_bucket = _match_bucket(self.match.length[active], found)
            sel = sel * 4 + match_bucket
        counts = np.stack(inputs, axis=1)  # (m, inputs, 256)
        if self.config.apm:  # refine the match's byte, else the counts' most likely byte
            target = counts[:, len(self.orders) - 1].argmax(axis=1)
            if self.match is not None:
                target = np.where(found, predicted, target)
        last = self.history[active, -1].astype(np.int64)
        apm_ctx = last * 4 + match_bucket
        by_name = {"confidence": sel, "byte": last, "network": None}
        if self.network:
            if net_logp is None:
                raise ValueError("this mixer mixes the network's log-probabilities: pass them")
            lp = net_logp[active] if len(net_logp) != len(sel) else net_logp
            stack = np.concatenate([lp.astype(np.float32)[:, None, :], counts], axis=1)
            if "network" in self.selectors:
                sure = np.searchsorted(NET_CONFIDENCE, np.exp(lp.max(axis=1)))
                by_name["network"] = sure * 4 + match_bucket
        else:
            stack = counts
        p = self.head.predict(stack, [by_name[k] for k in self.selectors], target, apm_ctx)
        shadow_p = (
            self.shadow.predict(counts, [by_name[k] for k in self._shadow_selectors], target, apm_ctx)
            if self.shadow is not None
            else None
        )
        self._pending = (ctx, active, shadow_p)
        return p

    def update(self, symbols: np.ndarray) -> None:
        """Learn from the bytes just coded (one per active stream, in `predict`'s order)."""
        if self._pending is None:
            raise RuntimeError("ContextMixer.update needs a predict first")
        ctx, active, shadow_p = self._pending
        x = np.asarray(symbols, dtype=np.int64)
        self.head.update(x)
        if self.shadow is not None and shadow_p is not None:
            self.counts_only_bits += mixture_code_bits(shadow_p, x)
            self.shadow.update(x)
        if self.match is not None:
            self.match.update(active, x)
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
            if self.config.word2:
                ended = ~letter & (self.word_hash[active] != 0)
                self.prev_word[active] = np.where(ended, self.word_hash[active], self.prev_word[active])
            self.word_hash[active] = np.where(letter, grown, np.uint64(0))
        self._pending = None


def mixture_code_bits(p: np.ndarray, symbols: np.ndarray) -> float:
    """Σ −log2 p(symbol) over rows of p (bits)."""
    return float(-np.log2(p[np.arange(len(symbols)), symbols]).sum())


def max_bits_per_byte() -> float:
    """The most any byte can cost after the floor (bits)."""
    return -math.log2(FLOOR / 256.0)
