"""Tiny Hugging Face causal LMs and tokenizers built here, never downloaded: a byte-level BPE (as
GPT-2 and GPT-NeoX use), a BPE with byte fallback laid out as Llama 2's tokenizer.json, and
random models of a few hundred KB saved with `save_pretrained`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from tokenizers import (
    ByteLevelBPETokenizer,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

SPACE = "▁"  # SentencePiece's word marker


def byte_level_tokenizer(text: str, vocab_size: int = 320) -> transformers.PreTrainedTokenizerFast:
    """GPT-2's kind: byte-level BPE over all 256 bytes, "<|endoftext|>" as BOS and EOS."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([text], vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


def byte_fallback_tokenizer(
    text: str, merges_vocab: int = 200, byte_fallback: bool = True
) -> transformers.PreTrainedTokenizerFast:
    """Llama 2's kind: <unk> <s> </s>, the 256 byte tokens <0x00>…<0xFF>, then BPE pieces trained
    on `text`; spaces become "▁" and one is prepended. Without byte fallback, a character never
    seen in `text` becomes <unk> and the text does not come back."""
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=merges_vocab, min_frequency=2, special_tokens=["<unk>"])
    trainer_tok.train_from_iterator([text], trainer)
    trained = trainer_tok.get_vocab()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"<0x{b:02X}>": 3 + b for b in range(256)}
    for piece, _ in sorted(trained.items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
        for m in json.loads(trainer_tok.to_str())["model"]["merges"]
    ]
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=byte_fallback)
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_config(arch: str, tokenizer) -> transformers.PretrainedConfig:
    """A 2-layer, 32-wide model of `arch` with a 64-token window over the tokenizer's vocabulary."""
    common = dict(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    if arch == "gpt2":
        return transformers.GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=2, **common)
    if arch == "neox":
        return transformers.GPTNeoXConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            **common,
        )
    if arch == "llama":
        return transformers.LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,  # grouped-query attention, as Llama 2/3 and Qwen use
            max_position_embeddings=64,
            **common,
        )
    raise ValueError(arch)


def save_tiny(arch: str, tokenizer, out: Path, seed: int = 0) -> Path:
    """A random tiny model of `arch` with `tokenizer`, saved to `out` (safetensors)."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(tiny_config(arch, tokenizer))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


ARCHS = ("gpt2", "neox", "llama")
# Non-ASCII of every UTF-8 length (2, 3 and 4 bytes); the trained tokenizers never saw any of it.
UNICODE = "Naïve café — 漢字 🙂\n".encode()


def tiny_model_dirs(text: str, root: Path) -> dict[str, Path]:
    """Every tiny model the hf tests use, saved under `root`: each architecture at seed 0 (Llama
    with a byte-fallback tokenizer), GPT-2 at seed 1 (another model, same tokenizer), the Llama
    weights with a tokenizer lacking byte fallback, and a GPT-2 directory holding only a
    `pytorch_model.bin` (which must never be opened)."""
    import shutil

    byte_level, fallback = byte_level_tokenizer(text), byte_fallback_tokenizer(text)
    tokenizer = {"gpt2": byte_level, "neox": byte_level, "llama": fallback}
    out = {arch: save_tiny(arch, tokenizer[arch], root / arch) for arch in ARCHS}
    out["gpt2-seed1"] = save_tiny("gpt2", byte_level, root / "gpt2-seed1", seed=1)
    no_fallback = byte_fallback_tokenizer(text, byte_fallback=False)
    out["llama-no-fallback"] = save_tiny("llama", no_fallback, root / "llama-no-fallback")
    pickled = root / "pickled"
    shutil.copytree(out["gpt2"], pickled)
    for f in pickled.glob("*.safetensors"):
        f.unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not a pickle, must never be opened")
    out["pickled"] = pickled
    return out
