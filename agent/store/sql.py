"""The Store on SQLAlchemy 2 Core (async): SQLite via aiosqlite, PostgreSQL via asyncpg.

Each public method runs in one transaction. State transitions of a post are guarded in their
WHERE clause (``status = 'planned'`` to begin a publish, ``status = 'publishing'`` to finish it),
so a retried or concurrent call cannot apply twice; snapshot and attribution rows carry unique
keys for the same reason.

Row-to-value-object conversion lives in :mod:`agent.store.rows`; the read-only queries the
cycles use live in :mod:`agent.store.queries`, and the health and reporting ones in
:mod:`agent.store.reports`; the store's methods delegate to both.

The store is put together from parts that share one state (:mod:`agent.store.sql_state`: the
engine, the transaction runner ``_run`` and the accounts): this module holds the content and the
exactly-once publish protocol, :mod:`agent.store.sql_metrics` the polling, attribution and
learning, :mod:`agent.store.sql_operations` leases, the kill switch, health and drafts,
:mod:`agent.store.sql_suspensions` the accounts the circuit breaker suspended,
:mod:`agent.store.sql_spend` the platform spend per account and month,
:mod:`agent.store.sql_queue` the queue a person lists, cancels and moves (``growthloop posts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import NewContent, Post, PostStatus
from agent.store import queries
from agent.store.rows import post_from_row
from agent.store.schema import content, performance_snapshots
from agent.store.sql_metrics import SqlMetrics
from agent.store.sql_operations import EXPIRED_DRAFT_ERROR, SqlOperations
from agent.store.sql_queue import SqlQueue
from agent.store.sql_spend import SqlSpend
from agent.store.sql_suspensions import SqlSuspensions

__all__ = ["EXPIRED_DRAFT_ERROR", "PAUSED_KEY", "SCHEDULED_STATUSES", "SqlStore"]

SCHEDULED_STATUSES = queries.SCHEDULED_STATUSES  # re-exported from agent.store.queries
PAUSED_KEY = queries.PAUSED_KEY  # re-exported from agent.store.queries


class SqlStore(SqlMetrics, SqlOperations, SqlSuspensions, SqlSpend, SqlQueue):
    """growthloop's store on SQLite or PostgreSQL."""

    # -- content ----------------------------------------------------------------------------

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        async def go(conn: AsyncConnection) -> Post:
            result = await conn.execute(
                content.insert()
                .values(
                    account_id=new.account_id,
                    status=new.status.value,
                    text=new.text,
                    text_hash=new.text_hash,
                    generation_metadata=new.generation_metadata,
                    scheduled_for=new.scheduled_for,
                    idempotency_key=new.idempotency_key,
                    error=new.error,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*content.c)
            )
            return post_from_row(result.one())

        post: Post = await self._run(go)
        return post

    async def get_post(self, content_id: int) -> Post | None:
        return await self._run(queries.get_post, content_id)

    async def latest_scheduled(self, account_id: int) -> datetime | None:
        return await self._run(queries.latest_scheduled, account_id)

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        return await self._run(queries.count_scheduled, account_id, start, end)

    async def pending_count(self, account_id: int) -> int:
        return await self._run(queries.pending_count, account_id)

    async def queued_accounts(self) -> set[int]:
        return await self._run(queries.queued_accounts)

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        return await self._run(queries.due_posts, now, limit)

    async def begin_publish(
        self, content_id: int, *, now: datetime, due_by: datetime | None = None
    ) -> bool:
        """planned -> publishing, committed before the platform is called (step 1). With
        ``due_by``, only while the post is still due by then (not moved later meanwhile)."""
        due = [] if due_by is None else [content.c.scheduled_for <= due_by]

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status == PostStatus.PLANNED.value,
                    *due,
                )
                .values(
                    status=PostStatus.PUBLISHING.value,
                    publish_started_at=now,
                    publish_attempts=content.c.publish_attempts + 1,
                    updated_at=now,
                )
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool:
        """publishing -> posted, with the due snapshot rows, in one transaction (step 3)."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status == PostStatus.PUBLISHING.value,
                )
                .values(
                    status=PostStatus.POSTED.value,
                    platform_post_id=platform_post_id,
                    posted_at=posted_at,
                    error=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                performance_snapshots.insert(),
                [
                    {
                        "content_id": content_id,
                        "horizon_hours": h.total_seconds() / 3600,
                        "due_at": posted_at + h,
                    }
                    for h in horizons
                ],
            )
            return True

        return bool(await self._run(go))

    async def fail_publish(
        self,
        content_id: int,
        *,
        error: str,
        now: datetime,
        status: PostStatus = PostStatus.FAILED,
    ) -> None:
        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status.in_([PostStatus.PLANNED.value, PostStatus.PUBLISHING.value]),
                )
                .values(status=status.value, error=error[:2000], updated_at=now)
            )

        await self._run(go)

    async def reschedule(
        self,
        content_id: int,
        *,
        scheduled_for: datetime,
        error: str,
        now: datetime,
        sent: bool = True,
    ) -> None:
        """Back to planned, at a later time.

        ``sent=False`` (a definite "no" such as a rate limit: nothing reached the platform) gives
        back the attempt ``begin_publish`` counted, so waiting out a 429 storm does not use up
        the post's publish attempts.
        """
        attempts: Any = content.c.publish_attempts
        if not sent:
            attempts = sa.case((attempts > 0, attempts - 1), else_=0)

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status.in_([PostStatus.PLANNED.value, PostStatus.PUBLISHING.value]),
                )
                .values(
                    status=PostStatus.PLANNED.value,
                    scheduled_for=scheduled_for,
                    publish_started_at=None,
                    publish_attempts=attempts,
                    error=error[:2000],
                    updated_at=now,
                )
            )

        await self._run(go)

    async def in_flight(self) -> list[Post]:
        return await self._run(queries.in_flight)

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        return await self._run(queries.recent_texts, account_id, limit)
