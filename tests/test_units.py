import math

import torch

from bitlens.units import entropy_bits, nats_to_bits, surprisal_bits


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
