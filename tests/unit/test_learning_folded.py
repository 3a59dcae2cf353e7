"""Old posts folded into a quadratic (learning/folded.py): bounded cost per plan, same fits."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.design import Design, Row
from learning.fit import fit, nb_loglik, pearson_sum, score
from learning.folded import fold
from learning.joint_policy import FOLD_BATCH, FOLD_WINDOW, Joint, JointState
from learning.outcomes import Outcome

CATALOGUE = {"content_type": ["a", "b", "c"], "formula": ["f1", "f2"], "hook": ["h1", "h2"]}
EFFECT = {"a": 0.4, "b": 0.0, "c": -0.3}
START = datetime(2026, 1, 1, tzinfo=UTC)


def negbin_rows(n: int, seed: int, shape: float = 2.0) -> list[Row]:
    """Negative binomial counts with a content-type effect, a growing covariate and a few
    outliers far past the Huber bound."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arms = {d: str(rng.choice(a)) for d, a in CATALOGUE.items()}
        mu = 3.0 * math.exp(EFFECT[arms["content_type"]] + 0.3 * i / n)
        y = float(rng.negative_binomial(shape, shape / (shape + mu)))
        if rng.random() < 0.02:
            y *= 10
        rows.append(Row(arms, y, z=i / n, key=i + 1))
    return rows


def design(catalogue: dict[str, list[str]] = CATALOGUE) -> Design:
    return Design(catalogue, ("formula", "hook"), True)


def priors(size: int) -> tuple[np.ndarray, np.ndarray]:
    sd = np.full(size, 0.5)
    sd[0] = 3.0
    return np.zeros(size), sd


def exact_score(d: Design, rows: list[Row], theta: np.ndarray, shape: float) -> np.ndarray:
    x = d.rows_layout(rows)
    y = np.array([r.value for r in rows])
    return x.xt(score(y, np.exp(x.eta(theta)), shape)[0])


def test_a_fold_holds_the_score_and_information_of_its_posts_and_their_slope() -> None:
    d = design()
    rows = negbin_rows(400, seed=1)
    mean, sd = priors(d.size)
    theta = fit(d, rows, prior_mean=mean, prior_sd=sd, negbin=True).mean
    folded = fold(d, rows, theta, shape=2.0)

    x = d.rows_layout(rows)
    y = np.array([r.value for r in rows])
    mu = np.exp(x.eta(theta))
    assert np.allclose(folded.gradient(theta), exact_score(d, rows, theta, 2.0), atol=1e-9)
    assert np.allclose(folded.hess, x.gram(score(y, mu, 2.0)[1]), atol=1e-9)
    assert np.allclose(folded.shape_loglik, nb_loglik(y, mu, np.ones(len(y))))
    assert folded.pearson == pytest.approx(pearson_sum(y, mu, np.ones(len(y))))
    assert (folded.count, folded.n) == (400, 400.0)
    # the slope is minus the score's derivative (Huber-clipped posts included), by differences
    eps = 1e-6
    numeric = np.column_stack(
        [
            (
                exact_score(d, rows, theta - eps * e, 2.0)
                - exact_score(d, rows, theta + eps * e, 2.0)
            )
            / (2 * eps)
            for e in np.eye(d.size)
        ]
    )
    assert np.allclose(folded.slope, numeric, rtol=1e-5, atol=1e-5)
    assert not np.allclose(folded.slope, folded.hess, rtol=1e-3)  # observed, not expected


def test_a_fit_on_folded_posts_at_the_mode_is_the_fit_on_every_post() -> None:
    d = design()
    rows = negbin_rows(600, seed=3)
    mean, sd = priors(d.size)
    every = fit(d, rows, prior_mean=mean, prior_sd=sd, negbin=True)
    folded = fold(d, rows[:450], every.mean, shape=every.shape)

    part = fit(
        d,
        rows[450:],
        prior_mean=mean,
        prior_sd=sd,
        negbin=True,
        shape=every.shape,
        start=np.zeros(d.size),
        folded=folded,
    )

    assert np.max(np.abs(part.mean - every.mean)) < 1e-4  # Newton's tolerance
    assert np.allclose(part.cov, every.cov, rtol=1e-3, atol=1e-7)
    assert part.n == every.n


def test_folds_add_and_move_to_a_design_with_more_columns() -> None:
    d = design()
    rows = negbin_rows(300, seed=4)
    theta = np.random.default_rng(5).normal(0.0, 0.2, d.size)
    both = fold(d, rows[:120], theta, shape=3.0).plus(fold(d, rows[120:], theta, shape=3.0))
    once = fold(d, rows, theta, shape=3.0)
    for name in ("hess", "slope", "linear", "shape_loglik", "used"):
        assert np.allclose(getattr(both, name), getattr(once, name)), name
    assert (both.count, both.n, both.pearson) == (once.count, once.n, pytest.approx(once.pearson))

    wider = design({**CATALOGUE, "content_type": ["a", "new", "b", "c"]})  # columns move
    theta_wide = np.zeros(wider.size)
    for label, value in zip(d.labels(), theta, strict=True):
        theta_wide[wider.labels().index(label)] = value
    moved = once.on(wider)
    direct = fold(wider, rows, theta_wide, shape=3.0)
    assert moved is not None
    for name in ("hess", "slope", "linear", "used"):
        assert np.allclose(getattr(moved, name), getattr(direct, name)), name
    assert moved.gradient(theta_wide) == pytest.approx(direct.gradient(theta_wide))
    assert once.on(design({**CATALOGUE, "content_type": ["a", "b"]})) is None  # "c" is gone


def history(n: int, seed: int, in_flight: int = 4) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    out = []
    audience = 1000.0
    for i in range(n + in_flight):
        arms = {d: str(rng.choice(a)) for d, a in CATALOGUE.items()}
        mu = 2.0 * math.exp(EFFECT[arms["content_type"]])
        follows = float(rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))
        engagements = float(rng.poisson(20 * mu))
        out.append(
            Outcome(
                arms=arms,
                posted_at=START + timedelta(hours=6 * i),
                reward=follows if i < n else None,
                engagements=engagements if i < n else engagements / 2,
                hours_observed=48.0 if i < n else 3.0,
                audience=audience,
                key=i + 1,
            )
        )
        audience += follows
    return out


def plans(
    policy: Joint, posts: list[Outcome], first: int, count: int, state: JointState | None = None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], JointState]:
    """The posterior modes and sds of ``count`` plans, one more finished post each, the state
    carried."""
    means = []
    for done in range(first, first + count):
        past = [*posts[:done], *(replace(o, reward=None) for o in posts[done : done + 4])]
        posterior, state = policy.posterior(past, CATALOGUE, past[-1].posted_at, state)
        means.append((posterior.fit.mean, np.sqrt(np.diag(posterior.fit.cov))))
    assert state is not None
    return means, state


def test_the_joint_policy_folds_old_posts_and_plans_as_it_would_on_every_post() -> None:
    posts = history(FOLD_WINDOW + FOLD_BATCH + 80, seed=6)
    first = FOLD_WINDOW + FOLD_BATCH + 20  # the first plan folds; the next ones use the fold
    policy = Joint()
    folded_means, state = plans(policy, posts, first, 40)
    assert state.fold is not None and state.fold.objective.count >= FOLD_BATCH

    # a plan that re-estimates the shapes fits under the old ones and folds at the new ones,
    # which the next fits use
    stale = replace(state, fit=replace(state.fit, k_final=0.3, k_eng=0.3, hyper=None))
    _means, refreshed = plans(policy, posts, first + 40, 1, stale)
    assert refreshed.fold is not None and refreshed.fit.k_final != 0.3
    assert refreshed.fold.objective.shape == refreshed.fit.k_final
    assert refreshed.fold.auxiliary.shape == refreshed.fit.k_eng

    every_means, every_state = plans(Joint(fold_window=None), posts, first, 40)
    assert every_state.fold is None
    for (a, _sd), (b, sd) in zip(folded_means, every_means, strict=True):
        assert np.max(np.abs(a - b) / sd) < 0.01  # in posterior sds


def test_a_folded_post_that_changed_is_fit_again() -> None:
    posts = history(FOLD_WINDOW + FOLD_BATCH + 30, seed=7)
    policy = Joint()
    _means, state = plans(policy, posts, FOLD_WINDOW + FOLD_BATCH + 20, 2)
    assert state.fold is not None
    corrected = replace(posts[3], reward=(posts[3].reward or 0.0) + 40.0)  # a late correction
    changed = [*posts[:3], corrected, *posts[4:]]
    _means, after = plans(policy, changed, FOLD_WINDOW + FOLD_BATCH + 22, 1, state)
    assert after.fold is not None
    assert after.fold.outcomes[3] is corrected  # folded anew from the corrected history
