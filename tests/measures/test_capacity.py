"""Capacity: memorised bits are exact for known cases, and a plateau means growth stopped."""

import numpy as np
import pytest
import torch

from bitlens.data import START_BYTE
from bitlens.measures.capacity import (
    CapacityConfig,
    CapacityPoint,
    memorised_bits,
    plateau_reached,
    plot_capacity,
    random_sequences,
    sequence_surprisal_bits,
)
from bitlens.measures.validate import check_capacity_memorises
from bitlens.model import GPT, GPTConfig


def test_memorised_bits_clamps_each_sequence():
    # Sequences of 4 bytes carry 32 bits: 32−10 = 22 stored, 32−40 → 0 (not −8), 32−32 = 0.
    assert memorised_bits(np.array([10.0, 40.0, 32.0]), seq_len=4) == pytest.approx(22.0)


def test_uniform_model_memorises_nothing():
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    with torch.no_grad():
        model.lm_head.weight.zero_()
    seqs = random_sequences(5, 8, seed=0)
    s = sequence_surprisal_bits(model, seqs)
    assert s == pytest.approx(np.full(5, 64.0), abs=1e-4)
    assert memorised_bits(s, 8) == pytest.approx(0.0, abs=1e-3)


def test_sequence_surprisal_scores_every_byte_after_the_start_byte_and_restores_train_mode():
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8)).train()
    seqs = random_sequences(3, 8, seed=1)
    inputs = torch.cat([torch.full((3, 1), START_BYTE), seqs[:, :-1]], 1)
    with torch.no_grad():
        logp = torch.log_softmax(model.eval()(inputs), -1).gather(-1, seqs[:, :, None])[..., 0]
    model.train()
    expected = (-logp / np.log(2)).double().sum(1).numpy()
    assert sequence_surprisal_bits(model, seqs) == pytest.approx(expected, rel=1e-5)
    assert model.training


def _points(memorised: list[float]) -> list[CapacityPoint]:
    return [
        CapacityPoint(
            n_sequences=8 * 2**i, data_bits=2048.0 * 2**i, memorised_bits=m, train_bits_per_byte=0.0
        )
        for i, m in enumerate(memorised)
    ]


def test_plateau_means_memorised_bits_stopped_growing():
    # The 2×16 model of the full sweep: data far beyond what it holds, yet still growing 4 %/7 %.
    assert not plateau_reached(_points([8_000, 21_500, 23_000]))  # +7 %: still growing
    assert plateau_reached(_points([8_000, 21_500, 22_000]))  # +2.3 %: stopped
    assert plateau_reached(_points([8_000, 21_500, 21_000]))  # noise down: stopped
    assert not plateau_reached(_points([2_048, 8_192]))  # linear regime: everything memorised
    assert not plateau_reached(_points([2_048]))  # one point shows no growth at all


def test_capacity_check_has_a_real_expected_value(tmp_path):
    # A 3k-parameter model trained 300 times on 4 random sequences (1 kbit, far below its
    # capacity) memorises nearly all of them: within 10 % of their 8 bits/byte, never above.
    check = check_capacity_memorises(CapacityConfig(sizes=((1, 8),), n_sequences=(4, 64, 128), steps=300))
    first = check.details["points"][0]
    assert check.expected_bits_per_byte == 8.0 and check.tolerance == 0.10
    assert check.measured_bits_per_byte == pytest.approx(first["memorised_bits"] / (4 * 32))
    assert 0.9 * 8.0 <= check.measured_bits_per_byte <= 8.0
    assert check.passed and abs(check.relative_error) <= check.tolerance
    # The sweep: memorised bits never exceed the data's entropy, and the plateau is growth stopping.
    points = [CapacityPoint(**p) for p in check.details["points"]]
    assert all(p.memorised_bits <= p.data_bits for p in points)
    assert check.details["plateau_reached"] == plateau_reached(points)
    capacity = max(p.memorised_bits for p in points)
    assert check.details["bits_per_parameter"] == pytest.approx(capacity / check.details["params"])
    result = {
        "models": [
            {
                "n_layer": 1,
                "n_embd": 8,
                "params": check.details["params"],
                "bits_per_parameter": check.details["bits_per_parameter"],
                "points": check.details["points"],
            }
        ],
        "reference_bits_per_parameter": {"morris_2025": 3.6, "allen_zhu_li": 2.0},
    }
    plot_capacity(result, tmp_path / "cap")
    assert (tmp_path / "cap.png").exists() and (tmp_path / "cap.svg").exists()
