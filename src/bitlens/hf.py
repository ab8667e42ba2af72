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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class HFConfig:
    block_size: int
    n_layer: int
    n_embd: int
    vocab_size: int


class HFModel:
    """A local Hugging Face causal LM and its tokenizer behind the bitlens model interface."""

    def __init__(self, model, tokenizer, name: str = "") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
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

    def parameters(self):
        return self.model.parameters()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids → logits (B, T, V), float32."""
        return self.model(input_ids=idx).logits.float()

    def forward_hidden(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the n_layer + 1 hidden states (the last one after the final norm)."""
        out = self.model(input_ids=idx, output_hidden_states=True)
        return out.logits.float(), [h.float() for h in out.hidden_states]

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """A residual stream (before the final norm) → next-token logits."""
        if self.final_norm is None:
            raise BitlensError(f"{self.name}: unknown architecture, cannot find its final norm for a lens")
        return self.model.get_output_embeddings()(self.final_norm(h)).float()

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


def load_hf_model(path: str | Path) -> HFModel:
    """Load a causal LM and its tokenizer from a local directory, offline (never a download)."""
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
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, KeyError) as e:
        raise BitlensError(f"cannot load a causal LM from {p}: {str(e).splitlines()[0]}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if not getattr(tokenizer, "is_fast", False):
        raise BitlensError(f"{p}: bitlens needs a fast tokenizer (tokenizer.json) for byte offsets")
    model.requires_grad_(False)
    return HFModel(model, tokenizer, name=str(p))
