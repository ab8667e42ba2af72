"""Distillation as a 2×2 (labels × inputs) and born-again offspring, on tiny models and data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.offspring.born_again import BornAgainConfig, offspring_budget, run_born_again
from bitlens.offspring.budget import inference_flops
from bitlens.offspring.distill import distill_loss
from bitlens.offspring.distill_study import (
    CELLS,
    DistillConfig,
    factorial_effects,
    run_distill_2x2,
    synthetic_windows,
)
from bitlens.offspring.study_parent import ParentConfig, StudyParent, train_parent
from bitlens.stats import t_interval
from offspring_helpers import MICRO_CONTEXT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MICRO_PARENT = ParentConfig(preset="tiny", steps=3, seed=7, context=MICRO_CONTEXT)


@pytest.fixture(scope="module")
def study_parent(shakespeare) -> StudyParent:
    return train_parent(shakespeare, MICRO_PARENT)


def _table(base: np.ndarray, labels: float, inputs: float, interaction: float) -> dict:
    """Per-seed bits/byte of a 2×2 with known effects: soft adds `labels`, synthetic adds
    `inputs`, and soft on synthetic adds `interaction` more (each seed shifted by `base`)."""
    out = {}
    for lab, inp in CELLS:
        s, y = lab == "soft", inp == "synthetic"
        out[lab, inp] = base + labels * (s - 0.5) + inputs * (y - 0.5) + interaction * ((s and y) - 0.25)
    return out


def test_factorial_effects_recover_a_known_table():
    rng = np.random.default_rng(0)
    base = 3.0 + rng.normal(0, 0.2, 10)  # seed-to-seed spread cancels in the paired differences
    noise = {c: rng.normal(0, 0.01, 10) for c in CELLS}
    table = {c: v + noise[c] for c, v in _table(base, -0.3, 0.5, 0.2).items()}
    effects = {e["effect"]: e for e in factorial_effects(table)}
    # the estimates are the cell means' contrasts, exactly
    m = {c: float(np.mean(v)) for c, v in table.items()}
    labels = (m["soft", "real"] + m["soft", "synthetic"] - m["hard", "real"] - m["hard", "synthetic"]) / 2
    inter = (m["soft", "synthetic"] - m["hard", "synthetic"]) - (m["soft", "real"] - m["hard", "real"])
    assert effects["labels"]["estimate"] == pytest.approx(labels, abs=1e-12)
    assert effects["interaction"]["estimate"] == pytest.approx(inter, abs=1e-12)
    assert effects["labels"]["estimate"] == pytest.approx(-0.3 + 0.2 / 2, abs=0.02)
    assert effects["inputs"]["estimate"] == pytest.approx(0.5 + 0.2 / 2, abs=0.02)
    assert effects["interaction"]["estimate"] == pytest.approx(0.2, abs=0.03)
    for e in effects.values():
        lo, hi = e["ci95"]
        assert lo < e["estimate"] < hi and e["n_seeds"] == 10
        assert e["p_value"] <= e["p_holm"] <= 1.0 and e["p_holm"] < 1e-4
    assert effects["labels"]["reading"] == "soft labels lower bits/byte"
    assert effects["inputs"]["reading"] == "real inputs lower bits/byte"
    # the interval is the per-seed difference's t interval, not the cells' spread
    d = (table["soft", "synthetic"] - table["hard", "synthetic"]) - (
        table["soft", "real"] - table["hard", "real"]
    )
    iv = t_interval(d)
    assert effects["interaction"]["ci95"] == pytest.approx([iv.low, iv.high])


def test_an_additive_table_has_no_interaction_and_noise_alone_no_effect():
    base = np.array([3.0, 3.4, 2.9, 3.1, 3.6])
    effects = {e["effect"]: e for e in factorial_effects(_table(base, 0.1, -0.2, 0.0))}
    assert effects["interaction"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert effects["interaction"]["reading"].startswith("no effect detected")
    assert effects["labels"]["estimate"] == pytest.approx(0.1)
    rng = np.random.default_rng(3)
    noise = {c: 3.0 + rng.normal(0, 0.1, 6) for c in CELLS}
    for e in factorial_effects(noise):
        if e["ci95"][0] <= 0 <= e["ci95"][1]:
            assert e["reading"].startswith("no effect detected")
    with pytest.raises(BitlensError, match="lacks cells"):
        factorial_effects({("hard", "real"): [1.0, 2.0]})


class _OneHotParent(nn.Module):
    """A 'parent' certain of the next byte: all its mass on (x + 1) mod 256."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1e4 * nn.functional.one_hot((x + 1) % 256, 256).float()


def test_soft_labels_of_a_one_hot_parent_are_the_hard_loss(micro_model):
    torch.manual_seed(2)
    x = torch.randint(0, 256, (3, 16))
    y = (x + 1) % 256
    mask = torch.ones(3, 16)
    mask[0, :5] = 0
    hard = distill_loss("hard")(micro_model, (x, y, mask)).item()
    soft = distill_loss("soft", _OneHotParent())(micro_model, (x, y, mask)).item()  # type: ignore[arg-type]
    assert soft == pytest.approx(hard, rel=1e-5)
    assert hard > 1.0  # an untrained model: a real cross-entropy, not a trivial zero


def test_synthetic_windows_continue_the_pool_heads(study_parent):
    pool = study_parent.ctx.pool
    w, bits = synthetic_windows(study_parent.model, pool, seed=0)
    assert w.shape == pool.shape and w.dtype == torch.uint8
    assert torch.equal(w[:, 0], pool[:, 0])
    assert not torch.equal(w, pool) and 0.0 < bits < 8.5
    assert torch.equal(synthetic_windows(study_parent.model, pool, seed=0)[0], w)


def test_the_2x2_cells_spend_equal_tokens_and_flops(study_parent):
    cfg = DistillConfig(seeds=(0, 1), budget_tokens=256)
    r = run_distill_2x2(study_parent, cfg).to_dict()
    cells = {(c["labels"], c["inputs"]): c for c in r["cells"]}
    assert set(cells) == set(CELLS)
    tokens = {(c["tokens"], c["loss_tokens"], c["offspring_train_flops"]) for c in cells.values()}
    assert len(tokens) == 1 and cells["hard", "real"]["tokens"] == 256  # 2 steps × 4 windows × 32
    parent = study_parent.model
    written = inference_flops(parent, len(study_parent.ctx.pool) * study_parent.ctx.window)
    labelling = inference_flops(parent, 256)
    assert cells["hard", "real"]["parent_flops"] == 0.0
    assert cells["soft", "real"]["parent_flops"] == pytest.approx(labelling)
    assert cells["hard", "synthetic"]["parent_flops"] == pytest.approx(written)
    assert cells["soft", "synthetic"]["parent_flops"] == pytest.approx(labelling + written)
    for c in cells.values():
        assert c["n_seeds"] == 2 and len(c["heldout_bits_per_byte_per_seed"]) == 2
        lo, hi = c["heldout_bits_per_byte_ci95"]
        assert lo <= c["heldout_bits_per_byte"] <= hi
    assert [e["effect"] for e in r["effects"]] == ["labels", "inputs", "interaction"]
    assert all(
        {"estimate", "ci95", "n_seeds", "p_value", "p_holm", "reading"} <= set(e) for e in r["effects"]
    )
    assert r["heldout_split"] == "test" and r["splits"]["test"]["bytes"] > 0
    assert r["parent"]["steps"] == 3 and r["parent"]["tokens"] == 3 * 4 * 32


def test_born_again_generations_and_keys(study_parent):
    r = run_born_again(study_parent, BornAgainConfig(seeds=(0, 1), generations=2)).to_dict()
    assert r["budget_tokens"] == study_parent.tokens  # ratio 1: the parent's own budget
    gens = r["generations"]
    assert [g["generation"] for g in gens] == [1, 2]
    assert gens[1]["teacher"].startswith("generation 1")
    for g in gens:
        imp = g["improvement_vs_parent_bits_per_byte"]
        per_seed = g["heldout_bits_per_byte_per_seed"]
        assert imp["estimate"] == pytest.approx(r["parent_bits_per_byte"] - np.mean(per_seed))
        assert len(imp["ci95"]) == 2 and imp["n_seeds"] == 2 and imp["p_holm"] is not None
        assert g["tokens"] <= r["parent"]["tokens"]
    prev = gens[1]["improvement_vs_previous_bits_per_byte"]
    assert prev["estimate"] == pytest.approx(
        np.mean(gens[0]["heldout_bits_per_byte_per_seed"])
        - np.mean(gens[1]["heldout_bits_per_byte_per_seed"])
    )
    assert gens[0]["improvement_vs_previous_bits_per_byte"] is None
    control = r["hard_control"]["heldout_bits_per_byte_per_seed"]
    over = gens[0]["gain_over_hard_control_bits_per_byte"]
    assert over["estimate"] == pytest.approx(
        np.mean(control) - np.mean(gens[0]["heldout_bits_per_byte_per_seed"])
    )
    json.dumps(r)  # serialisable as it stands


def test_born_again_budget_never_exceeds_the_parent(study_parent):
    per_step = MICRO_CONTEXT.batch_size * MICRO_CONTEXT.window
    assert offspring_budget(study_parent, 1.0) == study_parent.tokens
    assert offspring_budget(study_parent, 0.5) == per_step  # 1.5 batches, down to 1
    assert offspring_budget(study_parent, 0.01) == per_step
    with pytest.raises(BitlensError, match="at most the parent's"):
        BornAgainConfig(budget_ratio=1.5)
    with pytest.raises(BitlensError, match="at least 2 seeds"):
        replace(DistillConfig(), seeds=(0,))


def _cli_common(tmp_path, shakespeare) -> list[str]:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    return ["--corpus", str(corpus), "--quick", "--seeds", "2", "--parent-steps", "2"]


def test_cli_distill_quick(tmp_path, shakespeare, capsys):
    out = tmp_path / "d.json"
    args = ["offspring", "distill", *_cli_common(tmp_path, shakespeare), "--budget-tokens", "2048"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "interaction" in printed and "soft/synthetic" in printed
    r = json.loads(out.read_text())
    assert r["seeds"] == [0, 1] and r["budget_tokens"] == 2048 and len(r["cells"]) == 4
    assert all("ci95" in e and e["n_seeds"] == 2 for e in r["effects"])
    assert set(r["splits"]) == {"parent_train", "pool", "validation", "test"}
    assert main(["offspring", "distill", "--help"]) == 0
    assert "no effect detected" in " ".join(capsys.readouterr().out.split())


def test_cli_born_again_quick(tmp_path, shakespeare):
    common = _cli_common(tmp_path, shakespeare)
    out = tmp_path / "b.json"
    args = ["offspring", "born-again", *common, "--generations", "1", "--no-hard-control", "--json", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())
    assert r["hard_control"] is None and len(r["generations"]) == 1
    assert r["generations"][0]["improvement_vs_parent_bits_per_byte"]["n_seeds"] == 2
    assert r["budget_tokens"] == r["parent"]["tokens"] == 2 * 16 * 128
    assert main(["offspring", "born-again", *common, "--budget-ratio", "2"]) == 2  # click refuses


def test_the_study_learning_rate_reaches_the_optimiser():
    from bitlens.offspring.batches import offspring_train_config
    from bitlens.train import TRAIN_PRESETS

    assert offspring_train_config("tiny", 10, 4, 0).lr == TRAIN_PRESETS["tiny"].lr
    assert offspring_train_config("tiny", 10, 4, 0, lr=0.02).lr == 0.02
    assert ParentConfig().lr == DistillConfig().lr == 1e-2
