"""The coding loop shared by the encoder, the decoder and the estimate.

The contract that makes decoding possible: the encoder and the decoder compute every
probability through the identical code path (`code_streams`): the file is cut into S contiguous
streams that advance in lockstep, one byte per stream per step, through the KV cache with batch
shape (S, 1); when a stream's context fills the window both sides re-prime it with the same
prefill of the last block/2 inputs; both sides use the same dtype and torch thread count. Batched
full-sequence logits differ from step-by-step ones in the last bits, which is why coding never
uses them. The only difference between the two sides is the `symbols` callback: the encoder
reads a byte and codes it, the decoder decodes it.

Two sources of probabilities feed one step: `_kv_steps` (coding: step by step through the KV
cache) and `_chunk_forwards` (estimate: the same contexts, one full-sequence forward each).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from bitlens.compress.mixing import ContextMixer, MixConfig, mixture_code_bits
from bitlens.compress.online import (
    LaggedTraining,
    OnlineConfig,
    make_online_optimizer,
    round_generator,
    round_lr,
    train_round,
)
from bitlens.model import GPT, KVCache
from bitlens.progress import progress_bar
from bitlens.units import nats_to_bits

# A callback that receives the probabilities (m, 256) of the active streams at one step and
# returns their m bytes: the encoder codes known bytes, the decoder decodes them.
SymbolFn = Callable[[np.ndarray], np.ndarray]

# One position's network log-probabilities (S, 256) in nats, its known bytes (S,) when the
# source has them (the estimate) or None (coding: the step gets them from `symbols`), and the
# final normalised hidden state (S, n_embd) the output layer read.
Position = tuple[int, np.ndarray, np.ndarray | None, torch.Tensor]


@dataclass
class CodeLengths:
    """Code lengths accumulated by the coding loop, in bits."""

    coded: float = 0.0  # Σ −log2 p under the probabilities handed to the coder
    network: float = 0.0  # Σ −log2 p under the network alone (= coded without mixing)
    counts_only: float = 0.0  # with mixing: the same count models and mixer without the network


def plan_streams(n: int, stream_bytes: int, max_streams: int) -> tuple[int, int]:
    """Cut n bytes into S contiguous streams of L bytes (the last may be shorter): (S, L).

    No stream is empty; S is at most max_streams and about n / stream_bytes.
    """
    if n == 0:
        return 0, 0
    s = min(max_streams, max(1, math.ceil(n / stream_bytes)))
    length = math.ceil(n / s)
    return math.ceil(n / length), length


def stream_lengths(n: int, s: int, length: int) -> np.ndarray:
    """Bytes in each of the s streams of `length` that cut n bytes (the last may be shorter)."""
    return np.clip(n - length * np.arange(s), 0, length)


@torch.no_grad()
def _predict(model: GPT, cache: KVCache, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities (S, 256) in nats of the next byte after feeding `inputs` (S, T), and the
    normalised hidden state (S, n_embd) they were read from."""
    h = model.features(inputs.long(), cache)[:, -1, :]
    return torch.log_softmax(model.lm_head(h).float(), dim=-1).cpu(), h


def _kv_steps(
    model: GPT, cache: KVCache, seq: torch.Tensor, start: int, end: int, keep: int
) -> Iterator[Position]:
    """Coding: the log-probabilities at positions start … end-1, one KV-cache step each.

    The cache is primed with the last `keep` inputs at `start` and whenever the window is full.
    The consumer must write byte `pos` into seq[:, pos + 1] before asking for the next position.
    """
    for pos in range(start, end):
        if pos == start or cache.length == cache.block_size:  # (re-)prime: a new round or a full window
            cache.reset()
            logp, h = _predict(model, cache, seq[:, max(0, pos + 1 - keep) : pos + 1])
        else:
            logp, h = _predict(model, cache, seq[:, pos : pos + 1])
        yield pos, logp.numpy(), None, h


def _context_chunks(start: int, end: int, block: int, keep: int) -> Iterator[tuple[int, int, int]]:
    """The coder's contexts over positions [start, end): (first input column, first, last+1 position).

    At `start` the cache is primed with the last `keep` inputs; each later position adds one
    input until the window is full, then the cache is re-primed. So one chunk's inputs are
    seq[:, a : stop] and its logits at offsets (first - a) … predict positions first … stop-1.
    """
    first = start
    while first < end:
        a = max(0, first + 1 - keep)
        stop = min(end, a + block)
        yield a, first, stop
        first = stop


def _chunk_forwards(model: GPT, seq: torch.Tensor, start: int, end: int, keep: int) -> Iterator[Position]:
    """Estimate (seq already full): the same contexts as `_kv_steps`, each chunk of them from one
    full-sequence forward, with the known bytes. Equal to the coder's to float rounding. The
    output layer is applied as each position is asked for, so updates to it between positions
    count as they do in coding."""
    for a, first, stop in _context_chunks(start, end, model.config.block_size, keep):
        with torch.no_grad():
            h = model.features(seq[:, a:stop].long())[:, first - a :, :]
        target = seq[:, first + 1 : stop + 1].long().cpu().numpy()
        for j, pos in enumerate(range(first, stop)):
            with torch.no_grad():
                logp = torch.log_softmax(model.lm_head(h[:, j]).float(), dim=-1).cpu().numpy()
            yield pos, logp, target[:, j], h[:, j]


def code_streams(
    model: GPT | None,
    seq: torch.Tensor,
    lengths: np.ndarray,
    symbols: SymbolFn,
    online: OnlineConfig | None,
    seed: int,
    progress: bool,
    trace: list[np.ndarray] | None = None,
    estimate: bool = False,
    mix: MixConfig | None = None,
) -> CodeLengths:
    """The coding loop shared by the encoder and the decoder; returns the code lengths.

    seq (S, L+1) uint8: column 0 is START_BYTE, column t+1 holds byte t of each stream (the
    decoder fills it as it goes). With `online`, the model is trained after every segment
    (with `online.lag` 1, one segment behind, in a second thread: `LaggedTraining`).
    With `mix`, the coder gets the network's distribution mixed with count models
    (`bitlens.compress.mixing`). trace, if given, receives every step's probability array (for
    the bit-for-bit test). estimate=True (seq already full, nothing coded): probabilities come
    from `_chunk_forwards` instead of `_kv_steps`, with the same contexts and the same training,
    so the code lengths match the coder's to float rounding at a fraction of the cost. It only
    measures; `symbols` is not called. Used to tune schedules. model=None (with `mix`) is the
    counts-only coder: the mixer without a network.
    """
    S, L = seq.shape[0], seq.shape[1] - 1
    if model is None:
        if mix is None:
            raise ValueError("the counts-only coder needs mixing settings")
        return _code_counts(seq, lengths, symbols, progress, trace, estimate, mix)
    keep = max(1, model.config.block_size // 2)
    device = next(model.parameters()).device
    seq_host, seq = seq, seq.to(device)  # the model reads seq on its device; the caller gets seq_host
    cache = KVCache(model.config, S, device=device)
    lengths_t = torch.as_tensor(lengths)
    segment = online.segment if online else L
    rounds = math.ceil(L / segment) if L else 0
    mixer = ContextMixer(S, mix, capacity=L, counts_only=True) if mix is not None else None
    lagged = (
        LaggedTraining(model, online, threaded=not estimate) if online is not None and online.lag else None
    )
    opt = make_online_optimizer(model, online) if online is not None and lagged is None else None
    model.eval()
    bits = CodeLengths()

    def step(pos: int, logp: np.ndarray, known: np.ndarray | None, h: torch.Tensor) -> None:
        """One byte per active stream at `pos`, from the network's log-probabilities (S, 256) nats:
        coded (or decoded) from `symbols` when `known` is None, else only measured."""
        active = pos < lengths
        if mixer is not None:
            p_active = mixer.predict(logp, active)
        else:
            probs = np.exp(logp)
            p_active = probs if active.all() else probs[active]
        if trace is not None:
            trace.append(p_active)
        got = symbols(p_active) if known is None else known[active]
        rows = np.arange(len(got))
        lp = logp if len(got) == S else logp[active]
        bits.network -= float(nats_to_bits(lp[rows, got].astype(np.float64).sum()))
        if mixer is not None:
            bits.coded += mixture_code_bits(p_active, got)
            mixer.update(got)
        if online is not None and online.head_lr > 0:
            lp = logp if len(got) == S else logp[active]
            _head_step(model, lp, got, h[torch.as_tensor(active)], online.head_lr)
        bar.advance(int(active.sum()))
        if known is None:  # the next inputs of both sides
            seq[torch.as_tensor(active).to(device), pos + 1] = torch.as_tensor(got.astype(np.uint8)).to(
                device
            )

    with progress_bar(int(lengths.sum()), "coding", enabled=progress) as bar:
        try:
            for round_index, start in enumerate(range(0, L, segment)):
                end = min(L, start + segment)
                positions = (
                    _chunk_forwards(model, seq, start, end, keep)
                    if estimate
                    else _kv_steps(model, cache, seq, start, end, keep)
                )
                for pos, logp, known, h in positions:
                    step(pos, logp, known, h)
                if online is None or end == L:
                    continue
                lr, gen = round_lr(online, round_index, rounds), round_generator(seed, round_index)
                if lagged is not None:
                    lagged.boundary(seq, lengths_t, end, lr, gen)
                elif opt is not None:
                    with torch.enable_grad():
                        train_round(model, opt, seq, lengths_t, end, online, lr, gen)
        finally:
            if lagged is not None:
                lagged.close()
    if seq is not seq_host:
        seq_host.copy_(seq.cpu())
    if mixer is None:
        bits.coded = bits.network
    else:
        bits.counts_only = mixer.counts_only_bits
    return bits


@torch.no_grad()
def _head_step(model: GPT, logp: np.ndarray, got: np.ndarray, h: torch.Tensor, lr: float) -> None:
    """One SGD step on the output layer from the bytes just coded: the gradient of their mean
    cross-entropy (nats) with respect to the unembedding, (softmax − one-hot)ᵀ h / m."""
    err = torch.from_numpy(np.exp(logp)).to(h.device)
    err[torch.arange(len(got)), torch.from_numpy(got)] -= 1.0
    model.lm_head.weight.sub_(err.T @ h, alpha=lr / len(got))


def _code_counts(
    seq: torch.Tensor,
    lengths: np.ndarray,
    symbols: SymbolFn,
    progress: bool,
    trace: list[np.ndarray] | None,
    estimate: bool,
    mix: MixConfig,
) -> CodeLengths:
    """`code_streams` without a network: the count models and the mixer alone (bits)."""
    S, L = seq.shape[0], seq.shape[1] - 1
    mixer = ContextMixer(S, mix, capacity=L, network=False)
    bits = CodeLengths()
    with progress_bar(int(lengths.sum()), "coding", enabled=progress) as bar:
        for pos in range(L):
            active = pos < lengths
            p = mixer.predict(None, active)
            if trace is not None:
                trace.append(p)
            got = seq[active, pos + 1].long().numpy() if estimate else symbols(p)
            bits.coded += mixture_code_bits(p, got)
            mixer.update(got)
            bar.advance(int(active.sum()))
            if not estimate:
                seq[torch.as_tensor(active), pos + 1] = torch.as_tensor(got.astype(np.uint8))
    bits.counts_only = bits.coded
    return bits
