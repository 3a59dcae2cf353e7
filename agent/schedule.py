"""Cadence arithmetic: when may an account post next? Pure functions of their arguments."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from agent.config import ActiveHours, Cadence


def in_active_hours(when: datetime, active: ActiveHours) -> bool:
    local = when.astimezone(active.zone).time()
    if active.start == active.end:
        return True
    if active.start < active.end:
        return active.start <= local < active.end
    return local >= active.start or local < active.end  # window over midnight


def _at(day: datetime, clock_time: time, active: ActiveHours) -> datetime:
    local = datetime.combine(day.date(), clock_time, tzinfo=active.zone)
    return local.astimezone(UTC)


def next_active_start(when: datetime, active: ActiveHours) -> datetime:
    """``when`` itself if it is inside the active hours, else the next moment they begin."""
    if in_active_hours(when, active):
        return when
    local = when.astimezone(active.zone)
    start_today = _at(local, active.start, active)
    if start_today > when:
        return start_today
    return _at(local + timedelta(days=1), active.start, active)


def active_span(active: ActiveHours) -> timedelta:
    start = datetime.combine(datetime(2000, 1, 1), active.start)
    end = datetime.combine(datetime(2000, 1, 1), active.end)
    if end <= start:
        end += timedelta(days=1)
    return end - start


def spacing(cadence: Cadence) -> timedelta:
    """The target gap between two posts: the active span shared by the day's posts."""
    even = active_span(cadence.active_hours) / cadence.posts_per_day
    per_hour = timedelta(hours=1) / cadence.max_posts_per_hour
    return max(even, cadence.min_gap, per_hour)


def minimum_gap(cadence: Cadence) -> timedelta:
    return max(cadence.min_gap, timedelta(hours=1) / cadence.max_posts_per_hour)


def local_day(when: datetime, active: ActiveHours) -> tuple[datetime, datetime]:
    """The UTC bounds of the local calendar day (in the active-hours zone) containing ``when``."""
    local = when.astimezone(active.zone)
    start = datetime.combine(local.date(), time(0), tzinfo=active.zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=active.zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def daily_cap(cadence: Cadence) -> int:
    return max(1, int(-(-cadence.posts_per_day // 1)))  # ceil


def hour_label(when: datetime, active: ActiveHours) -> str:
    """The local hour of ``when`` in the active-hours zone, as the policy's arm name ("09")."""
    return f"{when.astimezone(active.zone).hour:02d}"


def hour_slots(
    when: datetime, window: timedelta, active: ActiveHours, *, earliest: datetime | None = None
) -> dict[str, datetime]:
    """Alternative posting times for the post the cadence puts at ``when``: ``when`` moved by
    whole hours, up to half of ``window`` either way, never before ``earliest`` and only inside
    the active hours; by local hour label ("09").

    Shifts are symmetric around the cadence's own time, so choosing among them moves posts to
    better hours without posting less (or more) often on average.
    """
    slots = {hour_label(when, active): when}
    reach = int(window / timedelta(hours=1) / 2)
    for k in sorted(range(-reach, reach + 1), key=abs):
        moment = when + timedelta(hours=k)
        if earliest is not None and moment < earliest:
            continue
        if in_active_hours(moment, active):
            slots.setdefault(hour_label(moment, active), moment)
    return slots
