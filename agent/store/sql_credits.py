"""The SQL store's multi-touch credits (issue 19 item 5, learning/touch.py): per follow and model,
the share of the follower credited to each post touched before it. A part of
:class:`agent.store.sql.SqlStore`; the memory twin is :mod:`agent.store.memory_credits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.store.schema import audience_credits
from agent.store.sql_state import SqlState
from learning.touch import Credit

_credits = audience_credits
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
