"""The SQL store's account suspensions (the circuit breaker's state, agent/breaker.py). A part of
:class:`agent.store.sql.SqlStore`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import Suspension
from agent.store.schema import account_suspensions, accounts
from agent.store.sql_state import SqlState

DETAIL_LIMIT = 2000  # characters of the error message kept


def suspension_from_row(row: Any) -> Suspension:
    return Suspension(
        account_id=int(row.account_id),
        account=str(row.name),
        platform=str(row.platform),
        reason=str(row.reason),
        error_kind=str(row.error_kind),
        detail=str(row.detail),
        fingerprint=row.fingerprint,
        suspended_at=row.suspended_at,
        until=row.until,
    )


class SqlSuspensions(SqlState):
    """Suspend, lift and list suspended accounts, in SQL."""

    async def suspend_account(
        self,
        *,
        account_id: int,
        reason: str,
        error_kind: str,
        detail: str,
        fingerprint: str | None,
        now: datetime,
        until: datetime | None = None,
    ) -> bool:
        """Suspend the account; False when a suspension is already in force (kept as it is)."""
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        statement = (
            insert(account_suspensions)
            .values(
                account_id=account_id,
                reason=reason,
                error_kind=error_kind,
                detail=detail[:DETAIL_LIMIT],
                fingerprint=fingerprint,
                suspended_at=now,
                until=until,
            )
            .on_conflict_do_nothing(index_elements=[account_suspensions.c.account_id])
        )
        ended = account_suspensions.delete().where(
            account_suspensions.c.account_id == account_id,
            account_suspensions.c.until.is_not(None),
            account_suspensions.c.until <= now,
        )

        async def go(conn: AsyncConnection) -> bool:
            await conn.execute(ended)  # a cool-down that is over is replaced
            result = await conn.execute(statement)
            return result.rowcount == 1

        return bool(await self._run(go))

    async def lift_suspension(self, account_id: int) -> bool:
        """End the account's suspension; False when it had none."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                account_suspensions.delete().where(account_suspensions.c.account_id == account_id)
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def suspensions(self, *, now: datetime | None = None) -> list[Suspension]:
        """The suspended accounts by account id (only those in force at ``now``, if given)."""
        query = (
            sa.select(account_suspensions, accounts.c.name, accounts.c.platform)
            .join(accounts, accounts.c.id == account_suspensions.c.account_id)
            .order_by(account_suspensions.c.account_id)
        )
        if now is not None:
            query = query.where(
                sa.or_(account_suspensions.c.until.is_(None), account_suspensions.c.until > now)
            )

        async def go(conn: AsyncConnection) -> list[Suspension]:
            return [suspension_from_row(row) for row in await conn.execute(query)]

        return await self._run(go)
