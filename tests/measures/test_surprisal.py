"""Surprisal and entropy: a uniform model costs exactly 8 bits/byte; spans are found exactly."""

import itertools

import numpy as np
import pytest
import torch

from bitlens.evaluate import evaluate
from bitlens.measures.surprisal import SurprisalConfig, extreme_spans, measure_surprisal, plot_surprisal
from bitlens.model import GPT


def uniform_model(config) -> GPT:
    """Zero (tied) embeddings → zero logits → p = 1/256 for every byte."""
    model = GPT(config).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_uniform_model_costs_eight_bits_per_byte(micro_config, shakespeare):
    r = measure_surprisal(uniform_model(micro_config), shakespeare[:2000], SurprisalConfig.full()).to_dict()
    assert r["bytes"] == 2000
    assert r["bits_per_byte"] == pytest.approx(8.0, abs=1e-5)
    assert r["entropy_bits_per_byte"] == pytest.approx(8.0, abs=1e-5)
    assert sum(r["histogram"]["surprisal_counts"]) == 2000


def test_averages_match_evaluate(micro_model, shakespeare, tmp_path):
    data = shakespeare[:3000]
    result = measure_surprisal(micro_model, data, SurprisalConfig.full())
    result.scores.save_npz(tmp_path / "s.npz")
    r = result.to_dict()
    assert r["bits_per_byte"] == pytest.approx(evaluate(micro_model, data).bits_per_byte, rel=1e-9)
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["surprisal_bits"].mean() == pytest.approx(r["bits_per_byte"])
    assert arrays["entropy_bits"].mean() == pytest.approx(r["entropy_bits_per_byte"])
    assert bytes(arrays["bytes"]) == data
    for key in ("most_surprising", "least_surprising"):
        assert len(r[key]) == 5 and set(r[key][0]) == {"text", "start", "mean_surprisal_bits"}
    assert r["most_surprising"][0]["mean_surprisal_bits"] >= r["least_surprising"][0]["mean_surprisal_bits"]


def test_extreme_spans_find_planted_spans_without_overlap():
    values = np.ones(100)
    values[40:44] = 9.0  # the most surprising 4-byte span
    values[10:14] = 5.0  # the second
    values[70:74] = 0.0  # the least surprising
    data = bytes(range(100))
    most = extreme_spans(values, data, span=4, k=2, most=True)
    assert [s["start"] for s in most] == [40, 10]
    assert most[0]["mean_surprisal_bits"] == pytest.approx(9.0)
    assert most[0]["text"] == data[40:44].decode()
    least = extreme_spans(values, data, span=4, k=3, most=False)
    assert least[0]["start"] == 70 and least[0]["mean_surprisal_bits"] == 0.0
    starts = sorted(s["start"] for s in least)
    assert all(b - a >= 4 for a, b in itertools.pairwise(starts))


def test_plot_writes_png_and_svg(micro_model, shakespeare, tmp_path):
    r = measure_surprisal(micro_model, shakespeare[:1000], SurprisalConfig.quick()).to_dict()
    plot_surprisal(r, tmp_path / "surprisal")
    assert (tmp_path / "surprisal.png").stat().st_size > 0
    assert (tmp_path / "surprisal.svg").stat().st_size > 0


def test_config_limits_bytes_spans_and_extremes(micro_model, shakespeare):
    assert SurprisalConfig.quick().max_bytes == 16_384 and SurprisalConfig.full().max_bytes == 262_144
    r = measure_surprisal(micro_model, shakespeare, SurprisalConfig(max_bytes=1500, span=8, top_k=2))
    assert r.bytes == 1500 and r.span_bytes == 8
    assert len(r.most_surprising) == 2 and len(r.least_surprising) == 2
    assert all(len(s["text"]) == 8 for s in r.most_surprising + r.least_surprising)  # ASCII text
    assert r.total_bits == pytest.approx(evaluate(micro_model, shakespeare[:1500]).total_bits, rel=1e-9)
    assert "scores" not in r.to_dict()
