"""Learned coders beside classical compressors on the same bytes, every row a real round trip.

`compare_compressors` is the entry point shared by the benchmark and `bitlens demo`; it returns
a JSON-able dict and `plot_compression` draws it (bits per byte, lower is better).
"""

from __future__ import annotations

import time
from pathlib import Path

from bitlens.baselines import BASELINES
from bitlens.coding import compress, decompress
from bitlens.mixing import MixConfig
from bitlens.model import GPT

QUICK_BYTES = 8192  # quick mode codes only this prefix
DEFAULT_BYTES = 32768  # fits the full demo's ~150 s budget for the learned coders on 2 cores
LEARNED = ("offline", "online", "online+mix", "adaptive", "adaptive+mix")
DEFAULT_LEARNED = ("offline", "online", "online+mix", "adaptive")


def _row(name: str, data: bytes, enc, dec) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    blob, extra = enc(data)
    t1, c1 = time.perf_counter(), time.process_time()
    out = dec(blob)
    t2, c2 = time.perf_counter(), time.process_time()
    row = {
        "name": name,
        "bits_per_byte": 8 * len(blob) / len(data) if data else None,
        "output_bytes": len(blob),
        "compress_seconds": t1 - t0,
        "decompress_seconds": t2 - t1,
        # CPU time of this process: on a shared machine, closer to what an idle core would take
        "compress_cpu_seconds": c1 - c0,
        "decompress_cpu_seconds": c2 - c1,
        "roundtrip": out == data,
    }
    row.update(extra)
    return row


def compare_compressors(data: bytes, model: GPT | None, online_preset: str = "tiny", seed: int = 0,
                        quick: bool = False, progress: bool = False,
                        max_bytes: int | None = None,
                        learned: tuple[str, ...] = DEFAULT_LEARNED, baselines: bool = True,
                        threads: int | None = None) -> dict:
    """Compress `data` (its first max_bytes: default 8 KB if quick, else 32 KB) with every
    classical baseline and the learned coders, decode each output, and report bits per byte.

    Every compressor sees the same slice. "bitlens offline" and "bitlens adaptive" need `model`;
    offline rows also carry bits_per_byte_with_model (weights at 2 bytes per parameter).
    `learned` picks the learned rows from LEARNED; "+mix" rows mix the network with count
    models (`bitlens.mixing`) and also carry network_bits, the network's own code length.
    Rows that need a model are skipped without one. threads: torch threads of the learned
    coders (default: `bitlens.coding`'s).
    """
    limit = max_bytes or (QUICK_BYTES if quick else DEFAULT_BYTES)
    data = data[:limit]
    unknown = set(learned) - set(LEARNED)
    if unknown:
        raise ValueError(f"unknown learned rows {sorted(unknown)}; choose from {LEARNED}")
    rows = [
        _row(name, data, lambda b, c=c: (c.compress(b), {}), c.decompress)
        for name, c in BASELINES.items()
    ] if baselines else []

    def learned_row(name: str, coder_model: GPT | None, online: bool, mixing: bool = False) -> dict:
        def enc(b: bytes):
            blob, r = compress(b, coder_model, online=online, preset=online_preset, seed=seed,
                               progress=progress, mix=MixConfig() if mixing else None,
                               threads=threads)
            extra = {"model_bits": r.model_bits, "overhead_bits": r.overhead_bits,
                     "coder_overhead_bits": r.coder_overhead_bits, "n_streams": r.n_streams}
            if r.network_bits is not None:
                extra["network_bits"] = r.network_bits
            if r.bits_per_byte_with_model is not None:
                extra["bits_per_byte_with_model"] = r.bits_per_byte_with_model
            return blob, extra

        return _row(name, data, enc, lambda blob: decompress(blob, coder_model, progress=progress))

    for kind in learned:
        mode, mixing = kind.removesuffix("+mix"), kind.endswith("+mix")
        if mode in ("offline", "adaptive") and model is None:
            continue
        rows.append(learned_row(f"bitlens {kind}", None if mode == "online" else model,
                                online=mode != "offline", mixing=mixing))
    return {"input_bytes": len(data), "online_preset": online_preset, "seed": seed, "rows": rows}


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
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + label, va="center",
                fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bits per byte (lower is better)")
    ax.set_title(f"lossless compression of {result['input_bytes']:,} bytes")
    ax.set_xlim(0, max(values + [1.0]) * 1.18)
    return save_figure(fig, path)
