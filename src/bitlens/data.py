"""Byte-level data: the bundled corpus, loading text, the train/validation split, batches.

Tokens are bytes (vocabulary 256), so bits per token = bits per byte.
"""

from __future__ import annotations

import lzma
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from bitlens.errors import BitlensError

VOCAB_SIZE = 256
DEFAULT_CORPUS = "tinyshakespeare"
# A stream's first byte is predicted after this virtual byte (a newline), so every byte of a
# file, the first one included, has a model probability. Encoder, decoder and eval all agree.
START_BYTE = 0x0A


def bundled_corpus_bytes(name: str = DEFAULT_CORPUS) -> bytes:
    """The bundled default corpus (Tiny Shakespeare, public domain), decompressed."""
    ref = resources.files("bitlens") / "corpora" / f"{name}.txt.xz"
    try:
        return lzma.decompress(ref.read_bytes())
    except FileNotFoundError:
        raise BitlensError(f"no bundled corpus named {name!r}") from None


def load_corpus(path: str | Path | None) -> bytes:
    """Read a corpus: None → the bundled default, '-' → stdin, a file, or a directory.

    A directory is read as its regular files (recursively, sorted by path) concatenated.
    Raises BitlensError for a missing/unreadable path or an empty corpus.
    """
    if path is None or str(path) == DEFAULT_CORPUS:
        data = bundled_corpus_bytes()
    elif str(path) == "-":
        data = sys.stdin.buffer.read()
        path = "<stdin>"
    else:
        p = Path(path)
        try:
            if p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
                data = b"".join(f.read_bytes() for f in files)
            else:
                data = p.read_bytes()
        except FileNotFoundError:
            raise BitlensError(f"corpus not found: {path}") from None
        except (PermissionError, IsADirectoryError, OSError) as e:
            raise BitlensError(f"cannot read corpus {path}: {e.strerror or e}") from None
    if len(data) == 0:
        raise BitlensError(f"corpus is empty: {path if path is not None else DEFAULT_CORPUS}")
    return data


def bytes_to_tensor(data: bytes) -> torch.Tensor:
    """Bytes as a 1-D uint8 tensor (a copy, so the tensor owns writable memory)."""
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())


@dataclass(frozen=True)
class Split:
    """A deterministic split: the last `val_fraction` of the bytes is the validation set."""

    train: torch.Tensor  # uint8, (N_train,)
    val: torch.Tensor  # uint8, (N_val,)


def split_corpus(data: bytes, block_size: int, val_fraction: float = 0.1) -> Split:
    """Split bytes into train (head) and validation (tail). Both must hold a full window."""
    need = block_size + 1
    if len(data) < 2 * need:
        raise BitlensError(
            f"corpus has {len(data)} bytes, fewer than two context windows "
            f"(2 × {need} bytes are needed: one to train on, one to validate)"
        )
    n_val = max(need, int(len(data) * val_fraction))
    n_train = len(data) - n_val
    if n_train < need:
        n_train, n_val = need, len(data) - need
    t = bytes_to_tensor(data)
    return Split(train=t[:n_train], val=t[n_train:])


def get_batch(
    data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: x = data[i:i+T], y = data[i+1:i+T+1], both (B, T) int64."""
    if len(data) < block_size + 1:
        raise BitlensError(f"data has {len(data)} bytes, fewer than one context window ({block_size + 1})")
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = data[ix[:, None] + offsets[None, :]].long()
    return windows[:, :-1], windows[:, 1:]


def with_start(data: torch.Tensor) -> torch.Tensor:
    """Prepend START_BYTE: inputs for predicting every byte of `data` (int64, length N+1)."""
    return torch.cat([torch.tensor([START_BYTE], dtype=torch.long), data.long()])
