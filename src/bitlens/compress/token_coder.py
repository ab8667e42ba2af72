"""Lossless compression with a local Hugging Face causal LM over its own tokens (as ts_zip and
llama-zip do), on the byte coder's range coder.

    blob, result = compress_tokens(data, load_model("hf:DIR"))
    data = decompress_tokens(blob, load_model("hf:DIR"))

The bytes must be text the tokenizer reproduces exactly. They are tokenized once, the tokens are
decoded back and compared with the input byte for byte, and anything else (a tokenizer that
normalises, a character it maps to an unknown token, invalid UTF-8) is refused before coding.
Encoding and decoding go through the tokenizer's `tokenizers` backend, the object whose
serialisation the header fingerprints. A tokenizer with byte fallback reproduces any UTF-8 text.

The token ids are range coded (constriction's `RangeEncoder`, `Categorical(perfect=False)`, as
the byte coder uses) with the model's next-token distribution over its whole output vocabulary:
float64 softmax of the logits, one array of vocabulary size per token.

Decoding works because both sides compute every distribution through the identical code path,
`_token_steps` (the byte coder's contract, `bitlens.compress.loop`). Tokens go one at a time
through the model's KV cache with batch 1, starting after a start token (the tokenizer's BOS,
else its EOS; recorded in the header). When the cache holds a full window, both sides drop it
and re-prime with the same prefill of the last window/2 inputs. Both sides use the same torch
thread count, dtype and device, with deterministic kernels. Batched full-sequence logits are
never used.

The header is mode "tokens" of `bitlens.compress.container`. Its fingerprint field is the
model's (SHA-256 over its config and weights). Its params hold the tokenizer's fingerprint
(SHA-256 of its serialisation), the token count, start token, window, vocabulary size, dtype,
device and the torch and transformers versions. Decoding checks them all before it starts, then
checks the CRC-32 of the bytes it decoded.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import TYPE_CHECKING, Any

import constriction
import numpy as np
import torch

from bitlens.compress.coder import DEFAULT_THREADS, CompressResult, coded_result
from bitlens.compress.container import Header, crc32, pack_header, unpack
from bitlens.compress.device import decoding_device, device_name
from bitlens.determinism import deterministic
from bitlens.errors import BitlensError
from bitlens.hf import token_steps
from bitlens.progress import progress_bar

if TYPE_CHECKING:
    from bitlens.hf import HFModel

MODE = "tokens"
# The same family as the byte coder's: the fast quantiser (constriction's default is perfect=True).
_FAMILY = constriction.stream.model.Categorical(perfect=False)
# Config keys that say where or by which version a model was saved, not what it computes.
_CONFIG_NOISE = ("transformers_version", "_name_or_path", "name_or_path", "_commit_hash")


def _token_model(model: Any) -> HFModel:
    if model is None or getattr(model, "tokenizer", None) is None or not hasattr(model, "model"):
        raise BitlensError(
            "tokens mode needs a Hugging Face causal LM with its tokenizer (--model hf:DIR, loaded "
            "with bitlens.runs.load_model)"
        )
    return model


# --- fingerprints --------------------------------------------------------------------------------


def model_fingerprint(model: HFModel) -> bytes:
    """SHA-256 (32 bytes) over the model's config JSON and its weights' names, dtypes, shapes and
    bytes: identifies the function the model computes, wherever its directory lies."""
    h = hashlib.sha256()
    config = {k: v for k, v in model.model.config.to_dict().items() if k not in _CONFIG_NOISE}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in sorted(model.model.state_dict().items()):
        flat = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())  # raw bytes of any dtype (bfloat16 too)
    return h.digest()


def text_backend(tokenizer: Any) -> Any:
    """A private copy of the tokenizer's `tokenizers.Tokenizer`, without truncation or padding:
    what tokens mode encodes and decodes with (and fingerprints)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BitlensError("tokens mode needs a fast tokenizer (tokenizer.json)")
    copy = type(backend).from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def tokenizer_fingerprint(backend: Any) -> str:
    """SHA-256 (hex) of the tokenizer's serialisation: vocabulary, merges, normaliser,
    pre-tokenizer, decoder and added tokens."""
    return hashlib.sha256(backend.to_str().encode()).hexdigest()


# --- tokens that reproduce the bytes ---------------------------------------------------------------


def detokenize(backend: Any, ids: list[int]) -> bytes:
    """The bytes the token ids stand for (the same function on both sides)."""
    return backend.decode(ids, skip_special_tokens=False).encode("utf-8")


def tokenize_exactly(backend: Any, data: bytes) -> list[int]:
    """Token ids whose `detokenize` is exactly `data`; a BitlensError (one line) when the tokenizer
    cannot reproduce the bytes, since a code for its tokens would not decode to them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BitlensError(
            f"tokens mode codes text: the input is not valid UTF-8 ({e.reason} at byte {e.start:,})"
        ) from None
    ids = list(backend.encode(text, add_special_tokens=False).ids)
    back = detokenize(backend, ids)
    if back != data:
        at = next((i for i, (a, b) in enumerate(zip(back, data)) if a != b), min(len(back), len(data)))
        raise BitlensError(
            f"the tokenizer does not reproduce this input (first difference at byte {at:,}: it "
            "normalises or lacks byte fallback); its tokens would not decode to these bytes"
        )
    return ids


# --- the computation both sides share ----------------------------------------------------------


def _transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def _dtype(model: HFModel) -> str:
    return str(next(model.model.parameters()).dtype).removeprefix("torch.")


class _OnDevice:
    """Runs the model on `device` for a block, then moves it back where the caller had it."""

    def __init__(self, model: HFModel, device: str) -> None:
        self.lm = model.model
        self.device = torch.device(device)
        self.home = next(self.lm.parameters()).device

    def __enter__(self) -> torch.device:
        if self.device != self.home:
            self.lm.to(self.device)
        return self.device

    def __exit__(self, *exc: object) -> None:
        if self.device != self.home:
            self.lm.to(self.home)


# --- compress and decompress -----------------------------------------------------------------------


def compress_tokens(
    data: bytes,
    model: HFModel,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    trace: list[np.ndarray] | None = None,
) -> tuple[bytes, CompressResult]:
    """Compress text losslessly with a Hugging Face causal LM: (file bytes, result).

    The tokenizer must reproduce `data` exactly (else a BitlensError and nothing is coded).
    Decoding needs the same model, tokenizer, torch and transformers versions, dtype and device,
    and uses the recorded thread count (default 1). model_bits is Σ −log2 p(token) under the
    model's float64 probabilities; `tokens` and `tokens_per_second` count the coded tokens.
    trace, if given, receives every step's probability array (for the bit-for-bit test).
    """
    model = _token_model(model)
    threads = threads or DEFAULT_THREADS
    where = device_name(device)
    t0 = time.perf_counter()
    backend = text_backend(model.tokenizer)
    ids = tokenize_exactly(backend, data)
    vocab, start, window = model.config.vocab_size, int(model.start_id), int(model.config.block_size)
    if max(ids, default=0) >= vocab or start >= vocab:
        raise BitlensError(f"the tokenizer's ids reach beyond the model's {vocab:,} outputs")
    encoder = constriction.stream.queue.RangeEncoder()
    model_bits = 0.0
    if ids:
        inputs = [start]
        with (
            deterministic(threads),
            _OnDevice(model, device) as dev,
            progress_bar(len(ids), "coding tokens", enabled=progress) as bar,
        ):
            steps = token_steps(model.model, inputs, len(ids), window, dev)
            for token, probs in zip(ids, steps, strict=True):
                if trace is not None:
                    trace.append(probs)
                encoder.encode(np.array([token], dtype=np.int32), _FAMILY, probs[None, :])
                model_bits += -math.log2(probs[token]) if probs[token] > 0 else math.inf
                inputs.append(token)
                bar.advance()
    payload = encoder.get_compressed().astype("<u4").tobytes()
    params = {
        "torch": torch.__version__,
        "transformers": _transformers_version(),
        "tokenizer": tokenizer_fingerprint(backend),
        "tokens": len(ids),
        "start": start,
        "window": window,
        "vocab": vocab,
        "dtype": _dtype(model),
        "device": where,
    }
    header = Header(
        mode=MODE,
        threads=threads,
        original_length=len(data),
        original_crc32=crc32(data),
        n_streams=1 if ids else 0,
        payload_words=len(payload) // 4,
        payload_crc32=crc32(payload),
        fingerprint=model_fingerprint(model),
        params=params,
    )
    head = pack_header(header)
    blob = head + payload
    seconds = time.perf_counter() - t0
    n = len(data)
    result = coded_result(
        MODE,
        n,
        head,
        payload,
        model_bits,
        header.n_streams,
        seconds,
        params=model.num_params(),
        bits_per_byte_with_model=(8 * len(blob) + 16 * model.num_params()) / n if n else None,
        tokens=len(ids),
        tokens_per_second=len(ids) / max(seconds, 1e-9),
    )
    return blob, result


def _check(header: Header, model: HFModel, backend: Any) -> dict:
    """The header's parameters, once everything decoding must repeat matches; else one line."""
    params = header.params
    have = model_fingerprint(model)
    if have != header.fingerprint:
        raise BitlensError(
            f"wrong model: the file needs model {header.fingerprint.hex()[:12]}…, "
            f"the given model is {have.hex()[:12]}…"
        )
    tok = tokenizer_fingerprint(backend)
    if params.get("tokenizer") != tok:
        raise BitlensError(
            f"wrong tokenizer: the file needs tokenizer {str(params.get('tokenizer'))[:12]}…, "
            f"the given one is {tok[:12]}…"
        )
    for key, here in (("torch", torch.__version__), ("transformers", _transformers_version())):
        if params.get(key) != here:
            raise BitlensError(
                f"the file was compressed with {key} {params.get(key)}, this is {key} {here}; "
                "the model's probabilities would differ, decode with that version"
            )
    if params.get("dtype") != _dtype(model):
        raise BitlensError(
            f"the file was compressed with the model in {params.get('dtype')}, it is loaded in "
            f"{_dtype(model)}; load it in the same dtype"
        )
    try:
        checked = {k: int(params[k]) for k in ("tokens", "start", "window", "vocab")}
    except (KeyError, TypeError, ValueError):
        raise BitlensError("corrupted file: invalid tokens-mode parameters in the header") from None
    if checked["vocab"] != model.config.vocab_size or not 2 <= checked["window"]:
        raise BitlensError("corrupted file: the header's vocabulary or window does not fit the model")
    return checked


def decompress_tokens(
    blob: bytes, model: HFModel, progress: bool = False, trace: list[np.ndarray] | None = None
) -> bytes:
    """Decode a file made by `compress_tokens` with the same model. Verifies the container, the
    model and tokenizer fingerprints, versions, dtype and device, then the CRC-32 of the output;
    any mismatch is a BitlensError, never silently wrong bytes."""
    header, payload = unpack(blob)
    if header.mode != MODE:
        raise BitlensError(f"this is a {header.mode} file, not a tokens file: decode it without hf:")
    model = _token_model(model)
    backend = text_backend(model.tokenizer)
    p = _check(header, model, backend)
    device = decoding_device(str(header.params.get("device", "cpu")))
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    inputs = [p["start"]]
    if p["tokens"]:
        with (
            deterministic(header.threads),
            _OnDevice(model, device) as dev,
            progress_bar(p["tokens"], "decoding tokens", enabled=progress) as bar,
        ):
            for probs in token_steps(model.model, inputs, p["tokens"], p["window"], dev):
                if trace is not None:
                    trace.append(probs)
                try:
                    token = int(decoder.decode(_FAMILY, probs[None, :])[0])
                except (ValueError, RuntimeError, AssertionError) as e:
                    raise BitlensError(f"corrupted file: the code stream cannot be decoded ({e})") from None
                inputs.append(token)
                bar.advance()
    try:
        out = detokenize(backend, inputs[1:])
    except Exception:  # a damaged stream can decode ids the tokenizer cannot turn into text
        out = b""
    if len(out) != header.original_length or crc32(out) != header.original_crc32:
        raise BitlensError(
            "decoded data fails its CRC-32 check: the model's probabilities differed from the "
            "encoder's (different hardware or library build?)"
        )
    return out
