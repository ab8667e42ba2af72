import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bitlens.errors import BitlensError
from bitlens.units import (
    entropy_bits,
    nats_to_bits,
    smoothed_surprisal_bits,
    smoothing_cap_bits,
    surprisal_bits,
)


def test_nats_to_bits_known_values():
    assert nats_to_bits(math.log(2)) == 1.0
    assert math.isclose(nats_to_bits(math.log(256)), 8.0)


def test_uniform_logits_cost_eight_bits_per_byte():
    logits = torch.zeros(3, 5, 256)
    targets = torch.randint(0, 256, (3, 5))
    assert torch.allclose(surprisal_bits(logits, targets), torch.full((3, 5), 8.0))
    assert torch.allclose(entropy_bits(logits), torch.full((3, 5), 8.0))


def test_surprisal_matches_pytorch_cross_entropy_in_bits():
    logits = torch.randn(4, 256)
    targets = torch.randint(0, 256, (4,))
    ce_nats = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.allclose(surprisal_bits(logits, targets), ce_nats / math.log(2), atol=1e-5)


def test_entropy_of_two_point_distribution_is_one_bit():
    logits = torch.full((256,), -1e9)
    logits[3] = logits[7] = 0.0
    assert math.isclose(entropy_bits(logits).item(), 1.0, abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(1e-6, 1.0),
    st.floats(0.1, 1e4),  # logit scale: up to predictions of probability ~e^-10000 on the target
    st.integers(0, 2**32 - 1),
)
def test_smoothed_loss_never_exceeds_the_cap_and_is_the_mixture(epsilon, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 256, generator=gen) * scale
    targets = torch.randint(0, 256, (6,), generator=gen)
    targets[0] = logits[0].argmin()  # the most surprising byte there is
    bits = smoothed_surprisal_bits(logits, targets, epsilon)
    cap = smoothing_cap_bits(epsilon)
    assert cap == pytest.approx(math.log2(256 / epsilon))
    assert bits.dtype == torch.float64
    assert (bits >= 0).all() and (bits <= cap + 1e-12).all()
    p = torch.softmax(logits.double(), dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    expected = -torch.log2((1 - epsilon) * p + epsilon / 256)
    assert torch.allclose(bits, expected, rtol=1e-9, atol=1e-12)


def test_smoothing_known_values():
    certain = torch.full((2, 256), -1e4)
    certain[:, 7] = 0.0
    targets = torch.tensor([7, 8])
    eps = 0.05
    bits = smoothed_surprisal_bits(certain, targets, eps)
    # right: −log2(1 − ε + ε/256); wrong: exactly the cap log2(256/ε) = 12.32 bits
    assert bits[0].item() == pytest.approx(-math.log2(1 - eps + eps / 256))
    assert bits[1].item() == pytest.approx(smoothing_cap_bits(eps)) and smoothing_cap_bits(
        eps
    ) == pytest.approx(12.321928, abs=1e-6)
    assert torch.allclose(
        smoothed_surprisal_bits(certain, targets, 1.0), torch.full((2,), 8.0, dtype=torch.float64)
    )
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(BitlensError, match="smoothing"):
            smoothing_cap_bits(bad)
        with pytest.raises(BitlensError, match="smoothing"):
            smoothed_surprisal_bits(certain, targets, bad)
