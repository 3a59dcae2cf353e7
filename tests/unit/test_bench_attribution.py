"""The attribution benchmark's oracle bound and the ground truth it reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.sandbox import SandboxWorld
from bench.attribution import PostResult, by_block, summarise
from bench.attribution_oracle import oracle_estimates, thin
from tests.unit.test_sandbox import START, Clock, make_scenario, post


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(make_scenario(), seed=11, start=START) as w:
        yield w


async def _publish_and_read(
    world: SandboxWorld, *, posts: int, every_hours: float
) -> list[tuple[float, float]]:
    """Publish ``posts`` posts ``every_hours`` apart; read the followers every 30 minutes until
    two days after the last one. Returns (sandbox hours, followers)."""
    clock = Clock()
    platform = world.platform("acme", now=clock)
    truth_hours = world.ground_truth().hours
    readings = []
    end = posts * every_hours + 48.0
    published = 0
    for half_hours in range(int(end * 2) + 1):
        hours = half_hours / 2.0
        clock.set(hours=hours)
        if published < posts and hours >= published * every_hours + 0.25:
            await post(platform, published, content_type=("how_to", "question")[published % 2])
            published += 1
        info = await platform.fetch_account()
        readings.append((truth_hours(clock()), float(info.followers)))
    await platform.aclose()
    return readings


async def test_followers_given_reach_is_impressions_times_follow_rate_and_effect(
    world: SandboxWorld,
) -> None:
    clock = Clock()
    platform = world.platform("acme", now=clock)
    ids = []
    for n in range(80):
        clock.set(hours=3 * n)
        ids.append((await post(platform, n)).platform_post_id)
    clock.set(days=30)
    metrics = await platform.fetch_metrics(ids)
    truth = world.ground_truth()
    follow = truth.model.multipliers(truth.post_arms[ids[0]], 0.0)[2]
    rate = world.scenario.audience.rates.follows
    for pid in ids:
        assert truth.followers_given_reach[pid] == pytest.approx(
            metrics[pid].impressions * rate * follow
        )
    # it is the mean the realised follows are drawn around
    realised = sum(truth.followers_caused[pid] for pid in ids)
    given = sum(truth.followers_given_reach[pid] for pid in ids)
    assert 0.8 * given < realised < 1.25 * given
    await platform.aclose()


async def test_the_oracle_recovers_isolated_posts_from_the_series(world: SandboxWorld) -> None:
    readings = await _publish_and_read(world, posts=8, every_hours=60.0)
    truth = world.ground_truth()
    estimates = oracle_estimates(truth, readings, initial_followers=1500)
    assert set(estimates) == set(truth.followers_caused)
    errors = [abs(estimates[pid] - truth.followers_caused[pid]) for pid in estimates]
    prior = [abs(truth.followers_given_reach[p] - truth.followers_caused[p]) for p in estimates]
    # alone, a post's whole gain shows in the series: only organic noise and rounding remain
    assert max(errors) < 3.0
    assert sum(errors) / len(errors) < 1.5
    assert sum(errors) < 0.6 * sum(prior)


async def test_the_oracle_beats_the_covariates_alone_when_posts_overlap(
    world: SandboxWorld,
) -> None:
    readings = await _publish_and_read(world, posts=60, every_hours=2.0)
    truth = world.ground_truth()
    estimates = oracle_estimates(truth, readings, initial_followers=1500)
    caused = truth.followers_caused
    oracle = sum(abs(estimates[p] - caused[p]) for p in estimates) / len(estimates)
    given = sum(abs(truth.followers_given_reach[p] - caused[p]) for p in estimates) / len(caused)
    # the series fixes sums of neighbouring posts, not their split: better, far from exact
    assert oracle < 0.9 * given
    assert oracle > 0.5
    assert all(v >= 0 for v in estimates.values())


def test_thin_keeps_one_reading_per_step_in_time_order() -> None:
    points = [(2.0, 12.0), (0.0, 10.0), (0.5, 10.0), (1.0, 11.0), (1.9, 11.0), (3.5, 14.0)]
    assert thin(points).tolist() == [[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.5, 14.0]]
    assert thin([]).shape == (0, 2)


def test_summarise_reports_the_oracle_and_covariate_floors() -> None:
    def result(truth: float, given: float, oracle: float) -> PostResult:
        return PostResult(
            truth=truth,
            estimate={"time_window": truth + 2.0, "deconvolution": truth + 1.0},
            confidence={"time_window": 0.5, "deconvolution": 0.5},
            interval=None,
            given_reach=given,
            oracle=oracle,
        )

    out = summarise([result(10.0, 6.0, 9.0), result(4.0, 7.0, 4.5)])
    assert out["mae_given_reach"] == pytest.approx((4.0 + 3.0) / 2)
    assert out["mae_oracle"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["mae_ratio"] == pytest.approx(0.5)


def test_time_helpers_agree(world: SandboxWorld) -> None:
    truth = world.ground_truth()
    assert truth.hours(START) == pytest.approx(0.0)
    assert truth.hours(START + timedelta(hours=5)) == pytest.approx(5.0)


def test_by_block_splits_the_errors_by_publication_day() -> None:
    def result(day: float, truth: float, tw: float, dc: float) -> PostResult:
        return PostResult(
            truth=truth,
            estimate={"time_window": tw, "deconvolution": dc},
            confidence={"time_window": 0.5, "deconvolution": 0.5},
            interval=None,
            oracle=truth + 1.0,
            day=day,
        )

    blocks = by_block(
        [result(1.0, 4.0, 8.0, 5.0), result(29.0, 2.0, 2.0, 4.0), result(45.0, 10.0, 20.0, 12.0)]
    )
    assert [b["days"] for b in blocks] == [[0.0, 30.0], [30.0, 60.0]]
    assert [b["posts"] for b in blocks] == [2, 1]
    assert blocks[0]["mae"] == {"time_window": 2.0, "deconvolution": 1.5}
    assert blocks[0]["mae_ratio"] == pytest.approx(0.75)
    assert blocks[1]["mae_ratio"] == pytest.approx(0.2)
    assert blocks[1]["mae_oracle"] == pytest.approx(1.0)
