"""Policies (learning/policies.py): the baselines do what they claim, the joint learner's inputs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.joint_policy import FitMemo, JointState, _Pass, fit_state_key
from learning.policies import (
    BetaBernoulli,
    Independent,
    Joint,
    Outcome,
    Policy,
    SeedSelector,
    Uniform,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
CATALOGUE = {"content_type": ["a", "b", "c", "d", "e", "f", "g"], "formula": ["x", "y"]}


def outcome(ct: str, reward: float | None, *, days_ago: float = 1.0, **kw: object) -> Outcome:
    return Outcome(
        arms={"content_type": ct, "formula": "x"},
        posted_at=NOW - timedelta(days=days_ago),
        reward=reward,
        engagements=float(kw.get("engagements", 10.0)),  # type: ignore[arg-type]
        hours_observed=kw.get("hours", 24.0),  # type: ignore[arg-type]
    )


def history(means: dict[str, float], n: int, seed: int = 0) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    return [
        outcome(ct, float(rng.poisson(mean)), days_ago=rng.uniform(1, 60))
        for ct, mean in means.items()
        for _ in range(n)
    ]


def picks(policy: Policy, past: list[Outcome], draws: int = 400) -> Counter[str]:
    """How often each content type is chosen in ``draws`` plans (the state carried along)."""
    rng = np.random.default_rng(1)
    counts: Counter[str] = Counter()
    state = None
    for _ in range(draws):
        chosen, state = policy.choose(past, CATALOGUE, NOW, rng, state)
        counts[chosen["content_type"]] += 1
    return counts


MEANS = {"a": 6.0, "b": 4.0, "c": 3.5, "d": 3.0, "e": 2.5, "f": 2.0, "g": 0.2}


def test_uniform_plays_every_arm_about_equally() -> None:
    counts = picks(Uniform(), history(MEANS, 20), draws=1400)
    assert set(counts) == set(CATALOGUE["content_type"])
    assert min(counts.values()) > 1400 / 7 * 0.7


def test_seed_selector_exploits_the_best_average_70_percent_and_drops_poor_arms() -> None:
    counts = picks(SeedSelector(), history(MEANS, 30), draws=1000)
    # 70% best average, plus its share of the 30% score-weighted draw among the top five
    assert 0.7 < counts["a"] / 1000 < 0.85
    assert counts["g"] == 0  # success rate below the threshold: dropped
    assert counts["f"] == 0  # not in the top five
    assert counts["b"] > 0 and counts["e"] > 0


def test_seed_selector_tries_unplayed_arms_at_the_overall_average() -> None:
    past = [outcome("a", 1.0) for _ in range(10)]  # a disappoints; nothing else tried
    counts = picks(SeedSelector(), past, draws=300)
    assert set(counts) - {"a"}  # the untried arms score the overall average, and tie


def test_beta_bernoulli_learns_which_arm_beats_the_median() -> None:
    counts = picks(BetaBernoulli(), history(MEANS, 40), draws=400)
    assert counts.most_common(1)[0][0] == "a"
    assert counts["g"] < 10


def test_independent_gamma_poisson_posteriors_count_each_arms_rewards() -> None:
    past = [outcome("a", 3.0), outcome("a", 5.0), outcome("b", 1.0), outcome("c", None)]
    posteriors = Independent(prior_mean=2.0, prior_strength=1.0).posteriors(past, CATALOGUE)
    assert (posteriors["content_type"]["a"].shape, posteriors["content_type"]["a"].rate) == (
        pytest.approx(2.0 + 8.0),
        pytest.approx(1.0 + 2),
    )
    assert posteriors["content_type"]["c"].rate == pytest.approx(1.0)  # in flight: not counted


def test_joint_finds_the_best_arm() -> None:
    counts = picks(Joint(interaction=None), history(MEANS, 30), draws=100)
    assert counts["a"] > 75


def test_joint_half_life_forgets_what_changed() -> None:
    """Arm a was best long ago, b is best now: with a half-life the learner follows b."""
    old = [outcome("a", 8.0, days_ago=80 + i * 0.1) for i in range(60)]
    old += [outcome("b", 2.0, days_ago=80 + i * 0.1) for i in range(60)]
    new = [outcome("a", 2.0, days_ago=5 + i * 0.1) for i in range(15)]
    new += [outcome("b", 8.0, days_ago=5 + i * 0.1) for i in range(15)]
    past = old + new

    forgetful = picks(Joint(interaction=None, half_life_days=10.0), past, draws=100)
    stubborn = picks(Joint(interaction=None, half_life_days=None), past, draws=100)

    assert forgetful["b"] > 3 * forgetful["a"]  # (unplayed arms still get explored)
    assert stubborn["a"] > stubborn["b"]


def test_joint_uses_in_flight_posts_engagement_provisionally() -> None:
    finals = [outcome(ct, 3.0, engagements=20.0) for ct in "abcdefg" for _ in range(2)]
    # in flight, one hour old: c already draws five times the engagement of the others
    pending = [outcome("c", None, hours=1.0, engagements=25.0) for _ in range(6)]
    pending += [outcome(ct, None, hours=1.0, engagements=5.0) for ct in "abdefg" for _ in range(6)]
    policy = Joint(interaction=None)

    rows = policy._provisional(finals + pending, NOW, _Pass(JointState()))
    with_pending, _ = policy.posterior(finals + pending, CATALOGUE, NOW)
    without, _ = Joint(interaction=None, provisional=False).posterior(
        finals + pending, CATALOGUE, NOW
    )

    assert len(rows) == len(pending)
    assert all(0 < row.weight < 1 for row in rows)  # partial counts weigh less than finals
    assert with_pending.engagement is not None and without.engagement is not None
    c_with = with_pending.engagement.effect("content_type", "c")[0]
    c_without = without.engagement.effect("content_type", "c")[0]
    assert c_with > c_without + 0.3


def test_auxiliary_signal_is_profile_clicks_where_the_platform_reports_them() -> None:
    from learning.policies import auxiliary

    plain = [outcome("a", 3.0, engagements=12.0)]
    clicked = [*plain, replace(outcome("b", 1.0, engagements=30.0), profile_clicks=9.0)]

    assert [auxiliary(plain)(o) for o in plain] == [12.0]
    assert [auxiliary(clicked)(o) for o in clicked] == [0.0, 9.0]


def test_lower_exploration_plays_the_leading_arm_more_often() -> None:
    past = history({"a": 4.0, "b": 3.2, "c": 3.0, "d": 3.0, "e": 3.0, "f": 3.0, "g": 3.0}, 8)

    plain = picks(Joint(interaction=None, exploration=1.0), past, draws=150)
    tempered = picks(Joint(interaction=None, exploration=0.3), past, draws=150)

    assert tempered.most_common(1)[0][1] > plain.most_common(1)[0][1]


def test_a_fit_memo_shares_fits_on_no_posts_and_changes_no_choice() -> None:
    # new accounts (no posts, then posts still in flight) fit the same model from the same state:
    # with a memo it is fit once, and every draw and state is what each account's own fit gives
    memo = FitMemo()
    plain, shared = Joint(), Joint(memo=memo)
    in_flight = [outcome("a", None, hours=2.0)]
    rng_plain, rng_shared = np.random.default_rng(5), np.random.default_rng(5)
    states_plain: list[JointState | None] = [None] * 4
    states_shared: list[JointState | None] = [None] * 4
    for past in ([], [], in_flight):
        for account in range(4):
            chosen, alone = plain.choose(past, CATALOGUE, NOW, rng_plain, states_plain[account])
            again, memoised = shared.choose(
                past, CATALOGUE, NOW, rng_shared, states_shared[account]
            )
            assert again == chosen
            assert fit_state_key(memoised.fit) == fit_state_key(alone.fit)
            states_plain[account], states_shared[account] = alone, memoised
    # each round the first account fits and the other three reuse it (the first too, once the
    # fit from the previous fit's state gives that state again)
    hits = memo.hits
    assert hits >= 3 * 3
    # a history with a finished post is fit afresh
    done = [outcome("a", 3.0)]
    assert (
        shared.choose(done, CATALOGUE, NOW, rng_shared, states_shared[0])[0]
        == plain.choose(done, CATALOGUE, NOW, rng_plain, states_plain[0])[0]
    )
    assert memo.hits == hits
