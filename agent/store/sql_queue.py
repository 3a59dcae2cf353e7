"""The SQL store's queue of posts as a person manages it (``growthloop posts``, agent/posts.py):
listing posts by account and status, cancelling a queued post and moving its slot. A part of
:class:`agent.store.sql.SqlStore`.

Both changes are one conditional ``UPDATE ... WHERE id = :id AND status IN (...)``: they apply
only to a post in a state that allows them, atomically with respect to the publish cycle's own
compare-and-set (``begin_publish`` moves ``planned`` to ``publishing`` only while the row is
still ``planned``). Whichever commits first wins: a cancelled post can never be claimed for
publishing, and a post already claimed can no longer be cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import CANCELLABLE, MOVABLE, Post, PostStatus
from agent.store.rows import aware_utc, post_from_row
from agent.store.schema import content
from agent.store.sql_state import SqlState


class SqlQueue(SqlState):
    """List, cancel and move queued posts, in SQL."""

    async def list_posts(
        self,
        *,
        account_id: int | None = None,
        statuses: Sequence[PostStatus] = (),
        newest_first: bool = False,
        limit: int = 50,
    ) -> list[Post]:
        """Posts of one account (or all) in ``statuses`` (or any), by slot: soonest first, or
        latest first with ``newest_first``; at most ``limit``."""
        query = sa.select(content)
        if account_id is not None:
            query = query.where(content.c.account_id == account_id)
        if statuses:
            query = query.where(content.c.status.in_([s.value for s in statuses]))
        order = (content.c.scheduled_for, content.c.id)
        query = query.order_by(*(c.desc() for c in order) if newest_first else order)

        async def go(conn: AsyncConnection) -> list[Post]:
            return [post_from_row(r) for r in await conn.execute(query.limit(max(limit, 0)))]

        return await self._once(go)

    async def cancel_post(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """planned or draft -> cancelled (never sent); ``reason`` is kept as its error. False
        when the post is in any other state (already publishing, posted, ...)."""
        update = (
            content.update()
            .where(content.c.id == content_id, content.c.status.in_([s.value for s in CANCELLABLE]))
            .values(status=PostStatus.CANCELLED.value, error=reason[:2000], updated_at=now)
        )
        return await self._changed(update)

    async def move_post(self, content_id: int, *, scheduled_for: datetime, now: datetime) -> bool:
        """A planned post's new slot. False when the post is not planned."""
        update = (
            content.update()
            .where(content.c.id == content_id, content.c.status.in_([s.value for s in MOVABLE]))
            .values(scheduled_for=scheduled_for, updated_at=now)
        )
        return await self._changed(update)

    async def llm_spend(self, start: datetime, end: datetime) -> dict[int, float]:
        """Per account, the ``cost_usd`` of the content rows created in [start, end)."""
        query = sa.select(content.c.account_id, content.c.generation_metadata).where(
            content.c.created_at >= start, content.c.created_at < end
        )

        async def go(conn: AsyncConnection) -> dict[int, float]:
            spent: dict[int, float] = {}
            for account_id, meta in await conn.execute(query):
                cost = float((meta or {}).get("cost_usd", 0.0) or 0.0)
                if cost:
                    spent[int(account_id)] = spent.get(int(account_id), 0.0) + cost
            return spent

        return await self._run(go)

    async def next_post_after(self, after: datetime) -> datetime | None:
        """The soonest ``scheduled_for`` of a planned post after ``after`` (the (status,
        scheduled_for) index)."""
        query = sa.select(sa.func.min(content.c.scheduled_for)).where(
            content.c.status == PostStatus.PLANNED.value, content.c.scheduled_for > after
        )

        async def go(conn: AsyncConnection) -> datetime | None:
            return aware_utc(await conn.scalar(query))

        return await self._run(go)

    async def _changed(self, update: sa.Update) -> bool:
        async def go(conn: AsyncConnection) -> bool:
            return (await conn.execute(update)).rowcount == 1

        return bool(await self._once(go))
