"""Collapse arms: accumulate-real's fixed real share, the same budget in every arm, rare-byte
tails, and the aggregation over seeds (means, t intervals, changes) of `collapse_arms`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import bitlens.offspring.collapse as collapse
from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.offspring.collapse import (
    MODES,
    CollapseConfig,
    CollapseGeneration,
    CollapseResult,
    plot_collapse,
    rare_byte_mass,
    rare_byte_set,
    run_collapse,
    training_sources,
)
from bitlens.offspring.collapse_arms import (
    HEADLINE,
    NO_CHANGE,
    CollapseArmsConfig,
    generation_change,
    run_collapse_arms,
    seed_means,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MICRO = CollapseConfig(
    generations=2, real_bytes=1_024, test_bytes=512, budget_tokens=256, window=32, batch_size=4
)
T_975_DF2 = 4.302652729911275  # Student's t quantile 0.975 at 2 degrees of freedom


def _windows(value: int, n: int, width: int = 9) -> torch.Tensor:
    return torch.full((n, width), value, dtype=torch.uint8)


def test_accumulate_real_keeps_exactly_its_share_of_every_batch():
    real, gens = _windows(1, 10), [_windows(2, 10), _windows(3, 10), _windows(4, 10)]
    for share, batch in [(0.25, 16), (0.5, 4), (0.125, 8)]:
        cfg = CollapseConfig(mode="accumulate-real", real_share=share, batch_size=batch)
        for g in range(1, 4):
            sources, real_share = training_sources(cfg, real, gens[:g])
            assert real_share == share and sum(s.per_batch for s in sources) == batch
            first, rest = sources
            assert first.windows is real and first.per_batch / batch == share  # exactly, every batch
            assert torch.equal(rest.windows, torch.cat(gens[:g]))  # every earlier generation's samples
            assert not (rest.windows == 1).any()  # and no real window among them
    with pytest.raises(BitlensError, match="not a whole number of windows"):
        CollapseConfig(mode="accumulate-real", real_share=0.3, batch_size=16)
    CollapseConfig(mode="replace", real_share=0.3, batch_size=16)  # the share only binds its arm
    with pytest.raises(BitlensError, match="strictly between 0 and 1"):
        CollapseConfig(real_share=1.0)


def test_other_arms_sources():
    real, gens = _windows(1, 10), [_windows(2, 10), _windows(3, 10)]
    cfg = CollapseConfig(batch_size=16)
    (only,), share = training_sources(replace(cfg, mode="replace"), real, gens)
    assert share == 0.0 and only.windows is gens[-1] and only.per_batch == 16
    (pool,), share = training_sources(replace(cfg, mode="accumulate"), real, gens)
    assert share == pytest.approx(1 / 3) and len(pool.windows) == 30 and pool.per_batch == 16
    for mode in MODES:  # generation 0: the real windows alone, in every arm
        (first,), share = training_sources(replace(cfg, mode=mode), real, [])
        assert first.windows is real and share == 1.0


def test_every_arm_trains_on_the_same_budget_and_batch(shakespeare, monkeypatch):
    seen: dict[str, list] = {m: [] for m in MODES}
    train = collapse.train_on_windows

    def spy(preset, sources, budget_tokens, seed, **kw):
        seen[mode].append((budget_tokens, sum(s.per_batch for s in sources), [s.per_batch for s in sources]))
        return train(preset, sources, budget_tokens, seed, **kw)

    monkeypatch.setattr(collapse, "train_on_windows", spy)
    for mode in MODES:
        run_collapse(shakespeare, replace(MICRO, mode=mode, generations=1))
    assert {(b, n) for calls in seen.values() for b, n, _ in calls} == {(256, 4)}
    assert [parts for _, _, parts in seen["accumulate-real"]] == [[4], [1, 3]]


def test_rare_bytes_hold_at_most_the_tail_share():
    real = torch.tensor([[0] * 90 + [1] * 6 + [2] * 3 + [3] * 1], dtype=torch.uint8)
    rare = rare_byte_set(real, 0.1)
    assert np.flatnonzero(rare).tolist() == [1, 2, 3]  # 6 + 3 + 1 = 10 of 100 bytes
    assert rare_byte_mass(real, rare) == pytest.approx(0.10)
    assert np.flatnonzero(rare_byte_set(real, 0.05)).tolist() == [2, 3]
    assert rare_byte_mass(torch.tensor([[0, 0, 3, 2]]), rare) == 0.5


def _result(values: list[float], seed: int) -> CollapseResult:
    """A run whose every headline figure at generation g is values[g]."""
    gens = [
        CollapseGeneration(
            generation=g,
            train_windows=10,
            real_share=1.0 if g == 0 else 0.0,
            **{k: v for k in HEADLINE},
        )
        for g, v in enumerate(values)
    ]
    return CollapseResult(
        mode="replace",
        generations=gens,
        real_tail_mass=0.1,
        real_unigram_entropy_bits=4.5,
        tail_share=0.1,
        surprise_threshold_bits=10.0,
        temperature=1.0,
        top_p=0.9,
        budget_tokens=256,
        heldout_bytes=480,
        offspring_preset="tiny",
        seed=seed,
        quick=False,
        splits={},
        real_rare_byte_mass=0.09,
    )


def test_seed_means_carry_t_intervals():
    runs = [_result([1.0, 2.0], 0), _result([2.0, 4.0], 1), _result([3.0, 3.0], 2)]
    rows = seed_means(runs)
    assert [r["generation"] for r in rows] == [0, 1] and all(r["n_seeds"] == 3 for r in rows)
    for key in HEADLINE:
        assert rows[0][key] == pytest.approx(2.0)  # mean of 1, 2, 3; sd 1
        half = T_975_DF2 / np.sqrt(3)
        assert rows[0][f"{key}_ci95"] == pytest.approx([2.0 - half, 2.0 + half])
        assert rows[1][key] == pytest.approx(3.0)
    # last − first per seed: 1, 2, 0 → mean 1, sd 1: the interval includes 0
    change = generation_change(runs, "heldout_bits_per_byte")
    assert change["estimate"] == pytest.approx(1.0) and change["n_seeds"] == 3
    assert change["ci95"] == pytest.approx([1.0 - T_975_DF2 / np.sqrt(3), 1.0 + T_975_DF2 / np.sqrt(3)])
    assert change["reading"] == NO_CHANGE
    rising = [_result([1.0, 2.0], 0), _result([1.0, 2.1], 1), _result([1.0, 1.9], 2)]
    assert generation_change(rising, "tail_mass")["reading"] == "rises"
    falling = [_result([2.0, 1.0], 0), _result([2.1, 1.0], 1)]
    assert generation_change(falling, "tail_mass")["reading"] == "falls"
    one = seed_means([_result([1.0, 2.0], 0)])
    assert one[0]["heldout_bits_per_byte_ci95"] is None and one[0]["n_seeds"] == 1
    assert generation_change([_result([1.0, 2.0], 0)], "tail_mass")["ci95"] is None


def test_arms_over_seeds(shakespeare, tmp_path):
    cfg = CollapseArmsConfig(
        replace(MICRO, generations=1), modes=("replace", "accumulate-real"), top_ps=(0.9,), seeds=(0, 1)
    )
    r = run_collapse_arms(shakespeare, cfg).to_dict()
    json.dumps(r, allow_nan=False)
    assert [(a["mode"], a["top_p"], a["seeds"]) for a in r["arms"]] == [
        ("replace", 0.9, [0, 1]),
        ("accumulate-real", 0.9, [0, 1]),
    ]
    replace_arm, real_arm = r["arms"]
    for arm in r["arms"]:
        for row in arm["generations"]:
            assert row["n_seeds"] == 2 and all(len(row[f"{k}_ci95"]) == 2 for k in HEADLINE)
            assert all(row[f"{k}_ci95"][0] <= row[k] <= row[f"{k}_ci95"][1] for k in HEADLINE)
        assert set(arm["change"]) == set(HEADLINE)
        assert [run["generation0"] for run in arm["runs"]] == ["trained", "trained"]
    # generation 0 is trained once per seed and shared: identical rows in both arms
    for a, b in zip(replace_arm["runs"], real_arm["runs"], strict=True):
        assert a["generations"][0] == b["generations"][0]
    assert replace_arm["runs"][0]["generations"][0] != replace_arm["runs"][1]["generations"][0]
    assert [g["real_share"] for g in real_arm["generations"]] == [1.0, 0.25]
    (diff,) = r["last_generation_differences"]
    assert (diff["a"], diff["b"], diff["n_seeds"]) == ("replace", "accumulate-real", 2)
    last = [[run["generations"][-1]["heldout_bits_per_byte"] for run in arm["runs"]] for arm in r["arms"]]
    assert diff["estimate"] == pytest.approx(np.mean(np.subtract(*last)))
    written = plot_collapse(r["arms"], tmp_path / "arms.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    with pytest.raises(BitlensError, match="without repeats"):
        CollapseArmsConfig(MICRO, seeds=(0, 0))
    with pytest.raises(BitlensError, match="not a whole number"):
        CollapseArmsConfig(replace(MICRO, real_share=0.3))


def test_cli_parses_the_arm_list(monkeypatch, tmp_path, capsys):
    from bitlens.cli.collapse import COLLAPSE_MODES, parse_arms

    assert COLLAPSE_MODES == MODES
    assert parse_arms("all") == MODES and parse_arms("both") == ("replace", "accumulate")
    assert parse_arms("accumulate-real, replace") == ("accumulate-real", "replace")
    with pytest.raises(BitlensError, match="unknown arm 'sideways'"):
        parse_arms("replace,sideways")
    seen = {}

    def fake(data, config, progress=False, generation0=None):
        seen["config"] = config
        raise BitlensError("stop here")

    import bitlens.offspring.collapse_arms as arms

    monkeypatch.setattr(arms, "run_collapse_arms", fake)
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"abc" * 2000)
    args = ["collapse", "--corpus", str(corpus), "--quick", "--mode", "all", "--top-p", "1.0,0.9"]
    assert main(args + ["--seeds", "3,4,5", "--real-share", "0.5", "--generations", "6"]) == 1
    cfg = seen["config"]
    assert (cfg.modes, cfg.top_ps, cfg.seeds) == (MODES, (1.0, 0.9), (3, 4, 5))
    assert (cfg.base.real_share, cfg.base.generations, cfg.base.is_quick()) == (0.5, 6, True)
    assert "stop here" in capsys.readouterr().err
    assert main(args + ["--seeds", "0", "--real-share", "0.3"]) == 1  # 0.3 × 16 windows
    assert "not a whole number of windows" in capsys.readouterr().err
    assert main(["collapse", "--corpus", str(corpus), "--mode", "sideways"]) == 1
    assert "unknown arm 'sideways'" in capsys.readouterr().err
