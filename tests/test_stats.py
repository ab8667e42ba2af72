"""bitlens.stats against known answers: coverage of a known mean, a known paired effect, Holm by hand."""

import numpy as np
import pytest

from bitlens.errors import BitlensError
from bitlens.stats import bootstrap_ci, holm, paired_test, t_interval


def test_bootstrap_interval_covers_a_known_mean_at_about_its_level():
    rng = np.random.default_rng(0)
    covered = 0
    trials = 200
    for t in range(trials):
        x = rng.normal(3.0, 1.0, 30)
        ci = bootstrap_ci(x, n_resamples=999, seed=t)
        assert ci.low < ci.estimate < ci.high and ci.n == 30
        covered += ci.low <= 3.0 <= ci.high
    # 95 % nominal; BCa on n = 30 normal data lands near it (binomial sd over 200 trials ≈ 1.5 %)
    assert 0.89 <= covered / trials <= 0.99


def test_bootstrap_interval_shrinks_with_more_seeds_and_serialises():
    rng = np.random.default_rng(1)
    small = bootstrap_ci(rng.normal(0, 1, 10), n_resamples=999)
    large = bootstrap_ci(rng.normal(0, 1, 1000), n_resamples=999)
    assert (large.high - large.low) < (small.high - small.low) / 5
    d = large.to_dict()
    assert d["n_seeds"] == 1000 and d["ci95"] == [large.low, large.high]
    one = bootstrap_ci([2.5])
    assert (one.low, one.high, one.n) == (2.5, 2.5, 1)


def test_t_interval_known_answer_and_coverage_with_three_seeds():
    # [1, 2, 3]: mean 2, standard error 1/√3, t(0.975, df 2) = 4.3027
    ci = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)
    assert (ci.estimate, ci.n) == (2.0, 3)
    assert ci.low == pytest.approx(2 - half) and ci.high == pytest.approx(2 + half)
    assert t_interval([4.0]).to_dict() == {"estimate": 4.0, "ci95": [4.0, 4.0], "n_seeds": 1}
    # three normal seeds: t covers ≈ 95 %, the bootstrap far less
    rng = np.random.default_rng(3)
    samples = rng.normal(0.0, 1.0, (200, 3))
    t_cover = np.mean([(c := t_interval(x)).low <= 0 <= c.high for x in samples])
    boot_cover = np.mean([(c := bootstrap_ci(x, n_resamples=199)).low <= 0 <= c.high for x in samples[:60]])
    assert 0.9 <= t_cover <= 0.99 and boot_cover < 0.85


def test_paired_test_finds_a_real_effect_and_reports_no_effect_as_such():
    rng = np.random.default_rng(2)
    base = rng.normal(2.0, 0.5, 12)  # seeds differ a lot; the paired effect is small and steady
    better = base - 0.1 + rng.normal(0, 0.02, 12)
    r = paired_test(better, base)
    assert r.p_value < 1e-6 and r.difference.high < 0 and not r.difference.includes_zero
    assert r.difference.estimate == pytest.approx(-0.1, abs=0.02)
    same = base + rng.normal(0, 0.02, 12)
    null = paired_test(same, base, test="wilcoxon")
    assert null.p_value > 0.05 and null.difference.includes_zero
    with pytest.raises(BitlensError, match="at least 2"):
        paired_test([1.0], [2.0])
    with pytest.raises(BitlensError, match="differ in number"):
        paired_test([1.0, 2.0], [2.0])


def test_holm_matches_the_step_down_rule_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5·2 capped at 1; monotone after it
    with pytest.raises(BitlensError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])
    with pytest.raises(BitlensError, match="NaN"):
        bootstrap_ci([1.0, float("nan")])


def test_block_mean_ci_covers_the_mean_of_an_autocorrelated_series():
    # AR(1) series with known mean 2.0: neighbouring items are correlated, so an interval over
    # blocks must be wider than the naive one over items, and it covers the true mean.
    from bitlens.stats import block_mean_ci

    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(20):
        e = rng.normal(size=4096)
        x = np.empty(4096)
        x[0] = e[0]
        for i in range(1, 4096):
            x[i] = 0.9 * x[i - 1] + e[i]
        x += 2.0
        iv = block_mean_ci(x, n_blocks=32, seed=trial)
        assert iv.estimate == pytest.approx(x.mean())
        assert iv.n == 32
        covered += iv.low <= 2.0 <= iv.high
        if trial == 0:
            naive = bootstrap_ci(x, n_resamples=999)
            assert (iv.high - iv.low) > 2.0 * (naive.high - naive.low)
    assert covered >= 16  # 95 % nominal over 20 trials (blocks of 128 items ≫ the AR(1) memory)


def test_block_mean_ci_of_a_constant_is_the_point():
    from bitlens.stats import block_mean_ci

    iv = block_mean_ci(np.full(100, 3.5), n_blocks=10)
    assert (iv.estimate, iv.low, iv.high, iv.n) == (3.5, 3.5, 3.5, 10)


def test_mean_ci95_is_the_t_interval_and_none_for_one_seed():
    from scipy import stats as st

    from bitlens.stats import mean_ci95

    assert mean_ci95([1.5]) is None
    half = st.t.ppf(0.975, 2) * 1.0 / 3**0.5  # values 1, 2, 3: sd 1
    assert mean_ci95([1.0, 2.0, 3.0]) == pytest.approx([2.0 - half, 2.0 + half])
