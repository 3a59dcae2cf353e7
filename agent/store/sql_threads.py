"""The SQL store's thread parts: each part of a thread is its own publish intent (docs/threads.md,
agent/threads.py). A part of :class:`agent.store.sql.SqlStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import PartReading, PartStatus, ThreadPart
from agent.store.schema import thread_part_snapshots, thread_parts
from agent.store.sql_state import SqlState
from agent.store.thread_rows import CLAIMABLE, FINISHABLE, part_of, reading_values

T = thread_parts


class SqlThreads(SqlState):
    """Begin, finish and reset thread parts, and keep each part's counters, in SQL."""

    async def thread_parts(self, content_id: int) -> list[ThreadPart]:
        """The thread's parts whose publish has begun, by position."""
        query = sa.select(T).where(T.c.content_id == content_id).order_by(T.c.position)

        async def go(conn: AsyncConnection) -> list[ThreadPart]:
            return [part_of(dict(row._mapping)) for row in (await conn.execute(query)).all()]

        return await self._run(go)

    async def begin_part(
        self,
        content_id: int,
        position: int,
        *,
        text_hash: str,
        idempotency_key: str,
        reply_to: str | None,
        now: datetime,
    ) -> bool:
        """Record the intent to send one part (``publishing``), committed before it is sent.
        False when the part is already publishing or posted (nothing changes)."""
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        statement = (
            insert(T)
            .values(
                content_id=content_id,
                position=position,
                status=PartStatus.PUBLISHING.value,
                text_hash=text_hash,
                idempotency_key=idempotency_key,
                reply_to=reply_to,
                publish_started_at=now,
                publish_attempts=1,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[T.c.content_id, T.c.position])
        )
        again = (
            T.update()
            .where(
                T.c.content_id == content_id,
                T.c.position == position,
                T.c.status.in_(CLAIMABLE),
            )
            .values(
                status=PartStatus.PUBLISHING.value,
                reply_to=reply_to,
                publish_started_at=now,
                publish_attempts=T.c.publish_attempts + 1,
                updated_at=now,
            )
        )

        async def go(conn: AsyncConnection) -> bool:
            if (await conn.execute(statement)).rowcount == 1:
                return True
            return (await conn.execute(again)).rowcount == 1

        return bool(await self._run(go))

    async def finish_part(
        self,
        content_id: int,
        position: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        now: datetime,
    ) -> bool:
        """Record the part as ``posted`` with its platform id; False when it already was."""
        statement = (
            T.update()
            .where(
                T.c.content_id == content_id,
                T.c.position == position,
                T.c.status.in_(FINISHABLE),
            )
            .values(
                status=PartStatus.POSTED.value,
                platform_post_id=platform_post_id,
                posted_at=posted_at,
                error=None,
                updated_at=now,
            )
        )

        async def go(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount == 1

        return bool(await self._run(go))

    async def reset_part(
        self, content_id: int, position: int, *, error: str, now: datetime
    ) -> bool:
        """A ``publishing`` part the platform does not have: back to ``planned`` (sent again
        with the same idempotency key by the next attempt). False when it was not publishing."""
        statement = (
            T.update()
            .where(
                T.c.content_id == content_id,
                T.c.position == position,
                T.c.status == PartStatus.PUBLISHING.value,
            )
            .values(status=PartStatus.PLANNED.value, error=error, updated_at=now)
        )

        async def go(conn: AsyncConnection) -> bool:
            return (await conn.execute(statement)).rowcount == 1

        return bool(await self._run(go))

    async def thread_post_ids(self, content_ids: Sequence[int]) -> dict[int, list[str]]:
        """The posted parts' platform ids of each thread among ``content_ids``, by position
        (posts that are no thread are left out)."""
        ids = sorted(set(content_ids))
        if not ids:
            return {}
        query = (
            sa.select(T.c.content_id, T.c.platform_post_id)
            .where(T.c.content_id.in_(ids), T.c.status == PartStatus.POSTED.value)
            .order_by(T.c.content_id, T.c.position)
        )

        async def go(conn: AsyncConnection) -> dict[int, list[str]]:
            out: dict[int, list[str]] = {}
            for row in (await conn.execute(query)).all():
                out.setdefault(int(row.content_id), []).append(str(row.platform_post_id))
            return out

        return await self._run(go)

    async def record_part_readings(self, readings: Sequence[PartReading]) -> None:
        """Each part's counters at a taken snapshot (a reading written twice is kept once)."""
        if not readings:
            return
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        statement = insert(thread_part_snapshots).on_conflict_do_nothing(
            index_elements=[thread_part_snapshots.c.snapshot_id, thread_part_snapshots.c.position]
        )
        values = [reading_values(r) for r in readings]

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(statement, values)

        await self._run(go)

    async def part_readings(self, snapshot_id: int) -> list[dict[str, Any]]:
        """The parts' counters at one snapshot, by position (reports and tests)."""
        s = thread_part_snapshots
        query = sa.select(s).where(s.c.snapshot_id == snapshot_id).order_by(s.c.position)

        async def go(conn: AsyncConnection) -> list[dict[str, Any]]:
            rows = (await conn.execute(query)).all()
            return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]

        return await self._run(go)
