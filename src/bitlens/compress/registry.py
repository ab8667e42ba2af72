"""Every compressor bitlens can run, behind one protocol, in one dict.

`COMPRESSORS` maps a key (the choice of the comparison table and the benchmarks) to a factory
that builds the compressor from `CoderSettings`: the classical tools ignore them, the learned
coders take their model, online preset, seed and thread count from them. Tables use each
compressor's `name`. The model is a byte-level bitlens GPT (offline and adaptive rows) or a local
Hugging Face LM (the "tokens" row, `bitlens.compress.token_coder`); a factory whose model kind is
absent builds nothing and its row is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bitlens.compress.baselines import BASELINES, Classical
from bitlens.compress.coder import CompressResult, compress, decompress
from bitlens.compress.mixing import MixConfig
from bitlens.compress.online import ONLINE_PRESET
from bitlens.compress.token_coder import compress_tokens, decompress_tokens
from bitlens.model import GPT, GPTConfig
from bitlens.tokens import token_name


class Compressor(Protocol):
    """A lossless compressor whose every output is a complete file that decodes on its own."""

    @property
    def name(self) -> str:
        """The row name in comparison tables, e.g. "xz -9e" or "bitlens online+mix"."""
        ...

    def compress(self, data: bytes) -> tuple[bytes, CompressResult | None]:
        """(the compressed file, the learned coder's measurements; None for a classical tool)."""
        ...

    def decompress(self, blob: bytes) -> bytes: ...


@dataclass(frozen=True)
class CoderSettings:
    """What the learned coders need besides the bytes."""

    model: Any = None  # offline and adaptive: the trained GPT; tokens: an HFModel (or None)
    preset: str | GPTConfig = ONLINE_PRESET  # online: the model trained from scratch while coding
    seed: int = 0  # online: its initial weights
    threads: int | None = None  # torch threads (default: the coder's)
    progress: bool = False


@dataclass(frozen=True)
class CountsCoder:
    """The count models, match model and mixer of the `+mix` coders with no network: the
    baseline that shows what the network adds."""

    settings: CoderSettings

    @property
    def name(self) -> str:
        return "bitlens counts"

    def compress(self, data: bytes) -> tuple[bytes, CompressResult]:
        s = self.settings
        return compress(data, network=False, mix=MixConfig(), progress=s.progress, threads=s.threads)

    def decompress(self, blob: bytes) -> bytes:
        return decompress(blob, progress=self.settings.progress)


@dataclass(frozen=True)
class LearnedCoder:
    """bitlens in one mode (offline, online, adaptive), optionally mixed with count models."""

    mode: str
    mix: bool
    settings: CoderSettings

    @property
    def name(self) -> str:
        return f"bitlens {self.mode}" + ("+mix" if self.mix else "")

    @property
    def _model(self) -> GPT | None:
        return None if self.mode == "online" else self.settings.model

    def compress(self, data: bytes) -> tuple[bytes, CompressResult]:
        s = self.settings
        return compress(
            data,
            self._model,
            online=self.mode != "offline",
            preset=s.preset,
            seed=s.seed,
            progress=s.progress,
            mix=MixConfig() if self.mix else None,
            threads=s.threads,
        )

    def decompress(self, blob: bytes) -> bytes:
        return decompress(blob, self._model, progress=self.settings.progress)


@dataclass(frozen=True)
class TokensCoder:
    """A local Hugging Face LM coding its own tokens (frozen, one stream, on the model's device)."""

    settings: CoderSettings

    @property
    def name(self) -> str:
        model_name = Path(str(getattr(self.settings.model, "name", "") or "hf")).name
        return f"bitlens tokens ({model_name})"

    def compress(self, data: bytes) -> tuple[bytes, CompressResult]:
        s, model = self.settings, self.settings.model
        device = str(getattr(model, "device", "cpu"))
        return compress_tokens(data, model, threads=s.threads, device=device, progress=s.progress)

    def decompress(self, blob: bytes) -> bytes:
        return decompress_tokens(blob, self.settings.model, progress=self.settings.progress)


def _is_token_model(model: Any) -> bool:
    return model is not None and token_name(model) == "token"


def tokens_coder(settings: CoderSettings) -> TokensCoder | None:
    """The tokens row: only with a Hugging Face model in the settings."""
    return TokensCoder(settings) if _is_token_model(settings.model) else None


# Builds a compressor from the settings; None when they lack what it needs (a model).
CompressorFactory = Callable[[CoderSettings], Compressor | None]


def _classical(tool: Classical) -> CompressorFactory:
    return lambda settings: tool


def learned(mode: str, mix: bool = False) -> CompressorFactory:
    """The factory of bitlens in `mode` (offline and adaptive need settings.model)."""

    def build(settings: CoderSettings) -> LearnedCoder | None:
        if mode != "online" and (settings.model is None or _is_token_model(settings.model)):
            return None  # offline and adaptive code bytes with a byte-level model
        return LearnedCoder(mode, mix, settings)

    return build


COMPRESSORS: dict[str, CompressorFactory] = {
    **{key: _classical(tool) for key, tool in BASELINES.items()},
    "counts": CountsCoder,
    "offline": learned("offline"),
    "online": learned("online"),
    "online+mix": learned("online", mix=True),
    "adaptive": learned("adaptive"),
    "adaptive+mix": learned("adaptive", mix=True),
    "tokens": tokens_coder,
}
LEARNED = tuple(key for key in COMPRESSORS if key not in BASELINES)
