"""The properties an MDL probe reads off the text, with no labelled data needed.

Each property maps (the text as a uint8 array, the byte index of each example) to (labels, a
mask of the examples where the label exists): the current byte, the previous byte, the next
byte, the position in the word (0, 1, … capped at 7, whitespace its own class) and whether the
byte is inside a word or whitespace. Words are maximal runs of non-whitespace bytes.
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
