"""The four corpus splits of the parent → offspring loop, and that choosing never reads test bytes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bitlens.data import bytes_to_tensor, split_corpus
from bitlens.errors import BitlensError
from bitlens.model import GPT, MODEL_PRESETS, GPTConfig
from bitlens.offspring.batches import OnlineSelection, WindowSource, _choose_online
from bitlens.offspring.collapse import CollapseConfig, collapse_splits
from bitlens.offspring.policy import CurationPolicy, context_from_model, evaluate_policy
from bitlens.offspring.select import SCORES, choice_bits, make_windows, select_tokens, token_scores
from bitlens.offspring.splits import SPLIT_NAMES, data_splits
from bitlens.units import surprisal_bits
from offspring_helpers import MICRO_CONTEXT as CONTEXT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def parent() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()


def test_splits_of_the_test_corpus(shakespeare):
    s = data_splits(shakespeare, 32, 1_025, 385, 513)
    n = len(shakespeare)
    head = len(split_corpus(shakespeare, 32).train)  # what `bitlens train` fits a parent on
    assert (s.parent_train.start, s.parent_train.end) == (0, head) == (0, n - 2_000)
    assert (s.pool.start, s.pool.end) == (head, head + 1_025)
    assert (s.validation.start, s.validation.end) == (n - 513 - 385, n - 513)
    assert (s.test.start, s.test.end) == (n - 513, n)
    assert bytes(s.take(shakespeare, "test").numpy().tobytes()) == shakespeare[-513:]
    assert s.to_dict()["pool"] == {"start": head, "end": head + 1_025, "bytes": 1_025}


def test_a_short_tail_shrinks_every_split_in_proportion(shakespeare):
    s = data_splits(shakespeare, 32, 4_000, 2_000, 2_000)  # 8 000 asked of a 2 000-byte tail
    assert (s.pool.n_bytes, s.validation.n_bytes, s.test.n_bytes) == (1_000, 500, 500)
    with pytest.raises(BitlensError, match="less than one 33-byte window"):
        data_splits(shakespeare, 32, 100_000, 100, 100)


@given(
    n=st.integers(600, 50_000),
    window=st.integers(4, 64),
    sizes=st.lists(st.integers(0, 20_000), min_size=3, max_size=3),
)
def test_splits_are_disjoint_ordered_and_within_what_was_asked(n, window, sizes):
    data = bytes(n)
    try:
        s = data_splits(data, window, *sizes)
    except BitlensError:
        return  # a split asked for could not hold a window: refused, not silently empty
    ranges = [getattr(s, name) for name in SPLIT_NAMES]
    assert ranges[0].start == 0 and ranges[-1].end == n
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.end <= b.start  # disjoint and in corpus order
    assert s.parent_train.end == len(split_corpus(data, window).train)
    for r, asked in zip(ranges[1:], sizes, strict=True):
        assert 0 <= r.n_bytes <= asked and (asked == 0) == (r.n_bytes == 0)


def test_a_named_parent_head_gives_every_split_as_asked(shakespeare):
    """parent_train_bytes: the parent's head is exactly that, the pool the next stretch, and
    validation | test the corpus's last bytes; nothing shrinks."""
    n = len(shakespeare)
    s = data_splits(shakespeare, 32, 6_000, 1_000, 1_500, parent_train_bytes=9_000)
    assert (s.parent_train.start, s.parent_train.end) == (0, 9_000)
    assert (s.pool.start, s.pool.end) == (9_000, 15_000)
    assert (s.validation.start, s.validation.end) == (n - 2_500, n - 1_500)
    assert (s.test.start, s.test.end) == (n - 1_500, n)
    # more pool than `bitlens train`'s 10 % tail could give (which would shrink it)
    assert s.pool.n_bytes > data_splits(shakespeare, 32, 6_000, 1_000, 1_500).pool.n_bytes
    assert bytes(s.take(shakespeare, "pool").numpy().tobytes()) == shakespeare[9_000:15_000]
    assert bytes(s.take(shakespeare, "parent_train").numpy().tobytes()) == shakespeare[:9_000]


def test_a_named_parent_head_refuses_a_corpus_too_short(shakespeare):
    n = len(shakespeare)
    ok = data_splits(shakespeare, 32, 1_000, 1_000, 1_000, parent_train_bytes=n - 3_000)
    assert ok.pool.end == ok.validation.start  # fits exactly: no gap, no overlap
    with pytest.raises(BitlensError, match="too short"):
        data_splits(shakespeare, 32, 1_000, 1_000, 1_000, parent_train_bytes=n - 2_999)
    with pytest.raises(BitlensError, match="less than one 33-byte window"):
        data_splits(shakespeare, 32, 1_000, 1_000, 1_000, parent_train_bytes=32)
    with pytest.raises(BitlensError, match="less than one 33-byte window"):
        data_splits(shakespeare, 32, 20, 1_000, 1_000, parent_train_bytes=1_000)


@given(
    n=st.integers(600, 50_000),
    window=st.integers(4, 64),
    head=st.integers(0, 30_000),
    sizes=st.lists(st.integers(0, 20_000), min_size=3, max_size=3),
)
def test_named_head_splits_are_disjoint_ordered_and_exact(n, window, head, sizes):
    data = bytes(n)
    try:
        s = data_splits(data, window, *sizes, parent_train_bytes=head)
    except BitlensError:
        fits = head + sum(sizes) <= n
        small = head <= window or any(0 < k <= window for k in sizes)
        assert not fits or small  # refused only when it cannot fit or a split holds no window
        return
    ranges = [getattr(s, name) for name in SPLIT_NAMES]
    assert ranges[0].start == 0 and ranges[0].end == head and ranges[1].start == head
    assert ranges[-1].end == n
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.end <= b.start  # disjoint and in corpus order
    assert [r.n_bytes for r in ranges[1:]] == sizes


def test_context_config_carries_the_named_head(shakespeare, parent):
    config = replace(CONTEXT, parent_train_bytes=5_000)
    ctx = context_from_model(parent, shakespeare, config)
    assert ctx.splits == config.data_splits(shakespeare)
    assert bytes(ctx.parent_train.numpy().tobytes()) == shakespeare[:5_000]
    assert bytes(ctx.pool[0].numpy().tobytes()) == shakespeare[5_000:5_033]
    assert ctx.splits.pool.n_bytes == CONTEXT.pool_bytes


def test_collapse_uses_no_pool_and_no_validation(shakespeare):
    s = collapse_splits(shakespeare, CollapseConfig(test_bytes=512, window=32))
    assert s.pool.n_bytes == 0 and s.validation.n_bytes == 0 and s.test.n_bytes == 512


def test_context_cuts_the_splits(shakespeare, parent):
    ctx = context_from_model(parent, shakespeare, CONTEXT)
    s = ctx.splits
    assert ctx.pool.shape == (32, 33)  # (1 025 − 1) // 32 windows of 33 bytes
    assert bytes(ctx.pool[0].numpy().tobytes()) == shakespeare[s.pool.start : s.pool.start + 33]
    assert bytes(ctx.parent_train.numpy().tobytes()) == shakespeare[: s.parent_train.end]
    assert bytes(ctx.validation.numpy().tobytes()) == shakespeare[s.validation.start : s.validation.end]
    assert bytes(ctx.test.numpy().tobytes()) == shakespeare[s.test.start :]
    with pytest.raises(BitlensError, match="validation or test"):
        ctx.split_windows("pool")


def test_poisoning_the_test_split_changes_no_choice(shakespeare, parent):
    """Overwrite the test split with a marker byte: every selection score on the pool, and every
    validation result evolution chooses on, is the same; only test scores move."""
    s = data_splits(shakespeare, 32, CONTEXT.pool_bytes, CONTEXT.validation_bytes, CONTEXT.test_bytes)
    poisoned = shakespeare[: s.test.start] + b"\x07" * s.test.n_bytes
    clean_ctx = context_from_model(parent, shakespeare, CONTEXT)
    bad_ctx = context_from_model(parent, poisoned, CONTEXT)
    needs = tuple(dict.fromkeys(k for score in SCORES.values() for k in score.needs))
    clean_bits, bad_bits = clean_ctx.bits(needs), bad_ctx.bits(needs)
    assert set(needs) >= {"parent", "reference", "bigram"}
    for k in needs:
        assert np.array_equal(clean_bits[k], bad_bits[k]), k
    for score in ("static-excess", "bigram", "learnability"):
        policy = CurationPolicy(score=score, level="token", keep_ratio=0.5, budget_tokens=128)
        assert evaluate_policy(policy, clean_ctx, 0) == evaluate_policy(policy, bad_ctx, 0)
    policy = CurationPolicy(score="surprisal", keep_ratio=0.5, budget_tokens=128)
    clean, bad = evaluate_policy(policy, clean_ctx, 0, "test"), evaluate_policy(policy, bad_ctx, 0, "test")
    assert clean.heldout_bits_per_byte != bad.heldout_bits_per_byte  # the poison is really there


# --- online RHO-LOSS ---------------------------------------------------------------------------


def _learner_bits(model: GPT, windows: torch.Tensor) -> np.ndarray:
    w = windows.long()
    with torch.no_grad():
        return surprisal_bits(model(w[:, :-1]), w[:, 1:]).double().numpy()


def test_online_choice_is_the_current_learner_minus_the_reference(shakespeare):
    """Each step keeps what the learner *now* finds hardest relative to the reference: two
    learners choose differently from the same candidates, each as its own losses say."""
    windows = make_windows(bytes_to_tensor(shakespeare[:4_000]), 16)[:40]
    source = WindowSource.unmasked(windows, 4)
    mask = torch.from_numpy(source.mask).float()
    reference = np.random.default_rng(0).normal(3.0, 0.1, size=(len(windows), 16))
    picks = torch.arange(0, 40, 4)  # 10 candidates
    chosen = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        learner = GPT(GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=32))
        doc = OnlineSelection(reference, keep_ratio=0.4, level="document")
        idx, m = _choose_online(learner, source, mask, picks, doc)
        reducible = _learner_bits(learner, windows[picks]) - reference[picks.numpy()]
        expected = np.sort(picks.numpy()[np.argsort(-reducible.mean(axis=1))[:4]])
        assert idx.tolist() == expected.tolist() and m.shape == (4, 16) and bool(m.all())
        tok = OnlineSelection(reference, keep_ratio=0.25, level="token")
        idx, m = _choose_online(learner, source, mask, picks, tok)
        assert idx.tolist() == picks.tolist() and m.sum() == 40  # 25 % of 10 × 16 targets
        assert np.array_equal(m.numpy().astype(bool), select_tokens(reducible, 0.25))
        chosen.append(m)
    assert not torch.equal(chosen[0], chosen[1])  # the choice follows the learner


def test_online_rho_loss_policy_trains_and_accounts(shakespeare, parent):
    ctx = context_from_model(parent, shakespeare, CONTEXT)
    for level in ("document", "token"):
        policy = CurationPolicy(score="rho-loss", level=level, keep_ratio=0.25, budget_tokens=256)
        a = evaluate_policy(policy, ctx, 0)
        assert a == evaluate_policy(policy, ctx, 0)  # deterministic in its seed
        steps = 2  # 256 tokens = 2 steps of 4 windows of 32 bytes
        candidates = 16 if level == "document" else 4  # 4 kept of 16 scored windows
        per_token = GPT(MODEL_PRESETS["tiny"]).flops_per_token(train=False)  # the offspring
        assert a.cost.online_scoring_flops == pytest.approx(steps * candidates * 32 * per_token)
        per_step = choice_bits(16, 4) if level == "document" else choice_bits(128, 32)
        assert a.choice_bits == pytest.approx(steps * per_step)
        assert a.loss_tokens == (256 if level == "document" else 64)
    with pytest.raises(BitlensError, match="scored online"):
        token_scores("rho-loss", {"parent": np.zeros((1, 2))}, 0)
