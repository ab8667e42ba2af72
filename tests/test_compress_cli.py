"""`bitlens compress` / `decompress` in-process, and the compare entry point with its plot."""

import json

import pytest
import torch

from bitlens.cli import main
from bitlens.compare import compare_compressors, plot_compression
from bitlens.model import GPT, GPTConfig
from bitlens.runs import atomic_write_json, save_model

KEYS = {"input_bytes", "output_bytes", "bits_per_byte", "model_bits", "overhead_bits", "seconds",
        "bytes_per_second"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A micro model saved as a run directory (random weights: enough to code with)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    torch.manual_seed(0)
    config = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
    save_model(GPT(config), out / "model.safetensors")
    atomic_write_json(out / "config.json", {"model": config.to_dict()})
    return out


def test_offline_round_trip_with_json(run_dir, shakespeare, tmp_path, capsys):
    src, packed, back = tmp_path / "in.txt", tmp_path / "in.blz", tmp_path / "out.txt"
    src.write_bytes(shakespeare[:900])
    capsys.readouterr()
    assert main(["compress", str(src), str(packed), "--model", str(run_dir), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS | {"bits_per_byte_with_model"} <= set(out)
    assert out["input_bytes"] == 900 and out["output_bytes"] == packed.stat().st_size
    assert out["overhead_bits"] == pytest.approx(8 * out["output_bytes"] - out["model_bits"])
    assert main(["decompress", str(packed), str(back), "--model", str(run_dir)]) == 0
    assert back.read_bytes() == shakespeare[:900]
    # An existing output is kept unless --force.
    assert main(["decompress", str(packed), str(back), "--model", str(run_dir)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["decompress", str(packed), str(back), "--model", str(run_dir), "--force"]) == 0


def test_online_needs_no_model_and_empty_file(tmp_path):
    src, packed, back = tmp_path / "empty", tmp_path / "e.blz", tmp_path / "e.out"
    src.write_bytes(b"")
    assert main(["compress", "--online", str(src), str(packed)]) == 0
    assert main(["decompress", str(packed), str(back)]) == 0
    assert back.read_bytes() == b""


@pytest.mark.parametrize("damage", ["truncate", "flip", "not-ours", "no-model"])
def test_bad_files_are_one_line_errors_and_leave_no_output(damage, run_dir, tmp_path, capsys):
    src, packed, back = tmp_path / "in", tmp_path / "in.blz", tmp_path / "out"
    src.write_bytes(b"to be, or not to be: that is the question" * 5)
    assert main(["compress", str(src), str(packed), "--model", str(run_dir)]) == 0
    blob = packed.read_bytes()
    args = ["--model", str(run_dir)]
    if damage == "truncate":
        packed.write_bytes(blob[:-5])
    elif damage == "flip":
        packed.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0x10]))
    elif damage == "not-ours":
        packed.write_bytes(b"just some text, not compressed")
    else:
        args = []
    capsys.readouterr()
    assert main(["decompress", str(packed), str(back), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert {p.name for p in tmp_path.iterdir()} == {"in", "in.blz"}  # no (partial) output


def test_compare_rows_round_trip_and_plot(run_dir, shakespeare, tmp_path):
    from bitlens.runs import load_run

    model = load_run(run_dir)
    r = compare_compressors(shakespeare, model, online_preset="tiny", quick=True, max_bytes=300)
    assert r["input_bytes"] == 300
    names = [row["name"] for row in r["rows"]]
    assert names == ["gzip -9", "bzip2 -9", "xz -9e", "zstd -19", "brotli -q 11",
                     "bitlens offline", "bitlens online", "bitlens online+mix", "bitlens adaptive"]
    assert all(row["roundtrip"] for row in r["rows"])
    for row in r["rows"]:
        assert row["bits_per_byte"] == pytest.approx(8 * row["output_bytes"] / 300)
    assert "bits_per_byte_with_model" in r["rows"][5]
    mixed = r["rows"][7]
    assert mixed["network_bits"] > mixed["model_bits"]  # on 300 bytes the counts beat a fresh network
    plot_compression(json.loads(json.dumps(r)), tmp_path / "compression.png")
    assert (tmp_path / "compression.png").stat().st_size > 0
    assert (tmp_path / "compression.svg").stat().st_size > 0
