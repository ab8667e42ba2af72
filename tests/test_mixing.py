"""The mixer's parts: the match model, the counts-only coder, and the network's measured saving."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.compress import MixConfig, OnlineConfig, compress, decompress, estimate_bits, read_header
from bitlens.compress.container import pack_header, unpack
from bitlens.compress.mixing import MATCH_MIN, MatchModel, _Head
from bitlens.compress.online import default_schedule
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
    one = MixConfig(selectors=("confidence",))  # one weight set, so only these parts change
    parts = {
        "plain": replace(one, match=False, apm=False),
        "match": replace(one, apm=False),
        "apm": replace(one, match=False),
        "both": one,
    }
    sizes = {
        name: estimate_bits(data, network=False, mix=cfg, n_streams=1).coded for name, cfg in parts.items()
    }
    blob, r = compress(data, network=False, mix=one, n_streams=1)
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


def test_a_byte_selected_weight_set_learns_which_input_to_trust_after_each_byte():
    # two inputs, each right (0.9 on the next byte) in one regime and wrong (0.9 on another byte)
    # in the other; the regime is the parity of the last byte. The confidence level is the same
    # everywhere, so one weight set can only average them (more than 1 bit per byte); a set chosen
    # by the last byte learns to follow the right one, and at least as well as that input alone
    # (−log2 0.9 = 0.152 bits; geometric weights can sharpen it further).
    rng = np.random.default_rng(0)
    xs = rng.integers(0, 256, 4001)

    def cost(levels: tuple[int, ...]) -> float:
        head = _Head(2, levels, start=0, rate=0.02, apm_contexts=0)
        bits = []
        for last, x in zip(xs[:-1], xs[1:]):
            right, wrong = np.full(256, 0.1 / 255), np.full(256, 0.1 / 255)
            right[x], wrong[(x + 1) % 256] = 0.9, 0.9
            pair = (right, wrong) if last % 2 == 0 else (wrong, right)
            stack = np.log(np.stack(pair)).astype(np.float32)[None]
            sels = [np.zeros(1, dtype=np.int64), np.array([last])][: len(levels)]
            p = head.predict(stack, sels, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
            bits.append(-np.log2(p[0, x]))
            head.update(np.array([x]))
        return float(np.mean(bits[-1000:]))

    assert cost((1,)) > 1.0
    assert cost((1, 256)) < -np.log2(0.9)


def test_mixer_selectors_are_checked_and_old_headers_mean_the_confidence_set_alone():
    with pytest.raises(ValueError, match="selectors"):
        MixConfig(selectors=("byte",))
    with pytest.raises(ValueError, match="selectors"):
        MixConfig(selectors=("confidence", "colour"))
    data = b"abracadabra " * 30
    blob, _ = compress(data, network=False, mix=MixConfig(selectors=("confidence",)))
    header, payload = unpack(blob)
    assert header.params["mix"]["selectors"] == ["confidence"]
    # a file written before the mixer had selectors: the same header without the key decodes
    old = {**header.params, "mix": {k: v for k, v in header.params["mix"].items() if k != "selectors"}}
    assert decompress(pack_header(replace(header, params=old)) + payload) == data
    # and the default (two weight sets) codes the same bytes differently
    assert compress(data, network=False, mix=MixConfig())[0] != blob


def test_the_mixer_replay_benchmark_gives_the_coders_code_lengths(shakespeare, tmp_path, load_benchmark):
    bench = load_benchmark("mixer_replay")
    data = shakespeare[:300]
    net = bench.cache(data, tmp_path / "net.npy", {"replay": 2})
    mix = MixConfig(selectors=("confidence", "byte", "network"))
    row = bench.replay(data, tmp_path / "net.npy", mix)
    schedule = replace(default_schedule("online", len(data)), replay=2)
    est = estimate_bits(data, online=True, mix=mix, schedule=schedule)
    assert row["coded"] * len(data) == pytest.approx(est.coded, rel=1e-5)
    assert row["counts"] * len(data) == pytest.approx(est.counts_only, rel=1e-9)
    assert row["network"] == pytest.approx(net, rel=1e-6)
    assert row["network"] == pytest.approx(est.network / len(data), rel=1e-5)


def test_the_two_word_model_predicts_a_word_from_the_one_before_it():
    # 16 five-letter words, each always followed by the same successor, separated by runs of 7–10
    # random digits: no byte context of order ≤ 6 reaches back to the previous word, and the word
    # model sees an empty word at each word's start. Only the two-word model knows the next word,
    # so it saves most of the 4 bits of the choice of word on each of the 800 words (2.9 measured).
    rng = np.random.default_rng(0)
    words = [bytes(rng.integers(97, 123, 5, dtype=np.uint8)) for _ in range(16)]
    successor = rng.permutation(16)
    w, parts = 0, []
    for _ in range(800):
        parts += [words[w], bytes(rng.integers(48, 58, int(rng.integers(7, 11)), dtype=np.uint8))]
        w = int(successor[w])
    data = b"".join(parts)
    one = MixConfig(selectors=("confidence",))
    without = estimate_bits(data, network=False, mix=replace(one, word2=False), n_streams=1).coded
    assert without - estimate_bits(data, network=False, mix=one, n_streams=1).coded > 2 * 800
    with pytest.raises(ValueError, match="word2"):
        MixConfig(word=False)
