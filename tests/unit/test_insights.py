"""Insights (learning/insights.py) from the deciding model: a synthetic history with a known best
arm and a known anomaly is found with the stated confidence; a flat history gives no leader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agent.learner import catalogue_for, joint_policy
from learning.estimates import ArmEstimate, Estimates
from learning.insights import (
    CRITICAL_Z,
    LEADER_P_BEST,
    RETIRE_AFTER_POSTS,
    AccountInputs,
    HealthHour,
    Kind,
    PostRecord,
    Severity,
    account_insights,
    add_topics,
    cadence,
    conversion,
    failures,
    leaders,
    periods,
    platforms,
    retire,
    spend_per_follower,
)
from learning.outcomes import Outcome
from tests.conftest import make_config

NOW = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
BEST = ("content_type", "how_to")
POSTS = 360  # fifteen days at 24 a day: every content type about 50 times


def history(
    seed: int, *, lift: float, posts: int = POSTS
) -> tuple[list[Outcome], dict[str, list[str]]]:
    """Posts with arms drawn uniformly (a randomised history) and negative binomial followers
    (mean 4, the default sandbox's average post), ``lift`` times more for how_to."""
    config = make_config()
    catalogue = catalogue_for(config, config.accounts[0])
    rng = np.random.default_rng(seed)
    out = []
    for i in range(posts):
        arms = {d: str(rng.choice(arms)) for d, arms in catalogue.items()}
        mean = 4.0 * (lift if arms[BEST[0]] == BEST[1] else 1.0)
        followers = float(rng.negative_binomial(2.0, 2.0 / (2.0 + mean)))
        out.append(
            Outcome(
                arms=arms,
                posted_at=NOW - timedelta(hours=posts - i + 24),
                reward=followers,
                engagements=10 * followers + 5,
                hours_observed=24.0,
                key=i + 1,
            )
        )
    return out, catalogue


def belief(seed: int, *, lift: float) -> Estimates:
    """The deciding model's (the configured joint policy's) estimates of that history."""
    config = make_config()
    past, catalogue = history(seed, lift=lift)
    policy = joint_policy(config)
    return policy.estimates(past, catalogue, NOW, np.random.default_rng(seed), None)


def health(days: int, per_day: float, *, drop_to: float | None = None) -> list[HealthHour]:
    """Hourly rows over ``days`` days ending at NOW, ``per_day`` followers a day (noisy), the
    last two days at ``drop_to`` a day when given (the known anomaly)."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(days * 24, 0, -1):
        hour = NOW - timedelta(hours=k)
        rate = drop_to if drop_to is not None and k <= 48 else per_day
        rows.append(
            HealthHour(
                hour=hour,
                posts_succeeded=1 if k % 4 == 0 else 0,
                polls_due=1 if k % 4 == 0 else 0,
                polls_done=1 if k % 4 == 0 else 0,
                followers_gained=float(rng.poisson(rate / 24)),
                spend_usd=0.01,
            )
        )
    return rows


def test_known_best_arm_and_known_anomaly_are_found_with_the_stated_confidence() -> None:
    estimates = belief(1, lift=2.0)
    found = account_insights(
        AccountInputs(estimates=estimates, health=health(20, 120.0, drop_to=5.0)),
        NOW,
        np.random.default_rng(0),
    )
    lead = [i for i in found if i.kind == Kind.LEADER and i.subject == BEST[0]]
    assert len(lead) == 1
    assert lead[0].evidence["arm"] == BEST[1]
    assert lead[0].probability >= LEADER_P_BEST
    assert lead[0].low <= lead[0].value <= lead[0].high
    assert "P(best)" in lead[0].statement and BEST[1] in lead[0].statement
    (below,) = [i for i in found if i.kind == Kind.FOLLOWERS_BELOW]
    assert below.severity == Severity.CRITICAL
    assert below.probability >= 0.99
    assert below.evidence["z"] <= -CRITICAL_Z
    assert found[0].severity == Severity.CRITICAL  # most severe first


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_flat_history_yields_no_leader_claim(seed: int) -> None:
    estimates = belief(seed, lift=1.0)
    assert not leaders(estimates)
    found = account_insights(
        AccountInputs(estimates=estimates, health=health(20, 120.0)), NOW, np.random.default_rng(0)
    )
    assert not [i for i in found if i.kind == Kind.LEADER]
    assert not [i for i in found if i.kind == Kind.FOLLOWERS_BELOW]  # a steady series


def arm(name: str, mean: float, p_best: float, posts: int = 50, half: float = 0.5) -> ArmEstimate:
    return ArmEstimate(
        arm=name, posts=posts, mean=mean, low=mean - half, high=mean + half, p_best=p_best
    )


def estimates(**dimensions: tuple[ArmEstimate, ...]) -> Estimates:
    return Estimates(model="joint", unit="followers per post", dimensions=dimensions)


def test_leader_needs_the_named_p_best() -> None:
    just = estimates(hook=(arm("a", 5.0, LEADER_P_BEST), arm("b", 3.0, 1 - LEADER_P_BEST)))
    below = estimates(hook=(arm("a", 5.0, LEADER_P_BEST - 0.01), arm("b", 3.0, 0.06)))
    assert [i.evidence["arm"] for i in leaders(just)] == ["a"]
    assert leaders(below) == []


def test_retire_after_the_named_number_of_posts_only() -> None:
    posts = RETIRE_AFTER_POSTS // 2
    dimension = (arm("a", 5.0, 0.999, posts), arm("b", 2.0, 0.001, posts))
    (found,) = retire(estimates(formula=dimension))
    assert found.subject == "formula:b" and found.probability == pytest.approx(0.999)
    fewer = (arm("a", 5.0, 0.999, posts - 1), arm("b", 2.0, 0.001, posts))
    assert retire(estimates(formula=fewer)) == []


def test_flat_topics_recommend_new_ones_and_a_clear_topic_does_not() -> None:
    flat = tuple(arm(f"t{i}", 3.0 + i / 100, 0.2, 10) for i in range(5))
    (found,) = add_topics(estimates(topic=flat))
    assert found.recommendation and found.probability == pytest.approx(0.8)
    clear = (arm("t0", 6.0, 0.9, 20), arm("t1", 3.0, 0.1, 20))
    assert add_topics(estimates(topic=clear)) == []


def test_publish_failures_rising_is_critical_and_steady_failures_are_not() -> None:
    rows = health(10, 50.0)
    failing = [
        HealthHour(hour=h.hour, posts_failed=1, polls_due=h.polls_due, polls_done=h.polls_done)
        if h.hour >= NOW - timedelta(days=1)
        else h
        for h in rows
    ]
    (found,) = failures(failing, NOW, np.random.default_rng(0))
    assert found.kind == Kind.PUBLISH_FAILURES and found.severity == Severity.CRITICAL
    assert found.probability >= 0.95
    assert failures(rows, NOW, np.random.default_rng(0)) == []


def test_spend_per_follower_rising() -> None:
    rows = health(35, 100.0)
    dearer = [
        HealthHour(hour=h.hour, followers_gained=h.followers_gained / 4, spend_usd=h.spend_usd)
        if h.hour >= NOW - timedelta(days=7)
        else h
        for h in rows
    ]
    (found,) = spend_per_follower(dearer, NOW, np.random.default_rng(0))
    assert found.severity == Severity.CRITICAL and found.value > 0.01 * 24 / 100 * 3
    assert spend_per_follower(rows, NOW, np.random.default_rng(0)) == []


def test_period_comparison_sees_a_rise() -> None:
    rows = health(14, 50.0)
    better = [
        HealthHour(hour=h.hour, followers_gained=h.followers_gained * 3)
        if h.hour >= NOW - timedelta(days=7)
        else h
        for h in rows
    ]
    (week,) = periods(better, NOW)
    assert week.subject == "7d" and week.value > 0 and week.probability > 0.99
    assert week.low > 0


def test_cadence_recommendation_when_followers_per_post_fall_with_more_posts() -> None:
    rows = []
    for day in range(20):
        n = 2 + day % 6  # 2 to 7 posts a day
        per_post = 10.0 - n  # fewer followers per post on busier days
        for h in range(24):
            hour = NOW - timedelta(days=20 - day) + timedelta(hours=h)
            rows.append(
                HealthHour(
                    hour=hour,
                    posts_succeeded=1 if h < n else 0,
                    followers_gained=per_post if h < n else 0.0,
                )
            )
    (found,) = cadence(rows, NOW)
    assert found.kind == Kind.CADENCE and found.value == pytest.approx(-1.0, abs=0.01)
    steady = [
        HealthHour(
            hour=r.hour, posts_succeeded=r.posts_succeeded, followers_gained=3.0 * r.posts_succeeded
        )
        for r in rows
    ]
    assert cadence(steady, NOW) == []


def test_engaged_posts_without_follows() -> None:
    posts = [
        PostRecord(posted_at=NOW, arms={}, followers=0.0 if i % 2 else 3.0, engagements=50.0)
        for i in range(40)
    ]
    (found,) = conversion(posts)
    assert found.value == pytest.approx(0.5) and found.severity == Severity.WARNING


def test_platforms_compared_when_each_has_enough_posts() -> None:
    rng = np.random.default_rng(0)
    (found,) = platforms(
        {"x": list(rng.poisson(6, 40).astype(float)), "bluesky": list(rng.poisson(2, 40))},
        "followers per post",
    )
    assert found.evidence["platforms"].keys() == {"x", "bluesky"}
    assert found.statement.startswith("x ") and found.probability > 0.99
    assert platforms({"x": [1.0] * 40, "bluesky": [1.0] * 5}, "followers per post") == []
