"""Posterior families: conjugate updates, intervals, sampling, discounting, serialisation."""

import math

import numpy as np
import pytest
from scipy import stats

from learning.posteriors import (
    BetaBernoulli,
    GammaPoisson,
    posterior_from_dict,
    prior_from_config,
)
from learning.reward import reward


def test_gamma_poisson_conjugate_update_adds_reward_to_shape_and_weight_to_rate():
    post = GammaPoisson(2.0, 1.0).updated(3.0)
    assert post == GammaPoisson(5.0, 2.0)
    assert post.mean == pytest.approx(2.5)

    weighted = GammaPoisson(2.0, 1.0).updated(2.4, weight=0.5)
    assert weighted.shape == pytest.approx(3.2)
    assert weighted.rate == pytest.approx(1.5)


def test_gamma_poisson_update_sequence_equals_batch_update():
    rewards = [0, 1, 4, 0, 2.5, 7]
    post = GammaPoisson(1.0, 0.5)
    for r in rewards:
        post = post.updated(r)
    assert post.shape == pytest.approx(1.0 + sum(rewards))
    assert post.rate == pytest.approx(0.5 + len(rewards))


def test_gamma_poisson_update_rejects_negative_reward():
    with pytest.raises(ValueError):
        GammaPoisson(1.0, 1.0).updated(-1.0)
    with pytest.raises(ValueError):
        GammaPoisson(1.0, 1.0).updated(1.0, weight=-0.5)
    with pytest.raises(ValueError):
        GammaPoisson(1.0, 1.0).updated(math.nan)


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        GammaPoisson(0.0, 1.0)
    with pytest.raises(ValueError):
        GammaPoisson(1.0, -1.0)
    with pytest.raises(ValueError):
        BetaBernoulli(1.0, 0.0)


def test_interval_is_the_equal_tailed_gamma_quantiles_and_contains_the_mean():
    post = GammaPoisson(7.0, 2.0)
    low, high = post.interval(0.9)
    assert low == pytest.approx(stats.gamma.ppf(0.05, 7.0, scale=0.5))
    assert high == pytest.approx(stats.gamma.ppf(0.95, 7.0, scale=0.5))
    assert low < post.mean < high
    assert post.interval(0.5)[1] - post.interval(0.5)[0] < high - low


def test_interval_narrows_with_data():
    rng = np.random.default_rng(1)
    post = prior_from_config(3.0, 1.0)
    widths = []
    for n in range(1, 201):
        post = post.updated(float(rng.poisson(3.0)))
        if n in (5, 50, 200):
            low, high = post.interval()
            assert low < post.mean < high
            widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert post.interval()[0] < 3.0 < post.interval()[1]


def test_sample_matches_the_posterior_mean_and_returns_a_float_without_size():
    rng = np.random.default_rng(0)
    post = GammaPoisson(6.0, 2.0)
    assert isinstance(post.sample(rng), float)
    draws = post.sample(rng, size=20_000)
    assert isinstance(draws, np.ndarray)
    assert draws.shape == (20_000,)
    assert draws.mean() == pytest.approx(3.0, rel=0.03)
    assert draws.var() == pytest.approx(1.5, rel=0.08)


def test_discounting_moves_toward_the_prior():
    prior = prior_from_config(2.0, 1.0)
    post = prior.updated(10.0).updated(9.0).updated(11.0)  # mean 8.25, rate 4
    half = post.discounted(0.5, prior)
    assert half.shape == pytest.approx(prior.shape + 0.5 * (post.shape - prior.shape))
    assert half.rate == pytest.approx(prior.rate + 0.5 * (post.rate - prior.rate))
    assert prior.mean < half.mean < post.mean
    # less evidence -> wider interval again
    assert half.interval()[1] - half.interval()[0] > post.interval()[1] - post.interval()[0]
    assert post.discounted(1.0, prior) == post
    # repeated forgetting converges to the prior
    far = post
    for _ in range(200):
        far = far.discounted(0.9, prior)
    assert far.shape == pytest.approx(prior.shape)
    assert far.rate == pytest.approx(prior.rate)


@pytest.mark.parametrize("factor", [0.0, -0.1, 1.5])
def test_discount_factor_must_be_in_unit_interval(factor):
    prior = prior_from_config(1.0, 1.0)
    with pytest.raises(ValueError):
        prior.updated(1.0).discounted(factor, prior)


def test_prior_from_config_has_the_given_mean_and_strength():
    prior = prior_from_config(2.5, 4.0)
    assert prior == GammaPoisson(10.0, 4.0)
    assert prior.mean == pytest.approx(2.5)
    assert prior.strength == 4.0
    with pytest.raises(ValueError):
        prior_from_config(0.0, 1.0)
    with pytest.raises(ValueError):
        prior_from_config(1.0, 0.0)


def test_dict_round_trip():
    post = GammaPoisson(3.5, 2.25)
    d = post.as_dict()
    assert d == {"family": "gamma_poisson", "shape": 3.5, "rate": 2.25}
    assert GammaPoisson.from_dict(d) == post
    assert posterior_from_dict(d) == post
    beta = BetaBernoulli(2.0, 5.0)
    assert BetaBernoulli.from_dict(beta.as_dict()) == beta
    assert posterior_from_dict(beta.as_dict()) == beta
    with pytest.raises(ValueError):
        GammaPoisson.from_dict(beta.as_dict())
    with pytest.raises(ValueError):
        posterior_from_dict({"family": "gaussian"})


def test_beta_bernoulli_update_interval_and_discount():
    prior = BetaBernoulli(1.0, 1.0)
    post = prior.updated(1.0).updated(0.0).updated(1.0).updated(0.5, weight=2.0)
    assert post.alpha == pytest.approx(4.0)
    assert post.beta == pytest.approx(3.0)
    assert post.mean == pytest.approx(4.0 / 7.0)
    low, high = post.interval(0.9)
    assert low == pytest.approx(stats.beta.ppf(0.05, 4.0, 3.0))
    assert 0.0 < low < post.mean < high < 1.0
    half = post.discounted(0.5, prior)
    assert half == BetaBernoulli(2.5, 2.0)
    draws = post.sample(np.random.default_rng(3), size=10_000)
    assert draws.mean() == pytest.approx(post.mean, abs=0.01)
    with pytest.raises(ValueError):
        prior.updated(1.5)


def test_reward_by_objective_clamps_at_zero():
    assert reward("followers", followers_gained=3.5, engagements=40) == 3.5
    assert reward("engagement", followers_gained=3.5, engagements=40) == 40.0
    assert reward("followers", followers_gained=-2.0, engagements=40) == 0.0
    assert reward("engagement", followers_gained=1.0, engagements=-1) == 0.0
    with pytest.raises(ValueError):
        reward("likes", followers_gained=1.0, engagements=1.0)
    with pytest.raises(ValueError):
        reward("followers", followers_gained=math.inf, engagements=1.0)
