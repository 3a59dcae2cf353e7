"""What policies believe (learning/estimates.py): every policy reports its own belief in one shape,
and reporting never changes a choice; the joint learner's state is a value passed in and out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.estimates import Estimates
from learning.joint_policy import JointState
from learning.policies import POLICIES, Joint, Outcome, Policy

NOW = datetime(2026, 3, 1, tzinfo=UTC)
CATALOGUE = {"content_type": ["a", "b", "c"], "formula": ["x", "y"], "topic": ["t1", "t2"]}
MEANS = {"a": 6.0, "b": 2.0, "c": 1.0}


def history(n: int = 40, seed: int = 0) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ct = "abc"[i % 3]
        out.append(
            Outcome(
                arms={"content_type": ct, "formula": "xy"[i % 2], "topic": ("t1", "t2")[i % 2]},
                posted_at=NOW - timedelta(days=n - i),
                reward=float(rng.poisson(MEANS[ct])),
                engagements=float(rng.poisson(10 * MEANS[ct])),
                hours_observed=24.0,
                audience=1000.0 + i,
                key=i + 1,
            )
        )
    return out


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_reports_each_arm_once_best_first(name: str) -> None:
    policy: Policy = POLICIES[name]()
    past = history()

    belief = policy.estimates(past, CATALOGUE, NOW, np.random.default_rng(1))

    assert isinstance(belief, Estimates) and belief.model == name
    assert set(belief.dimensions) == set(CATALOGUE)
    for dimension, arms in belief.dimensions.items():
        assert sorted(a.arm for a in arms) == sorted(CATALOGUE[dimension])
        assert [a.mean for a in arms] == sorted((a.mean for a in arms), reverse=True)
        assert sum(a.p_best for a in arms) == pytest.approx(1.0)
        for a in arms:
            assert a.low <= a.mean <= a.high
    posts = {a.arm: a.posts for a in belief.dimensions["content_type"]}
    assert posts == {"a": 14, "b": 13, "c": 13}
    if name in {"joint", "independent", "seed_selector", "beta_bernoulli"}:  # they learn
        assert belief.leader("content_type").arm == "a"


def test_joint_estimates_come_from_its_posterior() -> None:
    policy = Joint(interaction=None)
    past = history()
    posterior, _state = policy.posterior(past, CATALOGUE, NOW)

    belief = policy.estimates(past, CATALOGUE, NOW, np.random.default_rng(1))

    for dimension in CATALOGUE:
        table = posterior.arm_table(dimension)
        shown = belief.dimensions[dimension]
        assert [a.arm for a in shown] == [row[0] for row in table]
        assert [(a.mean, a.low, a.high) for a in shown] == [row[1:] for row in table]
    assert belief.leader("content_type").p_best > 0.9  # a's lead is clear


def test_reporting_never_changes_the_joint_policys_choices() -> None:
    """Estimates draw from their own generator and read the state without advancing it."""
    policy = Joint()
    past = history()
    _choice, state = policy.choose(past, CATALOGUE, NOW, np.random.default_rng(5))

    quiet_rng, busy_rng = np.random.default_rng(9), np.random.default_rng(9)
    quiet = policy.choose(past, CATALOGUE, NOW, quiet_rng, state)
    policy.estimates(past, CATALOGUE, NOW, np.random.default_rng(2), state)
    busy = policy.choose(past, CATALOGUE, NOW, busy_rng, state)

    assert quiet[0] == busy[0]
    assert quiet_rng.random() == busy_rng.random()  # the decision stream is where it was


def test_joint_state_is_a_value_passed_in_and_returned() -> None:
    policy = Joint()
    past = history()
    _choice, first = policy.choose(past, CATALOGUE, NOW, np.random.default_rng(5))
    kept = dataclasses.replace(first)

    _choice, second = policy.choose(past, CATALOGUE, NOW, np.random.default_rng(5), first)

    assert isinstance(first, JointState) and isinstance(second, JointState)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.peak = 1.0  # type: ignore[misc]
    assert first == kept  # the state passed in is not changed
    assert set(second.rows) == {o.key for o in past}  # per-post rows kept by content id


def test_equal_posts_rebuilt_as_new_objects_choose_the_same_regression() -> None:
    """Regression: per-post caches were keyed by id(); a post rebuilt as an equal new object
    (a restart, a re-read history) must count as the same post."""
    policy = Joint()
    past = history()
    copies = [dataclasses.replace(o, arms=dict(o.arms)) for o in past]
    _choice, state = policy.choose(past, CATALOGUE, NOW, np.random.default_rng(5))

    same = policy.choose(past, CATALOGUE, NOW, np.random.default_rng(6), state)
    rebuilt = policy.choose(copies, CATALOGUE, NOW, np.random.default_rng(6), state)

    assert same[0] == rebuilt[0]
    assert same[1].fit.final is not None and rebuilt[1].fit.final is not None
    assert np.array_equal(same[1].fit.final, rebuilt[1].fit.final)


def test_a_fresh_fit_reports_for_the_audience_now_regression() -> None:
    """Regression: the first fit cleared the untyped state, reference audience included, so a
    fresh policy reported followers per post at the first post's audience, not today's."""
    past = history()
    posterior, state = Joint().posterior(past, CATALOGUE, NOW)

    first, last = past[0].audience, past[-1].audience
    assert first is not None and last is not None
    assert state.reference == first
    assert posterior.z_now == pytest.approx(np.log(last / first))
