"""The weights file: exact round trips, known code lengths, the precision search, the bound."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.errors import BitlensError
from bitlens.measures.validate import VALIDATION_MODEL
from bitlens.measures.weights_code import (
    WeightsCodeConfig,
    compression_bound_bits_per_byte,
    decode_weights,
    encode_weights,
    quantise,
    search_precision,
    two_part_code,
)
from bitlens.model import GPT


def _bitwise(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


@st.composite
def _tensors(draw):
    out = []
    for i in range(draw(st.integers(1, 4))):
        shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
        values = draw(
            st.lists(
                st.floats(-1e3, 1e3, width=32, allow_nan=False),
                min_size=math.prod(shape),
                max_size=math.prod(shape),
            )
        )
        if draw(st.booleans()):
            values = [values[0]] * len(values)  # a constant tensor
        bits = draw(st.integers(2, 8))
        out.append(quantise(f"t{i}", torch.tensor(values, dtype=torch.float32).reshape(shape), bits))
    return out


@settings(max_examples=60, deadline=None)
@given(_tensors())
def test_weights_file_round_trip_is_bit_exact(tensors):
    config, decoded = decode_weights(encode_weights(tensors))
    assert config is None
    assert [(d.name, d.shape, d.bits) for d in decoded] == [(t.name, t.shape, t.bits) for t in tensors]
    for t, d in zip(tensors, decoded, strict=True):
        assert torch.equal(_bitwise(t.values()), _bitwise(d.values()))


def test_quantisation_error_is_at_most_half_a_step():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    for bits in (2, 5, 8):
        q = quantise("w", w, bits)
        assert q.q.min() == 0 and q.q.max() == 2**bits - 1
        assert (q.values() - w).abs().max() <= q.step / 2 + 1e-6


def test_model_round_trip_through_the_file():
    torch.manual_seed(0)
    model = GPT(VALIDATION_MODEL)
    tensors = [quantise(k, v, 4) for k, v in model.state_dict().items()]
    config, decoded = decode_weights(encode_weights(tensors, VALIDATION_MODEL))
    assert config == VALIDATION_MODEL
    for t, d in zip(tensors, decoded, strict=True):
        assert torch.equal(_bitwise(t.values()), _bitwise(d.values()))


def test_constant_tensor_costs_only_its_value():
    empty = len(encode_weights([]))
    one = len(encode_weights([quantise("c", torch.full((100_000,), 0.25), 8)]))
    # Index entry + one float32; no table, no payload: a few bytes for 100k parameters.
    assert one - empty < 24
    (c,) = decode_weights(encode_weights([quantise("c", torch.full((7,), 0.25), 8)]))[1]
    assert c.bits == 0 and torch.equal(c.values(), torch.full((7,), 0.25))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_uniform_random_integers_cost_their_bits(bits):
    n = 1 << 16
    rng = np.random.default_rng(bits)
    ints = rng.integers(0, 2**bits, size=n)
    ints[:2] = [0, 2**bits - 1]  # the grid spans [0, 2^b − 1], so q == ints
    q = quantise("u", torch.tensor(ints, dtype=torch.float32), bits)
    assert np.array_equal(q.q, ints)
    per_param = 8 * len(encode_weights([q])) / n
    # The empirical entropy is a hair under b; the file adds a header (~50 bytes with its index),
    # the table (2^b varints of ≤ 3 bytes) and the range coder's last word.
    assert bits - 0.01 < per_param < bits + (3 * 2**bits + 100) * 8 / n


def test_corrupted_file_is_a_bitlens_error():
    blob = encode_weights([quantise("w", torch.arange(10.0), 3)])
    with pytest.raises(BitlensError, match="bad magic"):
        decode_weights(b"x" + blob[1:])
    with pytest.raises(BitlensError, match="corrupted"):
        decode_weights(blob[:-4])


def test_search_is_never_worse_than_a_fixed_precision():
    # A synthetic total with a different optimum per layer: the mix must beat every fixed one.
    best = {"a": 2, "b": 5, "c": 8}

    def total(assign):
        return sum((assign[g] - best[g]) ** 2 + 10 for g in best)

    s = search_precision(list(best), total)
    assert s.layer_bits == best
    assert s.chosen_total_bits == 30
    assert s.chosen_total_bits <= min(s.fixed_total_bits.values())
    assert set(s.fixed_total_bits) == {str(b) for b in range(2, 9)}


def test_two_part_code_decodes_and_beats_no_fixed_precision():
    torch.manual_seed(0)
    model = GPT(VALIDATION_MODEL)
    text = b"the quick brown fox jumps over the lazy dog. " * 40
    r = two_part_code(text, model, WeightsCodeConfig(search_bytes=512))
    assert r.two_part_bits == r.weights_file_bits + r.data_bits
    assert r.weights_file_bits == 8 * r.weights_file_bytes
    assert r.weight_bits_per_parameter == pytest.approx(r.weights_file_bits / r.params)
    assert r.params == model.num_params()
    search = r.search
    assert search["chosen_total_bits"] <= min(search["fixed_total_bits"].values())
    assert set(r.tensor_bits) == set(model.state_dict())
    assert all(r.tensor_bits[k] in (0, r.layer_bits[layer]) for k, layer in _layers(r.tensor_bits))
    bound = r.compression_bound
    assert bound["n_samples"] == len(text) // VALIDATION_MODEL.block_size * VALIDATION_MODEL.block_size
    assert bound["loss_cap_bits"] == pytest.approx(math.log2(256 / 0.01))
    assert 0 < bound["smoothed_loss_bits_per_byte"] <= bound["loss_cap_bits"]
    assert bound["bits_per_byte"] == compression_bound_bits_per_byte(
        r.weights_file_bits, bound["n_samples"], bound["smoothed_loss_bits_per_byte"], 0.01, 0.05
    )
    assert bound["vacuous"] == (bound["bits_per_byte"] >= 8.0)
    # The data file is the coder's: model bits plus a header of tens of bytes.
    assert r.data_model_bits < r.data_bits < r.data_model_bits + 8 * 400


def test_data_decodes_under_the_model_decoded_from_the_weights_file():
    from bitlens.compress import compress, decompress
    from bitlens.measures.weights_code import model_from_tensors, quantised_model

    torch.manual_seed(1)
    model = GPT(VALIDATION_MODEL)
    qmodel, tensors = quantised_model(model, dict.fromkeys(model.state_dict(), 3))
    config, decoded = decode_weights(encode_weights(tensors, model.config))
    receiver = model_from_tensors(config, decoded)
    text = b"to be, or not to be, that is the question"
    blob, result = compress(text, qmodel)
    assert decompress(blob, receiver) == text
    # The quantised model is not the original: its code length differs.
    assert result.model_bits != compress(text, model)[1].model_bits


def _layers(names):
    from bitlens.measures.weights_code import layer_of

    return [(k, layer_of(k)) for k in names]


def test_compression_bound_hand_computed():
    # C = 1000 bits: K = 1000 + 2·log2(1000) = 1019.9316 bits; cap = log2(256/0.01) = 14.643856;
    # sqrt((1019.9316·ln 2 + ln 20) / 20000) = sqrt((706.9627 + 2.9957) / 20000) = 0.188409;
    # bound = 2 + 14.643856 × 0.188409 = 4.759033 bits/byte.
    b = compression_bound_bits_per_byte(1000.0, 10_000, 2.0, epsilon=0.01, delta=0.05)
    assert b == pytest.approx(4.759033, abs=1e-5)
    # Four times the samples halve the complexity term.
    b4 = compression_bound_bits_per_byte(1000.0, 40_000, 2.0, epsilon=0.01, delta=0.05)
    assert b4 - 2.0 == pytest.approx((b - 2.0) / 2)
    with pytest.raises(BitlensError):
        compression_bound_bits_per_byte(1000.0, 0, 2.0, epsilon=0.01)
