"""The prequential code: exact bookkeeping, and known answers on Markov and random sources."""

import pytest

from bitlens.measures.prequential import (
    PrequentialConfig,
    block_boundaries,
    plot_prequential,
    prequential_code,
)
from bitlens.measures.sources import random_bytes_source, random_markov_source
from bitlens.measures.validate import VALIDATION_MODEL, check_prequential_vs_entropy_rate


def test_quick_and_full_are_the_documented_sizes():
    assert PrequentialConfig.full() == PrequentialConfig()
    assert PrequentialConfig.full().max_bytes == 262_144
    quick = PrequentialConfig.quick()
    assert (quick.max_bytes, quick.first_block_bytes, quick.min_steps) == (8_192, 1_024, 15)
    assert (quick.heldout_bytes, quick.final_training, quick.weights_search_bytes) == (
        4_096,
        (1.0, 2.0),
        2_048,
    )
    assert quick.to_dict()["final_training"] == [1.0, 2.0]
    assert "seed" not in quick.to_dict() and "preset" not in quick.to_dict()


def test_unknown_preset_is_one_line_error():
    from dataclasses import replace

    from bitlens.errors import BitlensError
    from bitlens.measures.prequential import measure_prequential

    with pytest.raises(BitlensError, match="unknown preset 'huge'; choose from tiny"):
        measure_prequential(b"x" * 5000, replace(PrequentialConfig.quick(), preset="huge"))


def test_block_boundaries_double():
    assert block_boundaries(10_000, 1000) == [0, 1000, 2000, 4000, 8000, 10_000]
    assert block_boundaries(4000, 1000) == [0, 1000, 2000, 4000]


def test_random_bytes_are_not_compressed(tmp_path):
    data = random_bytes_source().sample(8192, seed=1)
    cfg = PrequentialConfig(
        max_bytes=0, first_block_bytes=1024, min_steps=10, final_training=(1.0,), weights_search_bytes=1024
    )
    r = prequential_code(data, VALIDATION_MODEL, cfg).to_dict()
    n = len(data)
    assert r["bytes"] == n
    assert r["uniform_bits"] == 8.0 * n
    assert r["prequential_bits"] == pytest.approx(sum(b["bits"] for b in r["blocks"]))
    assert r["blocks"][0]["bits"] == 8.0 * 1024
    assert [b["start"] for b in r["blocks"]] == [0, 1024, 2048, 4096]
    assert r["information_in_weights_bits"] == pytest.approx(r["prequential_bits"] - r["final_model_bits"])
    assert r["two_part_float_bits"]["fp32"] == pytest.approx(r["final_model_bits"] + 32 * r["params"])
    code = r["weights_code"]
    assert r["two_part_bits"] == code["weights_file_bits"] + code["data_bits"]
    assert r["weight_bits_per_parameter"] == pytest.approx(code["weights_file_bits"] / r["params"])
    assert set(code["tensor_bits"].values()) <= {0, 2, 3, 4, 5, 6, 7, 8}
    # The information in the weights at each final training length is prequential − final model.
    assert [x["multiple"] for x in r["by_final_training"]] == [1.0]
    assert r["by_final_training"][0]["information_in_weights_bits"] == r["information_in_weights_bits"]
    bpb = r["bits_per_byte"]
    assert bpb["prequential_bits"] == pytest.approx(r["prequential_bits"] / n)
    # The known answer: nothing beats 8 bits/byte on random bytes (up to sampling noise).
    assert bpb["prequential_bits"] >= 8.0 - 0.02
    assert bpb["two_part_bits"] > 8.0
    assert bpb["two_part_float_bits"]["fp16"] > 8.0 and bpb["two_part_float_bits"]["fp32"] > 8.0
    plot_prequential(r, tmp_path / "preq")
    assert (tmp_path / "preq.png").exists() and (tmp_path / "preq.svg").exists()


def test_prequential_rate_approaches_markov_entropy_rate():
    source = random_markov_source(order=1, alphabet_size=8, seed=0)
    cfg = PrequentialConfig(
        max_bytes=32_768, first_block_bytes=1024, min_steps=20, epochs_per_stage=8.0, lr=1e-2
    )
    check = check_prequential_vs_entropy_rate(source, cfg, tolerance=0.10)
    assert check.passed, check
    d = check.details
    # The whole code pays for learning: it costs more than the true entropy, less than uniform.
    assert d["true_total_bits"] < d["prequential_bits"] < 8.0 * d["bytes"]


def test_information_in_weights_at_several_final_training_lengths():
    source = random_markov_source(order=1, alphabet_size=8, seed=0)
    data = source.sample(3072, seed=0)  # 2048 coded, 1024 held out
    cfg = PrequentialConfig(
        max_bytes=2048,
        first_block_bytes=1024,
        min_steps=10,
        heldout_bytes=1024,
        final_training=(1.0, 3.0),
        two_part=False,
    )
    r = prequential_code(data, VALIDATION_MODEL, cfg).to_dict()
    assert r["two_part_bits"] is None and r["weights_code"] is None
    assert r["heldout_bytes"] == 1024
    runs = r["by_final_training"]
    assert [x["multiple"] for x in runs] == [1.0, 3.0]
    assert runs[1]["train_steps"] == 3 * runs[0]["train_steps"]
    for x in runs:  # each figure is a difference of two code lengths of the same 2048 bytes
        assert x["information_in_weights_bits"] == pytest.approx(
            r["prequential_bits"] - x["final_model_bits"]
        )
        assert x["information_in_weights_heldout_bits"] == pytest.approx(
            r["prequential_bits"] - 2048 * x["final_model_heldout_bits_per_byte"]
        )
    assert runs[0]["final_model_bits"] == r["final_model_bits"]
    # Training three times as long lowers the final model's code length of its own training bytes.
    assert runs[1]["final_model_bits"] < runs[0]["final_model_bits"]


def _fake_run(seed: int, preq: float, weights_bytes: int) -> dict:
    keys = ("prequential_bits", "two_part_bits", "final_model_bits", "information_in_weights_bits")
    bpb = {k: preq + i for i, k in enumerate(keys)} | {"information_in_weights_heldout_bits": None}
    return {
        "preset": "tiny",
        "seed": seed,
        "bytes": 1000,
        "bits_per_byte": bpb,
        "weights_file_bytes": weights_bytes,
        "weight_bits_per_parameter": weights_bytes / 100,
    }


def test_over_seeds_gives_means_with_t_intervals():
    from scipy import stats

    from bitlens.measures.prequential import over_seeds

    runs = [_fake_run(s, p, w) for s, p, w in ((0, 4.0, 100), (1, 4.2, 120), (2, 4.4, 110))]
    out = over_seeds(runs)
    assert out["n_seeds"] == 3 and out["seeds"] == [0, 1, 2] and out["runs"] == runs
    s = out["summary"]
    preq = s["prequential_bits_per_byte"]
    assert preq["estimate"] == pytest.approx(4.2) and preq["n_seeds"] == 3
    half = stats.t.ppf(0.975, 2) * 0.2 / 3**0.5  # sd 0.2 over 3 seeds
    assert preq["ci95"] == pytest.approx([4.2 - half, 4.2 + half])
    assert s["two_part_bits_per_byte"]["estimate"] == pytest.approx(5.2)
    assert s["weights_file_bytes"]["estimate"] == pytest.approx(110)
    assert "information_in_weights_heldout_bits_per_byte" not in s  # not measured (None)
    with pytest.raises(Exception, match="same data"):
        over_seeds([runs[0], {**runs[1], "bytes": 999}])


def test_cli_seeds_runs_each_seed_and_reports_intervals(tmp_path, capsys, monkeypatch):
    import json

    import bitlens.measures.prequential as preq
    from bitlens.cli import main

    seen = []

    class Fake:
        def __init__(self, seed: int) -> None:
            self.seed = seed

        def to_dict(self) -> dict:
            return _fake_run(self.seed, 4.0 + 0.1 * self.seed, 100 + self.seed)

    def fake_measure(data, config, progress=False):
        seen.append((len(data), config.max_bytes, config.seed))
        return Fake(config.seed)

    monkeypatch.setattr(preq, "measure_prequential", fake_measure)
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(random_markov_source(order=1, alphabet_size=8, seed=0).sample(6000, seed=0))
    out = tmp_path / "p.json"
    args = ["measure", "prequential", "--corpus", str(corpus), "--quick", "--max-bytes", "2048"]
    assert main([*args, "--seeds", "0,1,2", "--json", str(out)]) == 0
    assert seen == [(6000, 2048, 0), (6000, 2048, 1), (6000, 2048, 2)]
    r = json.loads(out.read_text())
    assert r["n_seeds"] == 3 and [x["seed"] for x in r["runs"]] == [0, 1, 2]
    assert r["summary"]["prequential_bits_per_byte"]["estimate"] == pytest.approx(4.1)
    assert "prequential_bits_per_byte" in capsys.readouterr().out
    assert main([*args, "--seeds", "0,", "--json", str(out)]) == 1  # an empty item: one-line error
