"""Every instrument on local Hugging Face models (`--model hf:DIR`, `--parent hf:DIR`): tiny random
GPT-2, GPT-NeoX and Llama models built here (`hf_helpers`, no download), on a few hundred bytes.

Per architecture: eval and surprisal against a hand-computed total, lens and probes, a
command-line compress → decompress round trip, and an offspring run with the model as its
parent. Then collapse from a pretrained generation 0, the compressor table's tokens row, the
device/dtype/batch settings, running out of memory, and the one-line refusals."""

import json
import math

import numpy as np
import pytest
import torch

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.runs import load_model

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


from hf_helpers import ARCHS, UNICODE  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare):
    path = tmp_path_factory.mktemp("hfi-corpus") / "c.txt"
    path.write_bytes(shakespeare[:600])
    return path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def hand_total_bits(model, data: bytes) -> float:
    """−Σ log2 p(token) from one full forward after the start token (data within one context)."""
    ids = model.tokenizer(data.decode(), add_special_tokens=False)["input_ids"]
    assert len(ids) < model.config.block_size
    x = torch.tensor([[model.start_id, *ids]])
    with torch.no_grad():
        logp = torch.log_softmax(model.model(input_ids=x).logits[0, :-1].double(), -1)
    return -logp[torch.arange(len(ids)), torch.tensor(ids)].sum().item() / math.log(2)


# --- every instrument on each architecture ---------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_and_surprisal_give_the_hand_computed_bits(
    arch, hf_dirs, hf_models, shakespeare, tmp_path, capsys
):
    """Known answer: within one context, both commands report −Σ log2 p(token) of a direct forward;
    surprisal spreads it over the bytes (its per-byte array sums to it) as eval divides it."""
    data = shakespeare[:90]
    total = hand_total_bits(hf_models[arch], data)
    src = tmp_path / "c.txt"
    src.write_bytes(data)
    model = f"hf:{hf_dirs[arch]}"
    code, out, _ = cli(capsys, "eval", "--model", model, "--corpus", str(src), "--json", "-")
    assert code == 0
    e = json.loads(out)
    assert e["total_bits"] == pytest.approx(total, rel=1e-5) and e["bytes"] == 90
    npz = tmp_path / "s.npz"
    args = ["measure", "surprisal", "--model", model, "--corpus", str(src), "--npz", str(npz)]
    code, out, _ = cli(capsys, *args, "--json", "-")
    assert code == 0
    s = json.loads(out)
    assert s["total_bits"] == pytest.approx(total, rel=1e-5)
    assert s["bits_per_byte"] == pytest.approx(e["bits_per_byte"], rel=1e-9) and s["bytes"] == 90
    arrays = np.load(npz)
    assert arrays["surprisal_bits"].shape == (90,) and arrays["surprisal_bits"].sum() == pytest.approx(total)
    # a random model is near uniform: its entropy per token is close to log2 V, as its surprisal
    assert s["entropy_bits_per_byte"] == pytest.approx(s["bits_per_byte"], rel=0.05)


@pytest.mark.parametrize("arch", ARCHS)
def test_lens_and_probes(arch, hf_models, shakespeare):
    from bitlens.measures.lens import LensConfig, measure_lens
    from bitlens.measures.probes import ProbeConfig, measure_probes

    model = hf_models[arch]
    config = LensConfig(steps=5, batch_tokens=128, train_tokens=256, eval_tokens=256, window=32)
    rows = measure_lens(model, shakespeare[:3000], config=config).to_dict()["layers"]
    assert len(rows) == 3 and rows[-1]["logit_kl_bits"] == 0
    assert all(r["logit_kl_bits"] >= 0 and r["tuned_kl_bits"] <= r["logit_kl_bits"] + 1e-6 for r in rows)
    probes = measure_probes(
        model,
        shakespeare[:3000],
        config=ProbeConfig(steps=5, examples=128, window=32, properties=("in-word",)),
    ).to_dict()
    assert probes["token"] == "token" and len(probes["properties"][0]["layers"]) == 3


@pytest.mark.parametrize("arch", ARCHS)
def test_command_line_round_trip(arch, hf_dirs, tmp_path, shakespeare, capsys):
    src, packed, back = tmp_path / "in.txt", tmp_path / "in.blz", tmp_path / "out.txt"
    data = UNICODE + shakespeare[:200] if arch == "llama" else shakespeare[:250]
    src.write_bytes(data)
    model = f"hf:{hf_dirs[arch]}"
    code, out, _ = cli(capsys, "compress", str(src), str(packed), "--model", model, "--json", "-")
    assert code == 0 and json.loads(out)["output_bytes"] == packed.stat().st_size
    assert cli(capsys, "decompress", str(packed), str(back), "--model", model)[0] == 0
    assert back.read_bytes() == data


def tiny_context():
    from bitlens.offspring.policy import ContextConfig

    return ContextConfig(
        pool_bytes=1536,
        validation_bytes=512,
        test_bytes=512,
        window=64,
        batch_size=4,
        reference_steps=2,
        prompt_bytes=8,
        max_synthetic_windows=8,
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_offspring_with_a_pretrained_parent(arch, hf_models, shakespeare):
    """The parent selects by its surprisal and writes half of every batch; its held-out bits/byte
    are its window scores' mean; it has no next-byte distribution, so no KL and no soft target."""
    from bitlens.offspring.parent import score_byte_windows
    from bitlens.offspring.policy import CurationPolicy, context_from_model, evaluate_policy

    parent = hf_models[arch]
    ctx = context_from_model(parent, shakespeare[:20_000], tiny_context())
    policy = CurationPolicy(score="surprisal", synthetic_share=0.5, budget_tokens=512, top_p=0.9)
    r = evaluate_policy(policy, ctx, seed=0)
    expected = score_byte_windows(parent, ctx.split_windows("validation"))[0].mean()
    assert r.parent_bits_per_byte == pytest.approx(expected, rel=1e-12)
    assert r.kl_to_parent_bits is None and r.tokens == 512
    assert 0 < r.heldout_bits_per_byte < 9 and r.cost.parent_flops > 0
    assert ctx.token_bits["parent"].shape == (len(ctx.pool), 64)
    with pytest.raises(BitlensError, match="token-level parent"):
        evaluate_policy(CurationPolicy(target="soft", budget_tokens=256), ctx, seed=0)


# --- the parent's byte windows and samples ---------------------------------------------------------


def test_window_scores_are_the_tokens_bits_over_their_bytes(hf_models, shakespeare):
    """Known answer: a window read on its own scores its bytes exactly as `score_bytes_any` does
    on the same bytes (less the first byte, no target); batches of one window agree with full
    batches (right padding never leaks into a causal model)."""
    from bitlens.offspring.parent import score_byte_windows
    from bitlens.offspring.select import make_windows
    from bitlens.tokens import score_bytes_any

    model = hf_models["gpt2"]
    windows = make_windows(torch.frombuffer(bytearray(shakespeare[:640]), dtype=torch.uint8), 63)
    s, h = score_byte_windows(model, windows, with_entropy=True)
    assert s.shape == h.shape == (len(windows), 63)
    for i in (0, 3):
        direct = score_bytes_any(model, bytes(windows[i].numpy().tobytes()), with_entropy=True)
        np.testing.assert_allclose(s[i], direct.surprisal_bits[1:], rtol=1e-5)
        np.testing.assert_allclose(h[i], direct.entropy_bits[1:], rtol=1e-5)
    one_at_a_time = load_model(f"hf:{model.name}", batch_tokens=1)
    np.testing.assert_allclose(score_byte_windows(one_at_a_time, windows)[0], s, rtol=1e-5, atol=1e-6)


def test_text_span_drops_characters_cut_at_the_edges():
    from bitlens.offspring.parent import text_span

    word = "漢字".encode()  # two 3-byte characters
    assert text_span(word) == (0, 6)
    assert text_span(word[1:]) == (2, 5)  # a cut lead character, then a whole one
    assert text_span(b"ab" + word[:4]) == (0, 5)  # the second character cut after its lead byte
    assert text_span(b"abc") == (0, 3)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_samples_equal_full_forwards(arch, hf_models):
    """Known answer: at temperature 0 the KV-cached sampler writes what argmax over full forwards
    writes, and its per-byte bits sum to the tokens' −log2 p (untempered)."""
    from bitlens.offspring.parent import sample_bytes

    model = hf_models[arch]
    prompt, n_new = b"First Citizen:\n", 40
    out, surprisal, entropy = sample_bytes(model, prompt, n_new, 0.0, 1.0, torch.Generator())
    ids = model.encode(prompt).ids.tolist()
    head = model.tokenizer.decode(ids).encode()
    new: list[int] = []
    bits = 0.0
    with torch.no_grad():
        while True:
            logits = model.model(input_ids=torch.tensor([[model.start_id, *ids, *new]])).logits[0, -1]
            logp = torch.log_softmax(logits.double(), -1)
            new.append(int(logp.argmax()))
            bits += -logp[new[-1]].item() / math.log(2)
            cont = model.tokenizer.decode(ids + new, skip_special_tokens=True).encode()[len(head) :]
            if len(cont) >= n_new:
                break
    assert out == cont[:n_new] and len(out) == n_new
    if len(cont) == n_new:  # no token cut at the end: every bit is inside the n_new bytes
        assert surprisal.sum() == pytest.approx(bits, rel=1e-6)
    assert np.all(entropy > 0) and np.all(surprisal >= 0)
    again = sample_bytes(model, prompt, n_new, 1.0, 0.9, torch.Generator().manual_seed(3))
    assert again[0] == sample_bytes(model, prompt, n_new, 1.0, 0.9, torch.Generator().manual_seed(3))[0]


def test_compare_with_a_token_parent_leaves_out_soft_targets(hf_models, shakespeare, capsys):
    from bitlens.cli.offspring import _print_comparison
    from bitlens.offspring.compare import CompareConfig, compare_strategies

    r = compare_strategies(
        hf_models["neox"], shakespeare[:20_000], CompareConfig(keep_ratio=0.3, context=tiny_context())
    ).to_dict()
    assert r["parent_token"] == "token" and r["skipped_targets"] == ["soft", "mix"]
    assert [d["target"] for d in r["distillation"]] == ["raw", "hard"]
    assert all(d["kl_to_parent_bits"] is None for d in r["distillation"])
    assert len(r["strategies"]) == 14 and r["parent_bits_per_byte"] > 0
    _print_comparison(r)
    printed = capsys.readouterr().out
    assert "not run: soft, mix" in printed and "n/a" in printed


def test_collapse_from_a_pretrained_generation_0(hf_models, shakespeare):
    from bitlens.offspring.collapse import CollapseConfig, _real_and_test, run_collapse
    from bitlens.offspring.parent import score_byte_windows

    config = CollapseConfig(
        generations=1, real_bytes=640, test_bytes=320, budget_tokens=256, window=32, batch_size=4
    )
    data = shakespeare[:8000]
    r = run_collapse(data, config, generation0=hf_models["llama"]).to_dict()
    g0, g1 = r["generations"]
    _, test = _real_and_test(data, config)
    assert g0["heldout_bits_per_byte"] == pytest.approx(
        score_byte_windows(hf_models["llama"], test)[0].mean()
    )
    assert r["generation0"] == hf_models["llama"].name and g1["generation"] == 1
    assert 0 <= g0["tail_mass"] <= 1 and g0["sample_entropy_bits"] > 0 and g1["heldout_bits_per_byte"] > 0


# --- the compressor table --------------------------------------------------------------------------


def test_tokens_row_in_the_compressor_table(hf_models, shakespeare):
    from bitlens.compress.compare import ComparisonConfig, compare_compressors

    config = ComparisonConfig(max_bytes=300, compressors=("xz", "offline", "tokens"))
    rows = compare_compressors(shakespeare, hf_models["gpt2"], config).to_dict()["rows"]
    assert [r["name"] for r in rows] == ["xz -9e", "bitlens tokens (gpt2)"]
    tokens = rows[1]
    assert tokens["roundtrip"] and tokens["tokens"] > 0
    assert tokens["bits_per_byte"] == pytest.approx(8 * tokens["output_bytes"] / 300)
    # without a Hugging Face model the row is left out
    assert [r["name"] for r in compare_compressors(shakespeare, None, config).to_dict()["rows"]] == ["xz -9e"]


# --- device, dtype, batches, memory ------------------------------------------------------------------


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, hf_dirs, capsys):
    from bitlens import hf

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hf.resolve_device(None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert hf.resolve_device(None) == "mps" and hf.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert hf.resolve_device(None) == "cpu"
    with pytest.raises(BitlensError, match="no CUDA GPU"):
        hf.resolve_device("cuda")
    code, _, err = cli(
        capsys, "eval", "--model", f"hf:{hf_dirs['gpt2']}", "--device", "cuda", "--corpus", "-"
    )
    assert code == 1 and "not available" in err and err.count("\n") == 1
    with pytest.raises(BitlensError, match="for hf: models"):
        load_model("runs/anything", device="cuda")


def test_dtype_and_batch_tokens(hf_dirs, hf_models, shakespeare, tmp_path, capsys):
    from bitlens.compress import read_header
    from bitlens.tokens import evaluate_any

    data = shakespeare[:1500]  # several 64-token windows
    full = evaluate_any(hf_models["gpt2"], data).total_bits
    small = load_model(f"hf:{hf_dirs['gpt2']}", batch_tokens=64)
    assert small.batch_size(64) == 1 and evaluate_any(small, data).total_bits == pytest.approx(full, rel=1e-9)
    half = load_model(f"hf:{hf_dirs['gpt2']}", dtype="bfloat16")
    assert half.dtype == torch.bfloat16 and half.device.type == "cpu"
    assert evaluate_any(half, data).total_bits == pytest.approx(full, rel=0.02)
    # a file coded in bfloat16 records it, and decompress loads the model in it unasked
    src, packed, back = tmp_path / "in.txt", tmp_path / "in.blz", tmp_path / "out.txt"
    src.write_bytes(shakespeare[:150])
    model = f"hf:{hf_dirs['llama']}"
    assert cli(capsys, "compress", str(src), str(packed), "--model", model, "--dtype", "bfloat16")[0] == 0
    assert read_header(packed.read_bytes()).params["dtype"] == "bfloat16"
    assert cli(capsys, "decompress", str(packed), str(back), "--model", model)[0] == 0
    assert back.read_bytes() == shakespeare[:150]


def test_out_of_memory_is_one_line(monkeypatch, hf_dirs, corpus, tmp_path, capsys):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    out = tmp_path / "r.json"
    monkeypatch.setattr(transformers.GPT2LMHeadModel, "forward", oom)
    for args in (["eval"], ["measure", "surprisal"]):
        code, _, err = cli(
            capsys, *args, "--model", f"hf:{hf_dirs['gpt2']}", "--corpus", str(corpus), "--json", str(out)
        )
        assert code == 1 and "does not fit in memory on cpu in float32" in err, err
        assert "--batch-tokens" in err and err.count("\n") == 1 and not out.exists()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", oom)
    code, _, err = cli(
        capsys, "eval", "--model", f"hf:{hf_dirs['neox']}", "--dtype", "float16", "--corpus", str(corpus)
    )
    assert code == 1 and "does not fit in memory on cpu in float16" in err and err.count("\n") == 1


def test_progress_bar_shows_tokens_per_second(capsys):
    from bitlens.progress import progress_bar

    with progress_bar(100, "scoring tokens", rate="tokens") as bar:
        bar.advance(100)
    assert "tokens/s" in capsys.readouterr().err


# --- refusals: one line, nothing written ------------------------------------------------------------


def test_refusals_are_one_line_and_write_nothing(hf_dirs, corpus, tmp_path, capsys):
    out = tmp_path / "out.json"
    specs = {
        "missing": (f"hf:{tmp_path / 'missing'}", "no local model directory"),
        "hub": ("hf:gpt2", "offline"),
        "pickled": (f"hf:{hf_dirs['pickled']}", "never unpickles"),
    }
    commands = [
        ["measure", "surprisal", "--model"],
        ["lens", "--model"],
        ["offspring", "evaluate", "--quick", "--parent"],
        ["offspring", "compare", "--quick", "--parent"],
        ["collapse", "--quick", "--model"],
    ]
    for spec, message in specs.values():
        for command in commands:
            code, _, err = cli(capsys, *command, spec, "--corpus", str(corpus), "--json", str(out))
            assert code == 1 and message in err and err.count("\n") == 1, (command, err)
            assert not out.exists()
    # a tokenizer that does not reproduce the text (no byte fallback) on the surprisal measure
    src = tmp_path / "u.txt"
    src.write_bytes(UNICODE)
    spec = f"hf:{hf_dirs['llama-no-fallback']}"
    code, _, err = cli(
        capsys, "measure", "surprisal", "--model", spec, "--corpus", str(src), "--json", str(out)
    )
    assert code == 1 and "does not reproduce" in err and err.count("\n") == 1 and not out.exists()
    # soft labels need a byte-level parent: refused before any work
    policy = '{"target": "mix"}'
    code, _, err = cli(
        capsys,
        "offspring",
        "evaluate",
        "--parent",
        f"hf:{hf_dirs['gpt2']}",
        "--policy",
        policy,
        "--json",
        str(out),
    )
    assert code == 1 and "token-level parent" in err and err.count("\n") == 1 and not out.exists()
    # commands that only take bitlens runs say so
    for command in (
        ["train", "--out", "hf:x", "--corpus", str(corpus)],
        ["evolve", "--out", str(tmp_path / "e"), "--parent", "hf:x"],
    ):
        code, _, err = cli(capsys, *command)
        assert code == 1 and "not a Hugging Face model" in err and err.count("\n") == 1, err
    assert not (tmp_path / "e").exists()


def test_pretrained_benchmark_runs_on_a_tiny_model(hf_dirs, tmp_path, capsys, load_benchmark):
    bench = load_benchmark("pretrained")
    out = tmp_path / "p.json"
    args = ["--model", f"hf:{hf_dirs['gpt2']}", "--bytes", "1500", "--lens-tokens", "256"]
    assert bench.main([*args, "--compress-bytes", "200", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["compression"]["roundtrip"] and r["compression"]["bytes"] == 200
    assert len(r["lens"]) == 3 and r["lens"][-1]["logit_kl_bits"] == 0
    assert r["eval"]["bytes"] == 1500 and r["eval"]["tokens_per_second"] > 0 and r["device"] == "cpu"
    assert "bits/byte" in capsys.readouterr().out
