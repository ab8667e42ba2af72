"""Hugging Face models on the same instruments: a tiny GPT-2 and a BPE tokenizer built here
(`hf_helpers`), saved to a temp dir and loaded offline (no downloads)."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.cli import main
from bitlens.errors import BitlensError
from bitlens.tokens import score_bytes_any, spread_over_bytes, token_stream

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from hf_helpers import byte_level_tokenizer, save_tiny  # noqa: E402

TEXT_BYTES = 6000


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, shakespeare):
    text = shakespeare[:TEXT_BYTES].decode()
    return save_tiny("gpt2", byte_level_tokenizer(text), tmp_path_factory.mktemp("hf") / "tiny-gpt2")


@pytest.fixture(scope="module")
def hf_model(hf_dir):
    from bitlens.runs import load_model

    return load_model(f"hf:{hf_dir}")


def test_token_byte_spans_cover_the_bytes(hf_model):
    data = "Hello wörld, thee and thou\n".encode()
    s = token_stream(hf_model, data)
    assert s.byte_ends[-1] == len(data) and np.all(np.diff(s.byte_ends) >= 0)
    assert s.start_id == hf_model.tokenizer.bos_token_id
    assert hf_model.tokenizer.decode(s.ids.tolist()) == data.decode()


def test_eval_bits_per_byte_is_total_token_bits_over_bytes(hf_model, hf_dir, shakespeare, tmp_path, capsys):
    """Known answer: for text within one context, the total is −Σ log2 p(token) computed here by
    hand from the model's logits after the BOS token; bits/byte divides it by the byte count."""
    data = shakespeare[:80]
    ids = hf_model.tokenizer(data.decode(), add_special_tokens=False)["input_ids"]
    assert len(ids) < 63
    x = torch.tensor([[hf_model.tokenizer.bos_token_id] + ids])
    with torch.no_grad():
        logp = torch.log_softmax(hf_model.model(input_ids=x).logits[0, :-1], -1)
    total = -logp[torch.arange(len(ids)), torch.tensor(ids)].sum().item() / math.log(2)
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(data)
    capsys.readouterr()
    assert main(["eval", "--model", f"hf:{hf_dir}", "--corpus", str(corpus), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_bits"] == pytest.approx(total, rel=1e-5)
    assert out["bits_per_byte"] == pytest.approx(total / len(data), rel=1e-5)
    assert out["bits_per_token"] == pytest.approx(total / len(ids), rel=1e-5)
    assert out["tokens"] == len(ids) and out["bytes"] == len(data)
    # an untrained model is near uniform over its vocabulary, per token
    assert out["bits_per_token"] == pytest.approx(math.log2(len(hf_model.tokenizer)), rel=0.05)


def test_long_text_per_byte_surprisal_preserves_the_total(hf_model, shakespeare):
    from bitlens.tokens import evaluate_any

    data = shakespeare[:3000]  # several windows of the 64-token context
    r = evaluate_any(hf_model, data)
    per_byte = score_bytes_any(hf_model, data, with_entropy=True)
    assert len(per_byte.surprisal_bits) == len(data)
    assert per_byte.surprisal_bits.sum() == pytest.approx(r.total_bits, rel=1e-9)
    assert r.tokens < len(data) and r.bits_per_byte < r.bits_per_token


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 20)), min_size=1, max_size=30))
def test_spread_over_bytes_keeps_every_bit(tokens):
    lengths = [n for n, _ in tokens]
    lengths[-1] = max(lengths[-1], 1)  # the last token ends at the last byte
    ends = np.cumsum(lengths)
    bits = np.array([b for _, b in tokens])
    per_byte = spread_over_bytes(bits, ends, int(ends[-1]))
    assert per_byte.sum() == pytest.approx(bits.sum())
    assert np.all(per_byte >= 0)


def test_lens_and_probes_on_hf(hf_model, shakespeare):
    from bitlens.measures.lens import LensConfig, measure_lens
    from bitlens.measures.probes import ProbeConfig, measure_probes

    r = measure_lens(
        hf_model,
        shakespeare[:TEXT_BYTES],
        config=LensConfig(steps=20, batch_tokens=256, train_tokens=1024, eval_tokens=512, window=64),
    ).to_dict()
    rows = r["layers"]
    assert r["token"] == "token" and len(rows) == 3 and r["bytes_per_token"] > 1.5
    assert rows[-1]["logit_kl_bits"] == 0 and rows[-1]["tuned_kl_bits"] == 0
    assert all(row["tuned_kl_bits"] <= row["logit_kl_bits"] + 1e-6 for row in rows)
    p = measure_probes(
        hf_model,
        shakespeare[:TEXT_BYTES],
        config=ProbeConfig(steps=10, examples=256, window=64, properties=("in-word", "current-byte")),
    ).to_dict()
    assert [len(prop["layers"]) for prop in p["properties"]] == [3, 3]
    assert p["token"] == "token"
    # an hf: model's training text is unknown: the whole text is taken as held out, and said so
    assert p["heldout"] == "assumed" and p["heldout_bytes"] == [0, TEXT_BYTES]
    assert 0 == p["byte_range"][0] < p["byte_range"][1] <= TEXT_BYTES


def test_hub_name_is_a_clear_offline_error(capsys):
    from bitlens.runs import load_model

    with pytest.raises(BitlensError, match="offline"):
        load_model("hf:gpt2")
    assert main(["eval", "--model", "hf:openai-community/gpt2", "--corpus", "-"]) == 1
    err = capsys.readouterr().err
    assert "offline" in err and err.count("\n") == 1


def test_non_utf8_data_is_refused(hf_model):
    with pytest.raises(BitlensError, match="UTF-8"):
        token_stream(hf_model, b"abc\xff\xfe")


def test_pickled_weights_are_refused_without_unpickling(hf_dir, tmp_path, capsys):
    """A directory holding only pytorch_model.bin (a pickle) is refused before anything loads it,
    with a one-line error that says how to convert."""
    import shutil

    from bitlens.runs import load_model

    pickled = tmp_path / "pickled"
    shutil.copytree(hf_dir, pickled)
    for f in pickled.glob("*.safetensors"):
        f.unlink()
    # Not a real pickle: loading it would fail loudly, refusing it must not read it at all.
    (pickled / "pytorch_model.bin").write_bytes(b"not a pickle, must never be opened")
    with pytest.raises(BitlensError, match="never unpickles.*safe_serialization"):
        load_model(f"hf:{pickled}")
    assert main(["eval", "--model", f"hf:{pickled}", "--corpus", "-"]) == 1
    err = capsys.readouterr().err
    assert "pytorch_model.bin" in err and err.count("\n") == 1
