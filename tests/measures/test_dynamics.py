"""Token dynamics: known class splits, identical checkpoints, a known regression, a series of
saved checkpoints (bitlens and hf:) scored identically on every backend, and a half-determined
source read right."""

import json

import numpy as np
import pytest
import torch

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.measures.dynamics import (
    DynamicsConfig,
    Series,
    analyse,
    checkpoint_steps,
    measure_dynamics,
    plot_dynamics,
    whole_utf8,
)
from bitlens.measures.series import expand_specs, load_checkpoint, score_series, step_file
from bitlens.measures.sources import half_determined_source
from bitlens.measures.token_classes import RHO1_PROPORTIONS, classify, distance_to_rho1
from bitlens.model import GPT, GPTConfig
from bitlens.runs import atomic_write_json, save_model

CFG = DynamicsConfig(n_blocks=16)


def series(*bits: np.ndarray) -> Series:
    return Series([f"c{i}" for i in range(len(bits))], [None] * len(bits), list(bits), 0)


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


def known_split(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """50 % L->L (1 → 0.5 bits), 25 % H->L (6 → 1), 15 % L->H (1 → 6), 10 % H->H (6 → 5.5),
    shuffled so that every block holds a mix; threshold 3 bits."""
    pattern = np.repeat([0, 1, 2, 3], [n // 2, n // 4, 3 * n // 20, n // 10])
    pattern = np.random.default_rng(seed).permutation(pattern)
    start = np.array([1.0, 6.0, 1.0, 6.0])[pattern]
    end = np.array([0.5, 1.0, 6.0, 5.5])[pattern]
    return start, end


def test_a_constructed_split_is_counted_with_its_shares():
    start, end = known_split()
    r = analyse(series(start, end), 0, DynamicsConfig(threshold_bits=3.0, n_blocks=16), None, "checkpoints")
    want = {"L->L": 0.5, "H->L": 0.25, "L->H": 0.15, "H->H": 0.1}
    # gains: 2000·0.5, 1000·5, 600·(−5), 400·0.5 = 1000, 5000, −3000, 200 (total 3200 bits);
    # starting bits: 2000, 6000, 600, 2400 (total 11000 bits)
    gain = {"L->L": 1000 / 3200, "H->L": 5000 / 3200, "L->H": -3000 / 3200, "H->H": 200 / 3200}
    start_share = {"L->L": 2000 / 11000, "H->L": 6000 / 11000, "L->H": 600 / 11000, "H->H": 2400 / 11000}
    for c, v in r.classes.items():
        assert v["proportion"]["estimate"] == pytest.approx(want[c])
        assert v["gain_share"]["estimate"] == pytest.approx(gain[c])
        assert v["start_bits_share"]["estimate"] == pytest.approx(start_share[c])
        assert v["gain_over_start_share"]["estimate"] == pytest.approx(gain[c] / start_share[c])
        for key in ("proportion", "gain_share", "start_bits_share"):
            lo, hi = v[key]["ci95"]
            assert lo <= v[key]["estimate"] <= hi and hi - lo < 0.5
            assert v[key]["n_seeds"] == 1 and v[key]["n_blocks"] == 16
    assert r.information_gained_bits == pytest.approx(3200)
    assert r.distance_to_rho1 == pytest.approx(0.5 * (0.01 + 0.01 + 0.03 + 0.01))
    assert distance_to_rho1(RHO1_PROPORTIONS) == 0.0
    # the sweep holds the given threshold; below every loss all bytes are H->H
    rows = {row["threshold_bits"]: row for row in r.threshold_sweep}
    assert rows[3.0]["proportions"] == pytest.approx(want)
    low = analyse(series(start, end), 0, DynamicsConfig(threshold_bits=0.1, n_blocks=16), None, "checkpoints")
    assert low.classes["H->H"]["proportion"]["estimate"] == 1.0


def test_identical_checkpoints_gain_nothing_and_stay_on_the_diagonal():
    start, _ = known_split()
    r = analyse(series(start, start.copy()), 0, CFG, (start, start.copy()), "checkpoints").to_dict()
    assert r["information_gained_bits"] == 0.0
    assert r["classes"]["H->L"]["tokens"] == r["classes"]["L->H"]["tokens"] == 0
    assert r["classes"]["L->L"]["tokens"] + r["classes"]["H->H"]["tokens"] == len(start)
    assert all(c["gain_share"] is None for c in r["classes"].values())  # 0 / 0: undefined, not 0
    reg = r["regression"]
    assert reg["slope"]["estimate"] == pytest.approx(1.0) and reg["intercept"]["estimate"] == pytest.approx(
        0.0
    )
    assert reg["r_squared"]["estimate"] == pytest.approx(1.0)
    null = r["noise_null"]
    assert null["off_diagonal"]["estimate"] == 0.0 and null["off_diagonal"]["ci95"] == [0.0, 0.0]
    assert null["mean_abs_change_bits"]["estimate"] == 0.0 and null["off_diagonal"]["n_seeds"] == 2
    json.dumps(r, allow_nan=False)  # no NaN reaches the JSON


def test_regression_recovers_a_known_slope():
    rng = np.random.default_rng(1)
    start = rng.uniform(0, 8, 5000)
    end = 0.4 * start + 1.5 + rng.normal(0, 0.5, 5000)
    reg = analyse(series(start, end), 0, CFG, None, "checkpoints").regression
    for key, truth in (("slope", 0.4), ("intercept", 1.5)):
        lo, hi = reg[key]["ci95"]
        assert lo < truth < hi and hi - lo < 0.1
        olo, ohi = reg[f"{key}_ols_ci95"]
        assert olo < truth < ohi
    # r² = var(0.4·U(0, 8)) / (that + 0.25) = (0.16·64/12) / (0.16·64/12 + 0.25)
    assert reg["r_squared"]["estimate"] == pytest.approx(0.8533 / 1.1033, abs=0.02)


def test_whole_utf8_trims_partial_characters():
    text = "aé€😀z".encode()
    assert whole_utf8(text[2:]) == "€😀z".encode()  # a lone continuation byte dropped
    assert whole_utf8(text[:-2]) == "aé€".encode()  # half an emoji dropped
    assert whole_utf8(text) == text


def micro_run(root, steps=(0, 5, 10)):
    """A bitlens run directory with saved steps of a micro model (weights perturbed per step)."""
    cfg = GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16)
    atomic_write_json(root / "config.json", {"model": cfg.to_dict()})
    torch.manual_seed(0)
    model = GPT(cfg)
    for s in steps:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        path = step_file(root, s)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
    save_model(model, root / "model.safetensors")
    return model


def test_a_run_directory_stands_for_its_saved_steps(tmp_path, shakespeare):
    model = micro_run(tmp_path)
    specs = expand_specs([str(tmp_path)])
    assert [s.rsplit("/", 1)[1] for s in specs] == [f"step-{s:08d}.safetensors" for s in (0, 5, 10)]
    last = load_checkpoint(specs[-1])
    assert all(torch.equal(a, b) for a, b in zip(last.state_dict().values(), model.state_dict().values()))
    heldout = shakespeare[:700]
    scored = score_series(specs, heldout)
    assert [s.step for s in scored] == [0, 5, 10] and all(len(s.surprisal_bits) == 700 for s in scored)
    from bitlens.evaluate import score_bytes

    assert np.array_equal(scored[-1].surprisal_bits, score_bytes(model, heldout).surprisal_bits)
    with pytest.raises(BitlensError, match="checkpoint not found"):
        expand_specs([str(tmp_path / "nope")])


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    micro_run(root)
    return expand_specs([str(root)])


def test_local_pool_scores_bit_for_bit_as_this_process(three_checkpoints, shakespeare):
    heldout = shakespeare[:600]
    serial = score_series(three_checkpoints, heldout, backend="serial")
    local = score_series(three_checkpoints, heldout, backend="local", workers=2)
    assert all(np.array_equal(a.surprisal_bits, b.surprisal_bits) for a, b in zip(serial, local, strict=True))


@pytest.mark.slow  # ~1-2 min of Ray start-up; tests/test_evolve_backends.py keeps Ray == serial by default
def test_ray_scores_bit_for_bit_as_the_local_pool(three_checkpoints, shakespeare):
    pytest.importorskip("ray")
    heldout = shakespeare[:600]
    local = score_series(three_checkpoints, heldout, backend="local", workers=2)
    ray = score_series(three_checkpoints, heldout, backend="ray", workers=2)
    assert all(np.array_equal(a.surprisal_bits, b.surprisal_bits) for a, b in zip(local, ray, strict=True))


def test_hf_checkpoint_series_spreads_token_bits_over_bytes(tmp_path, shakespeare):
    from bitlens.tokens import score_tokens
    from hf_helpers import byte_level_tokenizer, save_tiny

    text = shakespeare[:6000].decode()
    tok = byte_level_tokenizer(text)
    dirs = [save_tiny("gpt2", tok, tmp_path / f"ckpt{s}", seed=s) for s in range(3)]
    data = shakespeare[:6000]
    r = measure_dynamics(
        data,
        DynamicsConfig(heldout_bytes=400, n_blocks=8),
        checkpoints=[f"hf:{d}" for d in dirs[:2]],
        null_checkpoints=(f"hf:{dirs[1]}", f"hf:{dirs[2]}"),
    ).to_dict()
    assert r["source"] == "checkpoints" and r["unit"] == "byte" and r["tokens"] == 400
    heldout = whole_utf8(data[-600:])[:400]
    total = score_tokens(load_checkpoint(f"hf:{dirs[1]}"), heldout).total_bits
    assert r["checkpoints"][1]["bits_per_byte"] * 400 == pytest.approx(total)  # bits preserved
    assert r["noise_null"] is not None and r["start"] == f"hf:{dirs[0]}"


def test_half_determined_source(tmp_path):
    # Free symbols carry 4 bits, forced ones 0: at the end the forced half is Low, the free
    # half High, and the threshold (mean final loss) sits near the 2-bit entropy rate.
    src = half_determined_source(16)
    data = src.sample(40_000, seed=0)
    r = measure_dynamics(
        data,
        DynamicsConfig(
            steps=250, heldout_bytes=2048, checkpoints=10, preset="micro", n_blocks=16, noise_null=False
        ),
        model_config=GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32),
    ).to_dict()
    classes = r["classes"]
    low_end = classes["L->L"]["proportion"]["estimate"] + classes["H->L"]["proportion"]["estimate"]
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
    assert r["noise_null"] is None  # no second seed asked for
    plot_dynamics(r, tmp_path / "dyn")
    assert (tmp_path / "dyn.png").exists() and (tmp_path / "dyn.svg").exists()


def test_cli_scores_a_saved_series(tmp_path, shakespeare, capsys):
    micro_run(tmp_path / "run")
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare[:8000])
    argv = ["measure", "dynamics", "--corpus", str(corpus), "--checkpoints", str(tmp_path / "run")]
    assert (
        main([*argv, "--backend", "serial", "--heldout-bytes", "512", "--start-step", "5", "--json", "-"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["start_step"] == 5 and r["end_step"] == 10 and r["tokens"] == 512
    assert r["noise_null"] is None and len(r["checkpoints"]) == 3
    assert main([*argv, "--null-checkpoints", "a"]) == 1
    assert "exactly two" in capsys.readouterr().err


def test_gain_over_start_share_survives_a_resample_without_start_bits():
    """A class whose bytes start at 0 bits in some blocks: its ratio's resamples can divide by 0;
    they count as no evidence (NaN), not an error."""
    import numpy as np

    from bitlens.measures.token_classes import Blocks, class_statistics

    start = np.ones(64)  # L->L everywhere (1 bit, kept) ...
    start[:4] = 6.0  # ... but the first block: H->L, 6 → 1 bits, the only gain
    end = np.ones(64)
    out = class_statistics(start, end, 3.0, Blocks(64, 16, seed=0))
    h = out["H->L"]["gain_over_start_share"]
    assert h["estimate"] == pytest.approx(1.0 / (24 / 84))  # all the gain, 24 of 84 start bits
    assert np.isfinite(h["ci95"]).all()
