"""Lossless compression with a byte-level model, and the classical compressors beside it.

    blob, result = compress(data, model)              # offline; or online=True (with or without a model)
    data = decompress(blob, model)
    bits = estimate_bits(data, online=True)           # the code length without coding (for tuning)
    coder = COMPRESSORS["online+mix"](CoderSettings(seed=0))   # any compressor, by key
    blob, result = compress_tokens(text, load_model("hf:DIR"))   # a Hugging Face LM, its tokens
    text = decompress_tokens(blob, load_model("hf:DIR"))

Modules: `coder` (compress, decompress, estimate), `loop` (the coding loop both sides share),
`container` (the file header), `token_coder` (a Hugging Face model over its tokens), `online`
(learning while coding), `mixing` (count models and mixer), `device`, `baselines` (gzip, bzip2,
xz, zstd, brotli), `registry` (`COMPRESSORS`), `compare` (the comparison table).
"""

from bitlens.compress.coder import CompressResult, compress, decompress, estimate_bits, read_header
from bitlens.compress.loop import CodeLengths
from bitlens.compress.mixing import MixConfig
from bitlens.compress.online import OnlineConfig
from bitlens.compress.registry import COMPRESSORS, CoderSettings, Compressor
from bitlens.compress.token_coder import compress_tokens, decompress_tokens

__all__ = [
    "COMPRESSORS",
    "CodeLengths",
    "CoderSettings",
    "CompressResult",
    "Compressor",
    "MixConfig",
    "OnlineConfig",
    "compress",
    "compress_tokens",
    "decompress",
    "decompress_tokens",
    "estimate_bits",
    "read_header",
]
