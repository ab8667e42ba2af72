"""`bitlens measure …` in-process: JSON keys of the contract, figures, units in --help."""

import json

import pytest

from bitlens.cli import main


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    from tests.conftest import DATA_DIR

    return DATA_DIR / "shakespeare-20k.txt"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory holding an untrained micro model."""
    import torch

    from bitlens.model import GPT, GPTConfig
    from bitlens.runs import atomic_write_json, save_model

    out = tmp_path_factory.mktemp("measure") / "run"
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32))
    save_model(model, out / "model.safetensors")
    atomic_write_json(out / "config.json", {"model": model.config.to_dict()})
    return out


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv + ["--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("sub", ["surprisal", "prequential", "dynamics", "capacity", "validate"])
def test_help_states_units(sub, capsys):
    assert main(["measure", sub, "--help"]) == 0
    assert "bits" in capsys.readouterr().out


def test_surprisal_cli(run_dir, corpus_path, capsys, tmp_path):
    from bitlens.evaluate import evaluate
    from bitlens.runs import load_run

    r = run_json(
        capsys,
        [
            "measure",
            "surprisal",
            "--model",
            str(run_dir),
            "--corpus",
            str(corpus_path),
            "--max-bytes",
            "4096",
            "--top-k",
            "3",
            "--npz",
            str(tmp_path / "s.npz"),
            "--plot",
            str(tmp_path / "s"),
        ],
    )
    # The known answer: the mean surprisal is the model's cross-entropy on those 4096 bytes.
    expected = evaluate(load_run(run_dir), corpus_path.read_bytes()[:4096])
    assert r["bytes"] == 4096
    assert r["bits_per_byte"] == pytest.approx(expected.bits_per_byte, rel=1e-9)
    assert r["total_bits"] == pytest.approx(expected.total_bits, rel=1e-9)
    assert len(r["most_surprising"]) == len(r["least_surprising"]) == 3
    import numpy as np

    arrays = np.load(tmp_path / "s.npz")
    assert arrays["surprisal_bits"].sum() == pytest.approx(r["total_bits"])
    assert (tmp_path / "s.png").exists()


def test_prequential_cli(corpus_path, capsys):
    r = run_json(
        capsys,
        [
            "measure",
            "prequential",
            "--corpus",
            str(corpus_path),
            "--quick",
            "--max-bytes",
            "2048",
            "--seed",
            "3",
        ],
    )
    assert (r["bytes"], r["seed"], r["preset"]) == (2048, 3, "tiny")
    assert r["config"]["max_bytes"] == 2048 and r["config"]["first_block_bytes"] == 1024  # quick, overridden
    assert r["uniform_bits"] == 8 * 2048
    blocks = r["blocks"]
    assert [(b["start"], b["end"]) for b in blocks] == [(0, 1024), (1024, 2048)]
    assert blocks[0]["bits"] == 8 * 1024  # the first block is sent uniformly
    assert r["prequential_bits"] == pytest.approx(sum(b["bits"] for b in blocks))
    assert r["two_part_float_bits"]["fp32"] == pytest.approx(r["final_model_bits"] + 32 * r["params"])
    code = r["weights_code"]
    assert r["two_part_bits"] == code["weights_file_bits"] + code["data_bits"]
    assert r["weights_file_bytes"] * 8 == code["weights_file_bits"]
    assert r["bits_per_byte"]["prequential_bits"] == pytest.approx(r["prequential_bits"] / 2048)


def test_dynamics_cli(corpus_path, capsys):
    from bitlens.data import split_corpus

    r = run_json(capsys, ["measure", "dynamics", "--corpus", str(corpus_path), "--quick", "--steps", "4"])
    assert r["end_step"] == 4 and r["config"]["steps"] == 4  # the option reached the config
    assert [c["step"] for c in r["checkpoints"]] == [0, 1, 2, 3, 4]
    heldout = split_corpus(corpus_path.read_bytes(), 128).val  # tiny's context: 128 bytes
    assert r["tokens"] == min(4096, len(heldout)) == 2000  # quick holds out up to 4 KiB
    classes = r["classes"]
    assert sum(c["tokens"] for c in classes.values()) == r["tokens"]
    assert sum(c["information_gained_bits"] for c in classes.values()) == pytest.approx(
        r["information_gained_bits"]
    )


def test_capacity_cli(capsys):
    r = run_json(capsys, ["measure", "capacity", "--quick", "--steps", "2", "--seeds", "2"])
    assert [(m["n_layer"], m["n_embd"]) for m in r["runs"]] == [(1, 4), (1, 8)] * 2
    assert r["config"]["saturation"]["max_steps"] == 2 and r["n_seeds"] == 2
    for m in r["runs"]:
        ns = [p["n_sequences"] for p in m["points"]]
        assert [p["data_bits"] for p in m["points"]] == [8 * 32 * n for n in ns]
        assert all(0 <= p["memorised_bits"] <= p["data_bits"] for p in m["points"])
        assert all(p["saturation"]["steps"] == 2 for p in m["points"]) and not m["saturated"]
        assert m["bits_per_parameter"] == pytest.approx(m["memorised_bits"] / m["parameters"])
    # Two steps store next to nothing: far from any plateau.
    assert all(p["train_bits_per_byte"] > 7.5 for m in r["runs"] for p in m["points"])
    assert not r["all_plateau_reached"]


def test_errors_are_one_line(capsys):
    assert main(["measure", "surprisal", "--model", "/nonexistent/run"]) == 1
    assert capsys.readouterr().err.strip().startswith("error:")


def test_validate_cli_prints_the_order_k_checks(monkeypatch, capsys):
    """The order-k check's line, and the sample's conditional entropies beneath it (no training:
    validate_measures is replaced by a canned result)."""
    from bitlens.measures import validate

    def canned(config, progress=False):
        assert config.mode == "quick" and config.seed == 3
        check = validate.Check(
            "model_learns_order_2",
            "lagged-2",
            2.0534,
            2.1,
            0.0227,
            0.25,
            True,
            9.0,
            {
                "order": 2,
                "conditional_entropy_bits_by_order": [4.0, 3.999, 2.04],
                "entropy_given_byte_at_lag_bits": [3.998, 2.052],
            },
        )
        return validate.ValidationResult(3, True, config.to_dict(), True, [check])

    monkeypatch.setattr(validate, "validate_measures", canned)
    capsys.readouterr()
    assert main(["measure", "validate", "--seed", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok   model_learns_order_2") and "lagged-2" in out[0]
    assert "expected 2.0534, measured 2.1000 bits/byte" in out[0]
    assert "j = 0..2: 4.00, 4.00, 2.04" in out[1] and "j = 1..2: 4.00, 2.05 bits/byte" in out[1]
    r = run_json(capsys, ["measure", "validate", "--seed", "3"])
    assert r["checks"][0]["details"]["order"] == 2 and r["plan"]["lagged_orders"] == [2]
