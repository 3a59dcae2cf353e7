"""learning/experiments.py against statsmodels and scipy on a table of cases (issue 20), and the
always-valid sequential test's defining properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

from learning import experiments as ex

RATE_CASES = [(100, 1000, 120, 1000), (5, 50, 12, 60), (300, 5000, 280, 4000), (0, 30, 3, 30)]


def test_the_issues_reference_numbers() -> None:
    assert round(ex.two_proportion_ztest(100, 1000, 120, 1000).p_value, 4) == 0.1529
    assert round(ex.beta_binomial(100, 1000, 120, 1000).p_b_better, 3) == 0.923
    assert ex.sample_size_rates(0.05, 0.01, alpha=0.05, power=0.8) == 8143


@pytest.mark.parametrize(("x_a", "n_a", "x_b", "n_b"), RATE_CASES)
def test_two_proportion_ztest_equals_statsmodels(x_a: int, n_a: int, x_b: int, n_b: int) -> None:
    mine = ex.two_proportion_ztest(x_a, n_a, x_b, n_b)
    z, p = proportions_ztest([x_b, x_a], [n_b, n_a])
    assert mine.statistic == pytest.approx(z, rel=1e-9)
    assert mine.p_value == pytest.approx(p, rel=1e-9)
    assert mine.low < mine.estimate < mine.high or mine.low == mine.high


@pytest.mark.parametrize(
    ("base", "mde", "alpha", "power", "ratio"),
    [(0.05, 0.01, 0.05, 0.8, 1.0), (0.2, -0.05, 0.01, 0.9, 1.0), (0.02, 0.004, 0.05, 0.8, 2.0)],
)
def test_sample_size_and_power_for_rates_equal_statsmodels(
    base: float, mde: float, alpha: float, power: float, ratio: float
) -> None:
    h = proportion_effectsize(base + mde, base)
    expected = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    n = ex.sample_size_rates(base, mde, alpha=alpha, power=power, ratio=ratio)
    assert n == math.ceil(expected)
    assert ex.power_rates(base, mde, n, alpha=alpha, ratio=ratio) == pytest.approx(
        NormalIndPower().power(effect_size=h, nobs1=n, alpha=alpha, ratio=ratio), rel=1e-9
    )
    assert ex.power_rates(base, mde, n, alpha=alpha, ratio=ratio) >= power


def test_sample_size_for_counts_is_the_normal_approximation_with_their_variance() -> None:
    mean, mde, k = 3.0, 0.6, 0.8
    va, vb = ex.count_variance(mean, k), ex.count_variance(mean + mde, k)
    assert va == pytest.approx(3.0 + 9.0 / 0.8)
    d = mde / math.sqrt((va + vb) / 2)  # NormalIndPower's effect size with the mean variance
    expected = NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.0)
    assert ex.sample_size_counts(mean, mde, dispersion=k) == math.ceil(expected)
    assert ex.sample_size_counts(mean, mde) < ex.sample_size_counts(mean, mde, dispersion=k)


def test_welch_ttest_equals_statsmodels() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.negative_binomial(1, 0.3, 40), rng.negative_binomial(1, 0.25, 55)
    mine = ex.welch_ttest(a, b)
    t, p, _dof = sm_ttest_ind(b, a, usevar="unequal")
    assert mine.statistic == pytest.approx(t, rel=1e-9)
    assert mine.p_value == pytest.approx(p, rel=1e-9)
    assert mine.estimate == pytest.approx(b.mean() - a.mean())
    assert mine.low < mine.estimate < mine.high


def test_rank_test_finds_a_known_shift_of_heavy_tailed_counts() -> None:
    rng = np.random.default_rng(11)
    a = rng.negative_binomial(2, 0.4, 300).astype(float)
    b = rng.negative_binomial(2, 0.4, 300) + 2.0
    shifted = ex.rank_test(a, b)
    assert shifted.p_value < 1e-6
    assert shifted.low <= 2.0 <= shifted.high
    same = ex.rank_test(a, rng.negative_binomial(2, 0.4, 300))
    assert same.p_value > 0.01 and same.low <= 0.0 <= same.high


def test_bayesian_probability_and_expected_loss_match_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    rates = ex.beta_binomial(40, 400, 52, 410)
    a, b = rng.beta(41, 361, 400_000), rng.beta(53, 359, 400_000)
    assert rates.p_b_better == pytest.approx((b > a).mean(), abs=0.003)
    assert rates.loss_b == pytest.approx(np.maximum(a - b, 0).mean(), rel=0.02)
    assert rates.loss_a == pytest.approx(np.maximum(b - a, 0).mean(), rel=0.02)
    counts = ex.gamma_poisson(150.0, 60, 190.0, 58)
    ga = rng.gamma(150.5, 1 / (60 + 1e-3), 400_000)
    gb = rng.gamma(190.5, 1 / (58 + 1e-3), 400_000)
    assert counts.p_b_better == pytest.approx((gb > ga).mean(), abs=0.003)
    assert counts.loss_b == pytest.approx(np.maximum(ga - gb, 0).mean(), rel=0.03)


def test_best_of_several_variants() -> None:
    rng = np.random.default_rng(8)
    draws = ex.beta_draws([30, 45, 31], [300, 300, 300], rng)
    p_best, loss = ex.best_of(draws)
    assert p_best.sum() == pytest.approx(1.0)
    assert int(np.argmax(p_best)) == 1 and p_best[1] > 0.9
    assert int(np.argmin(loss)) == 1 and loss[1] < loss[0]


def test_holm_equals_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert ex.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_regression_adjusted_difference_equals_statsmodels_ols() -> None:
    rng = np.random.default_rng(2)
    n = 120
    x = rng.normal(size=(n, 2))
    b = rng.integers(0, 2, n).astype(bool)
    y = 1.0 + 0.4 * b + x @ np.array([0.8, -0.3]) + rng.normal(scale=0.5, size=n)
    mine = ex.adjusted_difference(y, b, x)
    fit = sm.OLS(y, np.column_stack([np.ones(n), b.astype(float), x])).fit()
    assert mine.estimate == pytest.approx(fit.params[1], rel=1e-9)
    assert mine.p_value == pytest.approx(fit.pvalues[1], rel=1e-6)
    low, high = fit.conf_int()[1]
    assert (mine.low, mine.high) == pytest.approx((low, high), rel=1e-6)


def test_cuped_removes_the_predicted_part_and_keeps_the_difference() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    x = rng.normal(size=n)
    b = rng.integers(0, 2, n).astype(bool)
    y = 0.3 * b + 2.0 * x + rng.normal(size=n)
    adjusted, theta = ex.cuped(y, x)
    assert theta[0] == pytest.approx(2.0, abs=0.1)
    assert adjusted.var() < 0.3 * y.var()
    raw = y[b].mean() - y[~b].mean()
    after = adjusted[b].mean() - adjusted[~b].mean()
    assert after == pytest.approx(0.3, abs=0.1) and abs(raw - after) < 0.2


def test_msprt_likelihood_ratio_and_boundary_agree() -> None:
    variance, tau, alpha = 0.04, 0.3, 0.05
    z = ex.msprt_boundary(variance, tau, alpha)
    assert ex.msprt_lambda(z * math.sqrt(variance), variance, tau) == pytest.approx(1 / alpha)
    assert ex.msprt_lambda(0.0, variance, tau) < 1.0  # no difference: evidence for none
    assert z > 1.96  # stricter than one fixed-horizon look


def test_sequential_p_value_never_rises_and_waits_for_the_minimum_sample() -> None:
    rng = np.random.default_rng(9)
    test = ex.Sequential(tau=0.5)
    a: list[float] = []
    b: list[float] = []
    seen = []
    for _ in range(200):
        a.append(float(rng.normal()))
        b.append(float(rng.normal(0.6)))
        seen.append(test.update(a, b))
    assert seen[: ex.MIN_PER_VARIANT - 1] == [1.0] * (ex.MIN_PER_VARIANT - 1)
    assert all(later <= earlier for earlier, later in itertools.pairwise(seen))
    assert test.rejected  # a 0.6 sd effect over 200 posts a variant


def test_sequential_sample_size_exceeds_the_fixed_horizon_one() -> None:
    fixed = ex.sample_size_counts(3.0, 0.6, dispersion=0.8)
    sd_a = math.sqrt(ex.count_variance(3.0, 0.8))
    sd_b = math.sqrt(ex.count_variance(3.6, 0.8))
    sequential = ex.sequential_sample_size(sd_a, sd_b, 0.6)
    assert fixed < sequential < 4 * fixed


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ex.sample_size_rates(0.05, 0.01, alpha=1.5), "alpha"),
        (lambda: ex.sample_size_rates(0.05, 0.0), "minimum detectable effect"),
        (lambda: ex.two_proportion_ztest(5, 3, 1, 10), "successes"),
        (lambda: ex.welch_ttest([1.0], [2.0, 3.0]), "two observations"),
    ],
)
def test_bad_input_is_a_clear_value_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_msprt_path_is_the_sequential_test_updated_after_every_pair() -> None:
    rng = np.random.default_rng(12)
    a = rng.negative_binomial(1, 0.25, 80).astype(float)
    b = rng.negative_binomial(1, 0.2, 80).astype(float)
    path = ex.msprt_path(a, b, tau=1.0)
    test = ex.Sequential(tau=1.0)
    stepwise = [test.update(a[: i + 1], b[: i + 1]) for i in range(a.size)]
    assert path == pytest.approx(stepwise, rel=1e-9)


def test_msprt_path_with_covariates_is_the_test_on_cuped_adjusted_outcomes() -> None:
    rng = np.random.default_rng(13)
    n = 60
    x_a, x_b = rng.normal(size=n), rng.normal(size=n)
    a = 3 + 2 * x_a + rng.normal(size=n)
    b = 3.5 + 2 * x_b + rng.normal(size=n)
    path = ex.msprt_path(a, b, tau=0.5, x_a=x_a, x_b=x_b)
    for i in (ex.MIN_PER_VARIANT - 1, 30, n - 1):  # one look, from scratch, at a few points
        k = i + 1
        y = np.concatenate([a[:k], b[:k]])
        adjusted, _theta = ex.cuped(y, np.concatenate([x_a[:k], x_b[:k]]))
        one = ex.Sequential(tau=0.5)
        expected = one.update(adjusted[:k], adjusted[k:])
        assert path[i] <= expected + 1e-9  # the path keeps the smallest p so far
        if i == ex.MIN_PER_VARIANT - 1:
            assert path[i] == pytest.approx(expected, rel=1e-9)
