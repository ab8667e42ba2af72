"""What makes the encoder and the decoder compute the same probabilities: one thread count,
deterministic kernels, and the same device (a file coded on a GPU decodes only on that GPU model).
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from typing import Iterator

import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT


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


def device_name(device: str) -> str:
    """What the header records about a device: "cpu", or "cuda:<GPU model>"."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return "cpu"
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise BitlensError(f"device {device!r} is not available here "
                           "(use cpu, or cuda on a machine with a GPU)")
    return f"cuda:{torch.cuda.get_device_name(dev)}"


def decoding_device(recorded: str) -> str:
    """The device to decode a file made on `recorded` (see device_name), or a clear error."""
    if recorded == "cpu":
        return "cpu"
    gpu = recorded.split(":", 1)[1]
    if not torch.cuda.is_available() or torch.cuda.get_device_name(0) != gpu:
        here = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        raise BitlensError(f"this file was compressed on a {gpu} GPU and decodes only on the same "
                           f"GPU model (here: {here}); GPU and CPU probabilities differ in the last bits")
    return "cuda"


def on_device(model: GPT, mode: str, device: str) -> GPT:
    if torch.device(device).type == "cpu":
        return model
    return (copy.deepcopy(model) if mode == "offline" else model).to(device)
