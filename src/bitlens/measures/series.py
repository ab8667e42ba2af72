"""A series of saved checkpoints, scored on the same held-out bytes, one checkpoint per task.

A checkpoint is named by a spec:
- `hf:DIR`: a local Hugging Face causal LM (`bitlens.hf.load_hf_model`); its per-token bits are
  spread over each token's bytes, as `eval` does (`bitlens.tokens.score_bytes_any`);
- a bitlens run directory (config.json + model.safetensors); one that holds a `checkpoints/`
  folder (as `measure dynamics --save-checkpoints` writes it) stands for every
  `checkpoints/step-*.safetensors` in it, in step order;
- a `.safetensors` file inside a run directory (under it or its `checkpoints/`): a saved step,
  or the run's resumable `checkpoint.safetensors` (its `model.` tensors; the optimizer is ignored).

Scoring each checkpoint is one task on an `bitlens.evolve.backends` backend (this process, a
process pool, or Ray); a task is a pure function of its spec and the held-out bytes, with one
torch thread, so every backend returns the same bits, bit for bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bitlens.errors import BitlensError
from bitlens.evolve.genome import GeneSpace, Genome, Integer

CHECKPOINTS_DIR = "checkpoints"
_STEP_FILE = re.compile(r"step-(\d+)\.safetensors$")


def step_file(run_dir: str | Path, step: int) -> Path:
    """Where a run directory keeps the weights saved at `step`."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step:08d}.safetensors"


def step_of(spec: str) -> int | None:
    """The training step a spec names, when its file name records one."""
    m = _STEP_FILE.search(spec)
    return int(m.group(1)) if m else None


def expand_specs(specs: list[str]) -> list[str]:
    """The checkpoints that `specs` name, in order: a run directory holding `checkpoints/`
    becomes its saved steps. Missing paths are a BitlensError (hf: paths are checked on load)."""
    from bitlens.hf import HF_PREFIX

    out: list[str] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if spec.startswith(HF_PREFIX):
            out.append(spec)
            continue
        p = Path(spec)
        if not p.exists():
            raise BitlensError(f"checkpoint not found: {spec}")
        saved = sorted((p / CHECKPOINTS_DIR).glob("step-*.safetensors")) if p.is_dir() else []
        out.extend([str(f) for f in saved] or [spec])
    if not out:
        raise BitlensError("no checkpoints given")
    return out


def _run_config_dir(weights: Path) -> Path:
    for d in (weights.parent, weights.parent.parent):
        if (d / "config.json").exists():
            return d
    raise BitlensError(f"{weights}: no run directory (config.json) above it to say the model's shape")


def load_checkpoint(spec: str) -> Any:
    """The model a spec names, in eval mode (a `GPT`, or an `HFModel` for hf:)."""
    from bitlens.hf import HF_PREFIX, load_hf_model
    from bitlens.model import GPT, GPTConfig
    from bitlens.runs import apply_weights, load_run, load_tensors, read_config

    if spec.startswith(HF_PREFIX):
        return load_hf_model(spec[len(HF_PREFIX) :])
    p = Path(spec)
    if p.is_dir():
        return load_run(p)
    if p.suffix != ".safetensors":
        raise BitlensError(f"{spec}: a checkpoint is hf:DIR, a run directory or a .safetensors file")
    cfg = read_config(_run_config_dir(p))
    if "model" not in cfg:
        raise BitlensError(f"{spec}: its run's config.json has no 'model' section")
    model = GPT(GPTConfig.from_dict(cfg["model"]))
    tensors = load_tensors(p)
    if any(k.startswith("model.") for k in tensors):  # a resumable checkpoint: model + optimizer
        tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    apply_weights(model, tensors, spec)
    return model.eval()


def _checkpoint_space() -> GeneSpace:
    return GeneSpace((Integer("checkpoint", 0, 1 << 30, 0.0, log=False),))


@dataclass(frozen=True)
class CheckpointScorer:
    """An evaluator (`bitlens.evolve.evaluators.Evaluator`) whose genome {"checkpoint": i} names
    `specs[i]`: it scores `heldout` and returns per-byte `surprisal_bits` (a list, bits) with the
    metrics every backend expects (fitness = −bits/byte)."""

    specs: tuple[str, ...]
    heldout: bytes
    space: GeneSpace = field(default_factory=_checkpoint_space)

    def __call__(
        self, genome: Genome, seed: int, parent_model: str | None, weights_dir: str | None
    ) -> dict[str, Any]:
        import torch

        from bitlens.tokens import score_bytes_any, token_stream

        model = load_checkpoint(self.specs[int(genome["checkpoint"])])
        with torch.no_grad():
            bits = score_bytes_any(model, self.heldout).surprisal_bits
        n_tokens = len(token_stream(model, self.heldout))
        bpb = float(bits.mean())
        return {
            "fitness": -bpb,
            "heldout_bits_per_byte": bpb,
            "flops": 2.0 * model.num_params() * n_tokens,  # one forward pass per scored token
            "tokens": n_tokens,
            "params": model.num_params(),
            "surprisal_bits": bits.tolist(),  # floats survive JSON and pickling exactly
        }


@dataclass(frozen=True)
class ScoredCheckpoint:
    spec: str
    step: int | None
    params: int
    tokens: int  # the model's tokens over the held-out bytes (= bytes for a bitlens model)
    surprisal_bits: np.ndarray  # per held-out byte, float64


def score_series(
    specs: list[str],
    heldout: bytes,
    backend: str = "serial",
    workers: int = 1,
    address: str | None = None,
) -> list[ScoredCheckpoint]:
    """Score every checkpoint on `heldout` (one task each on `backend`), in the order given."""
    from bitlens.evolve.backends import make_backend
    from bitlens.evolve.evaluators import EvalOutcome, EvalTask

    scorer = CheckpointScorer(tuple(specs), heldout)
    tasks = [EvalTask(i, {"checkpoint": i}, 0, None, None) for i in range(len(specs))]
    outcomes: dict[int, EvalOutcome] = {}

    def keep(outcome: EvalOutcome) -> None:
        outcomes[outcome.id] = outcome

    runner = make_backend(backend, scorer, workers=workers, threads=1, address=address)
    try:
        runner.evaluate(tasks, keep, lambda: False)
    finally:
        runner.close()
    out = []
    for i, spec in enumerate(specs):
        o = outcomes.get(i)
        if o is None or o.status != "done" or o.metrics is None:
            raise BitlensError(f"scoring checkpoint {spec} failed: {o.error if o else 'not run'}")
        m = o.metrics
        bits = np.asarray(m["surprisal_bits"], dtype=np.float64)
        out.append(ScoredCheckpoint(spec, step_of(spec), int(m["params"]), int(m["tokens"]), bits))
    return out
