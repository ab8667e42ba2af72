"""`bitlens demo --quick` end to end, step reuse, and the steps' calls into the instruments."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from bitlens import demo
from bitlens.cli import main
from bitlens.data import bundled_corpus_bytes, split_corpus
from bitlens.evaluate import evaluate
from bitlens.instruments import INSTRUMENTS
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.runs import load_run
from tests.chromium import chromium_path, open_page


# The default suite runs the quick demo with the instruments that measure the trained model in
# seconds; the complete quick demo (every instrument, ~3 minutes) is the slow test below.
ONLY = ["--only", "surprisal", "--only", "lens", "--only", "probes"]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    json_path = out.parent / "result.json"
    rc = main(["demo", "--quick", "--out", str(out), "--json", str(json_path), *ONLY])
    return out, rc, json.loads(json_path.read_text())


def _check_page_and_files(out, statuses):
    html = (out / "report.html").read_text()
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert "does not follow the contract" not in html and "failed (" not in html
    for name, instrument in INSTRUMENTS.items():
        if statuses[name] == "done":
            assert set(instrument.keys) <= set(json.loads((out / f"{name}.json").read_text()))
        elif statuses[name] == "missing":
            assert f"this build has no <code>{instrument.entry_point}</code>" in html
        else:
            assert f"Not run yet: no <code>{name}.json</code>" in html
    if chromium_path() is not None or os.environ.get("CI") == "true":
        assert open_page(out / "report.html", out.parent / "report.png") == []
    return html


def test_quick_demo_writes_json_and_page(quick_demo):
    out, rc, result = quick_demo
    assert rc == 0
    statuses = {s["name"]: s["status"] for s in result["steps"]}
    assert list(statuses) == [s.name for s in demo.STEPS] == ["train", *INSTRUMENTS]
    assert statuses["train"] == "done"
    assert {statuses[n] for n in ("surprisal", "lens", "probes")} <= {"done", "missing"}
    assert {v for k, v in statuses.items() if k not in ("train", "surprisal", "lens", "probes")} == {"skipped"}

    train = json.loads((out / "train.json").read_text())
    assert train["preset"] == "tiny" and train["steps"] == 200
    assert train["params"] == GPT(MODEL_PRESETS["tiny"]).num_params()
    assert [c["step"] for c in train["curve"] if "val_bits_per_byte" in c] == [50, 100, 150, 200]
    # The recorded figure is the model's held-out bits/byte, recomputed here from the weights.
    heldout = split_corpus(bundled_corpus_bytes(), 128).val
    assert train["val_bytes"] == len(heldout)
    assert train["val_bits_per_byte"] == pytest.approx(evaluate(load_run(out / "model"), heldout).bits_per_byte)
    assert 2.0 < train["val_bits_per_byte"] < 5.0

    manifest = json.loads((out / "demo.json").read_text())
    assert manifest["quick"] is True and manifest["seed"] == 0
    html = _check_page_and_files(out, statuses)
    assert f"{train['val_bits_per_byte']:.3f} bits/byte" in html


@pytest.mark.slow
def test_complete_quick_demo(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--json", str(tmp_path / "result.json")]) == 0
    statuses = {s["name"]: s["status"] for s in json.loads((tmp_path / "result.json").read_text())["steps"]}
    assert statuses["train"] == "done" and set(statuses.values()) <= {"done", "missing"}
    _check_page_and_files(out, statuses)


def test_rerun_reuses_finished_steps_and_report_rebuilds_the_same_page(quick_demo, capsys):
    out, _, first = quick_demo
    done = [s["name"] for s in first["steps"] if s["status"] == "done"]
    stamps = {n: (out / f"{n}.json").stat().st_mtime_ns for n in done}
    page = (out / "report.html").read_bytes()
    assert main(["demo", "--quick", "--out", str(out), "--json", "-", *ONLY]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in again["steps"] if s["status"] == "reused"] == done
    assert {n: (out / f"{n}.json").stat().st_mtime_ns for n in done} == stamps
    assert (out / "report.html").read_bytes() == page
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").read_bytes() == page  # the page is a function of the JSON alone


def test_other_settings_or_unknown_steps_are_refused(quick_demo, capsys):
    out, _, _ = quick_demo
    assert main(["demo", "--quick", "--seed", "1", "--out", str(out)]) == 1
    assert "holds a demo run with quick=True, seed=0" in capsys.readouterr().err
    assert main(["demo", "--quick", "--out", str(out), "--redo", "nope"]) == 1
    assert "unknown step(s) ['nope']" in capsys.readouterr().err


def test_steps_call_the_contract_entry_points(quick_demo, tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    shutil.copytree(quick_demo[0], out)
    calls: dict[str, list[dict]] = {}

    def fake(name, result):
        def entry(**kwargs):
            calls.setdefault(name, []).append(kwargs)
            if isinstance(result, Exception):
                raise result
            return result(kwargs) if callable(result) else result
        return entry

    fakes = {
        "capacity": fake("capacity", {"models": [{"params": 10, "bits_per_parameter": 2.0}],
                                      "reference_bits_per_parameter": {"morris_2025": 3.6}}),
        "lens": fake("lens", {"not_layers": []}),
        "generalisation": fake("generalisation", RuntimeError("boom")),
        "collapse_replace": fake("collapse", lambda kw: {"mode": kw["mode"], "generations": []}),
        "collapse_accumulate": fake("collapse", lambda kw: {"mode": kw["mode"], "generations": []}),
        "evolution": fake("evolution", {"generations": [], "pareto": []}),
    }
    monkeypatch.setattr(demo, "entry_point", lambda instrument: fakes.get(instrument.name))
    assert main(["demo", "--quick", "--out", str(out), "--redo", "lens"]) == 1  # lens may be done already
    assert "2 step(s) failed (lens, generalisation)" in capsys.readouterr().err

    assert calls["capacity"] == [{"seed": 0, "quick": True, "progress": False}]
    lens = calls["lens"][0]
    assert isinstance(lens["model"], GPT) and lens["tuned"] is True
    assert lens["data"] == bytes(split_corpus(bundled_corpus_bytes(), 128).val.numpy())
    assert [c["mode"] for c in calls["collapse"]] == ["replace", "accumulate"]
    assert len(calls["generalisation"][0]["data"]) == len(bundled_corpus_bytes())
    evolution = calls["evolution"][0]
    assert evolution["out_dir"] == str(out / "evolution") and evolution["resume"] is False
    assert "parent_dir" not in evolution  # passed only to an entry point that declares it

    manifest = json.loads((out / "demo.json").read_text())["steps"]
    assert manifest["capacity"]["status"] == "done" and manifest["train"]["status"] == "done"
    assert "lacks the contract keys ['layers']" in manifest["lens"]["error"]
    assert manifest["generalisation"]["error"] == "RuntimeError: boom"
    assert json.loads((out / "capacity.json").read_text())["models"][0]["bits_per_parameter"] == 2.0
    assert not (out / "lens.json").exists()
    html = (out / "report.html").read_text()
    assert "at most 2.000 bits per parameter" in html and "failed: RuntimeError: boom" in html

    # Finished steps are reused, failed ones retried; --redo recomputes a finished one.
    main(["demo", "--quick", "--out", str(out)])
    assert len(calls["capacity"]) == 1 and len(calls["generalisation"]) == 2
    main(["demo", "--quick", "--out", str(out), "--redo", "capacity"])
    assert len(calls["capacity"]) == 2


def test_overall_eta_scales_the_remaining_budget_by_the_pace_so_far():
    eta = demo._Eta({"a": 10.0, "b": 20.0, "c": 30.0})
    assert eta.seconds_left(["b", "c"]) == 50.0  # no pace yet: the budgets as they are
    eta.record("a", 20.0)  # twice as slow as budgeted
    assert eta.seconds_left(["b", "c"]) == 100.0
    eta.record("b", 1.0)  # 21 s for 30 s of budget
    assert eta.seconds_left(["c"]) == pytest.approx(30.0 * 21.0 / 30.0)
    assert demo.format_duration(125.4) == "2m05s" and demo.format_duration(9.6) == "10s"
