"""Learned coders beside classical compressors on the same bytes, every row a real round trip.

`compare_compressors` is the entry point shared by the benchmark and `bitlens demo`; it returns
a JSON-able dict and `plot_compression` draws it (bits per byte, lower is better).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bitlens.compress.baselines import BASELINES
from bitlens.compress.online import ONLINE_PRESET
from bitlens.compress.registry import COMPRESSORS, CoderSettings, Compressor
from bitlens.errors import BitlensError
from bitlens.model import GPT

DEFAULT_LEARNED = ("counts", "offline", "online", "online+mix", "adaptive", "tokens")
DEFAULT_COMPRESSORS = (*BASELINES, *DEFAULT_LEARNED)
# The quick demo's learned rows: the trained model (offline) and the count models. The online
# coders train every 16 bytes per stream, about 11 s each way whatever the size of a small
# input, so they (and "adaptive") wait for the full run.
QUICK_LEARNED = ("counts", "offline", "tokens")


def _row(coder: Compressor, data: bytes) -> dict:
    """One table row: sizes, times and the round trip of `coder` on `data`."""
    t0, c0 = time.perf_counter(), time.process_time()
    blob, result = coder.compress(data)
    t1, c1 = time.perf_counter(), time.process_time()
    out = coder.decompress(blob)
    t2, c2 = time.perf_counter(), time.process_time()
    row = {
        "name": coder.name,
        "bits_per_byte": 8 * len(blob) / len(data) if data else None,
        "output_bytes": len(blob),
        "compress_seconds": t1 - t0,
        "decompress_seconds": t2 - t1,
        # CPU time of this process: on a shared machine, closer to what an idle core would take
        "compress_cpu_seconds": c1 - c0,
        "decompress_cpu_seconds": c2 - c1,
        "roundtrip": out == data,
    }
    if result is not None:
        row.update(
            model_bits=result.model_bits,
            overhead_bits=result.overhead_bits,
            coder_overhead_bits=result.coder_overhead_bits,
            n_streams=result.n_streams,
        )
        if result.network_bits is not None:
            row["network_bits"] = result.network_bits
        if result.network_saves_bits_per_byte is not None:
            row["counts_only_bits"] = result.counts_only_bits
            row["network_saves_bits_per_byte"] = result.network_saves_bits_per_byte
        if result.bits_per_byte_with_model is not None:
            row["bits_per_byte_with_model"] = result.bits_per_byte_with_model
        if result.tokens is not None:
            row["tokens"] = result.tokens
            row["tokens_per_second"] = result.tokens_per_second
    return row


@dataclass(frozen=True)
class ComparisonConfig:
    """Which compressors code how much of the data: the first `max_bytes` (0 = all), in the row
    order of `compressors` (keys of COMPRESSORS). `online_preset` is the model the online coders
    train from scratch; `threads` the learned coders' torch threads (None: the coder's default)."""

    max_bytes: int = 32_768  # fits the full demo's ~150 s budget for the learned coders on 2 cores
    compressors: tuple[str, ...] = DEFAULT_COMPRESSORS
    online_preset: str = ONLINE_PRESET
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [key for key in self.compressors if key not in COMPRESSORS]
        if unknown:
            raise BitlensError(f"unknown compressors {unknown}; choose from {', '.join(COMPRESSORS)}")
        object.__setattr__(self, "compressors", tuple(self.compressors))

    @classmethod
    def quick(cls) -> ComparisonConfig:
        """Seconds: 8 KiB, the classical rows, the count models and the trained model (offline)."""
        return cls(max_bytes=8192, compressors=(*BASELINES, *QUICK_LEARNED))

    @classmethod
    def full(cls) -> ComparisonConfig:
        return cls()


@dataclass(frozen=True)
class ComparisonResult:
    """One row per compressor that ran (bits per byte, sizes, timings, round trip)."""

    input_bytes: int
    online_preset: str
    seed: int
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_compressors(
    data: bytes, model: GPT | Any | None, config: ComparisonConfig, progress: bool = False
) -> ComparisonResult:
    """Compress the first `config.max_bytes` of `data` with each of `config.compressors`, decode
    each output, and report bits per byte.

    Every compressor sees the same slice. "bitlens offline" and "bitlens adaptive" need a
    byte-level `model` and "bitlens tokens" a Hugging Face one (hf:DIR); each is skipped
    without its kind; offline rows also carry bits_per_byte_with_model (weights at 2
    bytes per parameter), "+mix" rows network_bits (the network's own code length, bits).
    """
    data = data[: config.max_bytes or len(data)]
    settings = CoderSettings(
        model=model, preset=config.online_preset, seed=config.seed, threads=config.threads, progress=progress
    )
    coders = [COMPRESSORS[key](settings) for key in config.compressors]
    rows = [_row(coder, data) for coder in coders if coder is not None]
    return ComparisonResult(
        input_bytes=len(data), online_preset=config.online_preset, seed=config.seed, rows=rows
    )


def plot_compression(result: dict, path: str | Path) -> list[Path]:
    """Bar chart of bits per byte per compressor, saved as PNG and SVG; returns the two paths."""
    from bitlens.plotting import new_figure, save_figure

    rows = [r for r in result["rows"] if r.get("bits_per_byte") is not None]
    names = [r["name"] for r in rows]
    values = [r["bits_per_byte"] for r in rows]
    colors = ["#4c72b0" if n.startswith("bitlens") else "#999999" for n in names]
    fig, ax = new_figure(width=7, height=0.45 * len(rows) + 1.2)
    bars = ax.barh(names, values, color=colors)
    for bar, r in zip(bars, rows):
        label = f"{r['bits_per_byte']:.3f}" + ("" if r.get("roundtrip", True) else " (FAILED)")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + label, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bits per byte (lower is better)")
    ax.set_title(f"lossless compression of {result['input_bytes']:,} bytes")
    ax.set_xlim(0, max(values + [1.0]) * 1.18)
    return save_figure(fig, path)
