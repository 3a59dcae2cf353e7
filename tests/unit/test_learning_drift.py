"""Change detection (learning/drift.py) and the joint learner's split at a change."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.drift import Series, detect, drop_glr
from learning.policies import Joint, Outcome

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_drop_glr_is_the_quasi_poisson_likelihood_ratio_of_a_split() -> None:
    y = np.array([10.0] * 10 + [4.0] * 10)
    mu = np.full(20, 7.0)
    g = drop_glr(y, mu, phi=2.0, min_posts=5)
    # split at post 10: 100 against 70 before, 40 against 70 after, 140 against 140 in all
    expected = 2.0 / 2.0 * (100 * math.log(100 / 70) + 40 * math.log(40 / 70) - 0.0)
    assert g[10] == pytest.approx(expected)
    assert int(np.argmax(g)) == 10
    assert np.all(g[:5] == 0.0) and np.all(g[16:] == 0.0)  # fewer than 5 posts on a side


def test_drop_glr_ignores_a_constant_misfit() -> None:
    """An arm the model over-predicts all along has not changed."""
    rng = np.random.default_rng(2)
    y = rng.poisson(4.0, size=60).astype(float)
    assert float(drop_glr(y, np.full(60, 8.0), phi=1.0).max()) < 10.0


def test_drop_glr_ignores_rises() -> None:
    y = np.array([4.0] * 10 + [10.0] * 10)  # the arm got better: good news, not a change
    assert np.all(drop_glr(y, np.full(20, 7.0), phi=1.0) == 0.0)


def _series(values: list[float], mean: float) -> Series:
    return Series(np.array(values), np.full(len(values), mean), 1.0)


def test_detect_finds_the_arm_that_dropped_and_where() -> None:
    rng = np.random.default_rng(3)
    arms = ["a", "b"] * 60
    times = [START + timedelta(hours=6 * i) for i in range(120)]
    y = [float(rng.poisson(8.0 if (arm == "b" or i < 80) else 3.0)) for i, arm in enumerate(arms)]
    change = detect(arms, times, "content_type", _series(y, 7.0), None, threshold=20.0)
    assert change is not None
    assert (change.dimension, change.arm) == ("content_type", "a")
    assert abs((change.at - times[80]).total_seconds()) <= 4 * 6 * 3600  # within 4 posts
    assert 0.25 < change.ratio < 0.6  # 3 against 8


def test_detect_stays_quiet_on_a_stationary_series() -> None:
    rng = np.random.default_rng(4)
    arms = ["a", "b", "c"] * 100
    times = [START + timedelta(hours=6 * i) for i in range(300)]
    y = [float(rng.poisson(6.0)) for _ in arms]
    assert detect(arms, times, "content_type", _series(y, 6.0), None, threshold=20.0) is None


def test_detect_looks_only_at_the_current_era() -> None:
    arms = ["a"] * 40
    times = [START + timedelta(hours=6 * i) for i in range(40)]
    y = [8.0] * 10 + [2.0] * 30  # dropped at post 10
    series = _series(y, 4.0)
    found = detect(arms, times, "ct", series, None, threshold=5.0)
    assert found is not None and found.at == times[10]
    # after a split there the era from post 10 on is flat: nothing more to find
    assert detect(arms, times, "ct", series, None, threshold=5.0, since=times[10]) is None


def _drifting_history(days: int, change_day: int, seed: int = 0) -> list[Outcome]:
    """Four posts a day; content type a pays 8 until ``change_day``, then 3; b pays 4, then 9.
    The history is what a learner that kept playing a would have: 85% a."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(days * 4):
        t = START + timedelta(hours=6 * i)
        after = i >= change_day * 4
        ct = "a" if rng.random() < 0.85 else str(rng.choice(["b", "c", "d"]))
        mean = {"a": 3.0 if after else 8.0, "b": 9.0 if after else 4.0}.get(ct, 4.0)
        eng = {"a": 20.0 if after else 40.0, "b": 45.0 if after else 20.0}.get(ct, 20.0)
        out.append(
            Outcome(
                arms={"content_type": ct, "formula": "x"},
                posted_at=t,
                reward=float(rng.poisson(mean)),
                engagements=float(rng.poisson(eng)),
                hours_observed=24.0,
            )
        )
    return out


CATALOGUE = {"content_type": ["a", "b", "c", "d"], "formula": ["x", "y"]}


def _picks(policy: Joint, past: list[Outcome], now: datetime, draws: int = 60) -> Counter[str]:
    rng = np.random.default_rng(7)
    counts: Counter[str] = Counter()
    state = None
    for _ in range(draws):
        chosen, state = policy.choose(past, CATALOGUE, now, rng, state)
        counts[chosen["content_type"]] += 1
    return counts


def test_joint_splits_a_dimension_at_a_drop_and_explores_it_again() -> None:
    past = _drifting_history(days=60, change_day=45)
    now = START + timedelta(days=60)
    watching = Joint(interaction=None, change_threshold=20.0)
    blind = Joint(interaction=None)

    posterior, state = watching.posterior(past, CATALOGUE, now)
    assert [(c.dimension, c.arm) for c in state.changes] == [("content_type", "a")]
    assert abs((state.changes[0].at - (START + timedelta(days=45))).days) <= 4
    assert posterior.retired == frozenset({"content_type@0"})
    assert posterior.dimensions() == ["content_type", "formula"]

    moved = _picks(watching, past, now)
    stuck = _picks(blind, past, now)
    assert stuck["a"] > 0.8 * sum(stuck.values())  # old evidence keeps a on top
    assert moved["a"] < 0.5 * sum(moved.values())  # a's new era shows 3: others are tried


def test_joint_change_detection_finds_nothing_without_a_change() -> None:
    past = _drifting_history(days=60, change_day=10_000)
    policy = Joint(interaction=None, change_threshold=20.0)
    _posterior, state = policy.posterior(past, CATALOGUE, START + timedelta(days=60))
    assert state.changes == ()


def test_joint_finds_the_changes_again_from_the_history_alone() -> None:
    """The changes are a cache: a policy given no state (a restart) finds the change again, and
    plan-by-plan detection (the state passed along) finds it at about the same time."""
    past = _drifting_history(days=60, change_day=45)
    now = START + timedelta(days=60)
    policy = Joint(interaction=None, change_threshold=20.0)
    online = None
    for day in range(40, 61):  # plan after plan, as the history grows
        _posterior, online = policy.posterior(
            [o for o in past if o.posted_at < START + timedelta(days=day)], CATALOGUE, now, online
        )
    assert online is not None
    _posterior, restarted = policy.posterior(past, CATALOGUE, now)

    change_day = START + timedelta(days=45)
    for found in (online.changes, restarted.changes):
        assert found and {c.dimension for c in found} == {"content_type"}
        assert all(abs((c.at - change_day).total_seconds()) <= 3 * 86400 for c in found)


def test_the_drop_test_uses_the_negative_binomial_variance() -> None:
    """With negative binomial counts the fit's dispersion is 1; the drop test must still see
    the counts' real variance (mu + mu^2/k), or ordinary noise looks like a change."""
    from learning.joint import Design, Row, fit
    from learning.joint_policy import _series

    rng = np.random.default_rng(4)
    catalogue = {"content_type": ["a", "b", "c"]}
    rows = []
    for i in range(450):
        arm = "abc"[i % 3]
        mu = {"a": 12.0, "b": 9.0, "c": 6.0}[arm]
        rows.append(Row({"content_type": arm}, float(rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))))
    design = Design(catalogue)
    sd = np.full(design.size, 1.0)
    sd[0] = 3.0
    result = fit(design, rows, prior_mean=np.zeros(design.size), prior_sd=sd, negbin=True)
    order = list(range(len(rows)))
    series = _series(result, rows, order)
    arms = [r.arms["content_type"] for r in rows]
    times = [START + timedelta(hours=6 * i) for i in range(len(rows))]

    assert series.phi > 3.0  # 1 + mu/k averaged by mu: about 1 + 10/2
    quiet = detect(arms, times, "content_type", series, None, 0.0)
    naive = detect(
        arms, times, "content_type", Series(series.y, series.mu, result.dispersion), None, 0.0
    )
    assert quiet is not None and naive is not None
    assert quiet.statistic < 15.0  # no change in these posts
    assert naive.statistic > 3 * quiet.statistic


def test_a_viral_post_early_in_an_arms_series_is_not_a_drop() -> None:
    """One post with 40x the usual count early on: uncapped, every later stretch looks like a
    drop; each count enters the test at most CAP_SD standard deviations above its mean."""
    rng = np.random.default_rng(6)
    arms = ["a"] * 120
    times = [START + timedelta(hours=6 * i) for i in range(120)]
    y = [float(rng.poisson(6.0)) for _ in arms]
    y[10] = 240.0
    series = _series(y, 6.0)

    uncapped = float(drop_glr(series.y, series.mu, series.phi).max())
    found = detect(arms, times, "content_type", series, None, threshold=0.0)

    assert uncapped > 50.0
    assert found is not None and found.statistic < 15.0


def test_the_forgetting_gate_opens_on_a_drop_and_the_learner_moves() -> None:
    """Gated forgetting (learning.forget_threshold): a clear drop opens the gate, from then on
    older posts fade with the half-life and the learner leaves the arm that fell."""
    past = _drifting_history(days=75, change_day=45)
    now = START + timedelta(days=75)
    gated = Joint(interaction=None, forget_threshold=20.0)
    posterior, state = gated.posterior(past, CATALOGUE, now)
    assert state.forgetting == now
    assert state.changes == ()  # no split: the whole history is still one era
    assert posterior.fit.n < 0.5 * len(past)  # weighted: 30-day half-life over 75 days

    moved = _picks(gated, past, now)
    stuck = _picks(Joint(interaction=None), past, now)
    assert stuck["a"] > 0.8 * sum(stuck.values())
    assert moved["a"] < 0.5 * sum(moved.values())


def test_the_forgetting_gate_stays_shut_without_a_change() -> None:
    past = _drifting_history(days=75, change_day=10_000)
    gated = Joint(interaction=None, forget_threshold=20.0)
    posterior, state = gated.posterior(past, CATALOGUE, START + timedelta(days=75))
    assert state.forgetting is None
    assert 0.0 < state.peak < 20.0  # the test ran, and noise stayed under the gate
    assert posterior.fit.n == pytest.approx(len(past))  # nothing forgotten


def test_an_open_gate_stays_open_and_a_restart_opens_it_again() -> None:
    past = _drifting_history(days=75, change_day=45)
    gated = Joint(interaction=None, forget_threshold=20.0)
    state = None
    opened = None
    for day in range(40, 76, 5):  # plan after plan, as the history grows
        now = START + timedelta(days=day)
        _posterior, state = gated.posterior(
            [o for o in past if o.posted_at < now], CATALOGUE, now, state
        )
        if opened is None and state.forgetting is not None:
            opened = state.forgetting
    assert opened is not None and opened > START + timedelta(days=45)
    assert state is not None and state.forgetting == opened  # kept, not re-tested
    _posterior, restarted = gated.posterior(past, CATALOGUE, START + timedelta(days=75))
    assert restarted.forgetting is not None
