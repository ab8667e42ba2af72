"""MDL probes: online code lengths in bits with known answers, and the shuffled-label control."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.measures.probes import (
    PROPERTIES,
    ProbeConfig,
    marginal_codelength_bits,
    measure_probes,
    online_codelength,
    plot_probes,
    portion_ends,
)
from bitlens.runs import atomic_write_json, save_model

FAST = ProbeConfig(steps=30, examples=768, window=32)


def test_quick_and_full_configs():
    assert ProbeConfig.full() == ProbeConfig() and ProbeConfig.full().examples == 8192
    assert ProbeConfig.quick().examples == 1024
    assert ProbeConfig().properties == tuple(PROPERTIES)


def test_portions_are_voita_and_titovs():
    assert portion_ends(1000) == [1, 2, 4, 8, 16, 32, 62, 125, 250, 500, 1000]
    assert portion_ends(10) == [1, 2, 5, 10]  # small n: duplicates merged, still increasing


def test_marginal_code_known_answer():
    # KT with k=2: p(0)=½, then p(0 | one 0) = 1.5/2
    assert marginal_codelength_bits(np.array([0, 0]), 2) == pytest.approx(1 + math.log2(4 / 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
def test_marginal_code_is_a_code(labels):
    """KT is a sequential code: never shorter than the best i.i.d. code chosen after the fact
    (n · empirical entropy), and at most (k−1)/2 · log2 n + log2(π²) bits longer (k = 4)."""
    y = np.array(labels)
    bits = marginal_codelength_bits(y, 4)
    counts = np.bincount(y, minlength=4)
    empirical = -sum(c * math.log2(c / len(y)) for c in counts if c)
    assert empirical - 1e-9 <= bits <= empirical + 1.5 * math.log2(len(y)) + math.log2(math.pi**2) + 1e-9


def test_random_labels_cost_log2_k_bits_each():
    """Known answer, in bits not nats: 4 balanced random labels from noise features cost ≈ 2 bits
    each (in nats it would be 1.39, i.e. a fake compression of 1.44)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 16, generator=gen)
    y = torch.randint(4, (2048,), generator=gen)
    code = online_codelength(x, y, 4, FAST)
    assert code.uniform_bits == 2048 * 2
    assert 0.93 < code.compression(0) < 1.01
    assert code.block_bits[0][0] == pytest.approx(2 * portion_ends(2048)[0])


def test_learnable_labels_compress():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2048, 16, generator=gen)
    y = (x[:, :2] @ torch.tensor([1.0, -1.0]) > 0).long() + 2 * (x[:, 2] > 0).long()
    code = online_codelength(x, y, 4, FAST)
    assert code.compression(0) > 2.5


def test_properties_known_answers():
    data = np.frombuffer(b"ab cd\nefghijkl m", dtype=np.uint8)
    i = np.arange(len(data))
    pos, _ = PROPERTIES["position-in-word"](data, i)
    assert pos.tolist() == [0, 1, 8, 0, 1, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
    inside, _ = PROPERTIES["in-word"](data, i)
    assert inside.tolist() == [1, 1, 0, 1, 1, 0] + [1] * 8 + [0, 1]
    prev, ok = PROPERTIES["previous-byte"](data, i)
    assert not ok[0] and ok[1:].all() and prev[1] == ord("a")
    nxt, ok = PROPERTIES["next-byte"](data, i)
    assert not ok[-1] and nxt[0] == ord("b")


@pytest.fixture(scope="module")
def probe_result(shakespeare):
    torch.manual_seed(0)
    from bitlens.model import GPT, GPTConfig

    model = GPT(GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    return measure_probes(
        model, shakespeare, replace(FAST, properties=("current-byte", "in-word", "next-byte"))
    ).to_dict()


def test_shuffled_label_control(probe_result):
    """A random-init model's embeddings identify the byte: compression ≫ control, and the
    shuffled-label control only earns what the label frequencies alone earn."""
    by_name = {p["property"]: p for p in probe_result["properties"]}
    for prop in probe_result["properties"]:
        for row in prop["layers"]:
            assert row["control_compression"] == pytest.approx(prop["marginal_compression"], rel=0.1)
            assert row["uniform_bits"] == pytest.approx(prop["examples"] * math.log2(prop["classes"]))
            assert row["compression"] == pytest.approx(row["uniform_bits"] / row["codelength_bits"])
    for name in ("current-byte", "in-word"):
        layer0 = by_name[name]["layers"][0]
        assert layer0["compression"] > 1.5 * layer0["control_compression"]
    # nothing in a random model predicts the next byte beyond its frequency
    nxt = by_name["next-byte"]["layers"][0]
    assert nxt["compression"] == pytest.approx(nxt["control_compression"], rel=0.1)


def test_plot_probes(probe_result, tmp_path):
    plot_probes(probe_result, tmp_path / "probes.svg")
    assert (tmp_path / "probes.svg").exists() and (tmp_path / "probes.png").exists()


def test_unknown_property_and_probe(micro_model, shakespeare):
    with pytest.raises(BitlensError, match="unknown property 'colour'"):
        measure_probes(micro_model, shakespeare, ProbeConfig(properties=("colour",)))
    with pytest.raises(BitlensError, match="unknown probe 'forest'"):
        measure_probes(micro_model, shakespeare, ProbeConfig(kind="forest"))


def test_mlp_probe_runs(micro_model, shakespeare):
    cfg = ProbeConfig(kind="mlp", steps=20, examples=512, window=32, properties=("in-word",))
    r = measure_probes(micro_model, shakespeare, cfg).to_dict()
    assert r["probe"] == "mlp" and len(r["properties"][0]["layers"]) == 3
    layer0 = r["properties"][0]["layers"][0]
    assert layer0["compression"] > 1.15 * layer0["control_compression"]


def test_cli_probe_json(micro_model, tmp_path, capsys, shakespeare):
    run = tmp_path / "run"
    save_model(micro_model, run / "model.safetensors")
    atomic_write_json(run / "config.json", {"model": micro_model.config.to_dict()})
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(shakespeare[:6000])
    capsys.readouterr()
    assert (
        main(
            [
                "probe",
                "--model",
                str(run),
                "--corpus",
                str(corpus),
                "--property",
                "in-word",
                "--examples",
                "256",
                "--json",
                "-",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    layer = out["properties"][0]["layers"][0]
    assert {"layer", "codelength_bits", "uniform_bits", "compression", "control_compression"} <= set(layer)
    assert main(["probe", "--model", str(run), "--corpus", str(corpus), "--property", "nope"]) == 2


def test_same_seed_same_bits(micro_model, shakespeare):
    cfg = ProbeConfig(kind="mlp", steps=10, examples=256, window=32, properties=("in-word",), seed=3)
    a = measure_probes(micro_model, shakespeare, cfg)
    b = measure_probes(micro_model, shakespeare, cfg)
    c = measure_probes(micro_model, shakespeare, replace(cfg, seed=4))
    assert a == b and a != c
