"""The SQL store's multi-touch credits (issue 19 item 5, learning/touch.py): per follow and model,
the share of the follower credited to each post touched before it. A part of
:class:`agent.store.sql.SqlStore`; the memory twin is :mod:`agent.store.memory_credits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.store.schema import audience_credits, audience_interactions, audience_members
from agent.store.sql_state import SqlState
from learning.touch import Credit

_credits = audience_credits
_interactions = audience_interactions
CHUNK = 2_000  # rows per INSERT


class SqlCredits(SqlState):
    async def replace_audience_credits(
        self, account_id: int, credits: Sequence[Credit], *, since: datetime
    ) -> int:
        """In one transaction: remove the account's credits of follows at or after ``since``,
        then store ``credits`` (all of follows at or after ``since``); the rows stored."""
        early = [c for c in credits if c.followed_at < since]
        if early:
            raise ValueError(
                f"a credit of a follow at {early[0].followed_at.isoformat()} is before "
                f"since={since.isoformat()}"
            )
        rows = [
            {
                "account_id": account_id,
                "member_id": c.member_id,
                "content_id": c.content_id,
                "model": c.model,
                "followed_at": c.followed_at,
                "credit": c.credit,
            }
            for c in credits
        ]

        async def go(conn: AsyncConnection) -> int:
            await conn.execute(
                _credits.delete().where(
                    _credits.c.account_id == account_id, _credits.c.followed_at >= since
                )
            )
            for i in range(0, len(rows), CHUNK):
                await conn.execute(_credits.insert(), rows[i : i + CHUNK])
            return len(rows)

        return await self._run(go)

    async def audience_credits(self, account_id: int, *, model: str | None = None) -> list[Credit]:
        """The account's stored credits (of one model), by follow time."""
        query = sa.select(_credits).where(_credits.c.account_id == account_id)
        if model is not None:
            query = query.where(_credits.c.model == model)
        query = query.order_by(_credits.c.followed_at, _credits.c.id)

        async def go(conn: AsyncConnection) -> list[Credit]:
            return [
                Credit(
                    model=r.model,
                    member_id=r.member_id,
                    followed_at=r.followed_at,
                    content_id=r.content_id,
                    credit=r.credit,
                )
                for r in await conn.execute(query)
            ]

        return await self._run(go)

    async def audience_activity(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[tuple[int, str, float]]:
        """The account's interactions as ``(member id, kind, seconds since the epoch)``, by
        time: what scoring reads, without building an object (or parsing a timestamp) per
        row. The seconds are computed by the database."""
        column = _interactions.c.at
        if self.backend == "sqlite":  # stored as naive UTC text: julianday reads it
            seconds = (sa.func.julianday(column) - 2440587.5) * 86400.0
        else:
            seconds = sa.extract("epoch", column)
        query = sa.select(_interactions.c.member_id, _interactions.c.kind, seconds).where(
            _interactions.c.account_id == account_id
        )
        if since is not None:
            query = query.where(column >= since)
        query = query.order_by(column, _interactions.c.id)

        async def go(conn: AsyncConnection) -> list[tuple[int, str, float]]:
            result = await conn.execute(query)
            return [(int(m), str(k), float(t)) for m, k, t in result.tuples()]

        return await self._run(go)

    async def audience_member_ids(self, account_id: int) -> list[int]:
        """The ids of the account's members, ascending (what scoring needs of them)."""
        query = (
            sa.select(audience_members.c.id)
            .where(audience_members.c.account_id == account_id)
            .order_by(audience_members.c.id)
        )

        async def go(conn: AsyncConnection) -> list[int]:
            return [int(i) for i in (await conn.execute(query)).scalars()]

        return await self._run(go)
