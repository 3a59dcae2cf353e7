"""learning/audience.py against hand computations: engagement scores and tiers of a hand-built
interaction history, weekly cohort retention, churn, and the followers posts and arms kept; and
the ``audience:`` config section (defaults, errors naming the key path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agent.audience import scores_of
from agent.audience_models import AudienceMember, Tier
from agent.config import load_config
from agent.errors import ConfigError
from learning import audience as maths
from tests.conftest import example_raw, make_config

DAY = timedelta(days=1)
NOW = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # a Monday


def history() -> tuple[list[int], list[str], list[float]]:
    """(member, kind, age in days) per interaction:

    - 1: 2 replies today, 3 likes 90 days ago, 1 repost 180 days ago, a follow
      -> 2*5 + 3*1*0.5 + 1*10*0.25 = 14.0 with a 90-day half-life (lurker); 23.0 without
    - 2: 30 link clicks today, 10 profile visits 90 days ago
      -> 30*15 + 10*3*0.5 = 465.0 (active); 480.0 without decay
    - 3: 60 reposts today -> 600.0 (super fan)
    - 4: 9 likes today -> 9.0 (inactive); 5: 2 bookmarks today -> 16.0 (lurker)
    """
    rows = (
        [(1, "reply", 0.0)] * 2
        + [(1, "like", 90.0)] * 3
        + [(1, "repost", 180.0), (1, "follow", 0.0)]
        + [(2, "link_click", 0.0)] * 30
        + [(2, "profile_visit", 90.0)] * 10
        + [(3, "repost", 0.0)] * 60
        + [(4, "like", 0.0)] * 9
        + [(5, "bookmark", 0.0)] * 2
    )
    return [m for m, _, _ in rows], [k for _, k, _ in rows], [a for _, _, a in rows]


def test_engagement_scores_of_a_hand_built_history_match_the_hand_computation() -> None:
    scores = maths.engagement_scores(*history(), half_life_days=90.0)
    assert scores == pytest.approx({1: 14.0, 2: 465.0, 3: 600.0, 4: 9.0, 5: 16.0})
    plain = maths.engagement_scores(*history(), half_life_days=None)
    assert plain == pytest.approx({1: 23.0, 2: 480.0, 3: 600.0, 4: 9.0, 5: 16.0})


def test_tiers_follow_the_tracking_plans_thresholds_at_their_edges() -> None:
    scores = [600.0, 500.0, 499.9, 100.0, 99.9, 10.0, 9.99, 0.0]
    expected = ["super_fan", "super_fan", "active", "active", "lurker", "lurker"]
    expected += ["inactive", "inactive"]
    assert maths.tiers_of(scores) == expected
    assert [maths.tier_of(s) for s in scores] == expected
    with pytest.raises(ValueError, match="decrease"):
        maths.tiers_of([1.0], (("a", 10.0), ("b", 20.0)))


def test_scores_of_members_use_the_configs_weights_half_life_and_tiers() -> None:
    members, kinds, ages = history()
    people = [
        AudienceMember(
            id=i,
            account_id=1,
            user_id=str(i),
            handle=None,
            first_seen_at=NOW,
            followed_at=None,
            unfollowed_at=None,
            follow_changed_at=None,
            cohort=None,
            engagement_score=0.0,
            tier=Tier.INACTIVE,
            updated_at=NOW,
        )
        for i in (1, 2, 3, 4, 5, 6)
    ]
    rows = [(m, k, NOW - a * DAY) for m, k, a in zip(members, kinds, ages, strict=True)]
    found = scores_of(make_config().audience, people, rows, now=NOW)
    assert [(s.member_id, round(s.score, 6), s.tier) for s in found] == [
        (1, 14.0, Tier.LURKER),
        (2, 465.0, Tier.ACTIVE),
        (3, 600.0, Tier.SUPER_FAN),
        (4, 9.0, Tier.INACTIVE),
        (5, 16.0, Tier.LURKER),
        (6, 0.0, Tier.INACTIVE),  # nothing done
    ]
    doubled = make_config(audience={"weights": {"bookmark": 16.0}, "tiers": {"lurker": 20.0}})
    five = scores_of(doubled.audience, people, rows, now=NOW)[4]
    assert (five.score, five.tier) == (32.0, Tier.LURKER)
    assert scores_of(doubled.audience, people, rows, now=NOW)[0].tier == Tier.INACTIVE  # 14 < 20


def test_cohort_retention_at_each_checkpoint_matches_a_hand_count() -> None:
    jan5 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, 12 weeks before NOW's morning
    spans = [
        maths.Span(followed_at=jan5, unfollowed_at=jan5 + 3 * DAY),
        maths.Span(followed_at=jan5, unfollowed_at=jan5 + 10 * DAY),
        maths.Span(followed_at=jan5),
        maths.Span(followed_at=jan5 + DAY, unfollowed_at=jan5 + 31 * DAY),
        maths.Span(followed_at=datetime(2026, 3, 25, tzinfo=UTC)),  # 5 days old
    ]
    first, last = maths.cohort_retention(spans, now=NOW)
    assert (first.week, first.followers, first.still_following) == ("2026-01-05", 4, 1)
    assert first.retained == {1: 0.75, 2: 0.5, 4: 0.5, 8: 0.25, 12: 1 / 3}
    assert first.eligible[12] == 3  # the Tuesday follower is not 12 weeks old yet
    assert (last.week, last.followers, last.eligible[1]) == ("2026-03-23", 1, 0)
    assert last.retained[1] is None


def test_weekly_churn_counts_who_left_among_those_following_at_the_start() -> None:
    monday = datetime(2026, 3, 23, tzinfo=UTC)
    spans = [
        maths.Span(followed_at=monday - 10 * DAY),  # stays
        maths.Span(followed_at=monday - 10 * DAY, unfollowed_at=monday + DAY),  # churns
        maths.Span(followed_at=monday - 3 * DAY, unfollowed_at=monday - DAY),  # left before
        maths.Span(followed_at=monday + 2 * DAY, unfollowed_at=monday + 3 * DAY),  # new, gone
        maths.Span(followed_at=NOW),  # this week
    ]
    earlier, last_week, this_week = maths.weekly_churn(spans, now=NOW, weeks=3)
    assert earlier.week == "2026-03-16"
    assert (earlier.followers_at_start, earlier.follows, earlier.unfollows) == (2, 1, 1)
    assert (earlier.left, earlier.churn) == (0, 0.0)  # the one who left joined that week
    assert (last_week.week, last_week.followers_at_start, last_week.follows) == ("2026-03-23", 2, 1)
    assert (last_week.unfollows, last_week.left, last_week.churn) == (2, 1, 0.5)
    assert (this_week.followers_at_start, this_week.follows, this_week.churn) == (1, 1, 0.0)
    with pytest.raises(ValueError):
        maths.weekly_churn(spans, now=NOW, weeks=0)


def test_followers_posts_and_arms_brought_and_kept() -> None:
    t = NOW - 40 * DAY
    follows = [
        maths.Follow(member_id=1, followed_at=t, content_id=10),  # named: post 10, stays
        maths.Follow(member_id=2, followed_at=t, unfollowed_at=t + 10 * DAY),  # touched 11
        maths.Follow(member_id=3, followed_at=t, unfollowed_at=t + 2 * DAY),  # touched 11
        maths.Follow(member_id=4, followed_at=t),  # touched 10 too long ago: nobody's
        maths.Follow(member_id=5, followed_at=NOW - 3 * DAY),  # touched 11, too new to tell
    ]
    touches = [
        maths.Touch(member_id=2, content_id=10, at=t - 3 * DAY),
        maths.Touch(member_id=2, content_id=11, at=t - DAY),  # the last touch wins
        maths.Touch(member_id=2, content_id=12, at=t + DAY),  # after the follow: no credit
        maths.Touch(member_id=3, content_id=11, at=t),
        maths.Touch(member_id=4, content_id=10, at=t - 8 * DAY),
        maths.Touch(member_id=5, content_id=11, at=NOW - 4 * DAY),
    ]
    credited = maths.credit_last_touch(follows, touches)
    assert credited == [10, 11, 11, None, 11]
    kept = maths.followers_kept(follows, credited, now=NOW)
    assert kept[10] == maths.Kept(brought=1, eligible={7: 1, 30: 1}, stayed={7: 1, 30: 1})
    assert kept[11] == maths.Kept(brought=3, eligible={7: 2, 30: 2}, stayed={7: 1, 30: 0})
    assert kept[11].share(7) == 0.5 and kept[11].share(30) == 0.0
    by_arm = maths.kept_by_arm(kept, {10: {"hook": "question"}, 11: {"hook": "question"}})
    assert by_arm[("hook", "question")] == maths.Kept(
        brought=4, eligible={7: 3, 30: 3}, stayed={7: 2, 30: 1}
    )


def test_audience_config_defaults_and_errors_name_the_key_path(tmp_path: Path) -> None:
    audience = make_config().audience
    assert audience.weights.model_dump() == dict(maths.DEFAULT_WEIGHTS)
    assert audience.tiers.thresholds() == maths.DEFAULT_TIERS
    assert audience.retention == timedelta(days=365)
    assert audience.score_half_life == timedelta(days=maths.DEFAULT_HALF_LIFE_DAYS)
    raw = example_raw()
    raw["audience"] = {
        "weights": {"like": -1},
        "tiers": {"active": 600},
        "retention": "0d",
        "score_halflife": "30d",
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "audience.weights.like: Input should be greater than or equal to 0" in text
    assert "audience.tiers: " in text and "super_fan > active > lurker" in text
    assert "audience.retention: " in text and "positive duration" in text
    assert "audience.score_halflife: unknown key" in text
