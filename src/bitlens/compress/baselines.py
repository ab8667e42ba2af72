"""Classical compressors as `Compressor`s, so they sit beside the learned coders in every table
(as in DeepMind's `compressors/`).

`BASELINES` maps a short key to the tool at its strongest standard setting, named as on the
command line ("xz -9e"). All run in-process through the Python bindings; outputs are complete
files that decode on their own (gzip has mtime 0, so the output is reproducible).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable
from dataclasses import dataclass

import brotli
import zstandard


@dataclass(frozen=True)
class Classical:
    """A classical tool behind the `Compressor` protocol (it reports no code lengths)."""

    name: str
    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]

    def compress(self, data: bytes) -> tuple[bytes, None]:
        return self.encode(data), None

    def decompress(self, blob: bytes) -> bytes:
        return self.decode(blob)


BASELINES: dict[str, Classical] = {
    "gzip": Classical("gzip -9", lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
    "bzip2": Classical("bzip2 -9", lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
    "xz": Classical(
        "xz -9e",
        lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME),
        lzma.decompress,
    ),
    "zstd": Classical(
        "zstd -19",
        lambda b: zstandard.ZstdCompressor(level=19).compress(b),
        lambda b: zstandard.ZstdDecompressor().decompress(b),
    ),
    "brotli": Classical("brotli -q 11", lambda b: brotli.compress(b, quality=11), brotli.decompress),
}
