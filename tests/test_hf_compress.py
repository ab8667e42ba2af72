"""Tokens mode: a Hugging Face causal LM codes its own tokens (`bitlens.compress.token_coder`).

Tiny random GPT-2, GPT-NeoX and Llama models with tokenizers trained here (byte-level BPE; BPE
with byte fallback, with and without it), saved to temp dirs and loaded offline."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.cli import main
from bitlens.compress import compress, decompress, read_header
from bitlens.compress.container import Header, crc32, pack_header, unpack
from bitlens.compress.token_coder import compress_tokens, decompress_tokens, text_backend, tokenize_exactly
from bitlens.errors import BitlensError
from bitlens.runs import load_model

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


from hf_helpers import ARCHS, UNICODE  # noqa: E402


def roundtrip(data: bytes, model, **kw):
    blob, r = compress_tokens(data, model, **kw)
    assert decompress_tokens(blob, model) == data
    return blob, r


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_every_architecture(arch, hf_models, shakespeare):
    """Non-ASCII text, then a text of over 192 tokens: three times the 64-token window, so both sides
    re-prime the cache several times; the empty input codes no token at all."""
    model = hf_models[arch]
    data = UNICODE + shakespeare[:600]
    blob, r = roundtrip(data, model)
    ids = tokenize_exactly(text_backend(model.tokenizer), data)
    assert r.mode == "tokens" and r.tokens == len(ids) > 3 * 64
    assert r.input_bytes == len(data) and r.output_bytes == len(blob)
    assert r.bits_per_byte == pytest.approx(8 * len(blob) / len(data))
    assert r.overhead_bits == pytest.approx(8 * len(blob) - r.model_bits)
    header = read_header(blob)
    assert header.params["tokens"] == len(ids) and header.params["start"] == model.tokenizer.bos_token_id
    assert header.params["window"] == 64 and header.params["dtype"] == "float32"
    assert header.params["device"] == "cpu" and header.threads == 1
    empty, r0 = roundtrip(b"", model)
    assert r0.tokens == 0 and r0.bits_per_byte is None and r0.model_bits == 0


def test_decoder_probabilities_equal_encoder_bit_for_bit(hf_models, shakespeare):
    enc: list[np.ndarray] = []
    dec: list[np.ndarray] = []
    model = hf_models["llama"]
    blob, r = compress_tokens(shakespeare[:300], model, trace=enc)
    assert decompress_tokens(blob, model, trace=dec) == shakespeare[:300]
    assert len(enc) == len(dec) == r.tokens > 64
    assert all(a.dtype == b.dtype == np.float64 and a.tobytes() == b.tobytes() for a, b in zip(enc, dec))
    assert enc[0].shape == (model.config.vocab_size,)


def _reference_contexts(n: int, window: int) -> list[tuple[int, int]]:
    """The sliding rule written out: token i is predicted from inputs[a : i + 1], where `a` moves
    to i + 1 − window/2 whenever the window is full (inputs[0] is the start token)."""
    out, a = [], 0
    for i in range(n):
        if i - a == window:
            a = i + 1 - window // 2
        out.append((a, i + 1))
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cache_steps_equal_full_forwards_of_the_same_contexts(arch, hf_models, shakespeare):
    """The coder's step-by-step probabilities are those of one full forward over each token's
    context (to float rounding): the cache keeps the context, re-primes at the window's end and
    positions restart at 0. Within one window, the code length is the model's cross-entropy."""
    model = hf_models[arch]
    data = shakespeare[:400]
    trace: list[np.ndarray] = []
    _, r = compress_tokens(data, model, trace=trace)
    ids = tokenize_exactly(text_backend(model.tokenizer), data)
    inputs = [model.start_id, *ids]
    assert len(ids) > 2 * 64
    with torch.no_grad():
        for i, (a, b) in enumerate(_reference_contexts(len(ids), 64)):
            logits = model.model(input_ids=torch.tensor([inputs[a:b]])).logits[0, -1].double()
            np.testing.assert_allclose(trace[i], torch.softmax(logits, -1).numpy(), rtol=1e-5, atol=1e-9)
        full = torch.log_softmax(model.model(input_ids=torch.tensor([inputs[:64]])).logits[0].double(), -1)
    bits = -full[torch.arange(63), torch.tensor(ids[:63])].sum().item() / math.log(2)
    assert -sum(math.log2(trace[i][ids[i]]) for i in range(63)) == pytest.approx(bits, rel=1e-6)
    assert r.model_bits == pytest.approx(-sum(math.log2(p[t]) for p, t in zip(trace, ids)), rel=1e-12)


def test_known_answer_bits_per_token_of_a_uniform_and_a_random_model(hf_dirs, shakespeare):
    """A model with a zero head is exactly uniform: every token costs log2(V) bits, so bits/byte
    is log2(V)·tokens/bytes plus at most 64 bits of range coder and the header. A random tiny
    model is nearly uniform: within 2% of log2(V) per token."""
    data = shakespeare[:400]
    random_model = load_model(f"hf:{hf_dirs['gpt2']}")
    V = random_model.config.vocab_size  # the same byte-level tokenizer for both models
    _, r = roundtrip(data, random_model)
    assert r.model_bits / r.tokens == pytest.approx(math.log2(V), rel=0.02)
    uniform = load_model(f"hf:{hf_dirs['neox']}")
    with torch.no_grad():
        uniform.model.get_output_embeddings().weight.zero_()
    blob, u = roundtrip(data, uniform)
    assert u.model_bits == pytest.approx(u.tokens * math.log2(V), rel=1e-9)
    assert -1 < u.coder_overhead_bits <= 64
    ideal = u.tokens * math.log2(V)
    assert ideal / 400 < u.bits_per_byte <= (ideal + 64 + 8 * u.header_bytes) / 400
    assert u.bits_per_byte_with_model == pytest.approx((8 * len(blob) + 16 * uniform.num_params()) / 400)


@settings(max_examples=25, deadline=None)
@given(data=st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=20)))
def test_round_trip_property(data, hf_models):
    """Any text round-trips through byte-level BPE; bytes that are not UTF-8 are refused."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(BitlensError, match="not valid UTF-8"):
            compress_tokens(data, hf_models["gpt2"])
        return
    roundtrip(data, hf_models["gpt2"])


def _rewrite(blob: bytes, **fields) -> bytes:
    header, payload = unpack(blob)
    fields.setdefault("payload_crc32", crc32(payload))
    return pack_header(Header(**{**header.__dict__, **fields})) + payload


def test_another_model_tokenizer_or_version_is_refused(hf_models, shakespeare):
    blob, _ = compress_tokens(shakespeare[:200], hf_models["gpt2"])
    with pytest.raises(BitlensError, match="wrong model"):
        decompress_tokens(blob, hf_models["gpt2-seed1"])
    with pytest.raises(BitlensError, match="wrong model"):
        decompress_tokens(blob, hf_models["neox"])
    # The Llama weights are the same in both directories; only the tokenizer differs.
    blob, _ = compress_tokens(shakespeare[:200], hf_models["llama"])
    with pytest.raises(BitlensError, match="wrong tokenizer"):
        decompress_tokens(blob, hf_models["llama-no-fallback"])
    params = {**read_header(blob).params, "transformers": "4.0.0"}
    with pytest.raises(BitlensError, match="transformers 4.0.0"):
        decompress_tokens(_rewrite(blob, params=params), hf_models["llama"])
    # The byte coder points at the tokens coder, and the other way round.
    with pytest.raises(BitlensError, match="decompress_tokens"):
        decompress(blob)
    with pytest.raises(BitlensError, match="compress_tokens"):
        compress(b"abc", hf_models["llama"])


def test_a_damaged_code_stream_is_never_returned(hf_models, shakespeare):
    blob, _ = compress_tokens(shakespeare[:300], hf_models["gpt2"])
    header, payload = unpack(blob)
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 0xFF
    damaged = pack_header(Header(**{**header.__dict__, "payload_crc32": crc32(bytes(bad))})) + bytes(bad)
    with pytest.raises(BitlensError, match="CRC-32|cannot be decoded"):
        decompress_tokens(damaged, hf_models["gpt2"])


def test_text_the_tokenizer_cannot_reproduce_is_refused(hf_models):
    """Without byte fallback, characters the tokenizer never saw become <unk>; with it they come
    back byte for byte."""
    assert decompress_tokens(compress_tokens(UNICODE, hf_models["llama"])[0], hf_models["llama"]) == UNICODE
    with pytest.raises(BitlensError, match="does not reproduce this input.*byte 2"):
        compress_tokens(UNICODE, hf_models["llama-no-fallback"])


def test_command_line_round_trip_with_json(hf_dirs, shakespeare, tmp_path, capsys):
    src, packed, back = tmp_path / "in.txt", tmp_path / "in.blz", tmp_path / "out.txt"
    data = UNICODE + shakespeare[:300]
    src.write_bytes(data)
    capsys.readouterr()
    model = f"hf:{hf_dirs['llama']}"
    assert main(["compress", str(src), str(packed), "--model", model, "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "tokens" and out["input_bytes"] == len(data)
    assert out["output_bytes"] == packed.stat().st_size and out["tokens"] > 0
    assert out["tokens_per_second"] > 0 and out["bits_per_byte"] == pytest.approx(
        8 * out["output_bytes"] / len(data)
    )
    assert main(["decompress", str(packed), str(back), "--model", model]) == 0
    assert back.read_bytes() == data
    capsys.readouterr()
    # the file needs its model: none, a byte model's flags, or another model are one-line errors
    other = tmp_path / "other.txt"
    for args, message in [
        ([], "--model hf:DIR"),
        (["--model", f"hf:{hf_dirs['gpt2']}"], "wrong model"),
    ]:
        assert main(["decompress", str(packed), str(other), *args]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not other.exists()
    assert main(["compress", str(src), str(other), "--model", model, "--online"]) == 1
    assert "drop --online" in capsys.readouterr().err and not other.exists()


def test_refusals_write_nothing_and_fit_one_line(hf_dirs, tmp_path, capsys):
    src, out = tmp_path / "in.txt", tmp_path / "out.blz"
    src.write_bytes(UNICODE)
    capsys.readouterr()
    for model, message in [
        (f"hf:{hf_dirs['llama-no-fallback']}", "does not reproduce"),
        (f"hf:{tmp_path / 'missing'}", "no local model directory"),
        ("hf:openai-community/gpt2", "offline"),
    ]:
        assert main(["compress", str(src), str(out), "--model", model]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
    src.write_bytes(b"\xff\xfe not text")
    assert main(["compress", str(src), str(out), "--model", f"hf:{hf_dirs['gpt2']}"]) == 1
    assert "UTF-8" in capsys.readouterr().err and not out.exists()
