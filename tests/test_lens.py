"""Logit lens and tuned lens: KL/CE/entropy in bits per layer, on a model trained for seconds."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bitlens.cli import main
from bitlens.data import bytes_to_tensor
from bitlens.errors import BitlensError
from bitlens.measures.lens import LensConfig, TunedLens, lens_figures, measure_lens, plot_lens
from bitlens.model import GPT, GPTConfig
from bitlens.runs import atomic_write_json, save_model
from bitlens.tokens import byte_stream, context_windows
from bitlens.train import TrainConfig, train

SMALL = LensConfig(steps=100, batch_tokens=512, train_tokens=4096, eval_tokens=2048, window=32)


@pytest.fixture(scope="module")
def trained(shakespeare) -> GPT:
    """A 3-layer byte model trained for a few seconds: far from converged, but its layers differ."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, n_layer=3, n_head=2, n_embd=32))
    cfg = TrainConfig(
        steps=120,
        batch_size=16,
        lr=1e-2,
        warmup_steps=10,
        eval_interval=10**6,
        checkpoint_interval=10**6,
        threads=1,
    )
    train(model, bytes_to_tensor(shakespeare[:18_000]), cfg)
    return model.eval()


@pytest.fixture(scope="module")
def lens_result(trained, shakespeare) -> dict:
    return measure_lens(trained, shakespeare, SMALL).to_dict()


def test_tuned_kl_at_most_logit_kl_at_every_layer(lens_result):
    rows = lens_result["layers"]
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    for r in rows[:-1]:
        assert r["tuned_kl_bits"] <= r["logit_kl_bits"]
        assert r["logit_kl_bits"] > 0.005  # the lower layers really disagree with the output
    last = rows[-1]
    assert last["logit_kl_bits"] == pytest.approx(0.0, abs=1e-6)
    assert last["tuned_kl_bits"] == pytest.approx(0.0, abs=1e-6)
    assert last["logit_ce_bits"] == lens_result["final_ce_bits"]
    # a trained tuned lens should get close to the output from the embeddings up
    assert rows[0]["tuned_kl_bits"] < 0.5 * rows[0]["logit_kl_bits"]


def test_every_layer_figure_carries_a_block_interval_around_it(lens_result):
    assert lens_result["n_seeds"] == 1 and lens_result["n_blocks"] == 64
    for r in lens_result["layers"]:
        for kind in ("logit", "tuned"):
            for key in ("kl", "ce"):
                low, high = r[f"{kind}_{key}_ci95"]
                assert low <= r[f"{kind}_{key}_bits"] <= high
    first, last = lens_result["layers"][0], lens_result["layers"][-1]
    assert first["logit_kl_ci95"][0] > 0.005  # the embeddings' disagreement is no sampling noise
    assert last["logit_kl_ci95"][1] == pytest.approx(0.0, abs=1e-6)  # the output's KL to itself: exactly 0
    assert last["logit_ce_ci95"][1] - last["logit_ce_ci95"][0] > 0  # cross-entropy varies along the text


def test_last_layer_is_the_models_own_cross_entropy_in_bits(lens_result, trained, shakespeare):
    """Known answer: the output layer's CE is the model's next-byte cross-entropy / ln 2."""
    heldout = shakespeare[len(shakespeare) - len(shakespeare) // 10 :]
    x, y, _ = context_windows(byte_stream(heldout), 32, SMALL.eval_tokens)
    with torch.no_grad():
        nats = F.cross_entropy(trained(x).reshape(-1, 256), y.reshape(-1)).item()
    assert lens_result["final_ce_bits"] == pytest.approx(nats / math.log(2), rel=1e-5)
    assert lens_result["tokens"] == lens_result["bytes"] == x.numel()


def test_logit_kl_matches_torch_kl_div_in_bits(trained, shakespeare):
    rows = lens_figures(trained, shakespeare[:2048], None, SMALL)
    x, _, _ = context_windows(byte_stream(shakespeare[:2048]), 32, SMALL.eval_tokens)
    with torch.no_grad():
        logits, hidden = trained.forward_hidden(x)
        final = F.log_softmax(logits, -1).reshape(-1, 256)
        lens = F.log_softmax(trained.unembed(hidden[1]), -1).reshape(-1, 256)
        kl_nats = F.kl_div(lens, final, log_target=True, reduction="batchmean").item()
    assert rows[1].logit_kl_bits == pytest.approx(kl_nats / math.log(2), rel=1e-4)
    assert rows[1].tuned_kl_bits is None


def test_untrained_tuned_lens_is_the_logit_lens(trained, shakespeare):
    rows = lens_figures(trained, shakespeare[:2048], TunedLens(3, 32), SMALL)
    for r in rows:
        assert r.tuned_kl_bits == pytest.approx(r.logit_kl_bits, abs=1e-6)
        assert r.tuned_ce_bits == pytest.approx(r.logit_ce_bits, abs=1e-6)


def test_tuned_lens_save_load_round_trip(trained, shakespeare, tmp_path):
    path = tmp_path / "lens.safetensors"
    cfg = LensConfig(steps=5, batch_tokens=256, train_tokens=1024, eval_tokens=512, window=32, seed=1)
    r1 = measure_lens(trained, shakespeare[:6000], cfg)
    r1.tuned_lens.save(path)
    lens = TunedLens.load(path)
    r2 = measure_lens(trained, shakespeare[:6000], cfg, lens=lens)
    kl1, kl2 = ([r.tuned_kl_bits for r in res.layers] for res in (r1, r2))
    assert kl1 == pytest.approx(kl2)
    with pytest.raises(BitlensError, match="tuned lens is for"):
        measure_lens(
            GPT(GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)),
            shakespeare[:6000],
            SMALL,
            lens=lens,
        )
    (tmp_path / "bad.safetensors").write_bytes(b"not a lens")
    with pytest.raises(BitlensError):
        TunedLens.load(tmp_path / "bad.safetensors")


def test_logit_lens_alone_trains_nothing(trained, shakespeare):
    from dataclasses import replace

    r = measure_lens(trained, shakespeare[:6000], replace(SMALL, tuned=False))
    assert r.tuned_lens is None and r.tuned_lens_steps == 0
    assert all(row.tuned_kl_bits is None for row in r.layers)


def test_quick_and_full_configs():
    assert LensConfig.full() == LensConfig() and LensConfig.full().steps == 250
    quick = LensConfig.quick()
    assert (quick.steps, quick.batch_tokens, quick.train_tokens, quick.eval_tokens) == (120, 1024, 8192, 8192)


def test_plot_lens_writes_png_and_svg(lens_result, tmp_path):
    plot_lens(lens_result, tmp_path / "lens.png")
    assert (tmp_path / "lens.png").stat().st_size > 1000
    assert (tmp_path / "lens.svg").stat().st_size > 1000


def test_cli_lens_json(trained, tmp_path, capsys):
    run = tmp_path / "run"
    save_model(trained, run / "model.safetensors")
    atomic_write_json(run / "config.json", {"model": trained.config.to_dict()})
    corpus = tmp_path / "c.txt"
    from tests.conftest import DATA_DIR

    corpus.write_bytes((DATA_DIR / "shakespeare-20k.txt").read_bytes()[:8000])
    capsys.readouterr()
    assert (
        main(
            [
                "lens",
                "--model",
                str(run),
                "--corpus",
                str(corpus),
                "--tuned",
                "--quick",
                "--steps",
                "3",
                "--save-lens",
                str(tmp_path / "lens.safetensors"),
                "--json",
                "-",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["tuned_lens_steps"] == 3 and TunedLens.load(tmp_path / "lens.safetensors").n_layer == 3
    keys = {"layer", "logit_kl_bits", "tuned_kl_bits", "logit_ce_bits", "tuned_ce_bits", "entropy_bits"}
    assert len(out["layers"]) == 4 and keys <= set(out["layers"][0])
    assert main(["lens", "--model", str(run), "--corpus", str(corpus), "--quick"]) == 0
    text = capsys.readouterr().out
    assert "logit KL" in text and "bits/byte" in text
