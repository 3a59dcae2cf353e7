"""What both stores do the same way with the audience (agent/store/sql_audience.py,
agent/store/memory_audience.py): how a batch of events changes a member, handles, cohorts, and
the conversion of rows to value objects. Written once, so the two stores cannot disagree.

A member's follow state is folded from the events in time order and is the same whatever order
the events arrive in, and whether one arrives twice: ``followed_at`` is the earliest follow seen,
and the latest follow or unfollow (``follow_changed_at``) decides whether they follow now - a
later follow clears ``unfollowed_at`` (a re-follow), a later unfollow sets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent.audience_models import (
    AudienceEvent,
    AudienceInteraction,
    AudienceKind,
    AudienceMember,
    Tier,
)
from learning.audience import week_start

CHUNK = 500  # ids per IN (...) list: well under SQLite's and asyncpg's parameter limits
MEMBER_STATE = (
    "handle",
    "first_seen_at",
    "followed_at",
    "unfollowed_at",
    "follow_changed_at",
    "cohort",
)


def normal_handle(handle: str | None) -> str | None:
    """A handle as stored: without a leading ``@`` and surrounding spaces (case kept)."""
    if handle is None:
        return None
    stripped = handle.strip().lstrip("@")
    return stripped or None


def handle_key(handle: str) -> str:
    """What ``forget_person`` compares: the stored form, lower-cased."""
    return (normal_handle(handle) or "").lower()


week_of = week_start  # the cohort of a follow: the Monday of its UTC week, YYYY-MM-DD


def merged_member(row: Mapping[str, Any] | None, events: Iterable[AudienceEvent]) -> dict[str, Any]:
    """The member's state columns (:data:`MEMBER_STATE`) after ``events`` (one person's), from
    ``row`` (their stored row, None for someone new)."""
    state: dict[str, Any] = {k: (row[k] if row is not None else None) for k in MEMBER_STATE}
    for event in sorted(events, key=lambda e: (e.at, e.kind != AudienceKind.FOLLOW)):
        handle = normal_handle(event.handle)
        if handle is not None:
            state["handle"] = handle
        if state["first_seen_at"] is None or event.at < state["first_seen_at"]:
            state["first_seen_at"] = event.at
        if event.kind not in (AudienceKind.FOLLOW, AudienceKind.UNFOLLOW):
            continue
        if event.kind == AudienceKind.FOLLOW and (
            state["followed_at"] is None or event.at < state["followed_at"]
        ):
            state["followed_at"] = event.at
            state["cohort"] = week_of(event.at)
        if state["follow_changed_at"] is None or event.at >= state["follow_changed_at"]:
            state["follow_changed_at"] = event.at
            state["unfollowed_at"] = event.at if event.kind == AudienceKind.UNFOLLOW else None
    return state


def new_events(
    events: Sequence[AudienceEvent], stored: set[str]
) -> tuple[list[AudienceEvent], int]:
    """The events not stored yet (first of each source id in the batch), and how many were
    duplicates."""
    seen = set(stored)
    fresh = []
    for event in events:
        if event.source_id in seen:
            continue
        seen.add(event.source_id)
        fresh.append(event)
    return fresh, len(events) - len(fresh)


def check_events(events: Sequence[AudienceEvent]) -> None:
    """Refuse what no store should hold (a caller's bug, as a naive datetime is)."""
    for event in events:
        if not event.user_id or not event.source_id:
            raise ValueError(f"an audience event needs a user_id and a source_id: {event!r}")
        AudienceKind(event.kind)  # an unknown kind raises ValueError


def by_user(events: Iterable[AudienceEvent]) -> dict[str, list[AudienceEvent]]:
    found: dict[str, list[AudienceEvent]] = {}
    for event in events:
        found.setdefault(event.user_id, []).append(event)
    return found


def member_of(row: Mapping[str, Any]) -> AudienceMember:
    return AudienceMember(
        id=int(row["id"]),
        account_id=int(row["account_id"]),
        user_id=str(row["platform_user_id"]),
        handle=row["handle"],
        first_seen_at=row["first_seen_at"],
        followed_at=row["followed_at"],
        unfollowed_at=row["unfollowed_at"],
        follow_changed_at=row["follow_changed_at"],
        cohort=row["cohort"],
        engagement_score=float(row["engagement_score"]),
        tier=Tier(row["tier"]),
        updated_at=row["updated_at"],
    )


def interaction_of(row: Mapping[str, Any]) -> AudienceInteraction:
    return AudienceInteraction(
        id=int(row["id"]),
        account_id=int(row["account_id"]),
        member_id=int(row["member_id"]),
        kind=AudienceKind(row["kind"]),
        at=row["at"],
        source_id=str(row["source_id"]),
        content_id=row["content_id"],
        platform_post_id=row["platform_post_id"],
    )


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
