"""Parent → offspring: selection, choice bits, sampling, distillation losses, budgets, collapse."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bitlens.cli import main
from bitlens.data import bytes_to_tensor
from bitlens.errors import BitlensError
from bitlens.evaluate import window_logits, window_scores
from bitlens.model import GPT, GPTConfig
from bitlens.offspring.budget import Cost, fitness, steps_for_budget, training_flops
from bitlens.offspring.collapse import (
    MODES,
    CollapseConfig,
    plot_collapse,
    run_collapse,
    tail_mass,
    tail_set,
)
from bitlens.offspring.compare import CompareConfig, compare_strategies, plot_strategies
from bitlens.offspring.distill import distill_loss, heldout_score
from bitlens.offspring.policy import (
    ContextConfig,
    CurationPolicy,
    context_from_model,
    evaluate_offspring,
    evaluate_policy,
)
from bitlens.offspring.select import (
    SCORES,
    bigram_surprisal_bits,
    choice_bits,
    make_windows,
    select_documents,
    select_tokens,
    token_scores,
)
from bitlens.offspring.synth import sample
from bitlens.train import cross_entropy_loss
from bitlens.units import surprisal_bits
from offspring_helpers import MICRO_CONTEXT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@given(st.integers(0, 60), st.data())
def test_choice_bits_is_log2_binomial(n, data):
    k = data.draw(st.integers(0, n))
    assert choice_bits(n, k) == pytest.approx(math.log2(math.comb(n, k)), abs=1e-9)


def test_choice_bits_known_values():
    assert choice_bits(4, 2) == pytest.approx(math.log2(6))
    assert choice_bits(1000, 0) == pytest.approx(0.0, abs=1e-9)
    assert choice_bits(1000, 300) == pytest.approx(choice_bits(1000, 700))
    with pytest.raises(BitlensError):
        choice_bits(3, 4)


def test_make_windows_overlap_by_one_byte():
    w = make_windows(torch.arange(20, dtype=torch.uint8), 4)
    assert w.shape == (4, 5)
    assert w[1, 0] == w[0, -1] == 4
    assert w[-1].tolist() == [12, 13, 14, 15, 16]


def test_document_and_token_selection_keep_the_top_scores():
    scores = np.array([[1.0, 1.0], [5.0, -5.0], [3.0, 3.0], [0.0, 0.5]])
    # window means: 1, 0, 3, 0.25 → the top two are windows 2 and 0
    assert select_documents(scores, 0.5).tolist() == [0, 2]
    mask = select_tokens(scores, 3 / 8)
    assert mask.sum() == 3
    assert mask[1, 0] and mask[2, 0] and mask[2, 1]


def test_scores_combine_per_token_bits():
    parent = np.array([[2.0, 4.0]])
    bits = {"parent": parent, "reference": np.array([[1.0, 5.0]]), "bigram": np.array([[8.0, 8.0]])}
    assert token_scores("static-excess", bits, 0).tolist() == [[1.0, -1.0]]
    assert token_scores("learnability", bits, 0).tolist() == [[6.0, 4.0]]
    assert token_scores("low-surprisal", bits, 0).tolist() == [[-2.0, -4.0]]
    assert np.array_equal(token_scores("random", bits, 3), token_scores("random", bits, 3))
    assert not np.array_equal(token_scores("random", bits, 3), token_scores("random", bits, 4))
    with pytest.raises(BitlensError):
        token_scores("static-excess", {"parent": parent}, 0)


class _Reads(dict):
    """A dict that records which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


@pytest.mark.parametrize("name", [n for n, s in SCORES.items() if not s.online])
def test_each_score_reads_exactly_what_it_needs(name):
    rule = SCORES[name]
    assert rule.name == name
    # what a context always provides, plus what the score says it needs
    keys = {"parent", "parent_entropy", *rule.needs}
    bits = _Reads({k: np.full((2, 3), float(i)) for i, k in enumerate(sorted(keys))})
    assert token_scores(name, bits, 0).shape == (2, 3)
    assert bits.read == set(rule.needs)


def test_bigram_surprisal_of_a_periodic_sequence():
    data = bytes_to_tensor(b"ab" * 100)
    s = bigram_surprisal_bits(make_windows(data, 4), data)
    # 'a' is followed by 'b' 100 times: add-one gives p = 101 / (100 + 256)
    assert s[0, 0] == pytest.approx(-math.log2(101 / 356))


def test_sampling_with_cache_matches_the_full_forward(micro_model):
    prompts = torch.tensor([[10, 20, 30], [40, 50, 60]])
    s = sample(micro_model, prompts, 6, temperature=0.0)
    greedy = micro_model.generate(prompts, 6, temperature=0.0)
    assert torch.equal(s.tokens.long(), greedy)
    full = torch.cat([prompts, s.tokens.long()], dim=1)
    expected = surprisal_bits(micro_model(full[:, :-1]), full[:, 1:])[:, 2:]
    assert torch.allclose(s.surprisal_bits, expected, atol=1e-4)
    # top_p → 0 keeps only the most likely byte: the same as greedy
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample(micro_model, prompts, 6, top_p=1e-6, generator=g).tokens, s.tokens)


def test_distill_losses(micro_model, micro_config):
    torch.manual_seed(1)
    x = torch.randint(0, 256, (3, 8))
    y = torch.randint(0, 256, (3, 8))
    ones = torch.ones(3, 8)
    hard = distill_loss("hard")
    assert hard(micro_model, (x, y, ones)).item() == pytest.approx(
        cross_entropy_loss(micro_model, (x, y)).item(), rel=1e-5
    )
    # masked-out targets do not count
    half = ones.clone()
    half[:, 4:] = 0
    y2 = y.clone()
    y2[:, 4:] = (y2[:, 4:] + 1) % 256
    assert hard(micro_model, (x, y, half)).item() == pytest.approx(
        hard(micro_model, (x, y2, half)).item(), rel=1e-6
    )
    # a model distilled onto itself has zero KL; another model has positive KL
    assert distill_loss("soft", micro_model)(micro_model, (x, y, ones)).item() == pytest.approx(0, abs=1e-6)
    other = GPT(micro_config)
    assert distill_loss("soft", micro_model)(other, (x, y, ones)).item() > 0
    mix = distill_loss("mix", micro_model)(other, (x, y, ones)).item()
    soft = distill_loss("soft", micro_model)(other, (x, y, ones)).item()
    assert mix == pytest.approx(0.5 * hard(other, (x, y, ones)).item() + 0.5 * soft, rel=1e-5)


def test_heldout_score_of_a_uniform_model_is_eight_bits(micro_config):
    model = GPT(micro_config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    windows = make_windows(torch.randint(0, 256, (200,), dtype=torch.uint8), 32)
    h = heldout_score(model, windows, window_logits(model, windows))
    assert h.bits_per_byte == pytest.approx(8.0, abs=1e-5)
    assert h.kl_to_parent_bits == pytest.approx(0.0, abs=1e-6)


def test_budget_and_fitness(micro_model):
    assert steps_for_budget(1000, 4, 32) == 8
    flops = training_flops(micro_model, 1000)
    assert flops == pytest.approx(1000 * micro_model.flops_per_token(train=True))
    assert Cost(1.0, 2.0, 3.0).total_flops == 6.0
    assert fitness(3.0, 2.5, 2e12) == pytest.approx(0.25)
    assert fitness(3.0, 3.5, 1e12) < 0


def test_tail_mass_of_real_data_and_of_its_commonest_bigram():
    real = make_windows(bytes_to_tensor(b"the cat sat on the mat; a zebra quizzed jovial vets. " * 20), 16)
    tail = tail_set(real, 0.1)
    assert 0.0 < tail_mass(real, tail) <= 0.1
    common = torch.tensor([[ord("t"), ord("h"), ord("e")]], dtype=torch.uint8)
    assert tail_mass(common, tail) == 0.0


@pytest.fixture(scope="module")
def micro_parent() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()


def test_policy_round_trip_and_validation():
    p = CurationPolicy(score="static-excess", level="token", keep_ratio=0.6, target="soft")
    assert CurationPolicy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert CurationPolicy.from_dict({"keep_ratio": 1}).keep_ratio == 1  # an int is a number
    with pytest.raises(BitlensError):
        CurationPolicy(score="nope")
    with pytest.raises(BitlensError):
        CurationPolicy(keep_ratio=0.0)


def test_unknown_or_ill_typed_genes_are_errors():
    with pytest.raises(BitlensError) as e:
        CurationPolicy.from_dict({"scor": "static-excess"})
    assert str(e.value) == (
        "unknown policy gene 'scor'; the genes are score, level, keep_ratio, "
        "synthetic_share, temperature, top_p, target, offspring_preset, "
        "budget_tokens"
    )
    with pytest.raises(BitlensError, match=r"gene keep_ratio='0.3' must be a number"):
        CurationPolicy.from_dict({"keep_ratio": "0.3"})
    with pytest.raises(BitlensError, match=r"gene budget_tokens=2048.0 must be an integer"):
        CurationPolicy.from_dict({"budget_tokens": 2048.0})
    with pytest.raises(BitlensError, match=r"gene score=1 must be a string"):
        CurationPolicy.from_dict({"score": 1})
    with pytest.raises(BitlensError, match=r"gene top_p=True must be a number"):
        CurationPolicy.from_dict({"top_p": True})


def test_context_config_scales():
    quick, full = ContextConfig.quick(), ContextConfig.full()
    assert (quick.pool_bytes, quick.validation_bytes, quick.test_bytes, quick.reference_steps) == (
        32_000,
        8_000,
        4_096,
        20,
    )
    assert (full.pool_bytes, full.validation_bytes, full.test_bytes, full.reference_steps) == (
        320_000,
        40_000,
        49_152,
        150,
    )
    assert quick.is_quick() and replace(quick, seed=3).is_quick()
    assert not full.is_quick() and not MICRO_CONTEXT.is_quick()
    assert CompareConfig(seeds=(4, 5)).context.seed == 4  # the context is cut with the first seed


def test_pool_scores_are_the_one_window_scorer(shakespeare, micro_parent):
    ctx = context_from_model(micro_parent, shakespeare, MICRO_CONTEXT)
    bits = ctx.bits(("parent", "parent_entropy"))
    # an independent forward per window: the surprisal of each window's targets
    w = ctx.pool[:3].long()
    with torch.no_grad():
        expected = surprisal_bits(micro_parent(w[:, :-1]), w[:, 1:]).double().numpy()
    assert np.allclose(bits["parent"][:3], expected, atol=1e-5)
    s, h = window_scores(micro_parent, ctx.pool, batch_size=64, with_entropy=True)
    assert np.array_equal(bits["parent"], s) and np.array_equal(bits["parent_entropy"], h)
    assert (h <= 8.0 + 1e-9).all()  # the entropy of a distribution over 256 bytes


def test_evaluate_policy_is_deterministic_and_accounts_cost(shakespeare, micro_parent):
    ctx = context_from_model(micro_parent, shakespeare, MICRO_CONTEXT)
    policy = CurationPolicy(score="static-excess", level="token", keep_ratio=0.25, budget_tokens=256)
    a, model = evaluate_offspring(policy, ctx, seed=1)
    b = evaluate_policy(policy, ctx, seed=1)
    assert a == b
    # 256 tokens = 2 steps of 4 windows of 32 bytes; scored on validation: 12 windows of 32 targets
    assert a.tokens == 256 and a.heldout_bytes == 12 * 32 and a.heldout_split == "validation"
    w = ctx.split_windows("validation").long()
    with torch.no_grad():
        model_bits = surprisal_bits(model(w[:, :-1]), w[:, 1:]).double().mean().item()
        parent_bits = surprisal_bits(micro_parent(w[:, :-1]), w[:, 1:]).double().mean().item()
    assert a.heldout_bits_per_byte == pytest.approx(model_bits, abs=1e-6)
    assert a.parent_bits_per_byte == pytest.approx(parent_bits, abs=1e-6)
    assert a.improvement_vs_parent_bits_per_byte == pytest.approx(parent_bits - model_bits, abs=1e-6)
    assert a.fitness == pytest.approx((a.baseline_bits_per_byte - a.heldout_bits_per_byte) / (a.flops / 1e12))
    n_tokens = len(ctx.pool) * ctx.window
    assert a.choice_bits == pytest.approx(choice_bits(n_tokens, round(0.25 * n_tokens)))
    assert a.loss_tokens == pytest.approx(0.25 * a.tokens, rel=0.2)
    assert a.cost.parent_flops > 0 and a.cost.reference_flops > 0
    assert a.flops == pytest.approx(a.cost.total_flops)
    assert a.to_dict()["cost"]["total_flops"] == a.flops
    assert a.to_dict()["policy"] == policy.to_dict()
    random_policy = CurationPolicy(keep_ratio=0.25, level="token", budget_tokens=256)
    r = evaluate_policy(random_policy, ctx, seed=1)
    assert r.fitness == 0.0 and r.cost.parent_flops == 0.0
    assert r.heldout_bits_per_byte == a.baseline_bits_per_byte
    restored = pickle.loads(pickle.dumps(ctx))  # contexts travel to worker processes
    assert evaluate_policy(policy, restored, seed=1) == a
    synthetic = evaluate_policy(CurationPolicy(synthetic_share=0.5, target="mix", budget_tokens=128), ctx, 0)
    assert synthetic.cost.parent_flops > 0


def test_compare_strategies_rows_and_plot(shakespeare, micro_parent, tmp_path):
    cfg = CompareConfig(keep_ratio=0.25, seeds=(0, 1), context=MICRO_CONTEXT)
    r = compare_strategies(micro_parent, shakespeare, cfg).to_dict()
    # 32 pool windows; keep 25 % = 8 windows = 256 tokens = 2 batches of 4 × 32
    assert r["pool_windows"] == 32 and r["budget_tokens"] == 256 and r["quick"] is False
    assert r["heldout_split"] == "test" and r["heldout_bytes"] == 16 * 32
    assert r["splits"]["test"] == {"start": len(shakespeare) - 513, "end": len(shakespeare), "bytes": 513}
    names = [s["name"] for s in r["strategies"]]
    assert names == [f"{score}/{level}" for level in ("document", "token") for score in SCORES]
    rows = {s["name"]: s for s in r["strategies"]}
    for s in r["strategies"]:
        assert s["tokens"] == 256 and s["keep_ratio"] == 0.25 and s["n_seeds"] == 2
        n = 32 if s["level"] == "document" else 32 * 32
        if s["score"] != "rho-loss":  # (online choices are bounded per step: test_offspring_splits)
            assert s["choice_bits"] == pytest.approx(choice_bits(n, round(0.25 * n)))
        gain = s["baseline_bits_per_byte"] - s["heldout_bits_per_byte"]
        assert s["fitness"] == pytest.approx(gain / (s["flops"] / 1e12))
        per_seed = np.array(s["heldout_bits_per_byte_per_seed"])
        assert s["heldout_bits_per_byte"] == pytest.approx(per_seed.mean())
        lo, hi = s["heldout_bits_per_byte_ci95"]
        assert lo <= s["heldout_bits_per_byte"] <= hi
        random = np.array(rows[f"random/{s['level']}"]["heldout_bits_per_byte_per_seed"])
        bigram = np.array(rows[f"bigram/{s['level']}"]["heldout_bits_per_byte_per_seed"])
        g = s["gain_over_random_bits_per_byte"]
        if s["score"] == "random":
            assert g is None
        else:  # a paired difference over the 2 seeds: random − this, per byte
            assert g["estimate"] == pytest.approx((random - per_seed).mean()) and g["n_seeds"] == 2
            assert g["ci95"][0] <= g["estimate"] <= g["ci95"][1]
            assert g["p_holm"] >= g["p_value"]
        b = s["gain_over_bigram_bits_per_byte"]
        if s["score"] in ("random", "bigram"):  # the controls are not compared with the control
            assert b is None
        else:
            assert b["estimate"] == pytest.approx((bigram - per_seed).mean()) and b["n_seeds"] == 2
        for gone in ("gain_over_random_bits", "gain_per_choice_bit", "seeds_better_than_random"):
            assert gone not in s  # totals over the test set grow with its size
    assert [d["target"] for d in r["distillation"]] == ["raw", "hard", "soft", "mix"]
    assert all(d["tokens"] == 256 and d["kl_to_parent_bits"] >= 0 for d in r["distillation"])
    json.dumps(r)
    written = plot_strategies(r, tmp_path / "strategies.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in written)


def test_collapse_rows_and_plot(shakespeare, tmp_path):
    cfg = CollapseConfig(
        generations=2, real_bytes=1_024, test_bytes=512, budget_tokens=256, window=32, batch_size=4
    )
    runs = [run_collapse(shakespeare, replace(cfg, mode=m)).to_dict() for m in MODES]
    for r in runs:
        assert [g["generation"] for g in r["generations"]] == [0, 1, 2]
        assert r["heldout_bytes"] == 15 * 32  # 512 held-out bytes hold 15 windows of 32 targets
        assert r["generations"][0]["heldout_bits_per_byte"] < 8.0  # real data beats uniform
        assert all(
            g["sample_entropy_bits"] <= 8.0 and g["sample_unigram_entropy_bits"] <= 8.0
            for g in r["generations"]
        )
        # by construction the tail holds at most (and here nearly) tail_share of real bigrams
        assert 0.09 < r["real_tail_mass"] <= 0.1
        assert 4.5 < r["real_unigram_entropy_bits"] < 4.8  # Shakespeare's bytes: ≈ 4.7 bits
        assert r["quick"] is False
    assert [g["train_windows"] for g in runs[1]["generations"]] == [32, 64, 96]
    assert [g["real_share"] for g in runs[0]["generations"]] == [1.0, 0.0, 0.0]
    assert [g["real_share"] for g in runs[1]["generations"]] == pytest.approx([1.0, 1 / 2, 1 / 3])
    assert [g["real_share"] for g in runs[2]["generations"]] == [1.0, 0.25, 0.25]
    assert runs[2]["real_share"] == 0.25 and runs[0]["real_share"] is None
    assert 0.05 < runs[0]["real_rare_byte_mass"] <= 0.1
    assert runs[0]["generations"][0] == runs[1]["generations"][0] == runs[2]["generations"][0]
    written = plot_collapse(runs, tmp_path / "collapse.png")
    assert all(p.exists() for p in written)
    with pytest.raises(BitlensError, match="unknown collapse mode 'sideways'"):
        CollapseConfig(mode="sideways")


def test_collapse_config_scales():
    quick, full = CollapseConfig.quick(), CollapseConfig.full()
    assert (quick.real_bytes, quick.test_bytes, quick.budget_tokens) == (12_800, 4_096, 16_384)
    assert (full.real_bytes, full.test_bytes, full.budget_tokens) == (96_000, 32_768, 393_216)
    assert quick.is_quick() and replace(quick, mode="accumulate", seed=3, top_p=0.5).is_quick()
    assert not replace(quick, window=64).is_quick()
    assert not full.is_quick()
    with pytest.raises(BitlensError, match="at least one generation"):
        CollapseConfig(generations=0)


def test_cli_collapse_modes_are_the_library_modes():
    from bitlens.cli.collapse import COLLAPSE_MODES

    assert COLLAPSE_MODES == MODES


def test_cli_help_and_missing_parent(tmp_path, capsys):
    assert main(["collapse", "--help"]) == 0
    assert "bits" in capsys.readouterr().out
    assert main(["offspring", "compare", "--help"]) == 0
    assert main(["offspring", "compare", "--parent", str(tmp_path / "none"), "--quick"]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_refuses_an_unknown_gene(tmp_path, capsys):
    args = ["offspring", "evaluate", "--parent", str(tmp_path / "none"), "--quick"]
    assert main(args + ["--policy", '{"scor": "static-excess"}']) == 1
    out = capsys.readouterr()
    assert out.out == ""  # no fitness of the default policy
    assert out.err.count("\n") == 1 and "'scor'" in out.err and "score, level" in out.err


def test_cli_evaluate_policy(tmp_path, shakespeare, capsys):
    from bitlens.train import train_run

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    train_run(shakespeare, tmp_path / "parent", preset="tiny", steps=2)
    out = tmp_path / "eval.json"
    args = [
        "offspring",
        "evaluate",
        "--parent",
        str(tmp_path / "parent"),
        "--corpus",
        str(corpus),
        "--quick",
        "--json",
        str(out),
    ]
    assert main(args + ["--policy", '{"score": "surprisal", "budget_tokens": 2048}']) == 0
    r = json.loads(out.read_text())
    assert r["policy"]["score"] == "surprisal" and r["tokens"] == 2048
    assert r["fitness"] == pytest.approx(
        (r["baseline_bits_per_byte"] - r["heldout_bits_per_byte"]) / (r["flops"] / 1e12)
    )
    capsys.readouterr()
    assert main(args + ["--policy", '{"score": "psychic"}']) == 1
    assert "score must be one of" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_quick_runs(tmp_path):
    from bitlens.data import bundled_corpus_bytes
    from bitlens.train import train_run

    train_run(bundled_corpus_bytes(), tmp_path / "parent", preset="tiny", steps=30)
    out = tmp_path / "cmp.json"
    assert (
        main(
            [
                "offspring",
                "compare",
                "--parent",
                str(tmp_path / "parent"),
                "--quick",
                "--json",
                str(out),
                "--plot",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert len(r["strategies"]) == 14 and r["quick"] is True and r["pool_windows"] == 249
    out = tmp_path / "col.json"
    assert main(["collapse", "--quick", "--mode", "both", "--json", str(out)]) == 0
    arms = json.loads(out.read_text())["arms"]
    assert [a["mode"] for a in arms] == ["replace", "accumulate"]
    assert all(r["quick"] is True and r["budget_tokens"] == 16_384 for a in arms for r in a["runs"])
