"""`bitlens measure …` in-process: JSON keys of the contract, figures, units in --help."""

import json

import pytest

from bitlens.cli import main


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    from tests.conftest import DATA_DIR

    return DATA_DIR / "shakespeare-20k.txt"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus_path):
    out = tmp_path_factory.mktemp("measure") / "run"
    assert main(["train", "--corpus", str(corpus_path), "--out", str(out), "--preset", "tiny",
                 "--steps", "3"]) == 0
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
    r = run_json(capsys, ["measure", "surprisal", "--model", str(run_dir), "--corpus", str(corpus_path),
                          "--max-bytes", "4096", "--npz", str(tmp_path / "s.npz"),
                          "--plot", str(tmp_path / "s")])
    assert {"bits_per_byte", "entropy_bits_per_byte", "bytes", "most_surprising",
            "least_surprising"} <= set(r)
    assert r["bytes"] == 4096 and 4.0 < r["bits_per_byte"] < 8.5
    assert (tmp_path / "s.npz").exists() and (tmp_path / "s.png").exists()


def test_prequential_cli(corpus_path, capsys):
    r = run_json(capsys, ["measure", "prequential", "--corpus", str(corpus_path), "--quick",
                          "--max-bytes", "2048"])
    keys = {"uniform_bits", "prequential_bits", "two_part_bits", "final_model_bits",
            "information_in_weights_bits", "bytes", "bits_per_byte"}
    assert keys <= set(r)
    assert set(r["two_part_bits"]) == {"fp32", "fp16"}
    assert set(r["bits_per_byte"]) == keys - {"bytes", "bits_per_byte"}
    assert r["bytes"] == 2048 and r["uniform_bits"] == 8 * 2048


def test_dynamics_cli(corpus_path, capsys):
    r = run_json(capsys, ["measure", "dynamics", "--corpus", str(corpus_path), "--quick", "--steps", "4"])
    assert set(r["classes"]) == {"L->L", "H->L", "L->H", "H->H"}
    assert all({"proportion", "information_gained_bits"} <= set(v) for v in r["classes"].values())
    assert r["rho1_proportions"] == {"L->L": 0.51, "H->L": 0.26, "L->H": 0.12, "H->H": 0.11}
    assert r["tokens"] > 0


def test_capacity_cli(capsys):
    r = run_json(capsys, ["measure", "capacity", "--quick", "--steps", "2"])
    assert len(r["models"]) == 2
    assert all({"params", "bits_per_parameter"} <= set(m) for m in r["models"])
    assert r["reference_bits_per_parameter"] == {"morris_2025": 3.6, "allen_zhu_li": 2.0}


def test_errors_are_one_line(capsys):
    assert main(["measure", "surprisal", "--model", "/nonexistent/run"]) == 1
    assert capsys.readouterr().err.strip().startswith("error:")
