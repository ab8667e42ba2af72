"""The supersample experiment end to end on tiny models (bitlens.measures.generalisation)."""

import json
import math

import pytest

from bitlens.cli import main
from bitlens.config import override
from bitlens.errors import BitlensError
from bitlens.measures.generalisation import GeneralisationConfig, measure_generalisation, plot_generalisation

FAST = GeneralisationConfig(
    sizes=(6, 96), supersamples=1, masks=4, steps=40, batch_size=16, window_bytes=16, null_draws=100
)


def test_a_learner_that_cannot_learn_shows_no_gap_and_no_cmi(shakespeare):
    # lr = 0: every model stays at its initialisation, which a mask and its complement share.
    cfg = GeneralisationConfig(
        sizes=(10,), supersamples=2, masks=4, steps=3, batch_size=4, window_bytes=16, lr=0.0, null_draws=20
    )
    point = measure_generalisation(shakespeare, cfg).points[0]
    assert point.cmi_bits == 0.0 and point.bound_bits_per_byte == 0.0 and point.cmi_ci95 == [0.0, 0.0]
    assert point.gap_bits_per_byte == pytest.approx(0.0, abs=1e-12)
    # At the floor: the null is not rejected, and the bound (0 ≥ 0) is no finding.
    assert point.cmi_null_p_value == 1.0 and point.cmi_status == "floor" and not point.informative
    # An untrained model codes at no less than 8 bits/byte (its random logits add their KL from
    # uniform: measured 0.18 bits/byte)
    assert 8.0 - 0.05 < point.train_bits_per_byte < 8.5


@pytest.fixture(scope="module")
def fast_result():
    from tests.conftest import DATA_DIR

    data = (DATA_DIR / "shakespeare-20k.txt").read_bytes()
    return measure_generalisation(data, override(FAST, seed=1)).to_dict()


def test_bound_covers_the_gap_and_both_shrink_with_n(fast_result):
    small, large = fast_result["points"]
    assert (small["n"], large["n"]) == (6, 96)
    cap = math.log2(256 / 0.05)
    assert fast_result["loss_cap_bits"] == pytest.approx(cap)
    for p in (small, large):
        assert p["bound_bits_per_byte"] >= p["gap_bits_per_byte"]
        assert 0.0 <= p["cmi_bits_per_window"] <= 1.0
        assert p["cmi_bits"] == pytest.approx(p["cmi_bits_per_window"] * p["n"])
        assert p["loss_cap_bits"] == pytest.approx(cap) and (p["n_masks"], p["n_supersamples"]) == (4, 1)
        assert p["cmi_ci95"] == [p["cmi_bits"]] * 2  # one supersample: the interval is the point
        assert p["vacuous"] == (p["bound_bits_per_byte"] >= cap)
        assert 0 < p["train_bits_per_byte"] < p["heldout_bits_per_byte"] <= cap
    assert small["gap_bits_per_byte"] > 0.3  # 40 steps of 16 windows on 6 windows: memorised
    assert large["gap_bits_per_byte"] < small["gap_bits_per_byte"] / 2
    assert large["bound_bits_per_byte"] < small["bound_bits_per_byte"]
    assert small["cmi_bits_per_window"] > small["cmi_floor_bits_per_window"]


def test_compression_bound_is_the_occam_formula_on_a_real_weights_file(fast_result):
    from bitlens.measures.weights_code import compression_bound_bits_per_byte

    small, large = fast_result["points"]
    for p in (small, large):
        assert p["compression_bound_precision_bits"] in (2, 4, 8)
        again = compression_bound_bits_per_byte(
            p["compression_bound_weights_bits"], p["n"], p["compression_bound_train_bits_per_byte"], 0.05
        )
        assert p["compression_bound_bits_per_byte"] == pytest.approx(again)
        # a file of tens of thousands of bits against at most 96 windows: far above 8 bits/byte
        assert p["compression_bound_weights_bits"] > 10_000 and p["compression_bound_vacuous"]
    # the same file size over 16× the windows: the Hoeffding term shrinks by about 4×
    assert large["compression_bound_bits_per_byte"] < small["compression_bound_bits_per_byte"] / 2


def test_memorisation_view_matches_the_gap(fast_result):
    mem = fast_result["memorisation"]
    windows = mem["windows"]
    assert mem["n"] == 6 and len(windows) == 12
    gains = [w["membership_bits_per_byte"] for w in windows]
    assert gains == sorted(gains, reverse=True)
    assert sum(gains) / len(gains) == pytest.approx(fast_result["points"][0]["gap_bits_per_byte"])
    assert all(len(w["text"]) == 16 for w in windows)
    assert all(w["membership_bits"] == pytest.approx(16 * w["membership_bits_per_byte"]) for w in windows)


def test_plot_writes_png_and_svg(fast_result, tmp_path):
    paths = plot_generalisation(json.loads(json.dumps(fast_result)), tmp_path / "gen.png")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_too_many_windows_for_the_corpus(shakespeare):
    with pytest.raises(BitlensError, match="training split"):
        measure_generalisation(shakespeare, override(FAST, sizes=(5000,)))


def test_cli_json_and_one_line_error(tmp_path, capsys):
    from tests.conftest import DATA_DIR

    corpus = DATA_DIR / "shakespeare-20k.txt"
    args = [
        "measure",
        "generalisation",
        "--corpus",
        str(corpus),
        "--quick",
        "--sizes",
        "4,8",
        "--masks",
        "2",
        "--steps",
        "2",
        "--window",
        "8",
    ]
    assert main(args + ["--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    # The CLI is the library with the quick config and the options merged in: the same numbers.
    cfg = override(GeneralisationConfig.quick(), sizes=(4, 8), masks=2, steps=2, window_bytes=8)
    expected = json.loads(json.dumps(measure_generalisation(corpus.read_bytes(), cfg).to_dict()))
    assert out["points"] == expected["points"] and out["memorisation"] == expected["memorisation"]
    assert out["config"] == expected["config"] and out["config"]["masks"] == 2
    assert out["quick"] is True and out["seed"] == 0
    assert [p["membership_surprisal_correlation"] for p in out["points"]] == [None, None]  # 2 masks
    assert main(args[:-6] + ["--sizes", "100000"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "training split" in err and "\n" not in err


@pytest.mark.slow
def test_quick_protocol_on_the_bundled_corpus_bound_covers_gap_and_both_shrink():
    from bitlens.data import bundled_corpus_bytes

    points = measure_generalisation(bundled_corpus_bytes(), GeneralisationConfig.quick()).to_dict()["points"]
    assert [p["n"] for p in points] == [25, 100, 400]
    for p in points:
        assert p["bound_bits_per_byte"] >= p["gap_bits_per_byte"]
    gaps = [p["gap_bits_per_byte"] for p in points]
    bounds = [p["bound_bits_per_byte"] for p in points]
    assert gaps == sorted(gaps, reverse=True) and bounds == sorted(bounds, reverse=True)


@pytest.mark.slow
def test_full_mode_runs_with_32_masks_3_supersamples_and_intervals():
    # The full protocol's machinery (32 masks × 3 supersamples, 1000 null draws, intervals) on
    # shortened trainings; the full protocol itself is a benchmark (about an hour on 2 cores).
    from bitlens.data import bundled_corpus_bytes

    cfg = override(GeneralisationConfig.full(), sizes=(8, 64), steps=20)
    result = measure_generalisation(bundled_corpus_bytes(), cfg).to_dict()
    assert result["quick"] is False
    small, large = result["points"]
    for p in (small, large):
        assert (p["n_masks"], p["n_supersamples"], p["n_seeds"]) == (32, 3, 3)
        assert len(p["cmi_bits_per_supersample"]) == 3
        low, high = p["cmi_ci95"]
        assert low <= p["cmi_bits"] <= high
        assert 0 < p["cmi_null_floor_bits"] < p["n"]
        assert p["cmi_status"] in ("floor", "informative", "ceiling")
        assert p["informative"] == (p["cmi_status"] == "informative")
    # 8 windows, 20 steps of 32: memorised, fully readable; the p-value is the smallest possible
    assert small["cmi_status"] == "ceiling" and small["cmi_null_p_value"] == pytest.approx(1 / 1001)
    assert large["cmi_bits_per_window"] < small["cmi_bits_per_window"]


def test_membership_correlation_is_cross_fitted():
    import numpy as np

    from bitlens.measures.cmi import complementary_masks
    from bitlens.measures.generalisation import _membership_surprisal_correlation

    rng = np.random.default_rng(0)
    k, n = 8, 3000
    masks = complementary_masks(k, n, rng)
    # Pure training noise, no membership effect: on the same runs the shared held-out noise alone
    # would correlate the two; on disjoint halves the correlation must vanish.
    noise_only = rng.normal(4.0, 0.5, size=(k, n, 2))
    assert abs(_membership_surprisal_correlation(noise_only, masks)) < 0.05
    # Harder windows lose more when trained on: a real, positive correlation.
    difficulty = rng.normal(4.0, 1.0, size=(1, n, 2))
    trained = np.stack([masks == 0, masks == 1], axis=2)
    losses = difficulty - 0.3 * (difficulty - 2.0) * trained + rng.normal(0, 0.1, size=(k, n, 2))
    assert _membership_surprisal_correlation(losses, masks) > 0.8
    assert _membership_surprisal_correlation(losses[:2], masks[:2]) is None


def test_window_bits_per_byte_is_the_mean_surprisal_of_each_window(micro_model, shakespeare):
    import torch
    import torch.nn.functional as F

    from bitlens.data import bytes_to_tensor
    from bitlens.measures.generalisation import window_bits_per_byte

    windows = bytes_to_tensor(shakespeare[: 17 * 40]).view(40, 17)
    micro_model.train()
    eps = 0.05
    got = window_bits_per_byte(micro_model, windows, eps, batch_size=16)
    assert micro_model.training  # the scorer restores the mode
    with torch.no_grad():
        w = windows.long()
        p = F.softmax(micro_model.eval()(w[:, :-1]).double(), dim=-1)
        p_target = p.gather(-1, w[:, 1:, None]).squeeze(-1)
    expected = -torch.log2((1 - eps) * p_target + eps / 256).mean(1)
    assert got == pytest.approx(expected.numpy(), rel=1e-6)
    assert (got <= math.log2(256 / eps)).all()


def test_quick_and_full_configs():
    full = GeneralisationConfig.full()
    assert full == GeneralisationConfig()
    assert full.sizes == (75, 250, 1000, 4000)
    assert full.masks >= 32 and full.supersamples >= 3 and full.null_draws >= 1000
    assert full.loss_cap_bits == pytest.approx(math.log2(256 / full.smoothing))
    quick = GeneralisationConfig.quick()
    assert (quick.sizes, quick.supersamples, quick.masks, quick.steps) == ((25, 100, 400), 1, 8, 45)
    assert set(quick.to_dict()) == {
        "sizes",
        "supersamples",
        "masks",
        "steps",
        "batch_size",
        "window_bytes",
        "lr",
        "smoothing",
        "null_draws",
        "preset",
        "threads",
    }


def test_cmi_status_reads_floor_ceiling_and_between():
    from bitlens.measures.generalisation import cmi_status

    # 100 pairs, floor 0.1 bits/pair: the ceiling starts at 90 bits (1 bit/pair less the floor)
    assert cmi_status([40.0, 60.0], p_value=0.2, floor_bits_per_window=0.1, n=100) == "floor"
    assert cmi_status([40.0, 60.0], p_value=0.01, floor_bits_per_window=0.1, n=100) == "informative"
    assert cmi_status([80.0, 89.9], p_value=0.01, floor_bits_per_window=0.1, n=100) == "informative"
    assert cmi_status([85.0, 90.0], p_value=0.01, floor_bits_per_window=0.1, n=100) == "ceiling"
    assert cmi_status([40.0, 60.0], p_value=0.05, floor_bits_per_window=0.1, n=100) == "floor"  # at the level
