"""Time-window follower attribution on synthetic follower series."""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.attribution import FollowerPoint, PostEvent, time_window

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


def ramp(total: float, at: datetime, hours: float = 6.0) -> Callable[[datetime], float]:
    """Followers brought by a post at `at`: `total`, arriving linearly over `hours`."""

    def gained(t: datetime) -> float:
        h = (t - at) / HOUR
        return total * min(max(h / hours, 0.0), 1.0)

    return gained


def make_series(
    *effects: Callable[[datetime], float],
    start: datetime = T0 - timedelta(days=3, hours=12),
    end: datetime = T0 + timedelta(hours=30),
    step: timedelta = timedelta(minutes=10),
    baseline_per_hour: float = 0.0,
) -> list[FollowerPoint]:
    points = []
    t = start
    while t <= end:
        organic = baseline_per_hour * ((t - start) / HOUR)
        value = 1000 + organic + sum(effect(t) for effect in effects)
        points.append(FollowerPoint(at=t, followers=math.floor(value + 1e-9)))
        t += step
    return points


def attribute(targets, posts=None, series=None, **kwargs):
    return time_window(
        targets, posts if posts is not None else targets, series, window=WINDOW, **kwargs
    )


def test_lone_post_on_flat_baseline_gets_the_full_excess_with_high_confidence():
    post = PostEvent("p1", T0)
    [est] = attribute([post], series=make_series(ramp(10, T0)))
    assert est.post_id == "p1"
    assert est.method == "time_window"
    assert est.window_hours == 24.0
    assert est.followers_gained == pytest.approx(10.0)
    assert est.confidence > 0.9
    assert isinstance(est.confidence, float)
    assert est.inputs["followers_before"] == 1000
    assert est.inputs["followers_after"] == 1010
    assert est.inputs["baseline_rate_per_hour"] == 0.0
    assert est.inputs["overlapping_posts"] == 0.0
    assert est.inputs["share"] == 1.0
    assert est.inputs["raw_excess"] == pytest.approx(10.0)


def test_two_overlapping_posts_share_the_excess_and_both_lose_confidence():
    lone = attribute([PostEvent("p1", T0)], series=make_series(ramp(10, T0)))[0]

    p1, p2 = PostEvent("p1", T0), PostEvent("p2", T0 + 6 * HOUR)
    series = make_series(ramp(6, p1.posted_at), ramp(6, p2.posted_at), end=T0 + 40 * HOUR)
    e1, e2 = attribute([p1, p2], series=series)

    # p1's window holds both gains (12); p2's window overlaps 18h of 24 -> share 1 / 1.75
    assert e1.inputs["raw_excess"] == pytest.approx(12.0)
    assert e1.inputs["share"] == pytest.approx(1 / 1.75)
    assert e1.followers_gained == pytest.approx(12 / 1.75)
    assert e1.inputs["overlapping_posts"] == 1.0
    assert e2.inputs["overlapping_posts"] == 1.0
    assert e1.followers_gained < 12.0
    assert e1.confidence < lone.confidence
    assert e2.confidence < lone.confidence


def test_overlapping_gain_is_shared_in_proportion_to_weight():
    p1, p2 = PostEvent("p1", T0, weight=30.0), PostEvent("p2", T0, weight=10.0)
    series = make_series(ramp(8, T0), ramp(4, T0))
    e1, e2 = attribute([p1, p2], series=series)
    assert e1.followers_gained == pytest.approx(9.0)
    assert e2.followers_gained == pytest.approx(3.0)
    assert e1.confidence == pytest.approx(e2.confidence)

    # all weights zero: equal shares
    z1, z2 = attribute([PostEvent("p1", T0, 0.0), PostEvent("p2", T0, 0.0)], series=series)
    assert z1.followers_gained == pytest.approx(6.0)
    assert z2.followers_gained == pytest.approx(6.0)


def test_confidence_falls_as_more_posts_overlap():
    confidences = []
    for n in (1, 2, 3, 4):
        posts = [PostEvent(f"p{i}", T0 + i * 3 * HOUR) for i in range(n)]
        series = make_series(*(ramp(10, p.posted_at) for p in posts), end=T0 + 60 * HOUR)
        confidences.append(attribute(posts[:1], posts, series)[0].confidence)
    assert confidences == sorted(confidences, reverse=True)
    assert len(set(confidences)) == 4


def test_baseline_growth_is_subtracted():
    post = PostEvent("p1", T0)
    series = make_series(ramp(10, T0), baseline_per_hour=0.5)
    [est] = attribute([post], series=series)
    raw_change = est.inputs["followers_after"] - est.inputs["followers_before"]
    assert raw_change == pytest.approx(22.0, abs=1.0)
    assert est.inputs["baseline_rate_per_hour"] == pytest.approx(0.5, abs=0.02)
    assert est.followers_gained == pytest.approx(10.0, abs=1.0)


def test_noisy_poisson_baseline_is_subtracted_without_bias_and_noise_sd_is_calibrated():
    start, step = T0 - timedelta(days=3, hours=12), timedelta(minutes=10)
    post, effect = PostEvent("p1", T0), ramp(30, T0)
    gains, sds = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        followers, points, t = 1000, [], start
        while t <= T0 + 30 * HOUR:
            followers += int(rng.poisson(2.0 / 6))  # 2 per hour organically
            points.append(FollowerPoint(t, followers + math.floor(effect(t))))
            t += step
        [est] = attribute([post], series=points)
        assert est.inputs["baseline_rate_per_hour"] == pytest.approx(2.0, abs=0.5)
        assert 0.0 < est.confidence < 1.0
        gains.append(est.followers_gained)
        sds.append(est.inputs["noise_sd"])
    # organic noise over 24h alone is sqrt(48) ~ 7 followers: unbiased on average, and the
    # reported noise_sd matches the actual spread of the estimates
    assert np.mean(gains) == pytest.approx(30.0, abs=4.0)
    assert 0.6 < np.std(gains) / np.mean(sds) < 1.5


def test_baseline_prefers_stretches_not_covered_by_a_post_window():
    earlier = PostEvent("p0", T0 - 48 * HOUR)
    post = PostEvent("p1", T0)
    series = make_series(ramp(20, earlier.posted_at), ramp(10, T0))
    [est] = attribute([post], [earlier, post], series)
    assert est.inputs["baseline_rate_per_hour"] == 0.0
    assert est.followers_gained == pytest.approx(10.0)
    assert est.inputs["confidence_baseline"] == 1.0


def test_a_viral_burst_in_the_history_does_not_inflate_the_baseline():
    burst = ramp(50, T0 - 40 * HOUR, hours=1.0)  # no post of ours explains it
    [est] = attribute([PostEvent("p1", T0)], series=make_series(burst, ramp(10, T0)))
    assert est.inputs["baseline_rate_per_hour"] == 0.0
    assert est.followers_gained == pytest.approx(10.0)


def test_without_history_the_baseline_falls_back_to_zero_with_lower_confidence():
    post = PostEvent("p1", T0)
    full = attribute([post], series=make_series(ramp(10, T0)))[0]
    short = attribute([post], series=make_series(ramp(10, T0), start=T0 - HOUR))[0]
    assert short.inputs["baseline_rate_per_hour"] == 0.0
    assert short.inputs["baseline_hours"] == 0.0
    assert short.followers_gained == pytest.approx(10.0)
    assert short.confidence < full.confidence


def test_windows_not_closed_in_the_series_are_omitted():
    p1, p2 = PostEvent("p1", T0), PostEvent("p2", T0 + 10 * HOUR)
    series = make_series(ramp(5, T0), ramp(5, p2.posted_at), end=T0 + 30 * HOUR)
    estimates = attribute([p1, p2], series=series)
    assert [e.post_id for e in estimates] == ["p1"]
    assert attribute([p1], series=make_series(ramp(5, T0), end=T0 + 23 * HOUR)) == []
    assert attribute([p1], series=[]) == []


def test_sparse_series_around_the_window_ends_lowers_confidence():
    post = PostEvent("p1", T0)
    dense = attribute([post], series=make_series(ramp(10, T0)))[0]
    sparse_series = make_series(
        ramp(10, T0), start=T0 - timedelta(days=3, hours=9), step=6 * HOUR
    )  # snapshots at 03:00, 09:00, 15:00, 21:00
    sparse = attribute([post], series=sparse_series)[0]
    assert sparse.inputs["start_gap_hours"] == pytest.approx(3.0)
    assert sparse.inputs["end_gap_hours"] == pytest.approx(1.5)
    assert sparse.followers_gained == pytest.approx(10.0)
    assert sparse.confidence < 0.75 * dense.confidence


def test_small_excess_relative_to_noise_lowers_confidence():
    post = PostEvent("p1", T0)
    big = attribute([post], series=make_series(ramp(10, T0)))[0]
    small = attribute([post], series=make_series(ramp(1, T0)))[0]
    noisy = attribute([post], series=make_series(ramp(10, T0), baseline_per_hour=3.0))[0]
    assert small.followers_gained == pytest.approx(1.0)
    assert small.confidence < big.confidence
    assert noisy.confidence < big.confidence


def test_a_net_loss_attributes_zero_and_records_the_signed_excess():
    post = PostEvent("p1", T0)

    def unfollow_wave(t: datetime) -> float:
        return -8.0 if t >= T0 + 2 * HOUR else 0.0

    [est] = attribute([post], series=make_series(ramp(2, T0), unfollow_wave))
    assert est.followers_gained == 0.0
    assert est.inputs["raw_excess"] == pytest.approx(-6.0)
    assert est.confidence == 0.0


def test_unsorted_series_and_targets_missing_from_posts_are_handled():
    series = make_series(ramp(10, T0))
    target = PostEvent("p1", T0)
    [est] = time_window([target], [], list(reversed(series)), window=WINDOW)
    assert est.followers_gained == pytest.approx(10.0)
    with pytest.raises(ValueError):
        time_window([target], [], series, window=timedelta(0))
    with pytest.raises(ValueError):
        PostEvent("p2", T0, weight=-1.0)
