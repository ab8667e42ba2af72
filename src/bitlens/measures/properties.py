"""The properties an MDL probe reads off the text, with no labelled data needed.

Each property maps (the text as a uint8 array, the byte index of each example) to (labels, a
mask of the examples where the label exists): the current byte, the previous byte, the next
byte, the position in the word (0, 1, … capped at 7, whitespace its own class) and whether the
byte is inside a word or whitespace. Words are maximal runs of non-whitespace bytes.

`control_labels` makes a property's control task: labels fixed per input type at random.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

WHITESPACE = np.zeros(256, dtype=bool)
WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
MAX_WORD_POSITION = 7
Labels = tuple[np.ndarray, np.ndarray]  # (int64 labels, bool mask of examples that have one)


def _current_byte(b: np.ndarray, i: np.ndarray) -> Labels:
    return b[i].astype(np.int64), np.ones(len(i), dtype=bool)


def _previous_byte(b: np.ndarray, i: np.ndarray) -> Labels:
    return b[np.maximum(i - 1, 0)].astype(np.int64), i >= 1


def _next_byte(b: np.ndarray, i: np.ndarray) -> Labels:
    return b[np.minimum(i + 1, len(b) - 1)].astype(np.int64), i + 1 < len(b)


def _position_in_word(b: np.ndarray, i: np.ndarray) -> Labels:
    space = WHITESPACE[b]
    # distance to the last whitespace byte at or before each byte
    last_space = np.maximum.accumulate(np.where(space, np.arange(len(b)), -1))
    pos = np.minimum(np.arange(len(b)) - last_space - 1, MAX_WORD_POSITION)
    labels = np.where(space, MAX_WORD_POSITION + 1, pos)
    return labels[i].astype(np.int64), np.ones(len(i), dtype=bool)


def _in_word(b: np.ndarray, i: np.ndarray) -> Labels:
    return (~WHITESPACE[b[i]]).astype(np.int64), np.ones(len(i), dtype=bool)


PROPERTIES: dict[str, Callable[[np.ndarray, np.ndarray], Labels]] = {
    "current-byte": _current_byte,
    "previous-byte": _previous_byte,
    "next-byte": _next_byte,
    "position-in-word": _position_in_word,
    "in-word": _in_word,
}


def control_labels(types: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A control task for `labels` (Hewitt & Liang 2019): each example's label is a random
    function of its input type alone (byte value or token id), drawn once per type, with the
    real labels' distribution over the examples.

    Each type gets one of the real label values. When the real labels are a bijection of the
    type on these examples (the current byte, for a byte model), the control is a random
    permutation of the types' labels: the same label counts exactly. Otherwise the types, in
    random order, are laid end to end by their number of examples on [0, N), and so are the
    label values, also in random order, by theirs; a type takes the label under the middle of
    its span (a stratified draw). Every label then covers its real count within the largest
    type's count, and a type takes label c with probability ≈ c's share of the examples, as in
    Hewitt & Liang's per-type draw from the label distribution.

    Equal types always get equal labels; `rng` makes the draw (one draw, one control task).
    """
    type_values, first_at, type_of, type_counts = np.unique(
        types, return_index=True, return_inverse=True, return_counts=True
    )
    label_values, label_counts = np.unique(labels, return_counts=True)
    first = labels[first_at]  # one label per type: its first example's
    if len(label_values) == len(type_values) and (first[type_of] == labels).all():
        return rng.permutation(first)[type_of]  # a bijection: permute the labels over types
    t_order = rng.permutation(len(type_values))
    middles = np.cumsum(type_counts[t_order]) - type_counts[t_order] / 2
    l_order = rng.permutation(len(label_values))
    ends = np.cumsum(label_counts[l_order])
    per_type = np.empty(len(type_values), dtype=labels.dtype)
    per_type[t_order] = label_values[l_order][np.searchsorted(ends, middles, side="right")]
    return per_type[type_of]
