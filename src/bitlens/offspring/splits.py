"""The four disjoint byte ranges of a corpus that every parent → offspring experiment uses.

- parent_train: the head of the corpus, exactly what `bitlens train` fits a parent on
  (`bitlens.data.split_corpus`: all but the last 10 %);
- pool: what the parent selects from; it comes from the held-out tail, so the parent never saw it;
- validation: what selection and evolution may look at (the reference model of the static
  static-excess score trains on it; evolution's fitness is scored on it);
- test: scored once at the end, never used to choose anything.

The tail after parent_train is cut, in order, into pool | validation | test. When it is shorter
than the sizes asked for, each part shrinks in proportion (so the default corpus still gives all
three). A study that needs a larger pool than that tail can name the parent's head instead
(`parent_train_bytes`): the parent then trains on bytes [0, parent_train_bytes) only, the pool is
the next stretch, and every size is exactly as asked (a corpus too short for them is an error,
nothing shrinks). Either way validation and test are the corpus's last bytes. Ranges are
half-open [start, end) byte offsets into the corpus, and every result JSON records them
(`DataSplits.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bitlens.data import bytes_to_tensor, split_corpus
from bitlens.errors import BitlensError

SPLIT_NAMES = ("parent_train", "pool", "validation", "test")


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of the corpus."""

    start: int
    end: int

    @property
    def n_bytes(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "bytes": self.n_bytes}


@dataclass(frozen=True)
class DataSplits:
    """parent_train | pool | validation | test, disjoint and in corpus order (see module doc)."""

    parent_train: ByteRange
    pool: ByteRange
    validation: ByteRange
    test: ByteRange

    def __post_init__(self) -> None:
        ranges = [getattr(self, n) for n in SPLIT_NAMES]
        for a, b in zip(ranges, ranges[1:], strict=False):
            if not (0 <= a.start <= a.end <= b.start <= b.end):
                raise BitlensError(f"data splits overlap or are out of order: {self.to_dict()}")

    def take(self, data: bytes | torch.Tensor, name: str) -> torch.Tensor:
        """The named split's bytes of `data` (the corpus these ranges were cut from), uint8."""
        if name not in SPLIT_NAMES:
            raise BitlensError(f"unknown split {name!r}; the splits are {', '.join(SPLIT_NAMES)}")
        t = bytes_to_tensor(data) if isinstance(data, bytes) else data
        if len(t) < self.test.end:
            raise BitlensError(f"corpus of {len(t)} bytes is shorter than its splits ({self.test.end} bytes)")
        r: ByteRange = getattr(self, name)
        return t[r.start : r.end]

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {n: getattr(self, n).to_dict() for n in SPLIT_NAMES}


def data_splits(
    data: bytes,
    window: int,
    pool_bytes: int,
    validation_bytes: int,
    test_bytes: int,
    parent_train_bytes: int | None = None,
) -> DataSplits:
    """Cut the corpus `data` into the four splits (see the module docstring).

    A size of 0 leaves that split empty (collapse, for instance, needs no pool); any other split
    must hold at least one window of `window + 1` bytes after shrinking, or this raises. With
    `parent_train_bytes`, parent_train is that head and nothing shrinks.
    """
    if min(pool_bytes, validation_bytes, test_bytes) < 0:
        raise BitlensError("split sizes must not be negative")
    n_bytes = len(data)
    want = [pool_bytes, validation_bytes, test_bytes]
    if parent_train_bytes is None:
        n_train = len(split_corpus(data, window).train)
        tail = n_bytes - n_train
        total = sum(want)
        sizes = want if total <= tail else [w * tail // total for w in want]
    else:
        n_train, sizes = _explicit_head(n_bytes, window, parent_train_bytes, want)
        tail = n_bytes - n_train
    for name, asked, got in zip(SPLIT_NAMES[1:], want, sizes, strict=True):
        if asked > 0 and got < window + 1:
            raise BitlensError(
                f"the held-out tail of {tail} bytes leaves the {name} split {got} bytes, "
                f"less than one {window + 1}-byte window; use a larger corpus"
            )
    pool = ByteRange(n_train, n_train + sizes[0])
    test = ByteRange(n_bytes - sizes[2], n_bytes)
    validation = ByteRange(test.start - sizes[1], test.start)
    return DataSplits(ByteRange(0, n_train), pool, validation, test)


def _explicit_head(
    n_bytes: int, window: int, parent_train_bytes: int, want: list[int]
) -> tuple[int, list[int]]:
    """parent_train's end and the split sizes when the head is named: exactly as asked."""
    if parent_train_bytes < window + 1:
        raise BitlensError(
            f"parent_train of {parent_train_bytes} bytes is less than one {window + 1}-byte window"
        )
    need = parent_train_bytes + sum(want)
    if need > n_bytes:
        raise BitlensError(
            f"a corpus of {n_bytes} bytes is too short for parent_train {parent_train_bytes:,} + "
            f"pool {want[0]:,} + validation {want[1]:,} + test {want[2]:,} = {need:,} bytes"
        )
    return parent_train_bytes, want
