"""Benchmark the information measures on the bundled corpus and on enwik8-head (if present).

Writes JSON and figures to benchmarks/out/measures/. Skips enwik8 cleanly when ../shared is absent.
Run from the repository root:
    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/measures.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bitlens.config import override
from bitlens.data import bundled_corpus_bytes, split_corpus
from bitlens.measures.capacity import CapacityConfig, measure_capacity, plot_capacity
from bitlens.measures.dynamics import DynamicsConfig, measure_dynamics, plot_dynamics
from bitlens.measures.prequential import PrequentialConfig, measure_prequential, plot_prequential
from bitlens.measures.surprisal import SurprisalConfig, measure_surprisal, plot_surprisal
from bitlens.measures.validate import ValidationConfig, validate_measures
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.train import TRAIN_PRESETS, train

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "measures"
ENWIK8 = ROOT.parent.parent / "shared" / "corpora" / "enwik8-head.txt"


def corpora() -> dict[str, bytes]:
    out = {"tinyshakespeare": bundled_corpus_bytes()}
    if ENWIK8.exists():
        out["enwik8-head"] = ENWIK8.read_bytes()
    else:
        print(f"skipping enwik8-head: {ENWIK8} not found")
    return out


def trained_tiny(data: bytes, seed: int) -> tuple[GPT, bytes]:
    """A tiny model trained with the preset's schedule on the head; returns it and the held-out tail."""
    cfg = MODEL_PRESETS["tiny"]
    split = split_corpus(data, cfg.block_size)
    torch.manual_seed(seed)
    model = GPT(cfg)
    train(model, split.train, TRAIN_PRESETS["tiny"])
    return model, bytes(split.val.numpy())


def save(name: str, result: dict, plot_fn, seconds: float) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    result = {**result, "benchmark_seconds": seconds}
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2))
    if plot_fn is not None:
        plot_fn(result, OUT / name)
    print(f"{name}: {seconds:.0f} s → {OUT / name}.json", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--only", nargs="*", default=None, help="surprisal prequential dynamics capacity validate"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    want = set(args.only or ["surprisal", "prequential", "dynamics", "capacity", "validate"])
    q = "-quick" if args.quick else ""

    def config(cls):
        """The measure's quick or full config, with this run's seed."""
        return override(cls.quick() if args.quick else cls.full(), seed=args.seed)

    for cname, data in corpora().items():
        if "surprisal" in want:
            t0 = time.perf_counter()
            model, heldout = trained_tiny(data, args.seed)
            r = measure_surprisal(model, heldout, config(SurprisalConfig)).to_dict()
            save(f"surprisal-{cname}{q}", r, plot_surprisal, time.perf_counter() - t0)
        if "prequential" in want:
            t0 = time.perf_counter()
            r = measure_prequential(data, config(PrequentialConfig)).to_dict()
            save(f"prequential-{cname}{q}", r, plot_prequential, time.perf_counter() - t0)
        if "dynamics" in want:
            t0 = time.perf_counter()
            r = measure_dynamics(data, config(DynamicsConfig)).to_dict()
            save(f"dynamics-{cname}{q}", r, plot_dynamics, time.perf_counter() - t0)
    if "capacity" in want:
        t0 = time.perf_counter()
        r = measure_capacity(config(CapacityConfig)).to_dict()
        save(f"capacity{q}", r, plot_capacity, time.perf_counter() - t0)
    if "validate" in want:
        t0 = time.perf_counter()
        r = validate_measures(config(ValidationConfig)).to_dict()
        save(f"validate{q}", r, None, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
