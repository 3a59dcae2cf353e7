"""The Store on SQLAlchemy 2 Core (async): SQLite via aiosqlite, PostgreSQL via asyncpg.

Each public method runs in one transaction: an explicit one when it runs several statements
(``SqlState._run``), or, on PostgreSQL, the transaction a single statement is by itself, sent in
autocommit (``SqlState._once``: one round trip instead of three). State transitions of a post are
guarded in their WHERE clause (``status = 'planned'`` to begin a publish, ``status = 'publishing'``
to finish it), so a retried or concurrent call cannot apply twice; snapshot and attribution rows
carry unique keys for the same reason.

Row-to-value-object conversion lives in :mod:`agent.store.rows`; the read-only queries the cycles
use live in :mod:`agent.store.queries`, and the health and reporting ones in
:mod:`agent.store.reports`; the store's methods delegate to both.

The store is put together from parts that share one state (:mod:`agent.store.sql_state`: the engine,
the transaction runner ``_run`` and the accounts): this module holds the content and the
exactly-once publish protocol, :mod:`agent.store.sql_metrics` the polling, attribution and learning,
:mod:`agent.store.sql_operations` leases, the kill switch, health and drafts,
:mod:`agent.store.sql_suspensions` the accounts the circuit breaker suspended,
:mod:`agent.store.sql_spend` the platform spend per account and month,
:mod:`agent.store.sql_queue` the queue a person lists, cancels and moves (``growthloop posts``),
:mod:`agent.store.sql_insights` the insights (``growthloop insights``),
:mod:`agent.store.sql_audience` the audience (members, interactions; docs/audience.md),
:mod:`agent.store.sql_conversations` replies, mentions and read cursors (docs/conversations.md),
:mod:`agent.store.sql_experiments` the planned experiments (``growthloop experiments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import NewContent, Post, PostStatus, QueueState
from agent.store import queries
from agent.store.rows import post_from_row
from agent.store.schema import content, performance_snapshots
from agent.store.sql_audience import SqlAudience
from agent.store.sql_conversations import SqlConversations
from agent.store.sql_credits import SqlCredits
from agent.store.sql_experiments import SqlExperiments
from agent.store.sql_insights import SqlInsights
from agent.store.sql_metrics import SqlMetrics
from agent.store.sql_operations import EXPIRED_DRAFT_ERROR, SqlOperations
from agent.store.sql_queue import SqlQueue
from agent.store.sql_spend import SqlSpend
from agent.store.sql_suspensions import SqlSuspensions
from agent.store.sql_threads import SqlThreads

__all__ = ["EXPIRED_DRAFT_ERROR", "PAUSED_KEY", "SCHEDULED_STATUSES", "SqlStore"]

SCHEDULED_STATUSES = queries.SCHEDULED_STATUSES  # re-exported from agent.store.queries
PAUSED_KEY = queries.PAUSED_KEY  # re-exported from agent.store.queries


# The statements of the publish protocol, built once (see agent/store/queries.py's docstring).
_ADD_CONTENT = content.insert().returning(*content.c)
_BEGIN_PUBLISH = (
    content.update()
    .where(
        content.c.id == sa.bindparam("content_id"),
        content.c.status == PostStatus.PLANNED.value,
    )
    .values(
        status=PostStatus.PUBLISHING.value,
        publish_started_at=sa.bindparam("now"),
        publish_attempts=content.c.publish_attempts + 1,
        updated_at=sa.bindparam("now"),
    )
)
_BEGIN_PUBLISH_DUE = _BEGIN_PUBLISH.where(content.c.scheduled_for <= sa.bindparam("due_by"))
_FINISH_PUBLISH = (
    content.update()
    .where(
        content.c.id == sa.bindparam("content_id"),
        content.c.status == PostStatus.PUBLISHING.value,
    )
    .values(
        status=PostStatus.POSTED.value,
        platform_post_id=sa.bindparam("platform_post_id"),
        posted_at=sa.bindparam("posted_at"),
        error=None,
        updated_at=sa.bindparam("now"),
    )
)
_ADD_DUE_SNAPSHOT = performance_snapshots.insert()


class SqlStore(
    SqlMetrics,
    SqlOperations,
    SqlSuspensions,
    SqlSpend,
    SqlQueue,
    SqlInsights,
    SqlAudience,
    SqlCredits,
    SqlConversations,
    SqlExperiments,
    SqlThreads,
):
    """growthloop's store on SQLite or PostgreSQL."""

    # -- content ----------------------------------------------------------------------------

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        values = {
            "account_id": new.account_id,
            "status": new.status.value,
            "text": new.text,
            "text_hash": new.text_hash,
            "generation_metadata": new.generation_metadata,
            "scheduled_for": new.scheduled_for,
            "idempotency_key": new.idempotency_key,
            "error": new.error,
            "created_at": now,
            "updated_at": now,
        }

        def go(conn: Connection) -> Post:
            return post_from_row(conn.execute(_ADD_CONTENT, values).one())

        post: Post = await self._once_plain(go)
        return post

    async def get_post(self, content_id: int) -> Post | None:
        return await self._once(queries.get_post, content_id)

    async def latest_scheduled(self, account_id: int) -> datetime | None:
        return await self._once(queries.latest_scheduled, account_id)

    async def latest_slot(self, account_id: int) -> tuple[datetime, datetime] | None:
        return await self._once(queries.latest_slot, account_id)

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        return await self._once(queries.count_scheduled, account_id, start, end)

    async def pending_count(self, account_id: int) -> int:
        return await self._once(queries.pending_count, account_id)

    async def queued_accounts(self) -> set[int]:
        return await self._once(queries.queued_accounts)

    async def queue_state(self, account_id: int) -> QueueState:
        return await self._once_plain(queries.queue_state, account_id)

    async def accounts_without_content(self) -> set[int]:
        return await self._once(queries.accounts_without_content)

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        return await self._once(queries.due_posts, now, limit)

    async def begin_publish(
        self, content_id: int, *, now: datetime, due_by: datetime | None = None
    ) -> bool:
        """planned -> publishing, committed before the platform is called (step 1). With
        ``due_by``, only while the post is still due by then (not moved later meanwhile)."""
        statement = _BEGIN_PUBLISH if due_by is None else _BEGIN_PUBLISH_DUE
        values = {"content_id": content_id, "now": now, "due_by": due_by}

        def go(conn: Connection) -> bool:
            return conn.execute(statement, values).rowcount == 1

        return bool(await self._once_plain(go))

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
        posted = {
            "content_id": content_id,
            "platform_post_id": platform_post_id,
            "posted_at": posted_at,
            "now": now,
        }
        due = [
            {
                "content_id": content_id,
                "horizon_hours": h.total_seconds() / 3600,
                "due_at": posted_at + h,
            }
            for h in horizons
        ]

        def go(conn: Connection) -> bool:
            if conn.execute(_FINISH_PUBLISH, posted).rowcount != 1:
                return False
            if due:
                conn.execute(_ADD_DUE_SNAPSHOT, due)
            return True

        return bool(await self._run_plain(go))

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

        await self._once(go)

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

        await self._once(go)

    async def in_flight(self) -> list[Post]:
        return await self._once(queries.in_flight)

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        return await self._once_plain(queries.recent_texts, account_id, limit)
