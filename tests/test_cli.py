"""The command line, run in-process through main(argv)."""

import json

import pytest

from bitlens.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shakespeare_path):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert (
        main(
            [
                "train",
                "--corpus",
                str(shakespeare_path),
                "--out",
                str(out),
                "--preset",
                "tiny",
                "--steps",
                "3",
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def shakespeare_path():
    from tests.conftest import DATA_DIR

    return DATA_DIR / "shakespeare-20k.txt"


def test_help_states_units(capsys):
    with pytest.raises(SystemExit):
        from bitlens.cli import cli

        cli.main(["--help"], standalone_mode=True)
    assert "bits" in capsys.readouterr().out


def test_train_then_eval_json(trained_run, shakespeare_path, capsys):
    capsys.readouterr()
    assert main(["eval", "--model", str(trained_run), "--corpus", str(shakespeare_path), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"bits_per_byte", "bytes", "total_bits"}
    assert out["bytes"] == shakespeare_path.stat().st_size
    assert out["total_bits"] == pytest.approx(out["bits_per_byte"] * out["bytes"])
    assert 4.0 < out["bits_per_byte"] < 8.5  # three steps: barely better than uniform


@pytest.mark.parametrize(
    "args,message",
    [
        (["eval", "--model", "/nonexistent/run", "--corpus", "x"], "not found"),
        (["train", "--corpus", "/nonexistent/file", "--out", "OUT"], "corpus not found"),
    ],
)
def test_bad_input_is_one_line_error(args, message, capsys, tmp_path):
    args = [a.replace("OUT", str(tmp_path / "o")) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_empty_and_short_corpus_errors(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["train", "--corpus", str(empty), "--out", str(tmp_path / "a")]) == 1
    assert "empty" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_bytes(b"to be or not to be")
    assert main(["train", "--corpus", str(short), "--out", str(tmp_path / "b"), "--preset", "tiny"]) == 1
    assert "context window" in capsys.readouterr().err


def test_wrong_model_directory(tmp_path, capsys, shakespeare_path):
    (tmp_path / "config.json").write_text("{not json")
    assert main(["eval", "--model", str(tmp_path), "--corpus", str(shakespeare_path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
