"""Known answers: a trained model codes a Markov source at its entropy rate (within 5 %)."""

import pytest

from bitlens.measures.sources import random_markov_source
from bitlens.measures.validate import check_model_vs_entropy_rate, check_random_bytes_incompressible


def test_model_reaches_order1_markov_entropy_rate():
    source = random_markov_source(order=1, alphabet_size=8, seed=0)
    check = check_model_vs_entropy_rate(source, 65_536, steps=300)
    assert check.passed, check
    assert abs(check.relative_error) <= 0.05


@pytest.mark.slow
def test_model_reaches_order2_markov_entropy_rate_on_1mb():
    # The validate --full setting. At lr 1e-2 this model stalls at the order-0 entropy
    # (2.985 bits/byte); at 3e-3 and 3000 steps it reached 2.271 on 128 KiB (rate 2.248).
    source = random_markov_source(order=2, alphabet_size=8, seed=0)
    check = check_model_vs_entropy_rate(source, 1_048_576, steps=3000, lr=3e-3)
    assert check.passed, check


@pytest.mark.slow
def test_no_measure_compresses_random_bytes():
    check = check_random_bytes_incompressible(65_536, steps=300)
    assert check.passed, check
