"""Parent → offspring: selection, choice bits, sampling, distillation losses, budgets, collapse."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.cli import main
from bitlens.data import bytes_to_tensor
from bitlens.errors import BitlensError
from bitlens.model import GPT, GPTConfig
from bitlens.offspring.budget import Cost, fitness, steps_for_budget, training_flops
from bitlens.offspring.collapse import (
    CollapseSizes,
    plot_collapse,
    run_collapse,
    tail_mass,
    tail_set,
)
from bitlens.offspring.compare import compare_strategies, plot_strategies
from bitlens.offspring.distill import distill_loss, heldout_score, window_logits
from bitlens.offspring.policy import (
    ContextSizes,
    CurationPolicy,
    context_from_model,
    evaluate_policy,
)
from bitlens.offspring.select import (
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

# Small enough that each offspring trains for one or two steps.
MICRO_SIZES = ContextSizes(pool_bytes=4_096, reference_bytes=600, test_bytes=1_024, window=32,
                           batch_size=4, reference_steps=2, prompt_bytes=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is faster than two fighting over a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    assert token_scores("excess", bits, 0).tolist() == [[1.0, -1.0]]
    assert token_scores("learnability", bits, 0).tolist() == [[6.0, 4.0]]
    assert token_scores("low-surprisal", bits, 0).tolist() == [[-2.0, -4.0]]
    assert np.array_equal(token_scores("random", bits, 3), token_scores("random", bits, 3))
    assert not np.array_equal(token_scores("random", bits, 3), token_scores("random", bits, 4))
    with pytest.raises(BitlensError):
        token_scores("excess", {"parent": parent}, 0)


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
        cross_entropy_loss(micro_model, (x, y)).item(), rel=1e-5)
    # masked-out targets do not count
    half = ones.clone()
    half[:, 4:] = 0
    y2 = y.clone()
    y2[:, 4:] = (y2[:, 4:] + 1) % 256
    assert hard(micro_model, (x, y, half)).item() == pytest.approx(
        hard(micro_model, (x, y2, half)).item(), rel=1e-6)
    # a model distilled onto itself has zero KL; another model has positive KL
    assert distill_loss("soft", micro_model)(micro_model, (x, y, ones)).item() == pytest.approx(0, abs=1e-6)
    other = GPT(micro_config)
    assert distill_loss("soft", micro_model)(other, (x, y, ones)).item() > 0
    mix = distill_loss("mix", micro_model)(other, (x, y, ones)).item()
    assert mix == pytest.approx(0.5 * hard(other, (x, y, ones)).item()
                                + 0.5 * distill_loss("soft", micro_model)(other, (x, y, ones)).item(), rel=1e-5)


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
    p = CurationPolicy(score="excess", level="token", keep_ratio=0.6, target="soft")
    assert CurationPolicy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(BitlensError):
        CurationPolicy(score="nope")
    with pytest.raises(BitlensError):
        CurationPolicy(keep_ratio=0.0)


def test_evaluate_policy_is_deterministic_and_accounts_cost(shakespeare, micro_parent):
    ctx = context_from_model(micro_parent, shakespeare, seed=0, sizes=MICRO_SIZES)
    policy = CurationPolicy(score="excess", level="token", keep_ratio=0.25, budget_tokens=256)
    a = evaluate_policy(policy, ctx, seed=1)
    b = evaluate_policy(policy, ctx, seed=1)
    assert a == b
    for key in ("heldout_bits_per_byte", "baseline_bits_per_byte", "tokens", "flops", "fitness",
                "improvement_vs_parent_bits_per_byte"):
        assert key in a
    n_tokens = len(ctx.pool) * ctx.window
    assert a["choice_bits"] == pytest.approx(choice_bits(n_tokens, round(0.25 * n_tokens)))
    assert a["loss_tokens"] == pytest.approx(0.25 * a["tokens"], rel=0.2)
    cost = a["cost"]
    assert cost["parent_flops"] > 0 and cost["reference_flops"] > 0
    assert a["flops"] == pytest.approx(cost["total_flops"])
    random_policy = CurationPolicy(keep_ratio=0.25, level="token", budget_tokens=256)
    r = evaluate_policy(random_policy, ctx, seed=1)
    assert r["fitness"] == 0.0 and r["cost"]["parent_flops"] == 0.0
    assert r["heldout_bits_per_byte"] == a["baseline_bits_per_byte"]
    restored = pickle.loads(pickle.dumps(ctx))  # contexts travel to worker processes
    assert evaluate_policy(policy, restored, seed=1) == a
    model_result, model = evaluate_policy(CurationPolicy(synthetic_share=0.5, target="mix",
                                                         budget_tokens=128), ctx, 0,
                                          return_model=True)
    assert isinstance(model, GPT) and model_result["cost"]["parent_flops"] > 0


def test_compare_strategies_keys_and_plot(shakespeare, micro_parent, tmp_path):
    r = compare_strategies(micro_parent, shakespeare, keep_ratio=0.05, seeds=(0,),
                           sizes=MICRO_SIZES)
    names = [s["name"] for s in r["strategies"]]
    assert "random/document" in names and "excess/token" in names and len(names) == 10
    for s in r["strategies"]:
        for key in ("name", "keep_ratio", "tokens", "flops", "heldout_bits_per_byte", "fitness",
                    "choice_bits", "gain_over_random_bits"):
            assert key in s
        if s["score"] == "random":
            assert s["gain_over_random_bits"] == 0.0
    assert [d["target"] for d in r["distillation"]] == ["raw", "hard", "soft", "mix"]
    assert all(d["kl_to_parent_bits"] >= 0 for d in r["distillation"])
    json.dumps(r)
    written = plot_strategies(r, tmp_path / "strategies.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in written)


def test_collapse_rows_and_plot(shakespeare, tmp_path):
    sizes = CollapseSizes(real_bytes=1_024, test_bytes=512, budget_tokens=256, window=32,
                          batch_size=4)
    runs = [run_collapse(shakespeare, mode=m, generations=2, sizes=sizes, preset="tiny")
            for m in ("replace", "accumulate")]
    for r in runs:
        assert [g["generation"] for g in r["generations"]] == [0, 1, 2]
        assert all(0 <= g["tail_mass"] <= 1 and 0 < g["sample_entropy_bits"] <= 8
                   for g in r["generations"])
        assert 0 < r["real_tail_mass"] <= 0.1
    assert [g["train_windows"] for g in runs[1]["generations"]] == [32, 64, 96]
    assert runs[0]["generations"][0] == runs[1]["generations"][0]  # same generation 0
    written = plot_collapse(runs, tmp_path / "collapse.png")
    assert all(p.exists() for p in written)
    with pytest.raises(BitlensError):
        run_collapse(shakespeare, mode="sideways", sizes=sizes)


def test_cli_help_and_missing_parent(tmp_path, capsys):
    assert main(["collapse", "--help"]) == 0
    assert "bits" in capsys.readouterr().out
    assert main(["offspring", "compare", "--help"]) == 0
    assert main(["offspring", "compare", "--parent", str(tmp_path / "none"), "--quick"]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_quick_runs(tmp_path):
    from bitlens.data import bundled_corpus_bytes
    from bitlens.train import train_run

    train_run(bundled_corpus_bytes(), tmp_path / "parent", preset="tiny", steps=30)
    out = tmp_path / "cmp.json"
    assert main(["offspring", "compare", "--parent", str(tmp_path / "parent"), "--quick",
                 "--json", str(out), "--plot", str(tmp_path / "cmp")]) == 0
    assert len(json.loads(out.read_text())["strategies"]) == 10
    out = tmp_path / "col.json"
    assert main(["collapse", "--quick", "--mode", "both", "--json", str(out)]) == 0
    assert [r["mode"] for r in json.loads(out.read_text())["runs"]] == ["replace", "accumulate"]
