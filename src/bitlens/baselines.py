"""Classical compressors behind one compress/decompress signature, so they sit beside the
learned coders in every table (as in DeepMind's `compressors/`).

`BASELINES` maps the display name (the strongest standard setting of each tool) to a
`Compressor`. All run in-process through the Python bindings; outputs are complete files that
decode on their own (gzip has mtime 0, so the output is reproducible).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass
from typing import Callable

import brotli
import zstandard


@dataclass(frozen=True)
class Compressor:
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


BASELINES: dict[str, Compressor] = {
    "gzip -9": Compressor(lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
    "bzip2 -9": Compressor(lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
    "xz -9e": Compressor(
        lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME),
        lzma.decompress,
    ),
    "zstd -19": Compressor(
        lambda b: zstandard.ZstdCompressor(level=19).compress(b),
        lambda b: zstandard.ZstdDecompressor().decompress(b),
    ),
    "brotli -q 11": Compressor(lambda b: brotli.compress(b, quality=11), brotli.decompress),
}
