"""Where the coder runs: a file coded on a GPU decodes only on the same GPU model (GPU and CPU
probabilities differ in the last bits), so the header records the device and decoding checks it."""

from __future__ import annotations

import copy

import torch

from bitlens.errors import BitlensError
from bitlens.model import GPT


def device_name(device: str) -> str:
    """What the header records about a device: "cpu", or "cuda:<GPU model>"."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return "cpu"
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise BitlensError(
            f"device {device!r} is not available here (use cpu, or cuda on a machine with a GPU)"
        )
    return f"cuda:{torch.cuda.get_device_name(dev)}"


def decoding_device(recorded: str) -> str:
    """The device to decode a file made on `recorded` (see device_name), or a clear error."""
    if recorded == "cpu":
        return "cpu"
    gpu = recorded.split(":", 1)[1]
    if not torch.cuda.is_available() or torch.cuda.get_device_name(0) != gpu:
        here = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        raise BitlensError(
            f"this file was compressed on a {gpu} GPU and decodes only on the same "
            f"GPU model (here: {here}); GPU and CPU probabilities differ in the last bits"
        )
    return "cuda"


def on_device(model: GPT, mode: str, device: str) -> GPT:
    """The coder's model on `device`; offline, a copy (the caller's frozen model stays put)."""
    if torch.device(device).type == "cpu":
        return model
    return (copy.deepcopy(model) if mode == "offline" else model).to(device)
