"""Logit lens and tuned lens: what each layer's residual stream predicts, in bits.

The logit lens (nostalgebraist 2020) decodes layer l's residual stream h_l with the model's own
final norm and unembedding. The tuned lens (Belrose et al. 2023) first applies a learned affine
translator per layer, h ↦ h + A_l h + b_l with A_l, b_l initialised to zero (the identity), trained
to minimise KL(p_final ‖ p_lens) with the paper's optimiser: SGD, Nesterov momentum 0.9, lr 1.0
(passed to PyTorch as 1.0·(1 − 0.9), which undoes PyTorch's 1/(1 − β) momentum gain), weight
decay 1e-3, linear decay to zero. The last layer is the model's own output: no translator, KL 0.

Per layer (0 = embeddings, n_layer = the output) and averaged over held-out positions, in bits:
`logit_kl_bits` / `tuned_kl_bits` = KL(p_final ‖ p_lens), `logit_ce_bits` / `tuned_ce_bits` =
−log2 p_lens(next token), `entropy_bits` / `tuned_entropy_bits` = H(p_lens). Per token; a byte
model's tokens are bytes. The lens is trained on the head of `data` and measured on its last 10 %.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitlens.errors import BitlensError
from bitlens.plotting import new_figure, save_figure
from bitlens.progress import progress_bar
from bitlens.runs import atomic_save_tensors, load_tensors
from bitlens.stats import block_mean_ci
from bitlens.tokens import context_windows, token_name, token_stream
from bitlens.units import nats_to_bits

N_BLOCKS = 64  # blocks of consecutive positions the per-layer intervals resample

LENS_FORMAT = "bitlens-tuned-lens-1"
HELDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class LensConfig:
    """Sizes and optimiser of a tuned-lens measurement (the paper's optimiser defaults)."""

    steps: int = 250
    batch_tokens: int = 2048  # positions per step (the paper uses 2^18 on GPUs)
    train_tokens: int = 32_768  # cached training positions, sampled with replacement
    eval_tokens: int = 32_768  # held-out positions measured
    window: int = 256  # context length, capped at the model's
    lr: float = 1.0  # before the (1 − momentum) scaling
    momentum: float = 0.9
    weight_decay: float = 1e-3
    tuned: bool = True  # also train a tuned lens (else the logit lens alone)
    seed: int = 0

    @classmethod
    def quick(cls) -> LensConfig:
        return cls(steps=120, batch_tokens=1024, train_tokens=8192, eval_tokens=8192)

    @classmethod
    def full(cls) -> LensConfig:
        return cls()


class TunedLens(nn.Module):
    """One affine translator per layer below the output, initialised to the identity."""

    def __init__(self, n_layer: int, n_embd: int) -> None:
        super().__init__()
        self.n_layer, self.n_embd = n_layer, n_embd
        translators = [nn.Linear(n_embd, n_embd) for _ in range(n_layer)]
        for t in translators:
            nn.init.zeros_(t.weight)
            nn.init.zeros_(t.bias)
        self.translators = nn.ModuleList(translators)

    def transform(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Layer `layer`'s residual stream, translated (the output layer is left as is)."""
        return h + self.translators[layer](h) if layer < self.n_layer else h

    def save(self, path: str | Path) -> None:
        meta = {"format": LENS_FORMAT, "n_layer": str(self.n_layer), "n_embd": str(self.n_embd)}
        atomic_save_tensors(path, dict(self.state_dict()), meta)

    @classmethod
    def load(cls, path: str | Path) -> TunedLens:
        state = load_tensors(path)
        try:
            n_layer = 1 + max(int(k.split(".")[1]) for k in state)
            lens = cls(n_layer, state["translators.0.weight"].shape[1])
            lens.load_state_dict(state)
        except (ValueError, KeyError, IndexError, RuntimeError):
            raise BitlensError(f"{path} is not a bitlens tuned lens") from None
        return lens


@contextmanager
def _frozen(model):
    """Model parameters without gradients while the lens trains (restored afterwards)."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)


def _split(data: bytes) -> tuple[bytes, bytes]:
    """Head for training the lens, last 10 % held out for measuring it."""
    cut = len(data) - max(1, int(len(data) * HELDOUT_FRACTION))
    return data[:cut], data[cut:]


def _window(model, cfg: LensConfig) -> int:
    return min(cfg.window, model.config.block_size)


@torch.no_grad()
def _collect(model, data: bytes, cfg: LensConfig, max_tokens: int):
    """Hidden states (list of (N, d)), final log-probs (N, V) and next tokens (N,) on `data`."""
    stream = token_stream(model, data)
    x, y, _ = context_windows(stream, _window(model, cfg), max_tokens)
    hiddens: list[list[torch.Tensor]] = []
    logps, targets = [], []
    for i in range(0, len(x), 16):
        logits, hidden = model.forward_hidden(x[i : i + 16])
        hiddens.append([h.reshape(-1, h.shape[-1]) for h in hidden[:-1]])
        logps.append(F.log_softmax(logits.float(), -1).reshape(-1, logits.shape[-1]))
        targets.append(y[i : i + 16].reshape(-1))
    layers = [torch.cat([hs[i] for hs in hiddens]) for i in range(len(hiddens[0]))]
    return layers, torch.cat(logps), torch.cat(targets)


def _kl_nats(final_logp: torch.Tensor, lens_logp: torch.Tensor) -> torch.Tensor:
    """Per-position KL(p_final ‖ p_lens) in nats."""
    return (final_logp.exp() * (final_logp - lens_logp)).sum(-1)


def train_tuned_lens(model, data: bytes, cfg: LensConfig, progress: bool = False) -> TunedLens:
    """Fit a tuned lens to `model` on `data` (all of it; the caller holds data out), drawing
    batches with `cfg.seed`."""
    layers, final_logp, _ = _collect(model, data, cfg, cfg.train_tokens)
    n = len(final_logp)
    lens = TunedLens(model.config.n_layer, model.config.n_embd)
    opt = torch.optim.SGD(
        lens.parameters(),
        lr=cfg.lr * (1 - cfg.momentum),
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    with _frozen(model), progress_bar(cfg.steps, "tuned lens", enabled=progress) as bar:
        for _ in range(cfg.steps):
            idx = torch.randint(n, (min(cfg.batch_tokens, n),), generator=gen)
            target = final_logp[idx]
            loss = sum(  # summed layer by layer from an exact zero, in float32
                (
                    _kl_nats(target, F.log_softmax(model.unembed(lens.transform(h[idx], layer)), -1)).mean()
                    for layer, h in enumerate(layers)
                ),
                torch.zeros(()),
            )
            if not torch.isfinite(loss):
                raise BitlensError("tuned-lens training diverged (non-finite KL)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.advance(1, status=f"{nats_to_bits(loss.item()) / len(layers):.3f} bits KL/layer")
    return lens.eval()


@dataclass(frozen=True)
class LayerLens:
    """One layer's lens figures, in bits per token (averages over held-out positions)."""

    layer: int
    logit_kl_bits: float
    tuned_kl_bits: float | None
    logit_ce_bits: float
    tuned_ce_bits: float | None
    entropy_bits: float  # of the logit-lens distribution
    tuned_entropy_bits: float | None
    # 95 % intervals of the KL and cross-entropy means, bootstrapped over blocks of positions
    logit_kl_ci95: list[float]
    tuned_kl_ci95: list[float] | None
    logit_ce_ci95: list[float]
    tuned_ce_ci95: list[float] | None


@torch.no_grad()
def lens_figures(model, data: bytes, lens: TunedLens | None, cfg: LensConfig) -> list[LayerLens]:
    """Logit-lens (and tuned-lens) KL, cross-entropy and entropy per layer on `data`."""
    layers, final_logp, targets = _collect(model, data, cfg, cfg.eval_tokens)
    n_layer = model.config.n_layer
    if lens is not None and (lens.n_layer, lens.n_embd) != (n_layer, model.config.n_embd):
        raise BitlensError(
            f"the tuned lens is for {lens.n_layer} layers × {lens.n_embd}, the model has "
            f"{n_layer} × {model.config.n_embd}"
        )

    Figure = tuple[float, float, float, list[float], list[float]]

    def figures(logp: torch.Tensor) -> Figure:
        kl = nats_to_bits(_kl_nats(final_logp, logp).double().cpu().numpy())
        ce = nats_to_bits(-logp.gather(-1, targets[:, None]).squeeze(-1).double().cpu().numpy())
        ent = nats_to_bits(-(logp.exp() * logp).sum(-1).mean().item())
        kl_iv, ce_iv = block_mean_ci(kl, N_BLOCKS), block_mean_ci(ce, N_BLOCKS)
        return kl_iv.estimate, ce_iv.estimate, ent, [kl_iv.low, kl_iv.high], [ce_iv.low, ce_iv.high]

    rows = []
    for layer in range(n_layer + 1):
        tuned: Figure | None
        if layer == n_layer:  # the model's own output (HF hidden states end after the final norm)
            logit = figures(final_logp)
            tuned = logit if lens is not None else None
        else:
            logit = figures(F.log_softmax(model.unembed(layers[layer]), -1))
            translated = None if lens is None else model.unembed(lens.transform(layers[layer], layer))
            tuned = None if translated is None else figures(F.log_softmax(translated, -1))
        kl, ce, ent, kl_ci, ce_ci = tuned if tuned is not None else (None, None, None, None, None)
        rows.append(
            LayerLens(layer, logit[0], kl, logit[1], ce, logit[2], ent, logit[3], kl_ci, logit[4], ce_ci)
        )
    return rows


@dataclass(frozen=True)
class LensResult:
    """Per-layer lens figures in bits per token on the held-out 10 %; `to_dict()` is the JSON.

    `tuned_lens` is the lens used (trained or given; not part of the JSON), to save it.
    """

    layers: list[LayerLens]
    token: str  # "byte", or "token" for a tokenizer model: the unit of the figures
    tokens: int
    bytes: int
    bytes_per_token: float
    final_ce_bits: float
    tuned_lens_steps: int
    seed: int
    n_blocks: int  # the intervals' resampled unit: blocks of consecutive positions
    tuned_lens: TunedLens | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "layers": [asdict(r) for r in self.layers],
            "token": self.token,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "bytes_per_token": self.bytes_per_token,
            "final_ce_bits": self.final_ce_bits,
            "tuned_lens_steps": self.tuned_lens_steps,
            "seed": self.seed,
            "n_blocks": self.n_blocks,
            "n_seeds": 1,  # one model: the intervals are the text's sampling noise
        }


def measure_lens(
    model, data: bytes, config: LensConfig, progress: bool = False, lens: TunedLens | None = None
) -> LensResult:
    """Logit lens and (if `config.tuned`) tuned lens of `model` on `data`: bits per layer.

    The tuned lens is trained on the head of `data` (or `lens` is reused) and every figure is
    measured on the last 10 %.
    """
    head, heldout = _split(data)
    if config.tuned and lens is None:
        lens = train_tuned_lens(model, head, config, progress=progress)
    rows = lens_figures(model, heldout, lens if config.tuned else None, config)
    _, measured, _ = context_windows(token_stream(model, heldout), _window(model, config), config.eval_tokens)
    n_tok = measured.numel()  # the windows measured: whole windows from the start of the held-out part
    n_bytes = int(token_stream(model, heldout).byte_ends[n_tok - 1])
    return LensResult(
        layers=rows,
        token=token_name(model),
        tokens=n_tok,
        bytes=n_bytes,
        bytes_per_token=n_bytes / n_tok,
        final_ce_bits=rows[-1].logit_ce_bits,
        tuned_lens_steps=config.steps if (config.tuned and lens is not None) else 0,
        seed=config.seed,
        n_blocks=min(N_BLOCKS, n_tok),
        tuned_lens=lens,
    )


def plot_lens(result: dict, path: str | Path) -> list[Path]:
    """KL to the final distribution and cross-entropy per layer, logit vs tuned lens (PNG + SVG)."""
    rows = result["layers"]
    layers = [r["layer"] for r in rows]
    token = result.get("token", "byte")
    fig, axes = new_figure(ncols=2, width=9, height=3.6)
    for ax, key, title in (
        (axes[0], "kl", f"KL to the final distribution (bits per {token})"),
        (axes[1], "ce", f"cross-entropy to the next {token} (bits per {token})"),
    ):
        for kind, marker in (("logit", "o-"), ("tuned", "s-")):
            if not rows or rows[0].get(f"{kind}_{key}_bits") is None:
                continue
            y = [r[f"{kind}_{key}_bits"] for r in rows]
            ci = [r.get(f"{kind}_{key}_ci95") for r in rows]
            err = None
            if all(c is not None for c in ci):  # 95 % intervals over blocks of positions
                err = [[v - c[0] for v, c in zip(y, ci)], [c[1] - v for v, c in zip(y, ci)]]
            ax.errorbar(layers, y, yerr=err, fmt=marker, capsize=3, label=f"{kind} lens")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(layers)
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)
