"""The selection budget sweep: budgets × arms × seeds, learning curves, paired gains, Holm."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats as st

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.model import GPT, GPTConfig
from bitlens.offspring.policy import CurationPolicy, context_from_model, train_offspring
from bitlens.offspring.select import choice_bits
from bitlens.offspring.sweep import (
    SweepConfig,
    budget_rows,
    byte_entropy_bits,
    curve_steps,
    plot_sweep,
    run_sweep,
)
from bitlens.stats import holm
from bitlens.train import TRAIN_PRESETS
from offspring_helpers import MICRO_CONTEXT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def micro_parent() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()


def test_curve_steps_are_even_and_end_at_the_run_length():
    assert curve_steps(10, 4) == [2, 5, 8, 10]  # 2.5 and 7.5 round to even
    assert curve_steps(2, 4) == [1, 2]  # fewer points than asked when the run is short
    assert curve_steps(7, 1) == [7]


def test_byte_entropy_of_known_sources():
    assert byte_entropy_bits(b"abab") == pytest.approx(1.0)
    assert byte_entropy_bits(bytes(range(256)) * 3) == pytest.approx(8.0)
    assert byte_entropy_bits(b"aaaa") == pytest.approx(0.0)


def test_sweep_config_checks():
    assert SweepConfig(budgets=(300, 100, 200)).budgets == (100, 200, 300)
    for bad in (
        {"scores": ("random", "surprisal")},  # no bigram control
        {"scores": ("bigram", "surprisal")},  # no random control
        {"scores": ("random", "bigram", "psychic")},
        {"budgets": ()},
        {"budgets": (0, 10)},
        {"budgets": (10, 10)},
        {"seeds": ()},
        {"curve_points": 0},
        {"level": "paragraph"},
        {"lr": 0.0},
    ):
        with pytest.raises(BitlensError):
            SweepConfig(**bad)
    assert SweepConfig(seeds=(5, 6)).context.seed == 5


def _fake_run(
    bpb: float, curve: list[tuple[int, float]] | None = None, choice: float = 3.0
) -> SimpleNamespace:
    """What `budget_rows` reads of an `OffspringRun`."""
    return SimpleNamespace(
        heldout=SimpleNamespace(bits_per_byte=bpb),
        cost=SimpleNamespace(total_flops=1e9),
        choice_bits=choice,
        curve=curve if curve is not None else [(1, bpb + 1.0), (2, bpb)],
    )


def test_paired_gains_and_holm_on_a_known_case():
    random = np.array([4.0, 4.5, 5.0, 4.2])
    d_sur = np.array([0.1, 0.2, 0.3, 0.2])  # surprisal's mask beats random by these, per seed
    d_big = np.array([0.05, -0.05, 0.02, 0.0])
    d_rho = np.array([0.3, 0.1, 0.4, 0.2])
    bpb = {
        "random": random,
        "bigram": random - d_big,
        "surprisal": random - d_sur,
        "rho-loss": random - d_rho,
    }
    rows = {r.score: r for r in budget_rows({s: [_fake_run(x) for x in v] for s, v in bpb.items()}, 2048)}
    # surprisal over random: mean 0.2, sd sqrt(0.02/3), t interval with 3 degrees of freedom
    g = rows["surprisal"].gain_over_random_bits_per_byte
    half = 3.182446305284263 * math.sqrt(0.02 / 3) / 2
    assert g["estimate"] == pytest.approx(0.2)
    assert g["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    assert g["n_seeds"] == 4
    assert g["p_value"] == pytest.approx(2 * st.t.sf(0.2 / (math.sqrt(0.02 / 3) / 2), 3))
    # over the bigram mask: d_sur − d_big per seed
    b = rows["surprisal"].gain_over_bigram_bits_per_byte
    assert b["estimate"] == pytest.approx((d_sur - d_big).mean())
    # the controls are not compared with themselves; bigram is compared with random
    assert rows["random"].gain_over_random_bits_per_byte is None
    assert rows["random"].gain_over_bigram_bits_per_byte is None
    assert rows["bigram"].gain_over_bigram_bits_per_byte is None
    assert rows["bigram"].uses_parent is False and rows["rho-loss"].uses_parent is True
    # Holm within the budget: over random across bigram, surprisal, rho-loss; over bigram
    # across the two parent-scored arms
    over_random = [rows[s].gain_over_random_bits_per_byte for s in ("bigram", "surprisal", "rho-loss")]
    p = [x["p_value"] for x in over_random]
    assert [x["p_holm"] for x in over_random] == pytest.approx(list(holm(p)))
    smallest = int(np.argmin(p))
    assert over_random[smallest]["p_holm"] == pytest.approx(min(1.0, 3 * p[smallest]))
    over_bigram = [rows[s].gain_over_bigram_bits_per_byte for s in ("surprisal", "rho-loss")]
    assert [x["p_holm"] for x in over_bigram] == pytest.approx(
        list(holm([x["p_value"] for x in over_bigram]))
    )
    # the learning curve: mean over seeds at each step, tokens = steps × tokens per step
    c = rows["surprisal"].curve
    assert [x["step"] for x in c] == [1, 2] and [x["tokens"] for x in c] == [2048, 4096]
    assert c[1]["heldout_bits_per_byte"] == pytest.approx(bpb["surprisal"].mean())
    assert c[0]["heldout_bits_per_byte"] == pytest.approx(bpb["surprisal"].mean() + 1.0)
    assert c[1]["n_seeds"] == 4 and c[1]["ci95"][0] < c[1]["heldout_bits_per_byte"] < c[1]["ci95"][1]


def test_a_curve_does_not_change_training(shakespeare, micro_parent):
    ctx = context_from_model(micro_parent, shakespeare, MICRO_CONTEXT)
    policy = CurationPolicy(score="surprisal", keep_ratio=0.5, budget_tokens=4 * 128)  # 4 steps
    plain = train_offspring(policy, ctx, 3, "test")
    traced = train_offspring(policy, ctx, 3, "test", curve_steps=[1, 3])
    assert plain.curve == []
    assert traced.heldout.bits_per_byte == plain.heldout.bits_per_byte
    assert [s for s, _ in traced.curve] == [1, 3, 4]
    assert traced.curve[-1][1] == traced.heldout.bits_per_byte
    assert traced.curve[0][1] > traced.curve[-1][1]  # it learns


def test_the_sweep_learning_rate_reaches_the_offspring(shakespeare, micro_parent):
    ctx = context_from_model(micro_parent, shakespeare, MICRO_CONTEXT)
    policy = CurationPolicy(keep_ratio=0.5, budget_tokens=4 * 128)
    preset = train_offspring(policy, ctx, 3, "test").heldout.bits_per_byte
    same = train_offspring(policy, ctx, 3, "test", lr=TRAIN_PRESETS["tiny"].lr).heldout.bits_per_byte
    faster = train_offspring(policy, ctx, 3, "test", lr=3e-2).heldout.bits_per_byte
    assert same == preset and faster != preset


def test_sweep_json_and_plot(shakespeare, micro_parent, tmp_path):
    cfg = SweepConfig(
        budgets=(384, 128), seeds=(0, 1), keep_ratio=0.25, curve_points=3, context=MICRO_CONTEXT
    )
    r = run_sweep(micro_parent, shakespeare, cfg).to_dict()
    assert r["heldout_split"] == "test" and r["seeds"] == [0, 1] and r["pool_windows"] == 32
    assert r["splits"]["test"]["bytes"] == 513
    assert r["unigram_entropy_bits_per_byte"] == pytest.approx(byte_entropy_bits(shakespeare[-513:]))
    assert r["target_bits_per_byte"] == 3.0
    assert r["offspring_preset"] == "tiny" and r["offspring_lr"] == TRAIN_PRESETS["tiny"].lr
    assert [b["budget_tokens"] for b in r["budgets"]] == [128, 384]
    assert [b["steps"] for b in r["budgets"]] == [1, 3]  # 4 windows × 32 bytes per step
    for b in r["budgets"]:
        assert [a["score"] for a in b["arms"]] == ["random", "bigram", "surprisal", "rho-loss"]
        for a in b["arms"]:
            assert a["n_seeds"] == 2 and len(a["heldout_bits_per_byte_per_seed"]) == 2
            lo, hi = a["heldout_bits_per_byte_ci95"]
            assert lo <= a["heldout_bits_per_byte"] <= hi
            assert [p["step"] for p in a["curve"]] == curve_steps(b["steps"], 3)
            assert a["curve"][-1]["heldout_bits_per_byte"] == pytest.approx(a["heldout_bits_per_byte"])
            if a["score"] == "rho-loss":  # online: log2 C(16, 4) per step (4 of 4 / 0.25 candidates)
                assert a["choice_bits"] == pytest.approx(b["steps"] * choice_bits(16, 4))
            else:  # 8 of the 32 pool windows
                assert a["choice_bits"] == pytest.approx(choice_bits(32, 8))
            for key in ("gain_over_random_bits_per_byte", "gain_over_bigram_bits_per_byte"):
                g = a[key]
                if g is not None:
                    assert {"estimate", "ci95", "n_seeds", "p_value", "p_holm"} <= g.keys()
                    assert g["n_seeds"] == 2 and g["p_holm"] >= g["p_value"]
        arms = {a["score"]: a for a in b["arms"]}
        rnd = np.array(arms["random"]["heldout_bits_per_byte_per_seed"])
        sur = np.array(arms["surprisal"]["heldout_bits_per_byte_per_seed"])
        assert arms["surprisal"]["gain_over_random_bits_per_byte"]["estimate"] == pytest.approx(
            (rnd - sur).mean()
        )
        assert arms["bigram"]["gain_over_bigram_bits_per_byte"] is None
    json.dumps(r)
    written = plot_sweep(r, tmp_path / "sweep.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in written)


def test_cli_sweep_parses_budgets_and_runs(tmp_path, shakespeare, capsys):
    from bitlens.train import train_run

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    train_run(shakespeare, tmp_path / "parent", preset="tiny", steps=1)
    args = ["offspring", "sweep", "--parent", str(tmp_path / "parent"), "--corpus", str(corpus), "--quick"]
    assert main([*args, "--budgets", "2048,lots"]) == 1
    assert "--budgets" in capsys.readouterr().err
    assert main([*args, "--scores", "random,surprisal"]) == 1  # no bigram control
    assert "bigram" in capsys.readouterr().err
    out = tmp_path / "sweep.json"
    run = [*args, "--budgets", "4096,2048", "--seeds", "0,1", "--scores", "random,bigram"]
    assert main([*run, "--curve-points", "2", "--json", str(out), "--plot", str(tmp_path / "sweep")]) == 0
    printed = capsys.readouterr().out
    assert "budget 2,048 tokens (1 steps)" in printed and "budget 4,096 tokens (2 steps)" in printed
    r = json.loads(out.read_text())
    assert [b["budget_tokens"] for b in r["budgets"]] == [2048, 4096] and r["quick"] is True
    assert [a["score"] for a in r["budgets"][1]["arms"]] == ["random", "bigram"]
    assert [p["step"] for p in r["budgets"][1]["arms"][0]["curve"]] == [1, 2]
    assert (tmp_path / "sweep.png").exists()


def test_cli_sweep_takes_the_parents_head_pool_and_lr(tmp_path, shakespeare, capsys):
    """--parent-train-bytes N: the parent must have been trained on exactly the corpus's first N
    bytes (refused otherwise, by length and by content); the pool and lr reach the sweep."""
    from bitlens.train import train_run

    head = 4_000  # + pool 3,000 + the quick validation and test: the 20,000-byte fixture
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    train_run(shakespeare[:head], tmp_path / "parent", preset="tiny", steps=1)
    parent = ["offspring", "sweep", "--parent", str(tmp_path / "parent")]
    rest = "--quick --budgets 2048 --seeds 0 --scores random,bigram --curve-points 1".split()
    rest += ["--pool-bytes", "3000", "--lr", "0.004"]
    assert main([*parent, "--corpus", str(corpus), *rest, "--parent-train-bytes", str(head + 1)]) == 1
    assert "trained on 4,000 bytes, not these 4,001" in capsys.readouterr().err
    out = tmp_path / "sweep.json"
    args = [*parent, *rest, "--parent-train-bytes", str(head)]
    assert main([*args, "--corpus", str(corpus), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["splits"]["parent_train"] == {"start": 0, "end": head, "bytes": head}
    assert r["splits"]["pool"] == {"start": head, "end": head + 3_000, "bytes": 3_000}
    assert r["offspring_lr"] == 0.004
    other = tmp_path / "other.txt"  # same length, other text: the hash tells them apart
    other.write_bytes(shakespeare[1 : head + 1] + shakespeare[head:])
    assert main([*args, "--corpus", str(other)]) == 1
    assert "other text of the same length" in capsys.readouterr().err
