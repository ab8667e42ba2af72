"""MDL probes (Voita & Titov 2020): how many bits it takes to transmit a property of the text
given a layer's representation, with the online (prequential) code of a probe.

The examples (one per token) are put in a seeded random order and cut at the paper's portions,
0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50 and 100 % of the targets. The first portion is
sent with the uniform code, log2 K bits per label (K = the number of label values present: the
alphabet both sides know). Each later portion is sent with a probe trained from scratch on all
the labels before it, at −log2 p_probe(label) bits. codelength_bits is their sum;
compression = uniform_bits / codelength_bits. Probe losses leave PyTorch in nats and are
converted to bits once, with `nats_to_bits` (the official code adds nats to a log2 term).

Probes start from the label prior: output weights zero, biases the log label frequencies of
their training data. A probe is fitted (full-batch Adam, early stopping on a dev tenth of its
prefix) only from MIN_FIT examples on; smaller prefixes cannot be validated and their probe is
the prior. So a representation that says nothing about the labels codes them like the labels
alone.

Control tasks (Hewitt & Liang 2019). `control_*` is the same code on a control task: labels
that are a random function of the input type alone (byte value, or token id), drawn once per
type with the real labels' distribution (`properties.control_labels`). A probe that only looks
the input type up does as well on the control as on the real property. Selectivity, in bits:

    selectivity_bits = (marginal_bits − codelength_bits) − (control_marginal_bits − control_codelength_bits)

the bits the layer saves on the real labels minus those it saves on the control labels, where
marginal_bits is an adaptive code of the labels alone (Krichevsky–Trofimov counts, in the same
order). With equal label counts it is control_codelength_bits − codelength_bits. The control
matches each label's count only within the largest type's count (on text, the space byte), and
for a property not fixed by the type the labels-alone codes can differ by > 10 % (previous
byte); subtracting each task's own labels-alone code keeps that out of the selectivity.
Larger = the layer encodes more of the property than a lookup of the input type gives; ≈ 0 =
no more than such a lookup; < 0 = the property is harder to read than an arbitrary lookup. It
is measured over `seeds` repeats (example draw and order, control task, probe init), with a
Student's t interval over them (`bitlens.stats.t_interval`: a bootstrap over 3 seeds is too
narrow).

Held-out text only: a bitlens model is probed on the validation split of the text given (the
last 10 %, which training held out); an hf: model's training text is unknown, so the text given
is taken as held out and the result says so (`heldout`). `byte_range` is the bytes probed.

Properties need no labelled data; each is read at the last byte of a token (for a byte model,
the token itself): the current byte, the previous byte, the next byte, the position in the word
(0, 1, … capped at 7, whitespace its own class) and whether the byte is inside a word or
whitespace. Words are maximal runs of non-whitespace bytes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bitlens.data import split_corpus
from bitlens.errors import BitlensError
from bitlens.measures.properties import PROPERTIES, control_labels
from bitlens.plotting import integer_ticks, new_figure, save_figure
from bitlens.progress import progress_bar
from bitlens.stats import t_interval
from bitlens.tokens import context_windows, token_name, token_stream
from bitlens.units import nats_to_bits

PORTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
MIN_FIT = 100  # fewest examples a probe is fitted on (below: the label prior)
MIN_DEV = 20  # fewest dev examples for early stopping


# ---- probes and the online code


@dataclass(frozen=True)
class ProbeConfig:
    """Probe family and training: full-batch Adam, early stopping on 10 % of the prefix. (Voita &
    Titov use Adam at 1e-3 over 40 mini-batch epochs; a few full-batch steps need a larger lr.)"""

    kind: str = "linear"  # or "mlp": one hidden ReLU layer
    hidden: int = 64
    steps: int = 60
    lr: float = 0.1
    weight_decay: float = 1e-3
    examples: int = 4096  # per property and seed (8192 × 3 seeds took 120 CPU-s on `small`)
    window: int = 128
    properties: tuple[str, ...] = tuple(PROPERTIES)  # what is probed (keys of PROPERTIES)
    seeds: int = 3  # repeats (example draw and order, control task, probe init): the intervals
    seed: int = 0

    @classmethod
    def quick(cls) -> ProbeConfig:
        return cls(examples=1024)

    @classmethod
    def full(cls) -> ProbeConfig:
        return cls()


PROBE_KINDS = ("linear", "mlp")


class Probes(nn.Module):
    """P independent probes (linear, or one hidden ReLU layer) evaluated as one batched module:
    probe p maps features x[p] (n, d) to logits (n, k). Output biases start at the log label
    frequencies of the training prefix (Krichevsky–Trofimov), so a probe that learns nothing
    from the features codes like the marginal code of the labels."""

    def __init__(
        self,
        kind: str,
        p: int,
        d: int,
        k: int,
        hidden: int,
        log_prior: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if kind not in PROBE_KINDS:
            raise BitlensError(f"unknown probe {kind!r}; choose from {', '.join(PROBE_KINDS)}")
        self.kind = kind
        width = d if kind == "linear" else hidden
        if kind == "mlp":
            bound = 1 / math.sqrt(d)
            self.w1 = nn.Parameter(torch.empty(p, d, hidden).uniform_(-bound, bound, generator=generator))
            self.b1 = nn.Parameter(torch.zeros(p, 1, hidden))
        self.w = nn.Parameter(torch.zeros(p, width, k))
        self.b = nn.Parameter(log_prior.reshape(p, 1, k).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            x = torch.relu(torch.baddbmm(self.b1, x, self.w1))
        return torch.baddbmm(self.b, x, self.w)


def _log_prior(y: torch.Tensor, k: int) -> torch.Tensor:
    """Per row of y (P, n): log of the KT label frequencies (count + ½) / (n + k/2)."""
    counts = torch.zeros(y.shape[0], k).scatter_add_(1, y, torch.ones_like(y, dtype=torch.float))
    return torch.log((counts + 0.5) / (y.shape[1] + 0.5 * k))


def _nats(probes: Probes, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of each probe in nats: (P,) means or sums over its examples."""
    logits = probes(x)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    ce = ce.view(y.shape)
    return ce.mean(1) if reduction == "mean" else ce.sum(1)


def train_probes(x: torch.Tensor, y: torch.Tensor, k: int, cfg: ProbeConfig, seed: int) -> Probes:
    """Probes for labels y (P, n) in 0..k−1 from features x (P, n, d), trained from scratch.

    The last 10 % of the examples (at least MIN_DEV) is a dev set, and each probe keeps the weights
    with its lowest dev loss (the starting point included, checked every 10 steps), as in Voita &
    Titov's early stopping. Below MIN_FIT examples nothing can be validated, so the probe stays
    at its starting point, the label prior: fitting a few examples costs far more on the next
    portion than it saves (measured on shuffled labels: up to 4× the prior's bits on a portion).
    """
    n = x.shape[1]
    n_dev = max(n // 10, MIN_DEV)
    xt, yt, xd, yd = x[:, : n - n_dev], y[:, : n - n_dev], x[:, n - n_dev :], y[:, n - n_dev :]
    probes = Probes(
        cfg.kind,
        x.shape[0],
        x.shape[2],
        k,
        cfg.hidden,
        _log_prior(y if n < MIN_FIT else yt, k),
        torch.Generator().manual_seed(seed),
    )
    if n < MIN_FIT:
        return probes.eval()
    opt = torch.optim.Adam(probes.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = torch.full((x.shape[0],), math.inf)
    best_state = {name: v.detach().clone() for name, v in probes.state_dict().items()}

    def keep_best() -> None:
        with torch.no_grad():
            dev = _nats(probes, xd, yd)
            better = dev < best
            best[better] = dev[better]
            for name, v in probes.state_dict().items():
                best_state[name][better] = v[better]

    keep_best()
    for step in range(cfg.steps):
        loss = _nats(probes, xt, yt).sum()  # a sum: each probe gets its own gradient
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 9 or step == cfg.steps - 1:
            keep_best()
    probes.load_state_dict(best_state)
    return probes.eval()


@dataclass(frozen=True)
class OnlineCode:
    """Online codes of P label sequences of length N, in bits."""

    codelength_bits: list[float]  # per probe
    uniform_bits: float  # N · log2 K
    block_bits: list[list[float]]  # per probe: the uniform first block, then each portion

    def compression(self, p: int) -> float:
        return self.uniform_bits / self.codelength_bits[p]


def portion_ends(n: int) -> list[int]:
    """Example counts at the end of each portion (strictly increasing, the last is n)."""
    ends = sorted({max(1, int(round(f * n))) for f in PORTIONS})
    return [e for e in ends if e <= n]


def online_codelength(
    x: torch.Tensor, y: torch.Tensor, k: int, cfg: ProbeConfig, seed: int = 0
) -> OnlineCode:
    """Online code lengths in bits of labels y (P, N) in 0..k−1, already in random order, given
    features x (P, N, d): one independent code per probe p."""
    if x.dim() == 2:  # a single probe
        x, y = x[None], y[None]
    n = y.shape[1]
    ends = portion_ends(n)
    blocks = [[ends[0] * math.log2(k)] for _ in range(len(y))]
    for i, (start, end) in enumerate(itertools.pairwise(ends)):
        probes = train_probes(x[:, :start], y[:, :start], k, cfg, seed + i)
        with torch.no_grad():
            bits = nats_to_bits(_nats(probes, x[:, start:end], y[:, start:end], reduction="sum"))
        for p, b in enumerate(bits.tolist()):
            blocks[p].append(b)
    return OnlineCode([float(sum(b)) for b in blocks], n * math.log2(k), blocks)


def marginal_codelength_bits(y: np.ndarray, k: int) -> float:
    """Adaptive code of the labels alone: Krichevsky–Trofimov, p = (count + ½) / (seen + k/2)."""
    counts = np.zeros(k)
    bits = 0.0
    for i, label in enumerate(y):
        bits -= math.log2((counts[label] + 0.5) / (i + 0.5 * k))
        counts[label] += 1
    return bits


# ---- the measurement


@dataclass(frozen=True)
class LayerProbe:
    """One layer: online code lengths of the real and the control labels (means over seeds) and
    the selectivity, in bits. selectivity = (real gain) − (control gain), gain = labels-alone
    bits − online bits; > 0: the layer makes the property cheaper to send than a random lookup
    of the input type with the same label distribution."""

    layer: int
    codelength_bits: float
    uniform_bits: float
    compression: float
    control_codelength_bits: float
    control_compression: float
    selectivity_bits: float  # mean over seeds
    selectivity_ci95: list[float]  # Student's t interval over seeds (`bitlens.stats`)
    n_seeds: int
    selectivity_per_seed: list[float]


@dataclass(frozen=True)
class PropertyProbes:
    """One property's online codes at every layer, in bits."""

    property: str
    classes: int
    examples: int  # per seed
    marginal_bits: float  # adaptive code of the real labels alone (mean over seeds)
    marginal_compression: float
    control_marginal_bits: float  # the same for the control labels
    layers: list[LayerProbe]


@dataclass(frozen=True)
class ProbesResult:
    properties: list[PropertyProbes]
    probe: str  # the probe family
    portions: list[float]
    seed: int
    seeds: int  # repeats: example order and subset, control-label draw, probe init
    token: str  # "byte", or "token" for a tokenizer model
    heldout: str  # HELDOUT_SPLIT, or HELDOUT_ASSUMED for an hf: model
    heldout_bytes: list[int]  # [start, end) of the held-out text in the data given
    byte_range: list[int]  # [start, end) of the bytes whose representations were probed

    def to_dict(self) -> dict:
        return asdict(self)


HELDOUT_SPLIT = "validation split"  # the last 10 % of the text, as `bitlens train` splits it
HELDOUT_ASSUMED = "assumed"  # an hf: model's training text is unknown: all of it, taken as held out


def heldout_text(model, data: bytes) -> tuple[bytes, int, str]:
    """The part of `data` the probes may read, its byte offset in `data`, and how it was chosen.

    A bitlens model is probed on the validation split of `data` (`bitlens.data.split_corpus`,
    the split its training held out), so text it was trained on is never probed. An hf: model's
    training text is unknown; the whole of `data` is treated as held out, and the result says so.
    """
    if token_name(model) != "byte":
        return data, 0, HELDOUT_ASSUMED
    val = split_corpus(data, model.config.block_size).val
    return bytes(val.numpy().tobytes()), len(data) - len(val), HELDOUT_SPLIT


@torch.no_grad()
def _representations(model, text: bytes, cfg: ProbeConfig):
    """Every layer's representation (list of (N, d), standardised), each example's input token
    id (its type) and the index of its last byte in `text`, from whole windows at the start of
    `text`: enough for two draws of `cfg.examples` examples, so the seeds draw different sets."""
    stream = token_stream(model, text)
    window = min(cfg.window, model.config.block_size)
    x, _, index = context_windows(stream, window, None)
    n_windows = math.ceil(2 * cfg.examples / x.shape[1]) + 1
    x, index = x[:n_windows], index[:n_windows]
    layers: list[list[torch.Tensor]] = []
    for i in range(0, len(x), 16):
        _, hidden = model.forward_hidden(x[i : i + 16])
        layers.append([h.reshape(-1, h.shape[-1]).float() for h in hidden])
    reps = [torch.cat([chunk[i] for chunk in layers]) for i in range(len(layers[0]))]
    index = index.reshape(-1).numpy()
    keep = index >= 0  # the start token belongs to no byte
    keep_t = torch.from_numpy(keep)
    types = x.reshape(-1).numpy()[keep]
    at_byte = stream.last_byte()[index[keep]]
    return [_standardise(r[keep_t]) for r in reps], types, at_byte, int(stream.byte_ends[index.max()])


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per feature (features are known to both sides of the code)."""
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def probe_property(
    name: str,
    reps: list[torch.Tensor],
    types: np.ndarray,
    labels: np.ndarray,
    cfg: ProbeConfig,
    seed: int,
) -> PropertyProbes:
    """Online codes of `labels` and of their control task from each layer's features `reps`
    (each (N, d)), with `types` the input type of each example, in bits.

    For each of `cfg.seeds` seeds: draw `cfg.examples` examples in random order, draw a control
    task (`control_labels`), and code both label sequences with a probe per layer. All probes
    (seeds × layers × {real, control}) train side by side. Selectivity per seed and layer is
    real gain − control gain (gain = labels-alone bits − online bits); its interval is Student's
    t over seeds.
    """
    n = min(cfg.examples, len(labels))
    if n < 2 * len(PORTIONS):
        raise BitlensError(f"too little held-out data to probe {name!r}: {n} examples")
    values = np.unique(labels)
    k = max(2, len(values))
    xs, ys, ycs, marginal, control_marginal = [], [], [], [], []
    for s in range(cfg.seeds):
        rng = np.random.default_rng([seed, s])
        order = rng.permutation(len(labels))[:n]
        y = np.searchsorted(values, labels[order])
        yc = np.searchsorted(values, control_labels(types[order], labels[order], rng))
        idx = torch.from_numpy(order)
        xs += [rep[idx] for rep in reps]
        ys += [torch.from_numpy(y.astype(np.int64))] * len(reps)
        ycs += [torch.from_numpy(yc.astype(np.int64))] * len(reps)
        marginal.append(marginal_codelength_bits(y, k))
        control_marginal.append(marginal_codelength_bits(yc, k))
    x = torch.stack(xs)
    code = online_codelength(torch.cat([x, x]), torch.stack(ys + ycs), k, cfg, seed)
    n_layers, half = len(reps), len(xs)
    rows = []
    for layer in range(n_layers):
        at = [s * n_layers + layer for s in range(cfg.seeds)]
        real = np.array([code.codelength_bits[i] for i in at])
        control = np.array([code.codelength_bits[half + i] for i in at])
        selectivity = (np.array(marginal) - real) - (np.array(control_marginal) - control)
        interval = t_interval(selectivity)
        rows.append(
            LayerProbe(
                layer=layer,
                codelength_bits=float(real.mean()),
                uniform_bits=code.uniform_bits,
                compression=code.uniform_bits / float(real.mean()),
                control_codelength_bits=float(control.mean()),
                control_compression=code.uniform_bits / float(control.mean()),
                selectivity_bits=interval.estimate,
                selectivity_ci95=[interval.low, interval.high],
                n_seeds=interval.n,
                selectivity_per_seed=selectivity.tolist(),
            )
        )
    mean_marginal = float(np.mean(marginal))
    return PropertyProbes(
        property=name,
        classes=k,
        examples=n,
        marginal_bits=mean_marginal,
        marginal_compression=code.uniform_bits / mean_marginal,
        control_marginal_bits=float(np.mean(control_marginal)),
        layers=rows,
    )


def measure_probes(model, data: bytes, config: ProbeConfig, progress: bool = False) -> ProbesResult:
    """MDL probes with control tasks of each of `config.properties` at each layer of `model`, on
    the held-out part of `data` only (`heldout_text`), in bits."""
    cfg, seed = config, config.seed
    unknown = [p for p in cfg.properties if p not in PROPERTIES]
    if unknown:
        raise BitlensError(f"unknown property {unknown[0]!r}; choose from {', '.join(PROPERTIES)}")
    if cfg.kind not in PROBE_KINDS:
        raise BitlensError(f"unknown probe {cfg.kind!r}; choose from {', '.join(PROBE_KINDS)}")
    if cfg.seeds < 1:
        raise BitlensError(f"seeds must be at least 1, not {cfg.seeds}")
    text, offset, heldout = heldout_text(model, data)
    reps, types, at_byte, probed_end = _representations(model, text, cfg)
    raw = np.frombuffer(text, dtype=np.uint8)
    out = []
    with progress_bar(len(cfg.properties), "MDL probes", enabled=progress) as bar:
        for p_i, name in enumerate(cfg.properties):
            labels, valid = PROPERTIES[name](raw, at_byte)
            keep = torch.from_numpy(valid)
            prop = probe_property(
                name, [r[keep] for r in reps], types[valid], labels[valid], cfg, seed + 1000 * p_i
            )
            best = max(prop.layers, key=lambda r: r.selectivity_bits)
            bar.advance(1, status=f"{name}: selectivity {best.selectivity_bits:,.0f} bits at best")
            out.append(prop)
    return ProbesResult(
        properties=out,
        probe=cfg.kind,
        portions=list(PORTIONS),
        seed=seed,
        seeds=cfg.seeds,
        token=token_name(model),
        heldout=heldout,
        heldout_bytes=[offset, len(data)],
        byte_range=[offset, offset + probed_end],
    )


def plot_probes(result: dict, path: str | Path) -> list[Path]:
    """Left: compression (uniform / online bits) per layer, one line per property, control tasks
    dashed. Right: selectivity in bits per layer with its 95 % interval over seeds as error bars
    (PNG + SVG)."""
    fig, (ax, ax_sel) = new_figure(ncols=2, width=11.0)
    for i, prop in enumerate(result["properties"]):
        rows = prop["layers"]
        layers = [r["layer"] for r in rows]
        color = f"C{i % 10}"
        ax.plot(layers, [r["compression"] for r in rows], "o-", color=color, label=prop["property"])
        ax.plot(layers, [r["control_compression"] for r in rows], "--", color=color, alpha=0.5)
        sel = np.array([r["selectivity_bits"] for r in rows])
        ci = np.array([r["selectivity_ci95"] for r in rows])
        shift = 0.06 * (i - (len(result["properties"]) - 1) / 2)  # keep the bars apart
        ax_sel.errorbar(
            np.array(layers) + shift,
            sel,
            yerr=[sel - ci[:, 0], ci[:, 1] - sel],
            fmt="o-",
            color=color,
            capsize=3,
            label=prop["property"],
        )
    ax.set_yscale("log")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("compression (uniform bits / online bits)")
    ax.set_title(f"MDL probes ({result.get('probe', 'linear')}); dashed: control tasks", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax_sel.axhline(0.0, color="k", lw=0.8)
    ax_sel.set_xlabel("layer (0 = embeddings)")
    ax_sel.set_ylabel("selectivity (bits): real gain − control gain")
    n_seeds = result["properties"][0]["layers"][0]["n_seeds"] if result["properties"] else 0
    ax_sel.set_title(f"selectivity, 95% interval over {n_seeds} seeds", fontsize=9)
    ax_sel.grid(alpha=0.3)
    for a in (ax, ax_sel):
        integer_ticks(a.xaxis)
    return save_figure(fig, path)
