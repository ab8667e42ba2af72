"""The parent of a byte-level offspring: a bitlens `GPT` (it reads bytes) or a local Hugging Face
LM (`bitlens.hf.HFModel`, it reads tokens). The offspring loop asks the parent for three things,
all per byte: its surprisal and entropy on byte windows (selection), byte continuations of real
prompts (synthetic data), and its held-out bits per byte. This module answers them for both.

A token-level parent has no next-*byte* distribution, so what needs one refuses in one line:
soft and mixed distillation targets (KL to the parent's next-byte distribution) and the
offspring's KL to the parent (reported as None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.evaluate import score_windows, window_scores
from bitlens.hf import token_steps
from bitlens.model import GPT, top_p_filter
from bitlens.offspring.synth import Samples, sample
from bitlens.tokens import TokenStream, spread_over_bytes, token_name

if TYPE_CHECKING:
    from bitlens.hf import HFModel


def is_token_parent(parent: GPT | HFModel) -> bool:
    """Whether the parent reads tokens (an hf: model) rather than bytes."""
    return token_name(parent) == "token"


def refuse_soft_target(parent: GPT | HFModel, target: str, soft_weight: float) -> None:
    """One line when a target needs the parent's next-byte distribution and it has none."""
    if soft_weight > 0 and is_token_parent(parent):
        raise BitlensError(
            f"target {target!r} distils the parent's next-byte distribution, which a token-level "
            "parent (hf:) does not have; use target 'hard' (its samples) or a byte-level parent"
        )


def parent_window_scores(
    parent: GPT | HFModel, windows: torch.Tensor, batch_size: int, with_entropy: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per target byte of every (n, T + 1) window, read on its own: the parent's surprisal and
    (if asked) predictive entropy in bits, (n, T). Exact per byte for a byte parent; a token
    parent's token bits are spread over their bytes (`score_byte_windows`)."""
    if is_token_parent(parent):
        return score_byte_windows(parent, windows, with_entropy=with_entropy)  # type: ignore[arg-type]
    return window_scores(parent, windows, batch_size=batch_size, with_entropy=with_entropy)  # type: ignore[arg-type]


def parent_sample(
    parent: GPT | HFModel,
    prompts: torch.Tensor,
    n_new: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
) -> Samples:
    """Continue each prompt row (n, P) of bytes by `n_new` bytes (see `bitlens.offspring.synth`).

    A token parent continues each prompt as text, one prompt at a time, and the first `n_new`
    bytes of its continuation are kept (`sample_bytes`); its per-byte bits are its
    tokens' bits spread over their bytes."""
    if not is_token_parent(parent):
        return sample(parent, prompts, n_new, temperature, top_p, generator)  # type: ignore[arg-type]
    rows = [
        sample_bytes(parent, bytes(p.to(torch.uint8).numpy().tobytes()), n_new, temperature, top_p, generator)  # type: ignore[arg-type]
        for p in prompts
    ]
    return Samples(
        tokens=torch.tensor(
            np.frombuffer(b"".join(r[0] for r in rows), dtype=np.uint8).reshape(len(rows), n_new)
        ),
        surprisal_bits=torch.from_numpy(np.stack([r[1] for r in rows])).float(),
        entropy_bits=torch.from_numpy(np.stack([r[2] for r in rows])).float(),
    )


def parent_heldout_bits_per_byte(parent: GPT | HFModel, windows: torch.Tensor, batch_size: int) -> float:
    """The parent's mean surprisal in bits over the target bytes of held-out windows."""
    return float(parent_window_scores(parent, windows, batch_size)[0].mean())


# --- a token-level parent on byte windows --------------------------------------------------------


def text_span(window: bytes) -> tuple[int, int]:
    """[s, e): `window` less a UTF-8 character cut in two at either edge (at most 3 bytes each
    side), the part a tokenizer can read."""
    s = 0
    while s < min(3, len(window)) and 0x80 <= window[s] < 0xC0:
        s += 1
    e = len(window)
    for k in range(1, min(4, e - s) + 1):
        b = window[e - k]
        if b < 0x80:
            break
        if b >= 0xC0:  # the lead byte of a character needing `need` bytes
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if need > k:
                e -= k
            break
    return s, e


def _window_stream(model: HFModel, window: bytes) -> tuple[int, int, TokenStream]:
    s, e = text_span(window)
    try:
        window[s:e].decode("utf-8")
    except UnicodeDecodeError:
        raise BitlensError(
            "a tokenizer parent reads text: the data is not UTF-8 (use a byte-level parent)"
        ) from None
    if e <= s:
        raise BitlensError("a byte window holds no whole character for the tokenizer parent")
    return s, e, model.encode(window[s:e])


@torch.no_grad()
def score_byte_windows(
    model: HFModel, windows: torch.Tensor, with_entropy: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per target byte of every (n, T + 1) byte window, each window read on its own as text from
    the start token: surprisal and (if asked) predictive entropy in bits, (n, T) float64.

    Each token's bits are spread equally over its bytes (`spread_over_bytes`; the totals are
    exact), so the first byte, which is no target, takes its share of the first token. A
    character cut in two at a window's edge cannot be tokenized: those bytes (at most 3 per
    edge) get the window's mean. Windows go in right-padded batches of `model.batch_tokens`
    tokens (a causal model's real positions never see the padding); a window longer than the
    context is scored in sliding windows as `eval` does.
    """
    n, width = windows.shape
    rows = [_window_stream(model, bytes(w.to(torch.uint8).numpy().tobytes())) for w in windows]
    tok_s: list[np.ndarray] = [np.zeros(0)] * n
    tok_h: list[np.ndarray] = [np.zeros(0)] * n
    block = model.config.block_size
    short = [i for i, (_, _, st) in enumerate(rows) if len(st) <= block]
    for i in (i for i in range(n) if len(rows[i][2]) > block):
        st = rows[i][2]
        tok_s[i], h = score_windows(
            model, st.inputs(), st.ids, block, block // 2, 1, with_entropy, False, "scoring"
        )
        tok_h[i] = h if h is not None else np.zeros(0)
    i = 0
    while i < len(short):  # right-padded batches within the token budget
        length = len(rows[short[i]][2])
        group = [short[i]]
        while i + len(group) < len(short):
            nxt = short[i + len(group)]
            if (len(group) + 1) * max(length, len(rows[nxt][2])) > model.batch_tokens:
                break
            length = max(length, len(rows[nxt][2]))
            group.append(nxt)
        x = torch.full((len(group), length), rows[group[0]][2].start_id, dtype=torch.long)
        y = torch.zeros((len(group), length), dtype=torch.long)
        for r, j in enumerate(group):
            st = rows[j][2]
            x[r, : len(st)] = st.inputs()[:-1]
            y[r, : len(st)] = st.ids
        s_t, h_t = model.token_bits(x, y, with_entropy)
        s_all = s_t.double().numpy()
        h_all = h_t.double().numpy() if h_t is not None else None
        for r, j in enumerate(group):
            k = len(rows[j][2])
            tok_s[j] = s_all[r, :k]
            if h_all is not None:
                tok_h[j] = h_all[r, :k]
        i += len(group)

    def per_byte(tok: np.ndarray, j: int) -> np.ndarray:
        s, e, st = rows[j]
        out = np.empty(width, dtype=np.float64)
        out[s:e] = spread_over_bytes(tok, st.byte_ends, e - s)
        out[:s] = out[e:] = out[s:e].mean()
        return out[1:]

    surprisal = np.stack([per_byte(tok_s[j], j) for j in range(n)])
    entropy = np.stack([per_byte(tok_h[j], j) for j in range(n)]) if with_entropy else None
    return surprisal, entropy


@torch.no_grad()
def sample_bytes(
    model: HFModel,
    prompt: bytes,
    n_new: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Continue the text `prompt` (b"": from the start token alone) by tokens until they decode
    to at least `n_new` bytes; returns the first `n_new` bytes and, per byte, the sampled
    tokens' surprisal and the entropy of their next-token distributions (bits, untempered and
    untruncated, each token's bits spread over its bytes).

    Tokens go one at a time through the KV cache (`token_steps`, the tokens coder's loop), so a
    continuation longer than the context slides as the coder does. Special tokens decode to no
    bytes; should 4·n_new + 16 tokens still fall short (never seen), spaces fill the rest.
    """
    if n_new < 1 or temperature < 0 or not 0 < top_p <= 1:
        raise BitlensError(
            f"need n_new ≥ 1, temperature ≥ 0, top_p in (0, 1]; got {n_new}, {temperature}, {top_p}"
        )
    tok = model.tokenizer
    s, e = text_span(prompt)
    ids = model.encode(prompt[s:e]).ids.tolist() if e > s else []

    def decoded(token_ids: list[int]) -> bytes:
        return tok.decode(token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False).encode()

    head = decoded(ids)
    inputs = [model.start_id, *ids]
    new: list[int] = []
    ends, surprisal, entropy = [], [], []
    cont = b""
    max_new = 4 * n_new + 16
    with model._guard():
        steps = token_steps(
            model.model, inputs, len(ids) + max_new, model.config.block_size, model.device, start=len(ids)
        )
        for probs in steps:
            p = torch.from_numpy(probs)
            if temperature == 0:
                t = int(p.argmax())
            else:
                q = p.pow(1.0 / temperature)
                q = top_p_filter(q / q.sum(), top_p)
                t = int(torch.multinomial(q, 1, generator=generator))
            nz = p[p > 0]
            surprisal.append(-float(np.log2(probs[t])))
            entropy.append(-float((nz * nz.log2()).sum()))
            new.append(t)
            inputs.append(t)
            full = decoded(ids + new)
            cont = full[len(head) :] if full.startswith(head) else decoded(new)
            ends.append(len(cont))
            if len(cont) >= n_new:
                break
    out = (cont + b" " * n_new)[:n_new]
    byte_ends = np.minimum(np.maximum.accumulate(np.array(ends, dtype=np.int64)), n_new)
    byte_ends[-1] = n_new
    return (
        out,
        spread_over_bytes(np.array(surprisal), byte_ends, n_new),
        spread_over_bytes(np.array(entropy), byte_ends, n_new),
    )
