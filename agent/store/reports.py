"""Read-only queries behind the health surface, the summary and the simulator's queue.

Each function takes an open :class:`~sqlalchemy.ext.asyncio.AsyncConnection` and only reads;
:class:`agent.store.sql.SqlStore` runs them in a transaction of their own (``SqlStore._run``) and
exposes them as the Store's health methods. Datetimes come back aware, in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import PostStatus
from agent.store.rows import aware_utc
from agent.store.schema import (
    account_snapshots,
    accounts,
    content,
    learning_updates,
    performance_snapshots,
    system_health_metrics,
)


async def health_inputs(
    conn: AsyncConnection, account_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """What happened to one account in [start, end), read back from the tables."""
    ps = performance_snapshots

    def in_hour(col: Any) -> Any:
        return sa.and_(col >= start, col < end)

    status_counts: dict[Any, Any] = dict(
        (
            await conn.execute(
                sa.select(content.c.status, sa.func.count())
                .where(content.c.account_id == account_id, in_hour(content.c.updated_at))
                .group_by(content.c.status)
            )
        ).all()  # type: ignore[arg-type]
    )
    posted = await conn.scalar(
        sa.select(sa.func.count()).where(
            content.c.account_id == account_id, in_hour(content.c.posted_at)
        )
    )
    attempted = await conn.scalar(
        sa.select(sa.func.count()).where(
            content.c.account_id == account_id, in_hour(content.c.publish_started_at)
        )
    )
    polls = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(ps.c.taken_at),
                sa.func.avg(ps.c.engagement_rate),
            )
            .join(content, content.c.id == ps.c.content_id)
            .where(content.c.account_id == account_id, in_hour(ps.c.due_at))
        )
    ).one()
    done_rows = (
        await conn.execute(
            sa.select(ps.c.due_at, ps.c.taken_at)
            .join(content, content.c.id == ps.c.content_id)
            .where(content.c.account_id == account_id, in_hour(ps.c.taken_at))
        )
    ).all()
    spend = (
        await conn.execute(
            sa.select(content.c.generation_metadata).where(
                content.c.account_id == account_id, in_hour(content.c.created_at)
            )
        )
    ).all()
    series = (
        await conn.execute(
            sa.select(account_snapshots.c.taken_at, account_snapshots.c.followers)
            .where(
                account_snapshots.c.account_id == account_id,
                account_snapshots.c.taken_at < end,
            )
            .order_by(account_snapshots.c.taken_at.desc())
            .limit(1)
        )
    ).first()
    before = (
        await conn.execute(
            sa.select(account_snapshots.c.followers)
            .where(
                account_snapshots.c.account_id == account_id,
                account_snapshots.c.taken_at < start,
            )
            .order_by(account_snapshots.c.taken_at.desc())
            .limit(1)
        )
    ).first()
    return {
        "status_counts": {str(k): int(v) for k, v in status_counts.items()},
        "posts_succeeded": int(posted or 0),
        "posts_attempted": int(attempted or 0),
        "polls_due": int(polls[0] or 0),
        "polls_done_of_due": int(polls[1] or 0),
        "engagement_rate": float(polls[2]) if polls[2] is not None else None,
        "polls_done": [(aware_utc(d), aware_utc(t)) for d, t in done_rows],
        "llm_spend_usd": sum(float((meta or {}).get("cost_usd", 0.0) or 0.0) for (meta,) in spend),
        "followers_end": int(series[1]) if series else None,
        "followers_start": int(before[0]) if before else None,
    }


async def last_health_hour(conn: AsyncConnection) -> datetime | None:
    """The latest hour a health row was written for (any account), or None."""
    return aware_utc(await conn.scalar(sa.select(sa.func.max(system_health_metrics.c.hour_start))))


async def latest_health(conn: AsyncConnection, limit: int = 24) -> list[dict[str, Any]]:
    """The newest health rows, newest hour first, each with its account's name."""
    h = system_health_metrics
    rows = await conn.execute(
        sa.select(h, accounts.c.name.label("account"))
        .join(accounts, accounts.c.id == h.c.account_id)
        .order_by(h.c.hour_start.desc(), accounts.c.name)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def pending_work(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """Polls due and upcoming, posts queued and in flight, and when the next of each falls due."""
    ps = performance_snapshots
    due_polls = await conn.scalar(
        sa.select(sa.func.count()).where(ps.c.taken_at.is_(None), ps.c.due_at <= now)
    )
    upcoming = await conn.scalar(
        sa.select(sa.func.count()).where(ps.c.taken_at.is_(None), ps.c.due_at > now)
    )
    next_poll = await conn.scalar(
        sa.select(sa.func.min(ps.c.due_at)).where(ps.c.taken_at.is_(None))
    )
    queued = (
        await conn.execute(
            sa.select(content.c.status, sa.func.count(), sa.func.min(content.c.scheduled_for))
            .where(content.c.status.in_([PostStatus.PLANNED.value, PostStatus.PUBLISHING.value]))
            .group_by(content.c.status)
        )
    ).all()
    by_status = {str(s): (int(n), aware_utc(first)) for s, n, first in queued}
    planned = by_status.get(PostStatus.PLANNED.value, (0, None))
    return {
        "polls_due": int(due_polls or 0),
        "polls_upcoming": int(upcoming or 0),
        "next_poll_at": aware_utc(next_poll),
        "posts_queued": planned[0],
        "next_post_at": planned[1],
        "posts_in_flight": by_status.get(PostStatus.PUBLISHING.value, (0, None))[0],
    }


async def next_due(conn: AsyncConnection) -> tuple[datetime | None, datetime | None]:
    """When the next queued post and the next snapshot fall due (None when nothing is)."""
    post = await conn.scalar(
        sa.select(sa.func.min(content.c.scheduled_for)).where(
            content.c.status == PostStatus.PLANNED.value
        )
    )
    poll = await conn.scalar(
        sa.select(sa.func.min(performance_snapshots.c.due_at)).where(
            performance_snapshots.c.taken_at.is_(None)
        )
    )
    return aware_utc(post), aware_utc(poll)


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """Posts by status, plus snapshots taken and learning updates written, over all accounts."""
    rows = await conn.execute(
        sa.select(content.c.status, sa.func.count()).group_by(content.c.status)
    )
    out = {str(s): int(n) for s, n in rows}
    out["snapshots_taken"] = int(
        await conn.scalar(
            sa.select(sa.func.count()).where(performance_snapshots.c.taken_at.is_not(None))
        )
        or 0
    )
    out["learning_updates"] = int(
        await conn.scalar(sa.select(sa.func.count()).select_from(learning_updates)) or 0
    )
    return out
