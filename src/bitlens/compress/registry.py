"""Every compressor bitlens can run, behind one protocol, in one dict.

`COMPRESSORS` maps a key (the choice of the comparison table and the benchmarks) to a factory
that builds the compressor from `CoderSettings`: the classical tools ignore them, the learned
coders take their model, online preset, seed and thread count from them. Tables use each
compressor's `name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bitlens.compress.baselines import BASELINES, Classical
from bitlens.compress.coder import CompressResult, compress, decompress
from bitlens.compress.mixing import MixConfig
from bitlens.compress.online import ONLINE_PRESET
from bitlens.model import GPT, GPTConfig


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

    model: GPT | None = None  # offline and adaptive: the trained model (and decoding needs it)
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


# Builds a compressor from the settings; None when they lack what it needs (a model).
CompressorFactory = Callable[[CoderSettings], Compressor | None]


def _classical(tool: Classical) -> CompressorFactory:
    return lambda settings: tool


def learned(mode: str, mix: bool = False) -> CompressorFactory:
    """The factory of bitlens in `mode` (offline and adaptive need settings.model)."""

    def build(settings: CoderSettings) -> LearnedCoder | None:
        if mode != "online" and settings.model is None:
            return None
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
}
LEARNED = tuple(key for key in COMPRESSORS if key not in BASELINES)
