"""Local Hugging Face causal LMs on bitlens's instruments (optional extra `bitlens[hf]`).

`--model hf:PATH` names a local directory holding a causal LM and its tokenizer (as written by
`save_pretrained`). It is loaded with `local_files_only=True`: bitlens works offline and never
downloads. `HFModel` gives it the small interface the instruments use on a bitlens `GPT`:
`config.block_size / n_layer / n_embd / vocab_size`, `model(idx) -> logits`,
`forward_hidden(idx) -> (logits, n_layer + 1 hidden states)`, `unembed(h)`, plus `encode(data)`,
which turns bytes into a `TokenStream` that knows each token's byte span, so bits per token
convert to bits per byte.

Hugging Face returns the last hidden state *after* the final norm; the lenses therefore use the
model's own logits at the last layer and `unembed` (final norm + unembedding) below it.

Runtime settings live here too: the device (`--device`, auto: cuda, else mps, else cpu), the
dtype (`--dtype`, float32 unless asked) and the scoring batch as a token budget
(`--batch-tokens`). The model runs on its device; logits and hidden states come back to the CPU
in float32, so every instrument downstream is unchanged. Running out of memory (on load or in a
forward) is a one-line BitlensError, never a traceback. Byte-level bitlens models are not
affected: they keep their deterministic float32 CPU path.

`token_steps` is the one KV-cache loop over tokens: the tokens coder codes with it and a
token-level parent of the byte-level offspring samples with it (`bitlens.offspring.parent`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bitlens.errors import BitlensError
from bitlens.tokens import TokenStream

HF_PREFIX = "hf:"
# Where common architectures keep their final norm (the lens decodes through it).
FINAL_NORMS = (
    "transformer.ln_f",  # GPT-2, GPT-J, GPT-Neo
    "model.norm",  # Llama, Mistral, Qwen, Gemma
    "gpt_neox.final_layer_norm",  # Pythia / GPT-NeoX
    "model.decoder.final_layer_norm",  # OPT
    "model.final_layernorm",  # Phi
)
MAX_CONTEXT = 1024  # longer contexts are allowed by some models but cost too much on a CPU
DEVICES = ("cpu", "cuda", "mps")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_BATCH_TOKENS = 8192  # tokens per scoring batch (8 windows of GPT-2's 1,024)


def resolve_device(device: str | None) -> str:
    """The device to run on: the one asked for (cpu, cuda, cuda:N, mps), or when None the best
    available here: cuda, else mps, else cpu. An unavailable device is a one-line error."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    kind = device.split(":", 1)[0]
    if kind not in DEVICES:
        raise BitlensError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise BitlensError(f"device {device!r} is not available here: this torch sees no CUDA GPU")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BitlensError(f"device {device!r} is not available here (Apple GPUs only)")
    return device


def resolve_dtype(dtype: str | None) -> torch.dtype:
    """float32 (default), bfloat16 or float16."""
    if dtype is None:
        return torch.float32
    if dtype not in DTYPES:
        raise BitlensError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError)
        and ("out of memory" in text or "can't allocate memory" in text or "not enough memory" in text)
    )


@contextmanager
def memory_guard(what: str, device: str, dtype: torch.dtype) -> Iterator[None]:
    """Turn running out of memory into one line that says what to try."""
    try:
        yield
    except (RuntimeError, MemoryError) as e:
        if not (_is_oom(e) or isinstance(e, MemoryError)):
            raise
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        raise BitlensError(
            f"{what} does not fit in memory on {device} in {str(dtype).removeprefix('torch.')}: "
            "try --dtype bfloat16, a smaller --batch-tokens, or another --device"
        ) from None


@dataclass(frozen=True)
class HFConfig:
    block_size: int
    n_layer: int
    n_embd: int
    vocab_size: int


class HFModel:
    """A local Hugging Face causal LM and its tokenizer behind the bitlens model interface."""

    def __init__(self, model, tokenizer, name: str = "", batch_tokens: int = DEFAULT_BATCH_TOKENS) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        if batch_tokens < 1:
            raise BitlensError(f"--batch-tokens must be at least 1, got {batch_tokens}")
        self.batch_tokens = int(batch_tokens)
        c = model.config
        ctx = getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or MAX_CONTEXT
        n_embd = model.get_output_embeddings().weight.shape[1]
        vocab = model.get_output_embeddings().weight.shape[0]
        self.config = HFConfig(min(int(ctx), MAX_CONTEXT), int(c.num_hidden_layers), int(n_embd), int(vocab))
        self.final_norm = _find_final_norm(model)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise BitlensError(f"tokenizer of {name} has no BOS or EOS token to predict the first token")
        self.start_id = int(start)

    def eval(self) -> HFModel:
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def batch_size(self, length: int) -> int:
        """Sequences of `length` tokens per batch under the token budget (at least one)."""
        return max(1, self.batch_tokens // max(1, length))

    def _guard(self):
        return memory_guard(self.name or "the model", str(self.device), self.dtype)

    def parameters(self):
        return self.model.parameters()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def flops_per_token(self, train: bool = False, context: int | None = None) -> float:
        """FLOPs per token as `bitlens.model.GPT.flops_per_token` counts them: 6·N (train) or 2·N
        (forward) over the matmul weights (embedding lookups excluded, the unembedding included),
        plus attention 12·L·d·T or 4·L·d·T for context T."""
        embeddings = {id(m.weight) for m in self.model.modules() if isinstance(m, torch.nn.Embedding)}
        out = self.model.get_output_embeddings().weight
        n = sum(p.numel() for p in self.model.parameters() if p.dim() >= 2 and id(p) not in embeddings)
        n += out.numel() if id(out) in embeddings else 0
        c = self.config
        t = c.block_size if context is None else context
        return (6.0 if train else 2.0) * n + (12.0 if train else 4.0) * c.n_layer * c.n_embd * t

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids → logits (B, T, V), float32 on the CPU."""
        with self._guard():
            return self.model(input_ids=idx.to(self.device)).logits.float().cpu()

    @torch.no_grad()
    def token_bits(
        self, idx: torch.Tensor, targets: torch.Tensor, with_entropy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Surprisal of `targets` and (if asked) the predictive entropy, (B, T) float32 bits on the
        CPU, computed on the model's device: only B·T numbers cross back, not B·T·V logits."""
        from bitlens.units import entropy_bits, surprisal_bits

        with self._guard():
            logits = self.model(input_ids=idx.to(self.device)).logits
            s = surprisal_bits(logits, targets.to(self.device)).cpu()
            h = entropy_bits(logits).cpu() if with_entropy else None
        return s, h

    @torch.no_grad()
    def forward_hidden(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the n_layer + 1 hidden states (the last one after the final norm), float32
        on the CPU."""
        with self._guard():
            out = self.model(input_ids=idx.to(self.device), output_hidden_states=True)
            return out.logits.float().cpu(), [h.float().cpu() for h in out.hidden_states]

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """A residual stream (before the final norm) → next-token logits (float32, h's device)."""
        if self.final_norm is None:
            raise BitlensError(f"{self.name}: unknown architecture, cannot find its final norm for a lens")
        with self._guard():
            x = h.to(self.device, self.dtype)
            return self.model.get_output_embeddings()(self.final_norm(x)).float().to(h.device)

    def encode(self, data: bytes) -> TokenStream:
        """Tokenize UTF-8 `data`; each token's byte span comes from the tokenizer's offsets."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BitlensError(
                f"a tokenizer model reads text: the data is not valid UTF-8 ({e.reason} at byte {e.start})"
            ) from None
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        if not ids:
            raise BitlensError("the tokenizer produced no tokens for this data")
        back = self.tokenizer.decode(ids, clean_up_tokenization_spaces=False)
        if back != text:
            raise BitlensError(
                "the tokenizer does not reproduce this text exactly, so its code "
                "length would not be a code for these bytes"
            )
        # byte offset of every character boundary, then each token's end in bytes
        char_bytes = np.fromiter((len(ch.encode("utf-8")) for ch in text), dtype=np.int64, count=len(text))
        boundary = np.concatenate([[0], np.cumsum(char_bytes)])
        ends = boundary[np.maximum.accumulate(np.array([e for _, e in enc["offset_mapping"]]))]
        ends[-1] = len(data)
        ids_t = torch.tensor(ids, dtype=torch.long)
        return TokenStream(ids_t, self.start_id, ends.astype(np.int64), len(data))


def _find_final_norm(model):
    for name in FINAL_NORMS:
        try:
            return model.get_submodule(name)
        except AttributeError:
            continue
    return None


def _cache_keyword(lm: torch.nn.Module) -> str:
    """The forward's KV-cache argument (and output field): `cache` from transformers 5.x on,
    `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


@torch.no_grad()
def token_steps(
    lm: torch.nn.Module, inputs: list[int], n: int, window: int, device: torch.device, start: int = 0
) -> Iterator[np.ndarray]:
    """Float64 next-token probabilities (V,) for tokens `start` … n-1, one KV-cache step each.

    inputs[0] is the start token; the consumer must append token i to `inputs` before asking for
    token i+1. The cache is primed with the last window/2 inputs at the start and whenever it
    holds a full window. (`start` > 0 continues a prompt inputs[1 : start + 1].)
    """
    keyword = _cache_keyword(lm)
    keep = max(1, window // 2)
    cache: Any = None
    cached = 0  # inputs in the cache
    for pos in range(start, n):
        if pos == start or cached == window:  # (re-)prime: a fresh cache from the last `keep` inputs
            step, cache = inputs[max(0, pos + 1 - keep) : pos + 1], None
            cached = len(step)
        else:
            step = inputs[pos : pos + 1]
            cached += 1
        out = lm(input_ids=torch.tensor([step], device=device), use_cache=True, **{keyword: cache})
        cache = getattr(out, keyword)
        yield torch.softmax(out.logits[0, -1].double(), dim=-1).cpu().numpy()


def load_hf_model(
    path: str | Path,
    device: str | None = None,
    dtype: str | None = None,
    batch_tokens: int | None = None,
) -> HFModel:
    """Load a causal LM and its tokenizer from a local directory, offline (never a download),
    onto `device` (None: auto, see `resolve_device`) in `dtype` (None: float32)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BitlensError(
            f"no local model directory {str(path)!r}: bitlens works offline and never "
            "downloads; save the model with save_pretrained() and pass hf:DIR"
        )
    if not (p / "config.json").exists():
        raise BitlensError(f"{p} has no config.json: not a Hugging Face model directory")
    if not any(p.glob("*.safetensors")):
        pickled = sorted(f.name for f in p.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        found = f" (found {', '.join(pickled)}: pickled weights)" if pickled else ""
        raise BitlensError(
            f"{p} has no .safetensors weights{found}; bitlens never unpickles weights. Convert once "
            "where you trust the file: AutoModelForCausalLM.from_pretrained(DIR)"
            ".save_pretrained(DIR, safe_serialization=True)"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing below may reach the hub
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise BitlensError("Hugging Face models need the optional extra: pip install 'bitlens[hf]'") from None
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a local load is quick; its bar would sit above any error line
    where, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        with memory_guard(str(p), where, torch_dtype):
            model = AutoModelForCausalLM.from_pretrained(
                str(p), local_files_only=True, use_safetensors=True, dtype=torch_dtype
            )
            model = model.to(torch.device(where))  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError) as e:
        raise BitlensError(f"cannot load a causal LM from {p}: {str(e).splitlines()[0]}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if not getattr(tokenizer, "is_fast", False):
        raise BitlensError(f"{p}: bitlens needs a fast tokenizer (tokenizer.json) for byte offsets")
    model.requires_grad_(False)
    return HFModel(model, tokenizer, name=str(p), batch_tokens=batch_tokens or DEFAULT_BATCH_TOKENS)
