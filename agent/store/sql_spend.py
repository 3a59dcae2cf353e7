"""The SQL store's platform spend ledger: what each account's platform billed per calendar month
(UTC) and the posts it published, for the monthly platform budget (agent/budget.py). A part of
:class:`agent.store.sql.SqlStore`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import MonthSpend, month_key
from agent.store.schema import accounts, platform_spend
from agent.store.sql_state import SqlState


class SqlSpend(SqlState):
    """Add to and read the monthly platform spend, in SQL."""

    async def add_platform_spend(
        self, account_id: int, *, usd: float, posts: int = 0, at: datetime
    ) -> None:
        """Add ``usd`` and ``posts`` to the account's month of ``at`` (UTC); concurrent
        workers add atomically (one upsert)."""
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        statement = insert(platform_spend).values(
            account_id=account_id, month=month_key(at), spend_usd=usd, posts=posts, updated_at=at
        )
        statement = statement.on_conflict_do_update(
            index_elements=[platform_spend.c.account_id, platform_spend.c.month],
            set_={
                "spend_usd": platform_spend.c.spend_usd + statement.excluded.spend_usd,
                "posts": platform_spend.c.posts + statement.excluded.posts,
                "updated_at": statement.excluded.updated_at,
            },
        )

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._run(go)

    async def platform_spend(self, account_id: int, *, at: datetime) -> MonthSpend:
        """The account's spend and posts in the month of ``at`` (zeros when nothing is
        recorded)."""
        month = month_key(at)
        query = sa.select(platform_spend.c.spend_usd, platform_spend.c.posts).where(
            platform_spend.c.account_id == account_id, platform_spend.c.month == month
        )

        async def go(conn: AsyncConnection) -> MonthSpend:
            row = (await conn.execute(query)).first()
            if row is None:
                return MonthSpend(month=month, spend_usd=0.0, posts=0)
            return MonthSpend(month=month, spend_usd=float(row.spend_usd), posts=int(row.posts))

        return await self._run(go)

    async def platform_costs(self, *, at: datetime) -> list[MonthSpend]:
        """Every account with spend or posts booked in the month of ``at``, by account name."""
        month = month_key(at)
        query = (
            sa.select(
                platform_spend.c.spend_usd,
                platform_spend.c.posts,
                accounts.c.name,
                accounts.c.platform,
            )
            .join(accounts, accounts.c.id == platform_spend.c.account_id)
            .where(platform_spend.c.month == month)
            .order_by(accounts.c.name)
        )

        async def go(conn: AsyncConnection) -> list[MonthSpend]:
            return [
                MonthSpend(
                    month=month,
                    spend_usd=float(row.spend_usd),
                    posts=int(row.posts),
                    account=str(row.name),
                    platform=str(row.platform),
                )
                for row in await conn.execute(query)
            ]

        return await self._run(go)
