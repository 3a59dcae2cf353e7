"""Deconvolution attribution on synthetic follower series with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from learning.attribution import FollowerPoint, PostEvent
from learning.deconvolution import deconvolution

T0 = datetime(2026, 1, 5, tzinfo=UTC)
H = timedelta(hours=1)


def series(
    gains: dict[float, float],
    *,
    hours: float = 96,
    scale: float = 5.0,
    organic: float = 0.2,
    noise: float = 0.0,
    seed: int = 0,
) -> list[FollowerPoint]:
    rng = np.random.default_rng(seed)
    t = np.arange(0, hours, 1 / 6)  # a reading every 10 minutes
    y = 1000 + organic * t
    for at, gain in gains.items():
        y = y + gain * stats.gamma.cdf(np.clip(t - at, 0, None), 2.0, scale=scale)
    y = y + rng.normal(0, noise, len(t)) if noise else y
    return [
        FollowerPoint(at=T0 + timedelta(hours=float(h)), followers=round(v))
        for h, v in zip(t, y, strict=True)
    ]


def events(times: list[float]) -> list[PostEvent]:
    return [PostEvent(post_id=str(i), posted_at=T0 + h * H) for i, h in enumerate(times)]


def test_recovers_the_gains_of_overlapping_posts_and_the_organic_rate() -> None:
    times = [10.0, 13.0, 16.0, 40.0]
    gains = [30.0, 5.0, 60.0, 20.0]
    posts = events(times)
    result = deconvolution(
        posts, posts, series(dict(zip(times, gains, strict=True))), window=timedelta(hours=24)
    )
    assert [r.post_id for r in result] == ["0", "1", "2", "3"]
    totals = [r.inputs["total_gain"] for r in result]
    assert totals == pytest.approx(gains, abs=3.0)
    assert result[0].inputs["lag_scale_hours"] == 5.0  # the kernel is learned from the data
    assert result[0].inputs["organic_rate_per_hour"] == pytest.approx(0.2, abs=0.05)
    within = stats.gamma.cdf(24, 2.0, scale=5.0)
    assert result[2].followers_gained == pytest.approx(60.0 * within, abs=3.0)
    assert result[2].method == "deconvolution"


def test_a_post_that_brought_nobody_gets_little_credit_and_low_confidence() -> None:
    times = [10.0, 12.0, 30.0]
    posts = events(times)
    result = deconvolution(
        posts,
        posts,
        series({10.0: 40.0, 12.0: 0.0, 30.0: 25.0}, noise=1.0, seed=3),
        window=timedelta(hours=24),
    )
    by_id = {r.post_id: r for r in result}
    assert by_id["1"].followers_gained < 5
    assert by_id["1"].confidence < by_id["0"].confidence
    assert by_id["0"].confidence > 0.5


def test_posts_whose_window_has_not_closed_are_omitted() -> None:
    posts = events([10.0, 80.0])
    result = deconvolution(
        posts, posts, series({10.0: 20.0, 80.0: 20.0}), window=timedelta(hours=24)
    )
    assert [r.post_id for r in result] == ["0"]


def test_too_few_readings_give_no_estimate() -> None:
    posts = events([1.0])
    assert deconvolution(posts, posts, series({1.0: 5.0}, hours=0.5), window=24 * H) == []
    with pytest.raises(ValueError):
        deconvolution(posts, posts, series({1.0: 5.0}), window=timedelta(0))
