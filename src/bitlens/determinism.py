"""Reproducible torch computations: one thread count and deterministic kernels, for a block of code
(the coder's encoder and decoder must compute identical probabilities; training uses it too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bitlens.errors import BitlensError


@contextmanager
def deterministic(threads: int, kernels: bool = True) -> Iterator[None]:
    """Fix the torch thread count and (with `kernels`) turn on deterministic algorithms; restore
    both afterwards. `kernels=False` keeps the caller's kernel setting (for estimates that never
    have to decode, e.g. schedule sweeps, where the faster non-deterministic kernels are fine)."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    try:
        torch.set_num_threads(threads)
    except RuntimeError:
        pass
    if torch.get_num_threads() != threads:
        torch.set_num_threads(old_threads)
        raise BitlensError(f"cannot run torch with {threads} threads, which this file needs")
    # cuBLAS is only deterministic with a fixed workspace (read when CUDA starts up).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if kernels:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
