"""Multi-touch attribution (learning/touch.py) against hand computations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from learning.audience import Follow, Touch
from learning.touch import MODELS, credit, mae, per_post, weights

T = datetime(2026, 3, 2, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_three_touches_are_shared_as_each_model_says() -> None:
    follows = [Follow(member_id=1, followed_at=T)]
    touches = [
        Touch(member_id=1, content_id=30, at=T - DAY),
        Touch(member_id=1, content_id=10, at=T - 3 * DAY),
        Touch(member_id=1, content_id=20, at=T - 2 * DAY),
        Touch(member_id=1, content_id=99, at=T + DAY),  # after the follow: not a touch of it
    ]
    found = credit(follows, touches, half_life=DAY)
    assert per_post(found, "last_touch") == {30: 1.0}
    assert per_post(found, "linear") == pytest.approx({10: 1 / 3, 20: 1 / 3, 30: 1 / 3})
    # ages 3, 2, 1 days at a one-day half-life: 1/8, 1/4, 1/2 of 7/8
    assert per_post(found, "time_decay") == pytest.approx({10: 1 / 7, 20: 2 / 7, 30: 4 / 7})
    assert per_post(found, "position_based") == pytest.approx({10: 0.4, 20: 0.2, 30: 0.4})


def test_window_named_post_repeated_touches_and_no_touch() -> None:
    follows = [
        Follow(member_id=2, followed_at=T),  # its only touch is 8 days old: no credit
        Follow(member_id=3, followed_at=T, content_id=40),  # the event names a post
        Follow(member_id=4, followed_at=T),  # two touches of one post add up
    ]
    touches = [
        Touch(member_id=2, content_id=10, at=T - 8 * DAY),
        Touch(member_id=4, content_id=10, at=T - 2 * DAY),
        Touch(member_id=4, content_id=10, at=T - DAY),
    ]
    found = credit(follows, touches)
    for model in MODELS:
        assert per_post(found, model) == pytest.approx({40: 1.0, 10: 1.0}), model
    assert {c.member_id for c in found} == {3, 4}


def test_every_model_hands_out_one_follower_per_follow_with_a_touch() -> None:
    ages = [5.0, 4.0, 3.0, 2.0, 1.0]
    for model in MODELS:
        assert sum(weights(model, ages, half_life_seconds=2.0)) == pytest.approx(1.0)
    assert weights("position_based", [2.0, 1.0], half_life_seconds=1.0) == [0.5, 0.5]
    with pytest.raises(ValueError, match="unknown attribution model 'u_shaped'"):
        credit([], [], models=("u_shaped",))
    with pytest.raises(ValueError, match="half-life must be positive"):
        weights("time_decay", [1.0], half_life_seconds=0.0)


def test_mae_counts_a_missing_post_as_zero() -> None:
    assert mae({1: 2.0, 2: 1.0}, {1: 1.0, 3: 3.0}) == pytest.approx((1.0 + 1.0 + 3.0) / 3)
    assert mae({}, {}) == 0.0
