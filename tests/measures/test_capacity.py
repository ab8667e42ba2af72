"""Capacity: memorised bits are exact for known cases, the plateau means growth stopped, the slope
fit recovers a planted slope, quantisation moves weights by at most half a step."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bitlens.data import START_BYTE
from bitlens.errors import BitlensError
from bitlens.measures.capacity import (
    ANCHORS_BITS_PER_PARAMETER,
    PRECISIONS,
    CapacityConfig,
    LookupMemoriser,
    Saturation,
    at_precision,
    fit_slope,
    measure_capacity,
    memorised_bits,
    plateau,
    plot_capacity,
    quantise_symmetric,
    random_sequences,
    sequence_surprisal_bits,
    tail_mean_bits,
    train_to_saturation,
)
from bitlens.measures.validate import check_capacity_lookup, check_capacity_memorises
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


@pytest.mark.parametrize("k", [1, 16, 100])
def test_a_model_with_the_sequences_by_heart_memorises_all_but_which_one(k):
    # K distinct stored sequences of S bytes: each costs log2 K bits (which one it is), so the
    # memorised bits are K·(8·S − log2 K), up to the ε smoothing (≤ S·log2(1/(1−ε)) per sequence).
    S = 24
    seqs = random_sequences(k, S, seed=2)
    s = sequence_surprisal_bits(LookupMemoriser(seqs), seqs)
    assert s == pytest.approx(np.full(k, math.log2(k)), abs=1e-3)
    assert memorised_bits(s, S) == pytest.approx(k * (8 * S - math.log2(k)), abs=1e-3 * k)


def test_a_lookup_memoriser_stores_nothing_about_sequences_it_does_not_hold():
    held, other = random_sequences(8, 16, seed=0), random_sequences(8, 16, seed=1)
    s = sequence_surprisal_bits(LookupMemoriser(held), other)
    assert (s > 8 * 16).all() and memorised_bits(s, 16) == 0.0


def test_plateau_means_memorised_bits_stopped_growing():
    sat = [True] * 4
    # Two steps under 5 % growth: reached; the capacity is the sweep's maximum.
    assert plateau([8_000, 21_000, 21_500, 22_000], sat) == (22_000, True)
    # A decline past capacity is growth stopping too; the peak is what the model held.
    assert plateau([8_000, 21_000, 21_400, 20_500], sat) == (21_400, True)
    assert tail_mean_bits([8_000, 21_000, 21_400, 20_500]) == pytest.approx(np.mean([21_000, 21_400, 20_500]))
    # One small step is not enough: 21 500 → 23 000 is +7 %.
    capacity, reached = plateau([8_000, 21_500, 23_000, 23_500], sat)
    assert not reached and capacity == 23_500  # not reached: the largest total, a lower bound
    # The linear regime (everything memorised, doubling) is no plateau.
    assert not plateau([2_048, 4_096, 8_192], [True] * 3)[1]
    # Growth stopped, but on runs that did not saturate: not shown to be the capacity.
    assert not plateau([8_000, 21_000, 21_500, 22_000], [True, True, False, True])[1]
    assert plateau([5.0, 5.0], [True, True]) == (5.0, False)  # too short to show a plateau
    assert plateau([0.0, 0.0, 0.0], [True] * 3) == (0.0, False)  # nothing memorised at all


def test_slope_fit_recovers_a_planted_slope_with_an_interval_that_covers_it():
    rng = np.random.default_rng(0)
    params = [2_000, 5_000, 20_000, 60_000, 110_000]
    seeds = [s for s in range(5) for _ in params]
    xs = params * 5
    ys = [3.6 * p + 500 + rng.normal(0, 0.03 * p) for p in xs]
    fit = fit_slope(xs, ys, seeds)
    assert fit.n_seeds == 5 and len(fit.slope_by_seed) == 5
    assert fit.slope_ci95[0] <= 3.6 <= fit.slope_ci95[1]
    assert fit.slope_bits_per_parameter == pytest.approx(3.6, abs=0.1)
    assert fit.slope_ci95[1] - fit.slope_ci95[0] < 0.3
    # Exact lines: each seed's slope is the planted one, and the interval is a point.
    exact = fit_slope(xs, [2.0 * p - 100 for p in xs], seeds)
    assert exact.slope_by_seed == pytest.approx([2.0] * 5) and exact.slope_ci95 == pytest.approx((2.0, 2.0))
    assert exact.intercept_bits_by_seed == pytest.approx([-100.0] * 5)
    with pytest.raises(BitlensError, match="two model sizes"):
        fit_slope([10, 10], [1.0, 2.0], [0, 0])


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, (3, 5), elements=st.floats(-100, 100, width=32)),
    st.sampled_from([2, 4, 8]),
    st.booleans(),
)
def test_quantisation_moves_each_weight_by_at_most_half_a_step(w, bits, per_channel):
    t = torch.from_numpy(w)
    q = quantise_symmetric(t, bits, per_channel=per_channel)
    q_max = 2 ** (bits - 1) - 1
    amax = t.abs().amax(1, keepdim=True) if per_channel else t.abs().max()
    scale = torch.where(amax > 0, amax / q_max, torch.ones_like(amax))
    assert ((q - t).abs() <= scale / 2 * (1 + 1e-5) + 1e-6).all()
    levels = torch.round(q / scale)  # every value on the integer grid, inside ±q_max
    assert torch.allclose(q, levels * scale, atol=1e-4) and (levels.abs() <= q_max).all()
    assert quantise_symmetric(torch.zeros(2, 3), bits).eq(0).all()


def test_precisions_round_matrices_and_keep_norms():
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8))
    assert torch.equal(at_precision(model, "fp32").lm_head.weight, model.lm_head.weight)
    for precision in ("int8", "int4"):
        q = at_precision(model, precision)
        bits = int(precision[3:])
        assert len(torch.unique(q.lm_head.weight[0])) <= 2**bits - 1
        assert torch.equal(q.blocks[0].ln_1.weight, model.blocks[0].ln_1.weight)  # norms kept
    bf16 = at_precision(model, "bf16").wte.weight
    assert torch.equal(bf16, model.wte.weight.to(torch.bfloat16).float())
    assert not torch.equal(bf16, model.wte.weight)  # the original is untouched
    with pytest.raises(BitlensError, match="unknown precision"):
        at_precision(model, "fp8")


def test_training_stops_when_memorised_bits_stop_moving():
    # Four sequences (512 bits) for a 5k-parameter model: learnt within a few hundred steps, so
    # it saturates before the cap; the recorded numbers satisfy the stated criterion.
    cfg = CapacityConfig(
        lr=1e-2, saturation=Saturation(check_every=25, window=50, rel_tol=0.01, min_steps=50)
    )
    seqs = random_sequences(4, 32, seed=0)
    torch.manual_seed(0)
    model = GPT(cfg.model_config(1, 8))
    record = train_to_saturation(model, seqs, cfg, seed=0)
    assert record.saturated and record.steps < cfg.saturation.max_steps and record.steps % 25 == 0
    assert record.window_growth_relative <= 0.01
    history = dict(record.memorised_bits_by_step)
    assert list(history) == list(range(0, record.steps + 1, 25))
    assert history[record.steps] - history[record.steps - 50] == pytest.approx(record.window_growth_bits)
    assert memorised_bits(sequence_surprisal_bits(model, seqs), 32) >= 0.9 * 4 * 32 * 8
    # A model that stores nothing (a learning rate of 0) is flat from the start, but has not
    # started memorising: not saturated.
    frozen = CapacityConfig(
        lr=0.0, saturation=Saturation(check_every=10, window=20, min_steps=20, max_steps=40)
    )
    torch.manual_seed(0)
    flat = train_to_saturation(GPT(cfg.model_config(1, 8)), seqs, frozen, seed=0)
    assert not flat.saturated and flat.window_growth_bits == 0.0
    # A cap shorter than the window can never show saturation: recorded as not saturated.
    capped = CapacityConfig(saturation=Saturation(check_every=10, window=20, min_steps=20, max_steps=10))
    torch.manual_seed(0)
    assert not train_to_saturation(GPT(cfg.model_config(1, 8)), seqs, capped, seed=0).saturated


def test_lookup_capacity_check_is_a_known_answer():
    check = check_capacity_lookup(capacity_sequences=32, seq_len=16)
    assert check.passed and check.details["plateau_reached"]
    assert check.expected_bits_per_byte == pytest.approx(8 - 5 / 16)
    assert check.details["capacity_bits"] == pytest.approx(32 * (128 - 5), rel=1e-5)
    # Below capacity it stores every sequence, each costing log2 n bits.
    n0 = check.details["n_sequences"][0]
    assert check.details["memorised_bits"][0] == pytest.approx(n0 * (128 - math.log2(n0)), rel=1e-5)
    # A sweep that stops below the capacity shows no plateau: the check fails.
    assert not check_capacity_lookup(capacity_sequences=32, seq_len=16, multiples=(0.25, 0.5, 0.75)).passed


def test_capacity_check_has_a_real_expected_value():
    # A 5k-parameter model on 4 random sequences (1 kbit, far below its capacity) memorises
    # nearly all of them: within 10 % of their 8 bits/byte, never above.
    cfg = CapacityConfig(sizes=((1, 8),), data_multiples=(0.05,), saturation=Saturation(max_steps=300))
    check = check_capacity_memorises(cfg)
    first = check.details["points"][0]
    assert first["n_sequences"] == 4
    assert check.expected_bits_per_byte == 8.0 and check.tolerance == 0.10
    assert check.measured_bits_per_byte == pytest.approx(first["memorised_bits"] / (4 * 32))
    assert 0.9 * 8.0 <= check.measured_bits_per_byte <= 8.0 and check.passed
    assert set(first["memorised_bits_by_precision"]) == set(PRECISIONS)


def test_measure_capacity_reports_a_slope_per_precision_and_plots(tmp_path):
    cfg = CapacityConfig(
        sizes=((1, 4), (1, 8)),
        data_multiples=(0.1, 0.2, 0.4),
        n_seeds=2,
        saturation=Saturation(check_every=10, window=20, min_steps=20, max_steps=20),
    )
    r = measure_capacity(cfg).to_dict()
    assert r["n_seeds"] == 2 and r["seeds"] == [0, 1] and len(r["runs"]) == 4
    assert r["slope_ci95"][0] <= r["slope_bits_per_parameter"] <= r["slope_ci95"][1]
    assert set(r["precision"]) == set(PRECISIONS)
    assert r["precision"]["fp32"]["slope_bits_per_parameter"] == r["slope_bits_per_parameter"]
    assert r["precision"]["int4"]["anchor_bits_per_parameter"] == 0.7
    assert r["anchors_bits_per_parameter"] == ANCHORS_BITS_PER_PARAMETER
    assert r["parameter_decades"] == pytest.approx(math.log10(5168 / 2392))
    for run in r["runs"]:
        assert run["parameters"] in (2392, 5168) and run["saturated"] is False
        assert all(0 <= p["memorised_bits"] <= p["data_bits"] for p in run["points"])
        assert all(p["saturation"]["steps"] == 20 for p in run["points"])
        m = [p["memorised_bits"] for p in run["points"]]
        assert (run["memorised_bits"], run["plateau_reached"]) == plateau(m, [False] * len(m))
        assert run["memorised_bits"] == max(m) and run["tail_mean_bits"] == pytest.approx(np.mean(m))
    for key, fit in (("memorised_bits", r), ("tail_mean_bits", r["tail_mean"])):
        slopes = []
        for s in (0, 1):
            mine = sorted((x["parameters"], x[key]) for x in r["runs"] if x["seed"] == s)
            slopes.append((mine[1][1] - mine[0][1]) / (mine[1][0] - mine[0][0]))
        assert fit["slope_by_seed"] == pytest.approx(slopes)
    plot_capacity(r, tmp_path / "cap")
    assert (tmp_path / "cap.png").exists() and (tmp_path / "cap.svg").exists()


def test_a_stopped_study_resumes_from_its_saved_points(tmp_path, monkeypatch):
    """Every trained point is saved; a second call trains nothing and gives the same result; a
    point saved under other settings is refused; a missing point is trained again."""

    import bitlens.measures.capacity as capacity

    cfg = CapacityConfig(
        sizes=((1, 4), (1, 8)),
        data_multiples=(0.1, 0.2),
        n_seeds=1,
        saturation=Saturation(check_every=5, window=10, min_steps=10, max_steps=10),
    )
    first = measure_capacity(cfg, points_dir=tmp_path).to_dict()
    saved = sorted(tmp_path.glob("*.json"))
    assert len(saved) == 4 and saved[0].name == "1x4-seed0-n3.json"
    real = capacity._train_point
    monkeypatch.setattr(capacity, "_train_point", lambda *a: pytest.fail("a saved point was retrained"))
    assert measure_capacity(cfg, points_dir=tmp_path).to_dict() == first
    saved[0].unlink()  # the study was killed before this point finished: only it is trained again
    trained = []
    monkeypatch.setattr(capacity, "_train_point", lambda *a: trained.append(a) or real(*a))
    assert measure_capacity(cfg, points_dir=tmp_path).to_dict() == first and len(trained) == 1
    other = CapacityConfig(**{**cfg.__dict__, "lr": 3e-3})
    with pytest.raises(BitlensError, match="other settings"):
        measure_capacity(other, points_dir=tmp_path)
    saved[1].write_text(saved[1].read_text()[:40])  # cut short
    with pytest.raises(BitlensError, match="not a capacity point record"):
        measure_capacity(cfg, points_dir=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_a_gpu_study_without_a_gpu_is_refused():
    with pytest.raises(BitlensError, match="not available here"):
        CapacityConfig(device="cuda")


def test_configs_span_what_they_claim():
    study = CapacityConfig.study()
    params = [GPT(study.model_config(*s)).num_params() for s in study.sizes]
    assert math.log10(max(params) / min(params)) >= 1.5 and study.n_seeds >= 3
    top = GPT(study.model_config(*study.sizes[-1]))
    assert top.embedding_params() < 0.5 * top.num_params()  # non-embedding parameters dominate
    # The sweep reaches 4× the guessed capacity (3.6 bits/param), far past any plausible plateau.
    assert max(study.n_sequences(params[-1])) * 8 * study.seq_len >= 4 * 3.6 * params[-1] * 0.99
