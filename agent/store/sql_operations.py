"""The SQL store's operations: leases between workers, the kill switch, health rows and counters,
and the approval queue of drafts. A part of :class:`agent.store.sql.SqlStore`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import Post, PostStatus
from agent.store import claims, queries, reports
from agent.store.queries import PAUSED_KEY
from agent.store.rows import aware_utc
from agent.store.schema import content, runtime_state, system_health_metrics
from agent.store.sql_state import SqlState

EXPIRED_DRAFT_ERROR = "expired unapproved"  # the error of a draft nobody approved in time


class SqlOperations(SqlState):
    """Leases, pausing, health, counts and drafts, in SQL."""

    # -- several workers: leases (claims.py) ----------------------------------------------------

    async def acquire_lease(self, name: str, *, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Take, renew or take over an expired lease; False while another worker holds it."""
        return await self._once_plain(claims.acquire_lease, name, worker=worker, now=now, ttl=ttl)

    async def release_lease(self, name: str, *, worker: str) -> None:
        await self._once_plain(claims.release_lease, name, worker=worker)

    async def acquire_leases(
        self, names: Collection[str], *, worker: str, now: datetime, ttl: timedelta
    ) -> set[str]:
        """``acquire_lease`` for each name in one transaction: the names now held."""
        if not names:
            return set()
        return await self._once_plain(
            claims.acquire_leases, list(names), worker=worker, now=now, ttl=ttl
        )

    async def release_leases(self, names: Collection[str], *, worker: str) -> None:
        if names:
            await self._once_plain(claims.release_leases, list(names), worker=worker)

    # -- runtime state (the kill switch) ----------------------------------------------------

    async def set_paused(self, paused: bool, *, reason: str, by: str, now: datetime) -> None:
        """Pause or resume publishing for every worker on this database (an upsert)."""
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        values = {
            "key": PAUSED_KEY,
            "value": {"paused": paused, "reason": reason},
            "updated_at": now,
            "updated_by": by,
        }
        statement = insert(runtime_state).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[runtime_state.c.key],
            set_={k: statement.excluded[k] for k in ("value", "updated_at", "updated_by")},
        )

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._once(go)

    async def paused(self) -> tuple[bool, str | None]:
        """(paused, the reason given) - (False, None) when publishing runs."""
        return await self._once(queries.paused)

    # -- health -----------------------------------------------------------------------------

    async def health_inputs(
        self, account_id: int, start: datetime, end: datetime
    ) -> dict[str, Any]:
        """What happened to one account in [start, end), read back from the tables."""
        return await self._once(reports.health_inputs, account_id, start, end)

    async def write_health(self, row: dict[str, Any]) -> None:
        async def go(conn: AsyncConnection) -> None:
            try:
                async with conn.begin_nested():
                    await conn.execute(system_health_metrics.insert().values(**row))
            except IntegrityError:
                pass  # that hour was already written (another worker, or a retry)

        await self._run(go)

    async def last_health_hour(self) -> datetime | None:
        return await self._once(reports.last_health_hour)

    async def latest_health(self, limit: int = 24) -> list[dict[str, Any]]:
        return await self._once(reports.latest_health, limit)

    async def pending_work(self, now: datetime) -> dict[str, Any]:
        return await self._once(reports.pending_work, now)

    async def next_due(self) -> tuple[datetime | None, datetime | None]:
        """When the next queued post and the next snapshot fall due (None when nothing is)."""
        return await self._once(reports.next_due)

    async def counts(self) -> dict[str, int]:
        return await self._once(reports.counts)

    # -- approval queue (approve mode) ------------------------------------------------------

    async def drafts(self, account_id: int | None = None) -> list[Post]:
        """Drafts waiting for a person's approval, oldest first (of one account, or all)."""
        return await self._once(queries.drafts, account_id)

    async def approve_draft(
        self, content_id: int, *, now: datetime, scheduled_for: datetime | None = None
    ) -> bool:
        """draft -> planned, due at the later of ``now`` and ``scheduled_for`` (default: its own
        slot). False when the post is not (or no longer) a draft."""

        async def go(conn: AsyncConnection) -> bool:
            slot = aware_utc(
                await conn.scalar(
                    sa.select(content.c.scheduled_for).where(
                        content.c.id == content_id, content.c.status == PostStatus.DRAFT.value
                    )
                )
            )
            if slot is None:
                return False
            when = max(now, scheduled_for if scheduled_for is not None else slot)
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(status=PostStatus.PLANNED.value, scheduled_for=when, updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def reject_draft(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """draft -> rejected (never sent). False when the post is not a draft."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(status=PostStatus.REJECTED.value, error=reason[:2000], updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._once(go))

    async def edit_draft(
        self, content_id: int, *, text: str, text_hash: str, now: datetime
    ) -> bool:
        """Replace a draft's text (the caller has checked it). False when it is not a draft."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(text=text, text_hash=text_hash, updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._once(go))

    async def expire_drafts(self, older_than: datetime, now: datetime) -> int:
        """Reject every draft created before ``older_than``; returns how many."""

        async def go(conn: AsyncConnection) -> int:
            result = await conn.execute(
                content.update()
                .where(
                    content.c.status == PostStatus.DRAFT.value,
                    content.c.created_at < older_than,
                )
                .values(status=PostStatus.REJECTED.value, error=EXPIRED_DRAFT_ERROR, updated_at=now)
            )
            return int(result.rowcount)

        return int(await self._once(go))
