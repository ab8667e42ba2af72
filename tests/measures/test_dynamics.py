"""Token dynamics: Rho-1 classes are counted exactly, and a half-determined source is read right."""

import numpy as np
import pytest

from bitlens.measures.dynamics import (
    DynamicsConfig,
    checkpoint_steps,
    classify,
    measure_dynamics,
    plot_dynamics,
)
from bitlens.measures.sources import half_determined_source
from bitlens.model import GPTConfig


def test_classify_counts_and_gains():
    start = np.array([1.0, 1.0, 5.0, 5.0, 5.0, 1.0])
    end = np.array([0.5, 4.0, 1.0, 4.0, 0.0, 0.0])
    c = classify(start, end, threshold_bits=2.0)
    assert c["L->L"]["tokens"] == 2 and c["L->L"]["information_gained_bits"] == pytest.approx(1.5)
    assert c["L->H"]["tokens"] == 1 and c["L->H"]["information_gained_bits"] == pytest.approx(-3.0)
    assert c["H->L"]["tokens"] == 2 and c["H->L"]["information_gained_bits"] == pytest.approx(9.0)
    assert c["H->H"]["proportion"] == pytest.approx(1 / 6)
    assert sum(v["proportion"] for v in c.values()) == pytest.approx(1.0)


def test_checkpoints_are_log_spaced():
    steps = checkpoint_steps(600, 15)
    # 14 log-spaced steps in [1, 600] rounded, the duplicates of the first few merged
    assert steps == [0, 1, 2, 3, 4, 7, 12, 19, 31, 51, 84, 137, 224, 367, 600]


def test_half_determined_source(tmp_path):
    # Free symbols carry 4 bits, forced ones 0: at the end the forced half is Low, the free
    # half High, and the threshold (mean final loss) sits near the 2-bit entropy rate.
    src = half_determined_source(16)
    data = src.sample(40_000, seed=0)
    r = measure_dynamics(
        data,
        DynamicsConfig(steps=250, heldout_bytes=2048, checkpoints=10, preset="micro"),
        model_config=GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32),
    ).to_dict()
    classes = r["classes"]
    low_end = classes["L->L"]["proportion"] + classes["H->L"]["proportion"]
    assert low_end == pytest.approx(0.5, abs=0.03)
    assert r["threshold_bits"] == pytest.approx(src.entropy_rate_bits(), rel=0.1)
    # A random network knows nothing: at least 8 bits/byte (its head's random logits add their
    # KL from uniform, measured 0.23 bits)
    init = r["checkpoints"][0]["bits_per_byte"]
    assert 8.0 - 0.05 < init < 8.5
    assert r["unigram_bits_per_byte"] == pytest.approx(5.0, abs=0.02)  # 32 symbols, uniform
    # Information gained from init: init − 0 bits per forced byte, init − 4 per free byte, so
    # init − 2 on average.
    assert r["information_gained_from_init_bits"] / r["tokens"] == pytest.approx(init - 2.0, abs=0.3)
    assert r["tokens"] == 2048
    plot_dynamics(r, tmp_path / "dyn")
    assert (tmp_path / "dyn.png").exists() and (tmp_path / "dyn.svg").exists()
