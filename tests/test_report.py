"""The report page: built from contract-shaped JSON alone, escaped, self-contained, clean in Chromium."""

from __future__ import annotations

import base64
import json
import re
import sys
import types
from html import unescape
from pathlib import Path

import pytest

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.instruments import load_attr
from bitlens.report import build_report, render_report
from bitlens.report.sections import fmt
import tests.chromium as chromium
from tests.chromium import open_page

HOSTILE = '<script>alert("x")</script> & \x01 "quoted"'


def contract_results() -> dict[str, dict]:
    """One result per step, shaped exactly as contracts.md says, with numbers chosen by hand."""
    layers = [{"layer": i, "logit_kl_bits": 3.0 - i, "tuned_kl_bits": 1.5 - 0.5 * i, "logit_ce_bits": 6.0 - i,
               "tuned_ce_bits": 5.0 - i, "entropy_bits": 4.0 - 0.5 * i} for i in range(3)]
    gen = lambda mode, bpb: {"mode": mode, "generations": [  # noqa: E731
        {"generation": g, "heldout_bits_per_byte": bpb + 0.1 * g, "sample_entropy_bits": 2.0 - 0.1 * g,
         "tail_mass": 0.05 / (g + 1)} for g in range(3)]}
    return {
        "train": {"run_dir": "model", "preset": "tiny", "params": 222336, "steps": 200, "tokens": 819200,
                  "flops": 1.37e12, "seconds": 12.5, "tokens_per_second": 65536.0,
                  "val_bits_per_byte": 2.5, "val_bytes": 111539,
                  "curve": [{"step": 50, "tokens": 204800, "train_bits_per_byte": 4.0, "val_bits_per_byte": 3.9},
                            {"step": 200, "tokens": 819200, "train_bits_per_byte": 2.6, "val_bits_per_byte": 2.5}]},
        "compression": {"input_bytes": 8000, "rows": [
            {"name": "gzip -9", "bits_per_byte": 3.2, "output_bytes": 3200, "compress_seconds": 0.01,
             "decompress_seconds": 0.01, "roundtrip": True},
            {"name": "xz -9e", "bits_per_byte": 2.5, "output_bytes": 2500, "compress_seconds": 0.02,
             "decompress_seconds": 0.01, "roundtrip": True},
            {"name": "bitlens offline", "bits_per_byte": 2.0, "output_bytes": 2000, "compress_seconds": 3.0,
             "decompress_seconds": 3.1, "roundtrip": True, "bits_per_byte_with_model": 11.0}]},
        "surprisal": {"bits_per_byte": 2.5, "entropy_bits_per_byte": 2.25, "bytes": 111539,
                      "most_surprising": [{"text": HOSTILE, "start": 42, "mean_surprisal_bits": 7.5}],
                      "least_surprising": [{"text": "the king\n", "start": 7, "mean_surprisal_bits": 0.25}]},
        "prequential": {"uniform_bits": 80000.0, "prequential_bits": 30000.0,
                        "two_part_bits": {"fp32": 7_000_000.0, "fp16": 3_500_000.0}, "final_model_bits": 20000.0,
                        "information_in_weights_bits": 10000.0, "bytes": 10000,
                        "bits_per_byte": {"uniform_bits": 8.0, "prequential_bits": 3.0}},
        "dynamics": {"classes": {"L->L": {"proportion": 0.5, "information_gained_bits": 100.0},
                                 "H->L": {"proportion": 0.25, "information_gained_bits": 900.0},
                                 "L->H": {"proportion": 0.15, "information_gained_bits": -50.0},
                                 "H->H": {"proportion": 0.1, "information_gained_bits": 10.0}},
                     "rho1_proportions": {"L->L": 0.51, "H->L": 0.26, "L->H": 0.12, "H->H": 0.11},
                     "tokens": 4000},
        "capacity": {"models": [{"params": 10000, "bits_per_parameter": 1.5},
                                {"params": 40000, "bits_per_parameter": 2.75}],
                     "reference_bits_per_parameter": {"morris_2025": 3.6, "allen_zhu_li": 2.0}},
        "lens": {"layers": layers},
        "probes": {"properties": [{"property": "is_vowel", "layers": [
            {"layer": 0, "codelength_bits": 500.0, "uniform_bits": 1000.0, "compression": 2.0,
             "control_compression": 1.25},
            {"layer": 1, "codelength_bits": 250.0, "uniform_bits": 1000.0, "compression": 4.0,
             "control_compression": 1.5}]}]},
        "offspring": {"strategies": [
            {"name": "random", "keep_ratio": 0.3, "tokens": 1000, "flops": 1e9, "heldout_bits_per_byte": 3.0,
             "fitness": -3.0, "choice_bits": 800.0, "gain_over_random_bits": 0.0},
            {"name": "excess", "keep_ratio": 0.3, "tokens": 1000, "flops": 1e9, "heldout_bits_per_byte": 2.75,
             "fitness": -2.75, "choice_bits": 800.0, "gain_over_random_bits": 250.0}],
            "distillation": [
                {"target": "hard", "tokens": 1000, "heldout_bits_per_byte": 2.9, "kl_to_parent_bits": 0.5,
                 "bits_per_token_from_parent": 2.0},
                {"target": "soft", "tokens": 1000, "heldout_bits_per_byte": 2.7, "kl_to_parent_bits": 0.25,
                 "bits_per_token_from_parent": 4.0}]},
        "collapse_replace": gen("replace", 2.5),
        "collapse_accumulate": gen("accumulate", 2.4),
        "evolution": {"generations": [
            {"generation": 0, "best_fitness": -3.0, "mean_fitness": -3.5, "best_genome": {"score": "random"}},
            {"generation": 1, "best_fitness": -2.5, "mean_fitness": -3.0, "best_genome": {"score": "excess"}}],
            "pareto": [{"heldout_bits_per_byte": 2.5, "flops": 2e9, "genome": {"score": "excess"}},
                       {"heldout_bits_per_byte": 2.75, "flops": 1e9, "genome": {"score": "random"}}]},
        "generalisation": {"points": [
            {"n": 1000, "gap_bits_per_byte": 0.5, "bound_bits_per_byte": 0.75, "cmi_bits": 300.0},
            {"n": 4000, "gap_bits_per_byte": 0.25, "bound_bits_per_byte": 0.2, "cmi_bits": 200.0}]},
    }


def write_results(folder: Path, results: dict[str, dict], manifest: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (folder / f"{name}.json").write_text(json.dumps(result))
    if manifest is not None:
        (folder / "demo.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def full_page(tmp_path_factory) -> tuple[Path, str]:
    folder = write_results(tmp_path_factory.mktemp("report") / "demo", contract_results(),
                           {"quick": True, "seed": 3, "corpus": "tinyshakespeare", "corpus_bytes": 1115394,
                            "steps": {}})
    path = build_report(folder)
    return path, path.read_text()


def _text(html: str) -> str:
    """The page's visible text: tags stripped, entities decoded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_every_section_reads_the_numbers_from_json(full_page):
    _, html = full_page
    text = _text(html)
    assert "Not yet available" not in html and "does not follow the contract" not in html
    # Readings computed from the hand-picked numbers.
    assert "bitlens offline codes at 2.000 bits/byte, 20% fewer bits than the best classical compressor " \
           "(xz -9e, 2.500 bits/byte)" in text
    assert "3 of 3 rows decoded back to the input; counting the model's weights, bitlens offline costs " \
           "11.000 bits/byte" in text
    assert "takes 3.000 bits/byte" in text and "two-part) takes 350.000 bits/byte" in text  # fp16 is shorter
    assert "absorbed 10,000 bits" in text and "1.000 bits per byte seen" in text
    assert "3.20× fewer bits than the 8 bits/byte" in text  # 8 / 2.5
    assert "from 3.900 at step 50 to 2.500 at the end" in text
    assert "it is over-confident" in text  # entropy 2.25 < 2.5 bits/byte
    assert "The H->L tokens gained the most information during training: 900.000 bits" in text
    assert "at most 2.750 bits per parameter (40,000 parameters)" in text and "110,000 bits" in text
    assert "is_vowel compresses best at layer 1 (4.000× vs 1.500× for its control task)" in text
    assert "largest lead over a control task is is_vowel at layer 1 (2.500× more compression)" in text
    assert "50% are L->L, 25% are H->L, 15% are L->H, 10% are H->H (Rho-1: 51%, 26%, 12%, 11%)" in text
    assert "<h3 id=\"probes\">MDL probes per layer</h3>" in html
    assert "The best selection, excess" in text and "250.000 bits better than random" in text
    assert "Distilling on soft targets is best: 2.700" in text
    assert "Replace: held-out bits/byte goes from 2.500 (generation 0) to 2.700 (generation 2)" in text
    assert "Accumulate: held-out bits/byte goes from 2.400" in text
    assert "Best fitness went from -3.000 in generation 0 to -2.500 in generation 1" in text
    assert "holds 2 policies; the best reaches 2.500 bits/byte at 2e+09 FLOPs" in text
    assert "The information-theoretic bound holds at 1 of 2 training-set sizes" in text
    # One figure per section, two for evolution; all inline.
    figures = re.findall(r'<img class="figure" alt="[^"]*" src="data:image/(svg\+xml|png);base64,', html)
    assert len(figures) == 13
    assert "quick demo, seed 3" in text and "--quick --seed 3 --redo compression" in html


def test_page_is_self_contained_and_escapes_corpus_text(full_page):
    _, html = full_page
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; \\x01 &quot;quoted&quot;" in html
    assert "\x01" not in html


def test_missing_failed_and_malformed_steps_are_named(tmp_path):
    results = contract_results()
    results["lens"] = {"layers": [{"layer": 0}]}  # lacks the contract's per-layer keys
    del results["capacity"], results["probes"], results["collapse_accumulate"]
    manifest = {"quick": False, "seed": 0, "steps": {
        "capacity": {"status": "missing"},
        "probes": {"status": "failed", "error": "RuntimeError: <boom>"}}}
    html = render_report(write_results(tmp_path / "d", results, manifest))
    assert "Not yet available: this build has no <code>bitlens.measures.capacity.measure_capacity</code>" in html
    assert "failed: RuntimeError: &lt;boom&gt;" in html
    assert "lens.json does not follow the contract (KeyError" in html
    assert "Not run yet: no <code>collapse_accumulate.json</code>" in html  # half of the collapse section
    assert "Replace: held-out bits/byte goes from 2.500" in _text(html)
    assert "Not in this report yet: capacity, probes, collapse_accumulate." in html


def test_instrument_plot_is_used_and_a_failing_one_falls_back(tmp_path, monkeypatch):
    png = b"\x89PNG\r\n\x1a\n-fake-figure-from-the-instrument"
    fake = types.ModuleType("bitlens.measures.lens")

    def plot_lens(result, path):
        assert result["layers"][0]["logit_kl_bits"] == 3.0  # the JSON dict itself
        Path(path).with_suffix(".png").write_bytes(png)

    fake.plot_lens = plot_lens
    monkeypatch.setitem(sys.modules, "bitlens.measures.lens", fake)
    fake_gen = types.ModuleType("bitlens.measures.generalisation")
    fake_gen.plot_generalisation = lambda result, path: 1 / 0
    monkeypatch.setitem(sys.modules, "bitlens.measures.generalisation", fake_gen)
    html = render_report(write_results(tmp_path / "d", contract_results()))
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in html
    assert "bitlens.measures.generalisation.plot_generalisation failed (ZeroDivisionError" in html
    section = html[html.index('id="generalisation"'):]
    assert 'src="data:image/svg+xml;base64,' in section  # the fallback figure


def test_load_attr_tells_missing_from_broken(tmp_path, monkeypatch):
    (tmp_path / "broken_instrument_xyz.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_attr("bitlens.no_such_instrument", "measure") is None
    assert load_attr("bitlens.train", "no_such_function") is None
    assert load_attr("bitlens.train", "train_run") is not None
    with pytest.raises(ModuleNotFoundError):
        load_attr("broken_instrument_xyz", "measure")


def test_learned_coder_worse_than_classical_is_read_as_more_bits(tmp_path):
    results = {"compression": contract_results()["compression"]}
    results["compression"]["rows"][2]["bits_per_byte"] = 3.0  # offline now loses to xz (2.5)
    html = render_report(write_results(tmp_path / "d", results))
    assert "codes at 3.000 bits/byte, 20% more bits than the best classical compressor" in _text(html)


def test_fmt():
    assert [fmt(None), fmt(True), fmt(1234567), fmt(2.5), fmt(1234.4), fmt(3.2e9), fmt(float("nan"))] == \
           ["–", "yes", "1,234,567", "2.500", "1,234", "3.2e+09", "nan"]


def test_report_command(tmp_path, capsys):
    folder = write_results(tmp_path / "d", {"train": contract_results()["train"]})
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "report.html")
    html = (folder / "report.html").read_text()
    assert "Not run yet: no <code>compression.json</code>" in html
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    assert "demo folder not found" in capsys.readouterr().err
    (folder / "train.json").write_text("{torn")
    with pytest.raises(BitlensError, match="not valid JSON"):
        render_report(folder)


def test_chromium_detects_console_errors(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                   '<script>console.error("deliberate"); notDefined();</script>'
                   '<img src="missing-file.png"></body></html>')
    errors = open_page(bad, tmp_path / "bad.png")
    joined = "\n".join(errors)
    assert "deliberate" in joined and "notDefined" in joined and "missing-file.png" in joined


def test_report_in_headless_chromium(full_page, tmp_path):
    path, _ = full_page
    shot = tmp_path / "report.png"
    assert open_page(path, shot) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_browser_test_skips_without_chromium_only_outside_ci(monkeypatch):
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium.require_chromium()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        chromium.require_chromium()


@pytest.mark.parametrize("command", ["demo", "report"])
def test_help_states_units(command, capsys):
    assert main([command, "--help"]) == 0
    assert "bits" in capsys.readouterr().out
