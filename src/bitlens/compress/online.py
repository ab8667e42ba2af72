"""Learning while coding: the schedule of the online and adaptive modes, and its training step.

Both sides of the coder call `train_round` with the same model, optimizer, text and generator,
so they take identical steps and no weights need to be sent (as NNCP does). Losses in nats
(PyTorch's unit); nothing here converts, since only the coder's code lengths are reported.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bitlens.model import GPT
from bitlens.train import TrainConfig, make_optimizer


@dataclass(frozen=True)
class OnlineConfig:
    """How the model learns while coding (online and adaptive modes).

    Recorded in the header as a list in field order (so the field order is part of the format).
    """

    lr: float
    segment: int = 64  # bytes per stream coded between two updates
    train_steps: int = 1  # optimizer steps after each segment
    replay: int = 8  # extra random windows of already-coded text per step
    warmup_rounds: int = 0  # linear learning-rate warm-up, in segments
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    head_lr: float = 0.0  # SGD step on the output layer after every coded byte (0: none)
    # 1: segment r+1 is coded while a copy of the network trains on the text through segment r,
    # in a second thread (`LaggedTraining`), so it is coded with the weights trained through
    # segment r−1 (plus the output layer's per-byte steps); 0: training waits for nothing
    lag: int = 0
    # > 0: the learning rate falls linearly from lr to final_lr over the file's segments (both sides
    # know the file's length); 0: it stays at lr
    final_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.lag not in (0, 1):
            raise ValueError(
                f"lag is 0 (train before the next segment) or 1 (one segment behind), got {self.lag}"
            )
        if self.final_lr < 0:
            raise ValueError(f"final_lr is 0 (a constant learning rate) or positive, got {self.final_lr}")


# Short files need many small updates: a few bytes per stream between two optimizer steps,
# plus replayed windows. Online, both schedules train one window per stream after every 16 bytes
# per stream plus 8 replayed windows (~5 tokens per byte with the 64-byte `shallow` window); short
# files warm the rate up and keep it constant, long ones let it fall. Adaptive, from LONG_FILE
# bytes on, the schedule trains ~2 tokens per byte, several times fewer. Online settings from
# real online + mix compressions of the first 256 KiB of
# enwik8-head (`benchmarks/online_window.py`, record benchmarks/results/online-window-256k.json;
# `benchmarks/online_schedule.py` grids schedules cheaply first): at the same training
# tokens per byte, window 64 / segment 16 gave 2.081 bits/byte (network alone 3.146) against
# 2.096 (3.623) for window 128 / segment 32; window 32 / segment 16, at half the tokens,
# gave 2.089 (3.165). lr 3e-3 → 6e-3 had given 4.09 → 3.96 (network alone, 128 KiB).
# Then, by the network alone's estimated code length (benchmarks/RESULTS.md, "Per-byte
# output-layer steps and a byte-selected mixer"): Adam's β2 0.99 → 0.999 gave 2.704 → 2.694
# on the whole of enwik8-head (lr 8e-3 instead was worse, 2.720); an SGD step on the output
# layer after every coded byte (`head_lr`) with β2 0.999 gave 2.912 → 2.851 (head_lr 0.03) /
# 2.862 (0.01) on its first 512 KiB, and 3.124 → 3.020 (0.01) on alice29.
# Training one segment behind the coder, in a second thread (`lag` 1), lets the network's
# training and the coding share two cores. In real round trips on an idle 2-core machine
# (`benchmarks/online_lag.py`, records benchmarks/results/online-lag-*-idle.json) it compressed
# 1.50x faster on enwik8-head's first 256 KiB and 1.68x on alice29, and cost nothing in bits
# (online + mix 2.0443 → 2.0418 and 2.0336 → 2.0321 bits/byte).
# A learning rate falling linearly from 6e-3 to 5e-4 over the file (`final_lr`), by the estimated
# code length of whole files (`benchmarks/online_lr_decay.py`, record
# benchmarks/results/online-lr-decay.json), lowered the network alone by 0.054–0.057 bits/byte
# on enwik8-head, book1 and tinyshakespeare and online + mix by 0.0044–0.0062; on alice29 (short
# schedule) it made the network alone worse by 0.030, so short files keep a constant rate.
# Short files replay 8 windows per step, as long ones do: 16 cost the training thread a fifth
# more, and alice29 compressed at 4.59 KB/s on an idle 2-core machine; with 8, 5.10 KB/s, for
# +0.0029 bits/byte (estimated online + mix 2.0146 → 2.0175; records
# benchmarks/results/online-speed-alice29-*-idle.json, online-short-replay-alice29.json).
SHORT_ONLINE_SCHEDULE = OnlineConfig(
    lr=6e-3, segment=16, replay=8, warmup_rounds=20, beta2=0.999, head_lr=0.01, lag=1
)
SHORT_ADAPTIVE_SCHEDULE = OnlineConfig(lr=1e-3, segment=32, replay=16)
ONLINE_SCHEDULE = OnlineConfig(lr=6e-3, segment=16, replay=8, beta2=0.999, head_lr=0.03, lag=1, final_lr=5e-4)
ADAPTIVE_SCHEDULE = OnlineConfig(lr=1e-3, segment=64, replay=0)
LONG_FILE = 256 * 1024
ONLINE_PRESET = "shallow"  # the model the online coder trains from scratch unless told otherwise


def default_schedule(mode: str, n: int) -> OnlineConfig:
    """The online/adaptive schedule used for an n-byte file unless one is given."""
    if mode == "adaptive":
        return ADAPTIVE_SCHEDULE if n >= LONG_FILE else SHORT_ADAPTIVE_SCHEDULE
    return ONLINE_SCHEDULE if n >= LONG_FILE else SHORT_ONLINE_SCHEDULE


def make_online_optimizer(model: GPT, cfg: OnlineConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay: the coder wants the data's fit, not regularisation."""
    return make_optimizer(model, TrainConfig(lr=cfg.lr, weight_decay=0.0, beta1=cfg.beta1, beta2=cfg.beta2))


def train_round(
    model: GPT,
    opt: torch.optim.Optimizer,
    seq: torch.Tensor,
    lengths: torch.Tensor,
    t: int,
    cfg: OnlineConfig,
    lr: float,
    gen: torch.Generator,
) -> None:
    """Optimizer steps on the text coded so far (seq[:, 1 : t+1] of every stream).

    Each batch holds, per stream, the window ending at the newest coded byte, plus `replay`
    random windows from older coded text. Targets past a stream's end are ignored. seq may
    live on the model's device; lengths and the sampled indices stay on the CPU.
    """
    S = seq.shape[0]
    T = min(model.config.block_size, t)
    offsets = torch.arange(T)
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr
    for _ in range(cfg.train_steps):
        rows = torch.arange(S)
        ends = torch.full((S,), t)
        if cfg.replay:
            rows = torch.cat([rows, torch.randint(S, (cfg.replay,), generator=gen)])
            ends = torch.cat([ends, torch.randint(T, t + 1, (cfg.replay,), generator=gen)])
        cols = ends[:, None] - T + offsets[None, :]  # input positions in seq
        beyond = (cols >= lengths[rows][:, None]).to(seq.device)  # past the stream's last byte
        rows, cols = rows.to(seq.device), cols.to(seq.device)
        x = seq[rows[:, None], cols].long()
        y = seq[rows[:, None], cols + 1].long()
        y[beyond] = -1
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    model.eval()


def round_lr(online: OnlineConfig, round_index: int, rounds: int) -> float:
    """The learning rate after segment `round_index` of `rounds`: linear warm-up, then constant,
    or with `final_lr` falling linearly from lr to final_lr over the rounds."""
    lr = online.lr
    if online.final_lr:
        lr += (online.final_lr - online.lr) * min(1.0, round_index / max(1, rounds))
    warm = online.warmup_rounds
    return lr * min(1.0, (round_index + 1) / warm) if warm else lr


def round_generator(seed: int, round_index: int) -> torch.Generator:
    """The replay sampler after segment `round_index`: a pure function of (seed, round)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + round_index)


class LaggedTraining:
    """Training one segment behind the coder, in a second thread (`OnlineConfig.lag` = 1).

    The coder codes with `model`; a copy of it (`trained`) owns the optimizer. At the boundary
    after segment r, `boundary` waits for the copy's training on the text through segment r−1,
    adds to it the output-layer steps the coder took during segment r (`head_lr`), copies its
    weights into the coder's model, and starts training the copy on the text through segment r.
    Every step is a pure function of the coded text taken in a fixed order, so the encoder and the
    decoder compute the same weights whether the training runs in a thread (`threaded`, on a
    second core) or inline (the estimate); torch runs each thread's ops with the same thread count.
    The training reads only the columns of `seq` already coded; the coder writes later ones.
    """

    def __init__(self, model: GPT, cfg: OnlineConfig, threaded: bool = True) -> None:
        self.model, self.cfg = model, cfg
        self.trained = copy.deepcopy(model)
        self.opt = make_online_optimizer(self.trained, cfg)
        self.head_start = model.lm_head.weight.detach().clone()
        # each of the coder's tensors beside its trained twin (state_dict's share their storage)
        self.pairs = list(zip(model.state_dict().values(), self.trained.state_dict().values()))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="bitlens-train") if threaded else None
        self.pending: Future | None = None

    def boundary(
        self, seq: torch.Tensor, lengths: torch.Tensor, t: int, lr: float, gen: torch.Generator
    ) -> None:
        """After the segment ending at t: take the last round's weights, start the next round."""
        self.wait()
        with torch.no_grad():
            self.trained.lm_head.weight.add_(self.model.lm_head.weight - self.head_start)
            for mine, theirs in self.pairs:
                mine.copy_(theirs)
            self.head_start = self.model.lm_head.weight.detach().clone()
        args = (self.trained, self.opt, seq, lengths, t, self.cfg, lr, gen)
        if self.pool is None:
            _train_in_thread(torch.get_num_threads(), *args)
        else:
            self.pending = self.pool.submit(_train_in_thread, torch.get_num_threads(), *args)

    def wait(self) -> None:
        """Block until the round in training (if any) is done; re-raise its error."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the round in training and stop the thread."""
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


def _train_in_thread(threads: int, *args: Any) -> None:
    """`train_round` (on the worker thread: with the coder's torch thread count)."""
    torch.set_num_threads(threads)
    with torch.enable_grad():
        train_round(*args)
