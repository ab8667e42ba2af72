"""Capacity: memorised bits are exact for known cases and plateau on random data."""

import numpy as np
import pytest
import torch

from bitlens.measures.capacity import (
    CapacityConfig,
    memorised_bits,
    plot_capacity,
    random_sequences,
    sequence_surprisal_bits,
)
from bitlens.measures.validate import check_capacity_plateau
from bitlens.model import GPT, GPTConfig


def test_memorised_bits_clamps_each_sequence():
    # Sequences of 4 bytes carry 32 bits: 32−10 = 22 stored, 32−40 → 0 (not −8), 32−32 = 0.
    assert memorised_bits(np.array([10.0, 40.0, 32.0]), seq_len=4) == pytest.approx(22.0)


def test_uniform_model_memorises_nothing():
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    with torch.no_grad():
        model.wte.weight.zero_()
    seqs = random_sequences(5, 8, seed=0)
    s = sequence_surprisal_bits(model, seqs)
    assert s == pytest.approx(np.full(5, 64.0), abs=1e-4)
    assert memorised_bits(s, 8) == pytest.approx(0.0, abs=1e-3)


def test_capacity_grows_linearly_then_plateaus(tmp_path):
    # A 3k-parameter model: 4 sequences (1 kbit) fit entirely; 64 and 128 (16 and 32 kbit)
    # exceed its capacity, so both store about the same number of bits.
    check = check_capacity_plateau(CapacityConfig(sizes=((1, 8),), n_sequences=(4, 64, 128), steps=300))
    assert check.details["linear"], check.details["points"]
    assert check.details["saturated"], check.details["points"]
    assert check.details["plateau"], check.details["points"]
    assert 1.0 < check.details["bits_per_parameter"] < 4.0
    result = {"models": [{"n_layer": 1, "n_embd": 8, "params": check.details["params"],
                          "bits_per_parameter": check.details["bits_per_parameter"],
                          "points": check.details["points"]}],
              "reference_bits_per_parameter": {"morris_2025": 3.6, "allen_zhu_li": 2.0}}
    plot_capacity(result, tmp_path / "cap")
    assert (tmp_path / "cap.png").exists() and (tmp_path / "cap.svg").exists()
