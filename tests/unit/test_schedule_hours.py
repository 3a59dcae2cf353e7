"""Posting-hour slots the planner offers the policy (agent/schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from agent import schedule
from agent.config import ActiveHours

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def test_slots_shift_the_cadence_time_by_whole_hours_both_ways() -> None:
    when = DAY.replace(hour=12, minute=20)
    slots = schedule.hour_slots(when, timedelta(hours=4), ActiveHours())
    assert slots == {
        "12": when,
        "11": when - timedelta(hours=1),
        "13": when + timedelta(hours=1),
        "10": when - timedelta(hours=2),
        "14": when + timedelta(hours=2),
    }


def test_slots_respect_the_earliest_time_and_the_active_hours_in_their_zone() -> None:
    active = ActiveHours(start=time(8), end=time(22), timezone="Europe/Berlin")  # UTC+1 in March
    when = DAY.replace(hour=19, minute=30)  # 20:30 in Berlin
    slots = schedule.hour_slots(
        when, timedelta(hours=6), active, earliest=when - timedelta(minutes=90)
    )
    # 18:30 Berlin is before the earliest time; 22:30 and 23:30 are outside the active hours
    assert slots == {"20": when, "19": when - timedelta(hours=1), "21": when + timedelta(hours=1)}
    assert schedule.hour_label(when, active) == "20"
