import io
import sys

import pytest
import torch

from bitlens.data import (
    START_BYTE,
    bundled_corpus_bytes,
    get_batch,
    load_corpus,
    split_corpus,
    with_start,
)
from bitlens.errors import BitlensError


def test_bundled_corpus_is_tiny_shakespeare():
    data = bundled_corpus_bytes()
    assert len(data) == 1_115_394
    assert data.startswith(b"First Citizen:")


def test_load_file_directory_and_stdin(tmp_path, monkeypatch):
    (tmp_path / "b.txt").write_bytes(b"world")
    (tmp_path / "a.txt").write_bytes(b"hello ")
    assert load_corpus(tmp_path) == b"hello world"
    assert load_corpus(tmp_path / "b.txt") == b"world"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    assert load_corpus("-") == b"from stdin"


@pytest.mark.parametrize("make", ["missing", "empty", "emptydir"])
def test_bad_corpus_is_a_clear_error(tmp_path, make):
    path = tmp_path / "x"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "emptydir":
        path.mkdir()
    with pytest.raises(BitlensError) as e:
        load_corpus(path)
    assert str(path) in str(e.value)


def test_split_is_deterministic_tail(shakespeare):
    s1, s2 = split_corpus(shakespeare, 32), split_corpus(shakespeare, 32)
    assert torch.equal(s1.val, s2.val)
    assert len(s1.train) + len(s1.val) == len(shakespeare)
    assert bytes(s1.val.numpy()) == shakespeare[-len(s1.val) :]
    assert len(s1.val) == len(shakespeare) // 10


def test_corpus_shorter_than_a_window_is_refused():
    with pytest.raises(BitlensError, match="context window"):
        split_corpus(b"x" * 100, block_size=128)


def test_batches_are_shifted_windows_and_seeded(shakespeare):
    t = split_corpus(shakespeare, 16).train
    x, y = get_batch(t, 4, 16, torch.Generator().manual_seed(1))
    x2, _ = get_batch(t, 4, 16, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x, x2)


def test_with_start_prepends_the_start_byte():
    assert with_start(torch.tensor([65, 66], dtype=torch.uint8)).tolist() == [START_BYTE, 65, 66]
