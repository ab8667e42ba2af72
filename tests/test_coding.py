"""Lossless coding with the model: round trips, bit-identical probabilities, overhead, errors."""

import os
from dataclasses import astuple, replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitlens.compress import MixConfig, OnlineConfig, compress, decompress, estimate_bits, read_header
from bitlens.compress.container import Header, crc32, pack_header, unpack
from bitlens.compress.loop import _head_step, plan_streams
from bitlens.compress.online import round_lr
from bitlens.errors import BitlensError
from bitlens.evaluate import evaluate
from bitlens.model import GPT, GPTConfig

MICRO = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
FAST = OnlineConfig(lr=3e-3, segment=16, replay=2)


def micro(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(MICRO).eval()


def roundtrip(data: bytes, model: GPT | None, **kw) -> tuple[bytes, object]:
    blob, result = compress(data, model, **kw)
    assert decompress(blob, model) == data
    return blob, result


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x",
        b"\x00",
        bytes(range(256)),
        bytes(range(255, 127, -1)) * 3,
        np.random.default_rng(0).bytes(700),
    ],
    ids=["empty", "one", "zero", "all-bytes", "high-bytes", "random"],
)
def test_offline_edge_cases_round_trip(data, micro_model):
    blob, r = roundtrip(data, micro_model)
    assert r.input_bytes == len(data) and r.output_bytes == len(blob)


def test_stream_plan_covers_the_file_without_empty_streams():
    for n in (1, 5, 4095, 4097, 100_000, 5_000_000):
        s, length = plan_streams(n, 4096, max_streams=256)
        assert s <= 256 and (s - 1) * length < n <= s * length


def test_long_text_slides_the_window_and_many_streams(shakespeare, micro_model):
    data = shakespeare[:3000]  # ~100 bytes per stream: three window re-primes per stream
    blob, r = roundtrip(data, micro_model, n_streams=29)
    assert r.n_streams == 29


def test_decoder_probabilities_equal_encoder_bit_for_bit(shakespeare, micro_model):
    enc, dec = [], []
    blob, _ = compress(shakespeare[:500], micro_model, n_streams=3, trace=enc)
    decompress(blob, micro_model, trace=dec)
    assert len(enc) == len(dec) == 167  # ceil(500 / 3) steps
    for a, b in zip(enc, dec):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_uniform_model_costs_exactly_eight_bits_per_byte():
    model = micro()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit is 0
    data = np.random.default_rng(1).bytes(2000)
    blob, r = roundtrip(data, model)
    assert r.model_bits == pytest.approx(8 * 2000, rel=1e-6)
    assert 0 <= r.coder_overhead_bits <= 64


def test_model_bits_match_cross_entropy_and_overhead_is_small(shakespeare, micro_model):
    data = shakespeare[:31]  # one window: the coder's contexts are exactly evaluate's
    _, r = roundtrip(data, micro_model)
    assert r.model_bits == pytest.approx(evaluate(micro_model, data).total_bits, rel=1e-5)
    _, r = roundtrip(shakespeare[:4000], micro_model, n_streams=4)
    # |coded bits − Σ −log2 p| is tiny: 24-bit quantisation can even give a byte more mass.
    assert abs(r.coder_overhead_bits) <= 0.001 * r.model_bits + 64
    assert r.overhead_bits == pytest.approx(8 * r.output_bytes - r.model_bits)
    assert r.bits_per_byte == pytest.approx(8 * r.output_bytes / 4000)
    assert r.bits_per_byte_with_model == pytest.approx(
        (8 * r.output_bytes + 16 * micro_model.num_params()) / 4000
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), streams=st.integers(1, 5))
def test_offline_round_trip_property(data, streams, micro_model):
    roundtrip(data, micro_model, n_streams=streams)


@settings(max_examples=4, deadline=None)
@given(data=st.binary(max_size=120), streams=st.integers(1, 3))
def test_online_round_trip_property(data, streams):
    roundtrip(data, None, online=True, preset=MICRO, n_streams=streams, schedule=FAST)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=600), streams=st.integers(1, 4), seed=st.integers(0, 3))
def test_online_round_trip_property_many(data, streams, seed):
    roundtrip(data, None, online=True, preset=MICRO, n_streams=streams, seed=seed, schedule=FAST)


def test_online_learns_and_decoder_probabilities_match(shakespeare):
    data = (b"the cat sat on the mat. " * 60)[:1400]
    enc, dec = [], []
    blob, r = compress(data, None, online=True, preset=MICRO, schedule=FAST, n_streams=1, trace=enc)
    assert decompress(blob, trace=dec) == data
    assert all(a.tobytes() == b.tobytes() for a, b in zip(enc, dec)) and len(enc) == len(dec)
    assert r.mode == "online" and read_header(blob).params["seed"] == 0
    assert r.model_bits / len(data) < 3.0  # a 24-byte period, learned while coding (measured 2.62)
    # Without learning (lr 0) the same random model learns nothing: at least the 8 bits per byte
    # of a uniform code (a random head adds its KL from uniform; measured 8.39)
    _, frozen = compress(data, None, online=True, preset=MICRO, schedule=OnlineConfig(lr=0.0), n_streams=1)
    assert 8.0 - 0.05 < frozen.model_bits / len(data) < 9.0


def test_adaptive_needs_and_checks_the_starting_model(shakespeare, micro_model):
    data = shakespeare[:600]
    blob, r = roundtrip(data, micro_model, online=True, schedule=FAST)
    assert r.mode == "adaptive"
    with pytest.raises(BitlensError, match="pass the same model"):
        decompress(blob)
    with pytest.raises(BitlensError, match="wrong model"):
        decompress(blob, micro(seed=1))


def test_offline_wrong_or_missing_model(shakespeare, micro_model):
    blob, _ = compress(shakespeare[:200], micro_model)
    with pytest.raises(BitlensError, match="wrong model"):
        decompress(blob, micro(seed=1))
    with pytest.raises(BitlensError, match="--model"):
        decompress(blob)
    with pytest.raises(BitlensError, match="needs a model"):
        compress(b"abc", None)


def _rewrite(blob: bytes, payload: bytes | None = None, **fields) -> bytes:
    header, old = unpack(blob)
    payload = old if payload is None else payload
    fields.setdefault("payload_crc32", crc32(payload))
    return pack_header(Header(**{**header.__dict__, **fields})) + payload


def test_other_torch_version_is_refused(micro_model):
    blob, _ = compress(b"hello world", micro_model)
    params = {**read_header(blob).params, "torch": "1.0.0"}
    with pytest.raises(BitlensError, match="torch 1.0.0"):
        decompress(_rewrite(blob, params=params), micro_model)


def _record_threads(monkeypatch) -> list[int]:
    """The torch thread count at every forward of any GPT from now on."""
    seen: list[int] = []
    forward = GPT.features

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "features", spy)
    return seen


def test_threads_are_recorded_and_used(micro_model, monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the ambient count differs from the file's
        seen = _record_threads(monkeypatch)
        blob, _ = compress(b"hello world", micro_model, threads=2)
        assert read_header(blob).threads == 2 and seen and set(seen) == {2}
        seen.clear()
        assert decompress(blob, micro_model) == b"hello world"
        assert seen and set(seen) == {2}  # decoding ran every forward with the recorded count
        assert torch.get_num_threads() == 1  # and gave the ambient count back
    finally:
        torch.set_num_threads(before)
    impossible = _rewrite(blob, threads=0)
    with pytest.raises(BitlensError, match="threads"):
        decompress(impossible, micro_model)


def test_estimate_can_keep_the_callers_kernels(shakespeare, monkeypatch):
    data = shakespeare[:300]
    kw = dict(online=True, preset=MICRO, schedule=FAST, n_streams=2)
    modes: list[bool] = []
    forward = GPT.features

    def spy(self, *args, **kwargs):
        modes.append(torch.are_deterministic_algorithms_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "features", spy)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)  # the caller's setting
        strict = estimate_bits(data, None, **kw)
        assert modes and all(modes)  # default: deterministic kernels, as the coder uses
        modes.clear()
        loose = estimate_bits(data, None, deterministic_kernels=False, **kw)
        assert modes and not any(modes)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
    assert loose.coded == pytest.approx(strict.coded, abs=1e-3)


def test_wrong_bytes_are_never_returned_silently(shakespeare, micro_model):
    blob, _ = compress(shakespeare[:400], micro_model)
    header, payload = unpack(blob)
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 0xFF  # a valid-looking container around a damaged code stream
    with pytest.raises(BitlensError, match="CRC-32"):
        decompress(_rewrite(blob, bytes(bad)), micro_model)


@pytest.mark.slow
def test_fifty_megabytes_round_trip(micro_model):
    data = os.urandom(1 << 20) * 50  # 50 MiB; coded in 256 streams
    blob, r = roundtrip(data, micro_model)
    assert r.n_streams == 256


# --- estimates, context mixing, devices -------------------------------------------------


@pytest.mark.parametrize("mix", [None, MixConfig()], ids=["network", "mixed"])
def test_estimate_equals_the_real_coders_code_length(shakespeare, mix):
    data = shakespeare[:1500]
    kw = dict(online=True, preset=MICRO, schedule=FAST, n_streams=3, mix=mix)
    _, r = compress(data, None, **kw)
    est = estimate_bits(data, None, **kw)
    assert est.coded == pytest.approx(r.model_bits, abs=1e-3)
    if mix is not None:
        assert est.network == pytest.approx(r.network_bits, abs=1e-3)
    # offline too: the frozen network, several context chunks per stream
    _, off = compress(data, micro(), n_streams=2)
    assert estimate_bits(data, micro(), n_streams=2).coded == pytest.approx(off.model_bits, abs=1e-3)


@settings(max_examples=4, deadline=None)
@given(data=st.binary(max_size=200), streams=st.integers(1, 3))
def test_mixed_online_round_trip_property(data, streams):
    blob, r = roundtrip(
        data, None, online=True, preset=MICRO, n_streams=streams, schedule=FAST, mix=MixConfig()
    )
    assert read_header(blob).params.get("mix") is not None or not data


def test_mixing_learns_a_periodic_source_and_cannot_compress_noise():
    period = bytes(np.random.default_rng(1).integers(0, 256, 37, dtype=np.uint8))
    data = (period * 80)[:2960]
    enc, dec = [], []
    blob, r = compress(
        data,
        None,
        online=True,
        preset=MICRO,
        schedule=OnlineConfig(lr=0.0),
        n_streams=1,
        mix=MixConfig(),
        trace=enc,
    )
    assert decompress(blob, trace=dec) == data
    assert all(a.tobytes() == b.tobytes() for a, b in zip(enc, dec))
    # a frozen random network codes at ≥ 8 bits/byte; the counts learn the 37-byte period: the
    # first period costs its 8 bits a byte, and after it each byte is determined by its order-6
    # context, so the other 79 periods cost almost nothing (measured: 14 bits in all)
    assert 8.0 - 0.05 < r.network_bits / len(data) < 9.0
    assert 8 * 37 - 8 < r.model_bits < 8 * 37 + 32
    noise = np.random.default_rng(2).bytes(3000)
    _, rn = compress(
        noise, None, online=True, preset=MICRO, schedule=OnlineConfig(lr=0.0), n_streams=1, mix=MixConfig()
    )
    # nothing to learn: no code beats 8 bits/byte on random bytes by k bits but with chance 2^-k,
    # and the mixer loses little (measured: 0.06 bits/byte)
    assert 8 * len(noise) - 20 < rn.model_bits < 8.1 * len(noise)


def test_mixing_is_refused_offline_and_a_damaged_mix_header_is_an_error(micro_model):
    with pytest.raises(BitlensError, match="online"):
        compress(b"abc", micro_model, mix=MixConfig())
    blob, _ = compress(b"hello hello hello", None, online=True, preset=MICRO, schedule=FAST, mix=MixConfig())
    params = {**read_header(blob).params, "mix": "nonsense"}
    with pytest.raises(BitlensError, match="mixing"):
        decompress(_rewrite(blob, params=params))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only errors")
def test_a_gpu_file_or_device_is_a_clear_error_without_a_gpu(micro_model):
    with pytest.raises(BitlensError, match="not available"):
        compress(b"abc", micro_model, device="cuda")
    blob, _ = compress(b"hello world", micro_model)
    params = {**read_header(blob).params, "device": "cuda:NVIDIA H200"}
    with pytest.raises(BitlensError, match="same GPU model"):
        decompress(_rewrite(blob, params=params), micro_model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_round_trip(shakespeare):
    data = shakespeare[:2000]
    blob, r = compress(data, None, online=True, preset=MICRO, schedule=FAST, n_streams=4, device="cuda")
    assert read_header(blob).params["device"].startswith("cuda:")
    assert decompress(blob) == data


def test_default_schedule_is_no_dearer_for_long_files_and_its_rate_falls_there():
    from bitlens.compress.online import LONG_FILE, default_schedule

    # trained windows per coded byte: (streams + replay) / (streams · segment), at 32 streams
    def per_byte(c: OnlineConfig) -> float:
        return (32 + c.replay) / (32 * c.segment)

    short, long = default_schedule("adaptive", LONG_FILE - 1), default_schedule("adaptive", LONG_FILE)
    assert per_byte(long) < per_byte(short)
    short, long = default_schedule("online", LONG_FILE - 1), default_schedule("online", LONG_FILE)
    assert per_byte(long) <= per_byte(short)
    assert long.final_lr < long.lr and short.final_lr == 0.0  # short files keep a constant rate
    blob, _ = compress(b"a short file", None, online=True, preset=MICRO)
    assert OnlineConfig(*read_header(blob).params["schedule"]) == default_schedule("online", 12)


def test_the_fast_output_layer_step_is_sgd_on_the_mean_cross_entropy():
    torch.manual_seed(0)
    model = GPT(MICRO)
    h = torch.randn(5, MICRO.n_embd)
    got = np.array([3, 7, 7, 200, 0])
    weight = model.lm_head.weight.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(h @ weight.T, torch.as_tensor(got))  # mean, nats
    loss.backward()
    logp = torch.log_softmax(model.lm_head(h), dim=-1).detach().numpy()
    _head_step(model, logp, got, h, lr=0.5)
    assert torch.allclose(model.lm_head.weight, weight.detach() - 0.5 * weight.grad, atol=1e-6)


@pytest.mark.parametrize("mix", [None, MixConfig()], ids=["network", "mixed"])
def test_fast_output_layer_updates_round_trip_help_and_match_the_estimate(shakespeare, mix):
    data = shakespeare[:1500]
    kw = dict(online=True, preset=MICRO, n_streams=3, mix=mix)
    blob, r = compress(data, None, schedule=replace(FAST, head_lr=0.01), **kw)
    assert decompress(blob) == data
    assert OnlineConfig(*read_header(blob).params["schedule"]).head_lr == 0.01
    est = estimate_bits(data, None, schedule=replace(FAST, head_lr=0.01), **kw)
    assert est.coded == pytest.approx(r.model_bits, rel=1e-4)
    plain = estimate_bits(data, None, schedule=FAST, **kw)
    assert est.network < plain.network  # updating the output layer every byte learns faster


@pytest.mark.parametrize("mix", [None, MixConfig()], ids=["network", "mixed"])
def test_lagged_training_codes_one_segment_behind_in_a_thread_and_round_trips(shakespeare, mix, monkeypatch):
    """lag 1: segment r+1 is coded while the network trains on the text through segment r in a
    second thread. The decoder sees the same probabilities bit for bit; training inline instead
    of in the thread gives the same file; the estimate matches; and the weights are one round
    behind: the first two segments are coded by the untrained network (as with lr 0), the third
    by a trained one."""
    import bitlens.compress.loop as loop

    data = (b"the cat sat on the mat. " * 60)[:1400]
    lag = replace(FAST, lag=1)
    kw = dict(online=True, preset=MICRO, n_streams=1, mix=mix)
    enc, dec, frozen = [], [], []
    blob, r = compress(data, None, schedule=lag, trace=enc, **kw)
    assert decompress(blob, trace=dec) == data and len(enc) == len(dec) == len(data)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(enc, dec, strict=True))
    assert OnlineConfig(*read_header(blob).params["schedule"]).lag == 1
    est = estimate_bits(data, None, schedule=lag, **kw)
    assert est.coded == pytest.approx(r.model_bits, rel=1e-4)
    compress(data, None, schedule=replace(lag, lr=0.0), trace=frozen, **kw)
    seg = FAST.segment
    assert all(a.tobytes() == b.tobytes() for a, b in zip(enc[: 2 * seg], frozen[: 2 * seg], strict=True))
    assert any(a.tobytes() != b.tobytes() for a, b in zip(enc[2 * seg : 3 * seg], frozen[2 * seg : 3 * seg]))
    assert r.model_bits / len(data) < 3.5  # it still learns the 24-byte period
    inline = loop.LaggedTraining
    monkeypatch.setattr(loop, "LaggedTraining", lambda m, cfg, threaded: inline(m, cfg, threaded=False))
    assert compress(data, None, schedule=lag, **kw)[0] == blob


def test_a_lag_other_than_0_or_1_is_refused_and_old_schedules_mean_lag_0():
    with pytest.raises(ValueError, match="lag"):
        OnlineConfig(lr=1e-3, lag=2)
    fields = list(astuple(FAST))
    assert OnlineConfig(*fields[:-2]).lag == 0  # a version-3 header's schedule
    assert OnlineConfig(*fields[:-1]).final_lr == 0.0  # a version-4 header's: a constant rate


def test_a_falling_learning_rate_reaches_final_lr_at_the_last_segment_and_round_trips(shakespeare):
    falling = replace(FAST, lr=4e-3, final_lr=1e-3, warmup_rounds=4)
    assert [round(round_lr(falling, r, 10), 6) for r in (0, 3, 5, 10)] == [1e-3, 3.1e-3, 2.5e-3, 1e-3]
    assert round_lr(FAST, 7, 10) == FAST.lr  # final_lr 0: constant
    with pytest.raises(ValueError, match="final_lr"):
        OnlineConfig(lr=1e-3, final_lr=-1e-3)
    data = shakespeare[:1500]
    kw = dict(online=True, preset=MICRO, n_streams=2, mix=MixConfig())
    blob, r = roundtrip(data, None, schedule=falling, **kw)
    assert OnlineConfig(*read_header(blob).params["schedule"]).final_lr == 1e-3
    assert blob != compress(data, None, schedule=replace(falling, final_lr=0.0), **kw)[0]
    assert estimate_bits(data, None, schedule=falling, **kw).coded == pytest.approx(r.model_bits, rel=1e-4)
