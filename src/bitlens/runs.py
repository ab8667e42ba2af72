"""Run directories and artefacts: atomic writes, safetensors weights, config.json.

A run directory holds `config.json` (readable), `model.safetensors` (exact weights),
`metrics.jsonl` and, while training, `checkpoint.safetensors`. Weights are only ever read with
safetensors: nothing a user hands us is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bitlens.errors import BitlensError
from bitlens.model import GPT, GPTConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.safetensors"


def _new_file_mode() -> int:
    """The mode `open()` gives a new file: 0o666 less the umask (mkstemp's temp files are 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`; the file gets the
    umask's mode, as a plain write would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _new_file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Save tensors as safetensors atomically (temp file, fsync, rename), with the umask's mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata)
        os.chmod(tmp, _new_file_mode())  # after save_file, which creates the file anew
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing or corrupt file is a BitlensError."""
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise BitlensError(f"weights not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise BitlensError(f"cannot read weights {path}: not a valid safetensors file ({e})") from None


def model_state(model: GPT) -> dict[str, torch.Tensor]:
    """State dict without the tied duplicate (lm_head.weight is wte.weight when tied)."""
    tied = model.config.tie_embeddings
    return {k: v for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}


def save_model(model: GPT, path: str | Path) -> None:
    atomic_save_tensors(path, model_state(model))


def load_model_weights(model: GPT, path: str | Path) -> None:
    """Load weights into `model`, with a clear error if they do not fit its config."""
    apply_weights(model, load_tensors(path), str(path))


def apply_weights(model: GPT, state: dict[str, torch.Tensor], path: str) -> None:
    """Copy a weights dict (as saved by `save_model`) into `model`, checking names and shapes."""
    state = dict(state)
    missing = set(model_state(model)) - set(state)
    unexpected = set(state) - set(model_state(model))
    if missing or unexpected:
        raise BitlensError(f"weights in {path} do not match the model config (wrong model?)")
    for k, v in model_state(model).items():
        if state[k].shape != v.shape:
            raise BitlensError(f"weights in {path} do not match the model config (shape of {k})")
    if model.config.tie_embeddings:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)


def weights_fingerprint(model: GPT) -> str:
    """SHA-256 over the weights' names, shapes and bytes: identifies a model exactly."""
    h = hashlib.sha256()
    for k, v in sorted(model_state(model).items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_trained_on(run_dir: str | Path, corpus: bytes) -> None:
    """Refuses a run whose recorded training corpus is not `corpus`: compared by SHA-256 where
    the run recorded it (`bitlens train` does), by length for runs that recorded only that."""
    saved = read_config(run_dir)
    if "corpus_bytes" not in saved:
        raise BitlensError(f"{run_dir} does not record what it was trained on")
    if saved["corpus_bytes"] != len(corpus):
        raise BitlensError(
            f"{run_dir} was trained on {saved['corpus_bytes']:,} bytes, not these {len(corpus):,}"
        )
    digest = saved.get("corpus_sha256")
    if digest is not None and digest != hashlib.sha256(corpus).hexdigest():
        raise BitlensError(f"{run_dir} was trained on other text of the same length ({len(corpus):,} bytes)")


def environment_info() -> dict[str, Any]:
    """What produced a run: versions, platform, threads, git commit when available."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "argv": sys.argv,
    }
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            info["git_commit"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def read_config(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BitlensError(f"model run directory not found: {run_dir}")
    cfg_path = run_dir / CONFIG_FILE
    try:
        return json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise BitlensError(f"{run_dir} is not a bitlens run directory (no {CONFIG_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BitlensError(f"{cfg_path} is not valid JSON") from None


def load_run(run_dir: str | Path) -> GPT:
    """Load the trained model of a run directory (config.json + model.safetensors), in eval mode."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    if "model" not in cfg:
        raise BitlensError(f"{run_dir / CONFIG_FILE} has no 'model' section")
    try:
        config = GPTConfig.from_dict(cfg["model"])
        model = GPT(config)
    except (TypeError, ValueError, AssertionError) as e:
        raise BitlensError(f"invalid model config in {run_dir}: {e}") from None
    weights = run_dir / WEIGHTS_FILE
    if not weights.exists():
        raise BitlensError(f"{run_dir} has no trained weights ({WEIGHTS_FILE}); did training finish?")
    load_model_weights(model, weights)
    model.eval()
    return model


def is_hf_spec(spec: str | Path | None) -> bool:
    """Whether a model argument names a local Hugging Face model (`hf:PATH`)."""
    return spec is not None and str(spec).startswith("hf:")


def refuse_hf(spec: str | Path | None, what: str) -> None:
    """One line for a command that only takes bitlens run directories."""
    if is_hf_spec(spec):
        raise BitlensError(f"{what} takes a bitlens run directory, not a Hugging Face model ({spec})")


def load_model(
    spec: str | Path,
    device: str | None = None,
    dtype: str | None = None,
    batch_tokens: int | None = None,
) -> Any:
    """A bitlens run directory → GPT; `hf:PATH` → a local Hugging Face model (`bitlens.hf.HFModel`,
    needs `bitlens[hf]`) on `device` (None: auto) in `dtype` (None: float32), scoring
    `batch_tokens` tokens a batch. Both in eval mode.

    The one place a model argument is resolved. A byte-level run keeps its deterministic float32
    CPU path: asking it for another device or dtype is an error."""
    from bitlens.hf import HF_PREFIX, load_hf_model

    if is_hf_spec(spec):
        return load_hf_model(
            str(spec)[len(HF_PREFIX) :], device=device, dtype=dtype, batch_tokens=batch_tokens
        )
    if device not in (None, "cpu") or dtype not in (None, "float32") or batch_tokens is not None:
        raise BitlensError(
            "--device, --dtype and --batch-tokens are for hf: models; a bitlens run directory "
            "runs on the CPU in float32 (deterministic)"
        )
    return load_run(spec)
