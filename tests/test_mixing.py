"""The mixer's parts: the match model, the counts-only coder, and the network's measured saving."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.compress import MixConfig, OnlineConfig, compress, decompress, estimate_bits, read_header
from bitlens.compress.mixing import MATCH_MIN, MatchModel
from bitlens.compress.registry import COMPRESSORS, CoderSettings
from bitlens.errors import BitlensError
from bitlens.model import GPTConfig

MICRO = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
FAST = OnlineConfig(lr=3e-3, segment=16, replay=2)


def test_the_match_model_predicts_a_repeat_after_its_context_and_follows_it():
    text = np.random.default_rng(0).integers(0, 256, 500)
    data = np.concatenate([text, text])
    mm = MatchModel(1, capacity=len(data), hash_bits=16)
    active = np.ones(1, dtype=bool)
    right = []
    for i, x in enumerate(data):
        found, byte = mm.predicted(active)
        if i >= 500:
            right.append(bool(found[0] and byte[0] == x))
        mm.update(active, np.array([x]))
    # the copy is predicted from its MATCH_MIN-th byte on, every byte right, the length growing
    assert right[:MATCH_MIN] == [False] * MATCH_MIN
    assert all(right[MATCH_MIN:])
    assert mm.length[0] == 500 - MATCH_MIN
    # its input to the mixer puts the measured hit rate on the predicted byte
    logp = mm.log_probs(active)
    assert np.exp(logp).sum() == pytest.approx(1.0)
    assert np.exp(logp[0]).max() > 0.9


def test_the_match_model_finds_repeats_across_streams():
    text = np.random.default_rng(1).integers(0, 256, 200)
    mm = MatchModel(2, capacity=200, hash_bits=16)
    both = np.ones(2, dtype=bool)
    hits = 0
    for i in range(200):  # stream 1 runs 100 bytes behind stream 0 over the same text
        x = np.array([text[i], text[i - 100] if i >= 100 else 255 - text[i]])
        found, byte = mm.predicted(both)
        hits += int(i >= 100 + MATCH_MIN and found[1] and byte[1] == x[1])
        mm.update(both, x)
    assert hits == 100 - MATCH_MIN


@settings(max_examples=5, deadline=None)
@given(data=st.binary(max_size=300), streams=st.integers(1, 3))
def test_counts_only_coder_round_trips(data, streams):
    blob, r = compress(data, network=False, mix=MixConfig(), n_streams=streams)
    assert decompress(blob) == data
    assert r.mode == "counts" and read_header(blob).mode == "counts"
    assert r.network_bits is None and r.network_saves_bits_per_byte is None


def test_counts_only_bits_of_a_mixed_run_are_the_counts_coders_code_length(shakespeare):
    data = shakespeare[:2000]
    _, mixed = compress(data, None, online=True, preset=MICRO, schedule=FAST, n_streams=3, mix=MixConfig())
    _, counts = compress(data, network=False, mix=MixConfig(), n_streams=3)
    assert mixed.counts_only_bits == pytest.approx(counts.model_bits, rel=1e-9)
    saved = mixed.network_saves_bits_per_byte
    assert saved == pytest.approx((mixed.counts_only_bits - mixed.model_bits) / len(data))
    est = estimate_bits(data, network=False, mix=MixConfig(), n_streams=3)
    assert est.coded == pytest.approx(counts.model_bits, rel=1e-9)


def test_each_mixer_part_can_be_switched_off_and_the_match_model_pays_on_long_repeats():
    # over 4 symbols every 6-byte context recurs, so the count models stay unsure (≈ 2 bits/byte)
    # inside a repeated block; the match model follows the earlier copy byte by byte
    rng = np.random.default_rng(3)
    block = bytes(rng.integers(97, 101, 1500, dtype=np.uint8))
    data = block + bytes(rng.integers(97, 101, 200, dtype=np.uint8)) + block
    parts = {
        "plain": MixConfig(match=False, apm=False),
        "match": MixConfig(apm=False),
        "apm": MixConfig(match=False),
        "both": MixConfig(),
    }
    sizes = {
        name: estimate_bits(data, network=False, mix=cfg, n_streams=1).coded for name, cfg in parts.items()
    }
    blob, r = compress(data, network=False, mix=MixConfig(), n_streams=1)
    assert decompress(blob) == data and r.model_bits == pytest.approx(sizes["both"], rel=1e-9)
    # 1700 bytes of fresh random text cost ≈ 2 bits each whatever the mixer
    assert all(bits > 2 * 1700 - 200 for bits in sizes.values())
    assert sizes["plain"] > 2 * 1700 + 1000  # the counts pay most of the repeat again
    assert sizes["match"] < sizes["plain"] - 1000 and sizes["both"] < sizes["plain"] - 1000


def test_the_counts_coder_is_a_registry_row_and_refuses_a_network(micro_model):
    coder = COMPRESSORS["counts"](CoderSettings())
    assert coder is not None and coder.name == "bitlens counts"
    blob, result = coder.compress(b"abracadabra " * 20)
    assert coder.decompress(blob) == b"abracadabra " * 20
    assert result is not None and result.model_bits / 240 < 1  # the header dominates so short a file
    with pytest.raises(BitlensError, match="no network"):
        compress(b"abc", micro_model, network=False, mix=MixConfig())
    with pytest.raises(BitlensError, match="mixing"):
        compress(b"abc", network=False)
