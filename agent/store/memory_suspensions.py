"""The memory store's account suspensions (the circuit breaker's state, agent/breaker.py), as
:mod:`agent.store.sql_suspensions` keeps them. A part of :class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from datetime import datetime

from agent.models import Suspension
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, refused, utc
from agent.store.sql_suspensions import DETAIL_LIMIT


class MemorySuspensions(MemoryState):
    """Suspend, lift and list suspended accounts, in memory."""

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
        if account_id not in self._accounts:
            raise refused(
                f"FOREIGN KEY constraint failed: account_suspensions.account_id = {account_id}"
            )
        rows = self._rows["account_suspensions"]
        held = rows.get(account_id)
        if held is not None and (held["until"] is None or utc(now) < held["until"]):
            return False
        rows[account_id] = TABLES["account_suspensions"].row(
            {
                "account_id": account_id,
                "reason": reason,
                "error_kind": error_kind,
                "detail": detail[:DETAIL_LIMIT],
                "fingerprint": fingerprint,
                "suspended_at": now,
                "until": until,
            }
        )
        return True

    async def lift_suspension(self, account_id: int) -> bool:
        """End the account's suspension; False when it had none."""
        return self._rows["account_suspensions"].pop(account_id, None) is not None

    async def suspensions(self, *, now: datetime | None = None) -> list[Suspension]:
        """The suspended accounts by account id (only those in force at ``now``, if given)."""
        at = utc(now) if now is not None else None
        found = []
        for account_id in sorted(self._rows["account_suspensions"]):
            row = self._rows["account_suspensions"][account_id]
            if at is not None and row["until"] is not None and not at < row["until"]:
                continue
            account = self._rows["accounts"][account_id]
            found.append(
                Suspension(
                    account_id=account_id,
                    account=account["name"],
                    platform=account["platform"],
                    reason=row["reason"],
                    error_kind=row["error_kind"],
                    detail=row["detail"],
                    fingerprint=row["fingerprint"],
                    suspended_at=row["suspended_at"],
                    until=row["until"],
                )
            )
        return found
