"""The SQL store's insights (learning/insights.py, agent/insights.py) and the hourly health rows
they are computed from. A part of :class:`agent.store.sql.SqlStore`; what a sync changes is
decided by :mod:`agent.store.insight_rows`, once for both stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import NewInsight, StoredInsight, insight_order
from agent.store.insight_rows import changes, stored_insight
from agent.store.schema import accounts, insights, system_health_metrics
from agent.store.sql_state import SqlState


class SqlInsights(SqlState):
    """Write, list and acknowledge insights; read an account's health rows, in SQL."""

    async def sync_insights(
        self, account_id: int | None, found: Sequence[NewInsight], *, now: datetime
    ) -> int:
        """Make the scope's stored insights hold ``found`` (see agent/store/insight_rows.py):
        one transaction; returns the rows inserted or changed."""
        scope = (
            insights.c.account_id.is_(None)
            if account_id is None
            else insights.c.account_id == account_id
        )

        async def go(conn: AsyncConnection) -> int:
            rows = (await conn.execute(sa.select(insights).where(scope))).mappings().all()
            inserts, updates = changes(account_id, found, {r["key"]: dict(r) for r in rows}, now)
            if inserts:
                await conn.execute(insights.insert(), inserts)
            for row_id, values in updates:
                await conn.execute(insights.update().where(insights.c.id == row_id).values(values))
            return len(inserts) + len(updates)

        return await self._run(go)

    async def insights(
        self, *, account_id: int | None = None, include_closed: bool = False
    ) -> list[StoredInsight]:
        """The stored insights (one account's, or every one), most severe first; without
        ``include_closed`` only the open ones (not resolved, not acknowledged)."""
        query = sa.select(insights, accounts.c.name.label("account_name")).outerjoin(
            accounts, accounts.c.id == insights.c.account_id
        )
        if account_id is not None:
            query = query.where(insights.c.account_id == account_id)
        if not include_closed:
            query = query.where(
                insights.c.resolved_at.is_(None), insights.c.acknowledged_at.is_(None)
            )

        async def go(conn: AsyncConnection) -> list[StoredInsight]:
            rows = (await conn.execute(query)).mappings().all()
            return sorted(
                (stored_insight(dict(r), r["account_name"]) for r in rows), key=insight_order
            )

        return await self._run(go)

    async def acknowledge_insight(self, insight_id: int, *, now: datetime) -> bool:
        """Mark the insight acknowledged (kept at its first acknowledgement); False when there
        is no insight with this id."""

        async def go(conn: AsyncConnection) -> bool:
            found = await conn.scalar(sa.select(insights.c.id).where(insights.c.id == insight_id))
            if found is None:
                return False
            await conn.execute(
                insights.update()
                .where(insights.c.id == insight_id, insights.c.acknowledged_at.is_(None))
                .values(acknowledged_at=now)
            )
            return True

        return await self._run(go)

    async def health_hours(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """The account's ``system_health_metrics`` rows with ``start <= hour_start < end``, by
        hour (JSON columns decoded)."""
        h = system_health_metrics
        query = (
            sa.select(h)
            .where(h.c.account_id == account_id, h.c.hour_start >= start, h.c.hour_start < end)
            .order_by(h.c.hour_start)
        )

        async def go(conn: AsyncConnection) -> list[dict[str, Any]]:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]

        return await self._run(go)
