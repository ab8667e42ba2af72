"""MDL probes: online code lengths in bits with known answers, control tasks and selectivity."""

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
    probe_property,
)
from bitlens.measures.properties import control_labels
from bitlens.runs import atomic_write_json, save_model

FAST = ProbeConfig(steps=30, examples=768, window=32)


def test_quick_and_full_configs():
    assert ProbeConfig.full() == ProbeConfig() and ProbeConfig.full().examples == 4096
    assert ProbeConfig.full().seeds == ProbeConfig.quick().seeds == 3
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
    return measure_probes(model, shakespeare, replace(FAST, properties=("current-byte", "in-word"))).to_dict()


# ---- control tasks


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 4)), min_size=1, max_size=80), st.integers(0, 9))
def test_control_labels_are_fixed_per_type_with_the_label_counts(pairs, seed):
    """Equal inputs get equal control labels, drawn from the real label values, and each label's
    count is within the largest type's count of its real count (the stratified draw)."""
    types = np.array([t for t, _ in pairs])
    labels = np.array([y for _, y in pairs])
    control = control_labels(types, labels, np.random.default_rng(seed))
    for t in np.unique(types):
        assert len(set(control[types == t].tolist())) == 1
    assert set(control.tolist()) <= set(labels.tolist())
    biggest = np.bincount(types).max()
    real, ctrl = np.bincount(labels, minlength=5), np.bincount(control, minlength=5)
    assert np.abs(real - ctrl).max() <= biggest


def test_control_of_a_bijection_is_a_permutation_of_the_labels():
    types = np.repeat(np.arange(20), np.arange(1, 21))  # type t appears t + 1 times
    labels = 100 + types  # a bijection of the type, with unequal counts
    control = control_labels(types, labels, np.random.default_rng(0))
    assert sorted(np.bincount(control - 100).tolist()) == sorted(np.bincount(labels - 100).tolist())
    assert (control != labels).mean() > 0.5  # a random relabelling, not the identity


def test_control_draws_differ_between_seeds():
    types = np.arange(400) % 40
    labels = types % 3
    a, b = (control_labels(types, labels, np.random.default_rng(s)) for s in (0, 1))
    assert (a != b).any()


# ---- selectivity with known answers, on planted representations

T, N = 256, 2048  # input types, examples


def _planted(seed: int):
    gen = torch.Generator().manual_seed(seed)
    types = torch.randint(T, (N,), generator=gen)
    labels = types % 4  # a pure function of the type, 4 balanced classes (64 types each)
    return gen, types.numpy(), labels.numpy()


def test_selectivity_of_a_lookup_is_zero():
    """Features that identify the input type (one-hot) and nothing else: the real labels and the
    control labels are both lookups of the type with the same counts, so selectivity ≈ 0 while
    each code is far below the uniform code."""
    gen, types, labels = _planted(0)
    x = torch.eye(T)[types] + 0.01 * torch.randn(N, T, generator=gen)
    prop = probe_property("lookup", [x], types, labels, replace(FAST, examples=N), seed=0)
    row = prop.layers[0]
    gain = prop.marginal_bits - row.codelength_bits
    assert row.n_seeds == 3 and len(row.selectivity_per_seed) == 3
    assert gain > 0.25 * prop.marginal_bits  # the lookup is learnt
    assert abs(row.selectivity_bits) < 0.1 * gain
    assert row.selectivity_ci95[0] < 0 < row.selectivity_ci95[1]  # no effect, and it says so


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_selectivity_of_a_planted_label_is_its_gain(kind):
    """Features that carry the label (one-hot, plus noise dims) but not the type: the real labels
    cost ≈ 0, the control labels (a random lookup of 256 types) ≈ their labels-alone code, so the
    selectivity is ≈ the whole real gain, ≈ N · 2 bits, and its interval excludes 0."""
    gen, types, labels = _planted(1)
    x = torch.cat([torch.eye(4)[labels], torch.randn(N, 12, generator=gen)], 1)
    prop = probe_property("planted", [x], types, labels, replace(FAST, examples=N, kind=kind), seed=0)
    row = prop.layers[0]
    assert row.codelength_bits < 0.1 * row.uniform_bits
    assert row.control_codelength_bits > 0.85 * prop.control_marginal_bits
    assert 0.75 * N * 2 < row.selectivity_bits < N * 2
    assert row.selectivity_ci95[0] > 0


def test_selectivity_of_noise_is_zero():
    """Features that carry nothing: both codes ≈ their labels-alone codes, selectivity ≈ 0."""
    gen, types, labels = _planted(2)
    x = torch.randn(N, 16, generator=gen)
    prop = probe_property("noise", [x], types, labels, replace(FAST, examples=N), seed=0)
    row = prop.layers[0]
    assert row.codelength_bits == pytest.approx(prop.marginal_bits, rel=0.05)
    assert abs(row.selectivity_bits) < 0.03 * N * 2
    assert row.selectivity_ci95[0] < 0 < row.selectivity_ci95[1]


def test_constant_label_costs_almost_nothing():
    """Known answer: a label that never changes costs ≈ 0 bits online (the first label's bit and
    a few bits of adaptation, vs 2,048 uniform bits), for the real and the control task."""
    gen, types, _ = _planted(3)
    x = torch.randn(N, 16, generator=gen)
    constant = np.zeros(N, dtype=np.int64)
    code = online_codelength(x, torch.from_numpy(constant), 2, FAST)
    assert code.uniform_bits == N and code.codelength_bits[0] < 10
    prop = probe_property("constant", [x], types, constant, replace(FAST, examples=N), seed=0)
    row = prop.layers[0]
    assert row.codelength_bits < 10 and row.control_codelength_bits < 10
    assert abs(row.selectivity_bits) < 1


# ---- on a model: held-out text only


def test_current_byte_of_a_byte_model_has_selectivity_zero(probe_result):
    """For a byte model the current byte is a bijection of the input type, so its control task is
    a relabelling and the probes (zero-initialised output, prior bias) code it identically:
    selectivity 0 at every layer."""
    prop = next(p for p in probe_result["properties"] if p["property"] == "current-byte")
    for row in prop["layers"]:
        assert row["codelength_bits"] == pytest.approx(row["control_codelength_bits"], rel=1e-4)
        assert abs(row["selectivity_bits"]) < 1e-3 * row["codelength_bits"]
        assert row["uniform_bits"] == pytest.approx(prop["examples"] * math.log2(prop["classes"]))
        assert row["compression"] == pytest.approx(row["uniform_bits"] / row["codelength_bits"])
        assert row["n_seeds"] == 3
    assert prop["marginal_bits"] == pytest.approx(prop["control_marginal_bits"])


def test_probes_read_only_the_heldout_split(shakespeare):
    """Replacing the training part of the text (the first 90 %) changes nothing; the byte range
    probed lies in the validation split."""
    torch.manual_seed(0)
    from bitlens.model import GPT, GPTConfig

    model = GPT(GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    cfg = replace(FAST, examples=256, properties=("in-word",), seeds=2)
    cut = len(shakespeare) - len(shakespeare) // 10
    other = bytes(np.random.default_rng(0).integers(0, 256, cut, dtype=np.uint8)) + shakespeare[cut:]
    a, b = measure_probes(model, shakespeare, cfg), measure_probes(model, other, cfg)
    assert a == b
    assert a.heldout == "validation split" and a.heldout_bytes == [cut, len(shakespeare)]
    assert cut == a.byte_range[0] < a.byte_range[1] <= len(shakespeare)
    c = measure_probes(model, shakespeare[:cut] + bytes(reversed(shakespeare[cut:])), cfg)
    assert c != a  # and the held-out part is what is read


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
    for row in r["properties"][0]["layers"]:
        low, high = row["selectivity_ci95"]
        assert low <= row["selectivity_bits"] <= high and row["n_seeds"] == 3


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
    assert {"control_codelength_bits", "selectivity_bits", "selectivity_ci95"} <= set(layer)
    assert layer["n_seeds"] == 3 and len(layer["selectivity_ci95"]) == 2
    assert out["heldout"] == "validation split" and out["heldout_bytes"] == [5400, 6000]
    assert main(["probe", "--model", str(run), "--corpus", str(corpus), "--property", "in-word",
                 "--examples", "64", "--seeds", "2", "--json", "-"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["properties"][0]["layers"][0]["n_seeds"] == 2
    assert main(["probe", "--model", str(run), "--corpus", str(corpus), "--property", "nope"]) == 2


def test_same_seed_same_bits(micro_model, shakespeare):
    cfg = ProbeConfig(kind="mlp", steps=10, examples=256, window=32, properties=("in-word",), seed=3)
    a = measure_probes(micro_model, shakespeare, cfg)
    b = measure_probes(micro_model, shakespeare, cfg)
    c = measure_probes(micro_model, shakespeare, replace(cfg, seed=4))
    assert a == b and a != c
