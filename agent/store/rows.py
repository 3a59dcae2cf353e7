"""Converting database rows into value objects, at the store boundary.

The queries in :mod:`agent.store.sql` and :mod:`agent.store.reports` hand their rows to these
functions, so the rest of growthloop only sees :class:`~agent.models.Post`,
:class:`~agent.models.MetricsSnapshot`, :class:`~agent.models.AccountSnapshot` and aware UTC
datetimes, whichever backend (SQLite or PostgreSQL) produced them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from agent.models import AccountSnapshot, MetricsSnapshot, Post, PostStatus

ARM_FIELDS = (
    "posts",
    "mean",
    "interval_low",
    "interval_high",
    "p_best",
    "model",
)  # the columns of arm_statistics that mirror ArmStat's fields, beyond its key


def post_from_row(row: Any) -> Post:
    """A :class:`Post` from a ``content`` row (or a :class:`TableSlice` of a joined row)."""
    m = row._mapping
    return Post(
        id=m["id"],
        account_id=m["account_id"],
        status=PostStatus(m["status"]),
        text=m["text"],
        text_hash=m["text_hash"],
        generation_metadata=dict(m["generation_metadata"] or {}),
        scheduled_for=m["scheduled_for"],
        idempotency_key=m["idempotency_key"],
        platform_post_id=m["platform_post_id"],
        publish_started_at=m["publish_started_at"],
        publish_attempts=m["publish_attempts"],
        posted_at=m["posted_at"],
        learned_at=m["learned_at"],
        error=m["error"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def snapshot_from_row(m: Any) -> MetricsSnapshot:
    """A :class:`MetricsSnapshot` from anything indexable by ``performance_snapshots`` column name.

    Counts not read yet (NULL) become 0.
    """
    return MetricsSnapshot(
        content_id=m["content_id"],
        horizon_hours=m["horizon_hours"],
        due_at=m["due_at"],
        taken_at=m["taken_at"],
        hours_since_post=m["hours_since_post"],
        likes=m["likes"] or 0,
        reposts=m["reposts"] or 0,
        replies=m["replies"] or 0,
        quotes=m["quotes"] or 0,
        bookmarks=m["bookmarks"] or 0,
        impressions=m["impressions"] or 0,
        engagement_rate=m["engagement_rate"],
        followers_at=m["followers_at"],
    )


def account_snapshot_from_row(row: sa.Row[Any]) -> AccountSnapshot:
    """An :class:`AccountSnapshot` from an ``account_snapshots`` row."""
    m = row._mapping
    return AccountSnapshot(
        account_id=m["account_id"],
        taken_at=m["taken_at"],
        followers=m["followers"],
        following=m["following"],
        posts=m["posts"],
    )


class TableSlice:
    """Read one table's columns out of a joined row by column object."""

    def __init__(self, row: sa.Row[Any], table: sa.Table) -> None:
        self._m = row._mapping
        self._table = table

    def __getitem__(self, key: str) -> Any:
        return self._m[self._table.c[key]]

    @property
    def _mapping(self) -> TableSlice:
        return self


def aware_utc(value: datetime | None) -> datetime | None:
    """Aggregates (max/min) bypass the column type on SQLite and come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cadence_at(metadata: Any, when: datetime) -> datetime:
    """A post's ``cadence_at`` (the cadence's time before the hour was chosen), or ``when``."""
    if isinstance(metadata, str):  # JSON text (the memory store keeps rows as the DB would)
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return when
    raw = metadata.get("cadence_at") if isinstance(metadata, dict) else None
    if not isinstance(raw, str):
        return when
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return when
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
