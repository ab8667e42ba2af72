"""`bitlens compress` / `decompress` in-process, and the compare entry point with its plot."""

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from bitlens.cli import main
from bitlens.compress import COMPRESSORS, CoderSettings, MixConfig
from bitlens.compress.compare import ComparisonConfig, compare_compressors, plot_compression
from bitlens.errors import BitlensError
from bitlens.model import GPT, GPTConfig
from bitlens.runs import atomic_write_json, save_model

ROOT = Path(__file__).resolve().parents[1]

KEYS = {
    "input_bytes",
    "output_bytes",
    "bits_per_byte",
    "model_bits",
    "overhead_bits",
    "seconds",
    "bytes_per_second",
}


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


def test_counts_coder_and_the_networks_saving_on_the_command_line(shakespeare, tmp_path, capsys):
    src, packed, back = tmp_path / "in.txt", tmp_path / "in.blz", tmp_path / "out.txt"
    src.write_bytes(shakespeare[:700])
    capsys.readouterr()
    assert main(["compress", str(src), str(packed), "--counts", "--json", "-"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["mode"] == "counts" and "network_bits" not in counts
    assert main(["decompress", str(packed), str(back)]) == 0 and back.read_bytes() == shakespeare[:700]
    capsys.readouterr()
    mixed_file, record = tmp_path / "mixed.blz", tmp_path / "mixed.json"
    args = ["compress", str(src), str(mixed_file), "--online", "--mix", "--streams", "1"]
    assert main([*args, "--json", str(record)]) == 0  # the summary on stdout, the JSON in a file
    mixed = json.loads(record.read_text())
    saved = (mixed["counts_only_bits"] - mixed["model_bits"]) / 700
    assert mixed["network_saves_bits_per_byte"] == pytest.approx(saved)
    assert f"network saves {saved:.4f} bits/byte" in capsys.readouterr().out
    assert main(["compress", str(src), str(packed), "--counts", "--online", "--force"]) == 1
    assert "--counts" in capsys.readouterr().err


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
    r = compare_compressors(shakespeare, model, ComparisonConfig(max_bytes=300)).to_dict()
    assert r["input_bytes"] == 300
    names = [row["name"] for row in r["rows"]]
    assert names == [
        "gzip -9",
        "bzip2 -9",
        "xz -9e",
        "zstd -19",
        "brotli -q 11",
        "bitlens counts",
        "bitlens offline",
        "bitlens online",
        "bitlens online+mix",
        "bitlens adaptive",
    ]
    assert all(row["roundtrip"] for row in r["rows"])
    for row in r["rows"]:
        assert row["bits_per_byte"] == pytest.approx(8 * row["output_bytes"] / 300)
    assert "bits_per_byte_with_model" in r["rows"][6]
    counts, mixed = r["rows"][5], r["rows"][8]
    assert mixed["network_bits"] > mixed["model_bits"]  # on 300 bytes the counts beat a fresh network
    # the mixed run measures its counts-only code length in the same pass: the counts row's
    assert mixed["counts_only_bits"] == pytest.approx(counts["model_bits"], rel=1e-9)
    plot_compression(json.loads(json.dumps(r)), tmp_path / "compression.png")
    assert (tmp_path / "compression.png").stat().st_size > 0
    assert (tmp_path / "compression.svg").stat().st_size > 0


def test_registry_keys_names_and_factories(run_dir):
    from bitlens.runs import load_run

    assert list(COMPRESSORS) == [
        "gzip",
        "bzip2",
        "xz",
        "zstd",
        "brotli",
        "counts",
        "offline",
        "online",
        "online+mix",
        "adaptive",
        "adaptive+mix",
        "tokens",
    ]
    model = load_run(run_dir)
    built = {key: factory(CoderSettings(model=model)) for key, factory in COMPRESSORS.items()}
    assert built.pop("tokens") is None  # the tokens coder needs a Hugging Face model
    assert [c.name for c in built.values()] == [
        "gzip -9",
        "bzip2 -9",
        "xz -9e",
        "zstd -19",
        "brotli -q 11",
        "bitlens counts",
        "bitlens offline",
        "bitlens online",
        "bitlens online+mix",
        "bitlens adaptive",
        "bitlens adaptive+mix",
    ]
    # without a model, the coders that need one are not built; online needs none
    alone = {key for key, factory in COMPRESSORS.items() if factory(CoderSettings()) is None}
    assert alone == {"offline", "adaptive", "adaptive+mix", "tokens"}
    blob, result = built["gzip"].compress(b"abc" * 50)
    assert result is None and built["gzip"].decompress(blob) == b"abc" * 50
    with pytest.raises(BitlensError, match="unknown compressors"):
        ComparisonConfig(compressors=("gzip", "online-mix"))


def _mix_orders_phrase() -> str:
    *low, top = MixConfig().orders
    return f"orders {', '.join(map(str, low))} and {top}"


def test_the_command_lines_online_preset_is_the_coders_default():
    from bitlens.cli.compress import compress_cmd
    from bitlens.compress.online import ONLINE_PRESET

    preset = next(p for p in compress_cmd.params if p.name == "preset")
    assert preset.default == ONLINE_PRESET


def test_help_and_readme_state_the_default_mixing_orders(capsys):
    assert main(["compress", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert _mix_orders_phrase() in help_text  # "orders 1, 2, 3, 4 and 6"
    assert _mix_orders_phrase() in " ".join((ROOT / "README.md").read_text().split())


def test_written_files_get_the_umask_mode(run_dir, tmp_path):
    src, packed, back, report = tmp_path / "in", tmp_path / "in.blz", tmp_path / "out", tmp_path / "r.json"
    src.write_bytes(b"a file to compress, " * 20)
    old = os.umask(0o022)
    try:
        assert main(["compress", str(src), str(packed), "--model", str(run_dir), "--json", str(report)]) == 0
        assert main(["decompress", str(packed), str(back), "--model", str(run_dir)]) == 0
        torch.manual_seed(0)
        save_model(GPT(GPTConfig(block_size=32, n_layer=1, n_head=1, n_embd=8)), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    for path in (packed, back, report, tmp_path / "w.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name  # as gzip gives, not 0600


def test_compression_benchmark_passes_threads_to_the_learned_coders(tmp_path, monkeypatch, load_benchmark):
    bench = load_benchmark("compression")
    (tmp_path / "a.txt").write_bytes(b"the cat sat on the mat. " * 10)
    seen: list[int] = []
    forward = GPT.features

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "features", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert (
            bench.main(
                [
                    "--corpora",
                    str(tmp_path),
                    "--files",
                    "a.txt",
                    "--max-bytes",
                    "100",
                    "--preset",
                    "tiny",
                    "--learned",
                    "online",
                    "--no-baselines",
                    "--threads",
                    "2",
                    "--json",
                    str(tmp_path / "out.json"),
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}
    rows = json.loads((tmp_path / "out.json").read_text())["a.txt"]["rows"]
    assert [row["name"] for row in rows] == ["bitlens online"] and rows[0]["roundtrip"]
