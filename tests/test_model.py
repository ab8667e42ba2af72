import pytest
import torch

from bitlens.model import GPT, MODEL_PRESETS, GPTConfig, KVCache, top_p_filter


@pytest.mark.parametrize(
    "name,lo,hi",
    [("tiny", 0.15e6, 0.3e6), ("shallow", 0.4e6, 0.6e6), ("small", 0.8e6, 1.3e6), ("base", 2.5e6, 3.5e6)],
)
def test_preset_sizes(name, lo, hi):
    assert lo <= GPT(MODEL_PRESETS[name]).num_params() <= hi


def test_kv_cache_matches_full_forward(micro_model):
    torch.manual_seed(1)
    idx = torch.randint(0, 256, (3, 32))
    full = micro_model(idx)
    cache = KVCache(micro_model.config, batch_size=3)
    steps = [micro_model(idx[:, t : t + 1], cache=cache) for t in range(32)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    # A prefill of 20 positions then single steps agrees too.
    cache = KVCache(micro_model.config, batch_size=3)
    pre = micro_model(idx[:, :20], cache=cache)
    rest = [micro_model(idx[:, t : t + 1], cache=cache) for t in range(20, 32)]
    assert torch.allclose(torch.cat([pre, *rest], dim=1), full, atol=1e-5)
    assert cache.length == 32


def test_context_longer_than_block_is_refused(micro_model):
    with pytest.raises(ValueError, match="block_size"):
        micro_model(torch.zeros(1, 33, dtype=torch.long))


def test_forward_hidden_returns_every_layer(micro_model):
    idx = torch.randint(0, 256, (2, 10))
    logits, hidden = micro_model.forward_hidden(idx)
    assert len(hidden) == micro_model.config.n_layer + 1
    assert all(h.shape == (2, 10, micro_model.config.n_embd) for h in hidden)
    assert torch.allclose(micro_model.unembed(hidden[-1]), logits)
    assert torch.allclose(micro_model(idx), logits)


def test_flops_per_token_formula(micro_model):
    c = micro_model.config
    # N: every matmul weight (the linear layers, the output head included; lookups are free)
    n = sum(m.weight.numel() for m in micro_model.modules() if isinstance(m, torch.nn.Linear))
    assert micro_model.flops_per_token(train=True) == 6 * n + 12 * c.n_layer * c.n_embd * c.block_size
    assert micro_model.flops_per_token(train=False) == 2 * n + 4 * c.n_layer * c.n_embd * c.block_size


def test_a_run_saved_with_a_tied_head_still_loads(tmp_path):
    from bitlens.runs import load_model_weights, save_model

    old = GPTConfig.from_dict({"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16})
    assert old.tie_embeddings  # configs written before the field existed had a tied head
    tied = GPT(old)
    save_model(tied, tmp_path / "w.safetensors")
    again = GPT(old)
    load_model_weights(again, tmp_path / "w.safetensors")
    assert again.lm_head.weight is again.wte.weight
    assert torch.equal(again.lm_head.weight, tied.wte.weight)
    untied = GPT(GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16))
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.embedding_params() == tied.embedding_params() + 256 * 16


def test_generate_is_seeded_and_greedy_is_argmax(micro_model):
    prompt = torch.tensor([[72, 105]])
    a = micro_model.generate(prompt, 8, generator=torch.Generator().manual_seed(3))
    b = micro_model.generate(prompt, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (1, 8)
    g = micro_model.generate(prompt, 1, temperature=0)
    assert g.item() == micro_model(prompt)[0, -1].argmax().item()


def test_top_p_keeps_only_the_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = lambda p: (top_p_filter(probs, p) > 0).squeeze(0).tolist()  # noqa: E731
    assert kept(0.7) == [True, True, False, False]
    assert kept(0.5) == [True, False, False, False]
    assert kept(0.01) == [True, False, False, False]
    assert kept(0.96) == [True, True, True, True]
    assert torch.equal(top_p_filter(probs, 1.0), probs)
