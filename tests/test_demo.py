"""`bitlens demo --quick` end to end, step reuse, and the steps' calls into the instruments."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
from dataclasses import replace

import pytest
from tests.chromium import chromium_path, open_page
from tests.test_report import contract_results

from bitlens.cli import main
from bitlens.compress.compare import ComparisonConfig
from bitlens.compress.online import ONLINE_PRESET
from bitlens.data import bundled_corpus_bytes, split_corpus
from bitlens.demo.manifest import ENTRY_POINTS, STEP_NAMES
from bitlens.demo.run import Eta, format_duration
from bitlens.demo.steps import STEPS
from bitlens.evaluate import evaluate
from bitlens.evolve.run import EvolveConfig
from bitlens.measures.capacity import CapacityConfig
from bitlens.measures.dynamics import DynamicsConfig
from bitlens.measures.generalisation import GeneralisationConfig
from bitlens.measures.lens import LensConfig
from bitlens.measures.prequential import PrequentialConfig
from bitlens.model import GPT, MODEL_PRESETS
from bitlens.offspring.born_again import BornAgainConfig
from bitlens.offspring.collapse import CollapseConfig
from bitlens.offspring.collapse_arms import CollapseArmsConfig
from bitlens.offspring.compare import CompareConfig
from bitlens.offspring.distill_study import DistillConfig
from bitlens.offspring.study_parent import StudyParent
from bitlens.runs import load_run

# The default suite runs the quick demo with the instruments that measure the trained model in
# seconds; the complete quick demo (every instrument, ~3 minutes) is the slow test below.
MEASURED = ["surprisal", "lens", "probes"]
ONLY = [arg for name in MEASURED for arg in ("--only", name)]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    json_path = out.parent / "result.json"
    rc = main(["demo", "--quick", "--out", str(out), "--json", str(json_path), *ONLY])
    return out, rc, json.loads(json_path.read_text())


def _check_page_and_files(out, statuses):
    html = (out / "report.html").read_text()
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert "does not follow the contract" not in html and "</code> failed:" not in html
    for name, status in statuses.items():
        if status == "done":
            assert json.loads((out / f"{name}.json").read_text())
            assert f"Not run yet: no <code>{name}.json</code>" not in html
        else:
            assert status == "skipped" and f"Not run yet: no <code>{name}.json</code>" in html
    if chromium_path() is not None or os.environ.get("CI") == "true":
        assert open_page(out / "report.html", out.parent / "report.png") == []
    return html


def test_every_step_calls_an_entry_point_that_exists():
    assert [s.name for s in STEPS] == list(STEP_NAMES) == list(ENTRY_POINTS)
    for step in STEPS:
        module, name = step.entry_point.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), step.entry_point


def test_quick_demo_writes_json_and_page(quick_demo):
    out, rc, result = quick_demo
    assert rc == 0
    statuses = {s["name"]: s["status"] for s in result["steps"]}
    assert list(statuses) == list(STEP_NAMES)
    assert {k: v for k, v in statuses.items() if v != "skipped"} == dict.fromkeys(
        ["train", *MEASURED], "done"
    )

    train = json.loads((out / "train.json").read_text())
    assert train["preset"] == "tiny" and train["steps"] == 100
    assert train["params"] == GPT(MODEL_PRESETS["tiny"]).num_params()
    assert [c["step"] for c in train["curve"] if "val_bits_per_byte" in c] == [40, 80, 100]
    # The recorded figure is the model's held-out bits/byte, recomputed here from the weights.
    heldout = split_corpus(bundled_corpus_bytes(), 128).val
    assert train["val_bytes"] == len(heldout)
    assert train["val_bits_per_byte"] == pytest.approx(
        evaluate(load_run(out / "model"), heldout).bits_per_byte
    )
    assert 2.0 < train["val_bits_per_byte"] < 5.0

    manifest = json.loads((out / "demo.json").read_text())
    assert manifest["quick"] is True and manifest["seed"] == 0
    assert {k: v["status"] for k, v in manifest["steps"].items()} == dict.fromkeys(
        ["train", *MEASURED], "done"
    )
    assert manifest["steps"]["lens"]["entry_point"] == "bitlens.measures.lens.measure_lens"
    html = _check_page_and_files(out, statuses)
    assert f"{train['val_bits_per_byte']:.3f} bits/byte" in html


@pytest.mark.slow
def test_complete_quick_demo(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--json", str(tmp_path / "result.json")]) == 0
    statuses = {s["name"]: s["status"] for s in json.loads((tmp_path / "result.json").read_text())["steps"]}
    assert statuses == dict.fromkeys(STEP_NAMES, "done")
    _check_page_and_files(out, statuses)


def test_rerun_reuses_finished_steps_and_report_rebuilds_the_same_page(quick_demo, capsys):
    out, _, first = quick_demo
    done = [s["name"] for s in first["steps"] if s["status"] == "done"]
    assert done == ["train", *MEASURED]
    stamps = {n: (out / f"{n}.json").stat().st_mtime_ns for n in done}
    page = (out / "report.html").read_bytes()
    assert main(["demo", "--quick", "--out", str(out), "--json", "-", *ONLY]) == 0
    again = {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["steps"]}
    assert {k: v for k, v in again.items() if v != "skipped"} == dict.fromkeys(done, "reused")
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
    assert main(["demo", "--quick", "--out", str(out), "--redo", "train"]) == 1
    assert "cannot be redone in place" in capsys.readouterr().err


def test_steps_call_their_entry_points(quick_demo, tmp_path, monkeypatch, capsys):
    """Each step calls the entry point the manifest names, with the demo's arguments; a failing
    step is recorded and retried, a finished one reused, and --redo recomputes it."""
    out = tmp_path / "demo"
    shutil.copytree(quick_demo[0], out)
    results = contract_results()
    results["lens"] = {"not_layers": []}  # done, but its section cannot read it
    calls: dict[str, list[dict]] = {}

    class Result:
        def __init__(self, d: dict) -> None:
            self.d = d

        def to_dict(self) -> dict:
            return self.d

    def fake(name):
        def entry(*args, **kwargs):
            calls.setdefault(name, []).append((args, kwargs))
            if name == "generalisation":
                raise RuntimeError("boom")
            return Result(results[name])

        return entry

    for step, entry_point in ENTRY_POINTS.items():
        if step != "train":
            monkeypatch.setattr(entry_point, fake(step))
    assert main(["demo", "--quick", "--out", str(out), "--redo", "lens"]) == 1
    assert "1 step(s) failed (generalisation)" in capsys.readouterr().err
    assert "surprisal" not in calls and "probes" not in calls  # reused

    quiet = {"progress": False}
    heldout = bytes(split_corpus(bundled_corpus_bytes(), 128).val.numpy())
    corpus = bundled_corpus_bytes()
    assert calls["capacity"] == [((replace(CapacityConfig.quick(), n_seeds=2),), quiet)]
    ((model, data, lens_config), kwargs) = calls["lens"][0]
    assert (
        isinstance(model, GPT) and data == heldout and lens_config == LensConfig.quick() and kwargs == quiet
    )
    assert lens_config.tuned
    ((data, model, comparison), kwargs) = calls["compression"][0]
    assert isinstance(model, GPT) and data == heldout and kwargs == quiet
    assert comparison == ComparisonConfig.quick() and comparison.online_preset == ONLINE_PRESET
    assert calls["prequential"] == [((corpus, PrequentialConfig.quick()), quiet)]
    assert calls["dynamics"] == [((corpus, DynamicsConfig.quick()), quiet)]
    quick_collapse = replace(
        CollapseConfig.quick(), generations=2, real_bytes=3_200, test_bytes=2_048, budget_tokens=4_096
    )
    assert calls["collapse"] == [
        ((corpus, CollapseArmsConfig(base=quick_collapse, top_ps=(1.0,), seeds=(0, 1))), quiet)
    ]
    assert len(calls["distillation"]) == len(calls["born_again"]) == 1
    ((parent, distill), kwargs) = calls["distillation"][0]
    assert isinstance(parent, StudyParent) and parent.config.steps == 40 and kwargs == quiet
    assert distill == replace(DistillConfig.quick(), seeds=(0, 1), budget_tokens=16_384)
    ((same_parent, born), _) = calls["born_again"][0]
    assert same_parent is parent  # trained once, shared by the two studies
    assert born == replace(BornAgainConfig.quick(), seeds=(0, 1), generations=1, budget_ratio=0.5)
    ((parent, data, compare), kwargs) = calls["offspring"][0]
    assert isinstance(parent, GPT) and data == corpus and kwargs == quiet
    assert compare == CompareConfig.quick() and compare.keep_ratio == 0.3 and compare.seeds == (0,)
    assert calls["evolution"] == [
        (
            (
                out / "evolution",
                replace(EvolveConfig.quick(), population=2, reevaluate=False, budget_tokens=8_192),
            ),
            {
                "corpus": corpus,
                "backend": "local",
                "workers": 1,
                "resume": False,
                "progress": False,
                "parent_dir": str(out / "model"),
            },
        )
    ]
    assert calls["generalisation"] == [((corpus, GeneralisationConfig.quick()), quiet)]

    manifest = json.loads((out / "demo.json").read_text())["steps"]
    assert {k: v["status"] for k, v in manifest.items()} == {
        **dict.fromkeys(STEP_NAMES, "done"),
        "generalisation": "failed",
    }
    assert manifest["generalisation"]["error"] == "RuntimeError: boom"
    assert manifest["capacity"]["entry_point"] == "bitlens.measures.capacity.measure_capacity"
    assert json.loads((out / "capacity.json").read_text()) == results["capacity"]
    assert not (out / "generalisation.json").exists()
    html = (out / "report.html").read_text()
    assert "Capacity grows by 2.550 bits per parameter" in html and "failed: RuntimeError: boom" in html
    assert "lens.json does not follow the contract (KeyError" in html

    # Finished steps are reused, failed ones retried; --redo recomputes a finished one.
    assert main(["demo", "--quick", "--out", str(out)]) == 1
    assert len(calls["capacity"]) == 1 and len(calls["generalisation"]) == 2
    main(["demo", "--quick", "--out", str(out), "--redo", "capacity"])
    assert len(calls["capacity"]) == 2 and len(calls["lens"]) == 1


def test_overall_eta_scales_the_remaining_budget_by_the_pace_so_far():
    eta = Eta({"a": 10.0, "b": 20.0, "c": 30.0})
    assert eta.seconds_left(["b", "c"]) == 50.0  # no pace yet: the budgets as they are
    eta.record("a", 20.0)  # twice as slow as budgeted
    assert eta.seconds_left(["b", "c"]) == 100.0
    eta.record("b", 1.0)  # 21 s for 30 s of budget
    assert eta.seconds_left(["c"]) == pytest.approx(30.0 * 21.0 / 30.0)
    assert format_duration(125.4) == "2m05s" and format_duration(9.6) == "10s"
