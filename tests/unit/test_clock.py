"""The clocks: the scaled one the scale benchmark runs the real daemon on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from agent.clock import ScaledClock

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


class Wall:
    """A Unix clock moved by hand."""

    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_scaled_clock_reads_start_at_its_epoch_and_runs_factor_times_faster() -> None:
    wall = Wall()
    clock = ScaledClock(start=START, factor=60, epoch=wall.at, wall=wall)
    assert clock.now() == START
    wall.at += 1.5
    assert clock.now() == START + timedelta(seconds=90)
    wall.at -= 3  # before its epoch: before start, at the same rate
    assert clock.now() == START - timedelta(seconds=90)


def test_scaled_clock_maps_wall_times_both_ways() -> None:
    clock = ScaledClock(start=START, factor=120, epoch=5000.0, wall=Wall())
    when = START + timedelta(hours=1)
    assert clock.wall_at(when) == 5000.0 + 30.0
    assert clock.at(clock.wall_at(when)) == when


def test_two_scaled_clocks_with_the_same_arguments_agree() -> None:
    """Several worker processes share one simulated time."""
    wall = Wall()
    one = ScaledClock(start=START, factor=30, epoch=wall.at - 10, wall=wall)
    two = ScaledClock(start=START, factor=30, epoch=wall.at - 10, wall=wall)
    assert one.now() == two.now() == START + timedelta(minutes=5)


def test_scaled_clock_without_epoch_starts_now() -> None:
    wall = Wall(42.0)
    clock = ScaledClock(start=START, factor=10, wall=wall)
    assert clock.epoch == 42.0 and clock.now() == START


async def test_sleep_until_waits_a_factor_less_and_then_the_moment_has_come() -> None:
    factor = 36_000.0  # an hour in 0.1 s
    clock = ScaledClock(start=START, factor=factor)
    loop = asyncio.get_running_loop()
    target = clock.now() + timedelta(hours=1)
    began = loop.time()
    await clock.sleep_until(target)
    assert loop.time() - began >= 0.09  # asyncio never wakes early (a lower bound only)
    assert clock.now() >= target - timedelta(seconds=factor * 0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": datetime(2026, 1, 5), "factor": 2}, "aware"),
        ({"start": START, "factor": 0}, "positive"),
        ({"start": START, "factor": -3}, "positive"),
    ],
)
def test_scaled_clock_refuses_a_naive_start_or_a_factor_not_above_zero(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ScaledClock(**kwargs)  # type: ignore[arg-type]
