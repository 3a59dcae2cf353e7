"""The memory store's platform spend ledger, as :mod:`agent.store.sql_spend` keeps it. A part of
:class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from datetime import datetime

from agent.models import MonthSpend, month_key
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, refused


class MemorySpend(MemoryState):
    """Add to and read the monthly platform spend, in memory."""

    async def add_platform_spend(
        self, account_id: int, *, usd: float, posts: int = 0, at: datetime
    ) -> None:
        """Add ``usd`` and ``posts`` to the account's month of ``at`` (UTC)."""
        if account_id not in self._accounts:
            raise refused(
                f"FOREIGN KEY constraint failed: platform_spend.account_id = {account_id}"
            )
        key = (account_id, month_key(at))
        rows = self._rows["platform_spend"]
        held = rows.get(key)
        rows[key] = TABLES["platform_spend"].row(
            {
                "account_id": account_id,
                "month": key[1],
                "spend_usd": (held["spend_usd"] if held else 0.0) + usd,
                "posts": (held["posts"] if held else 0) + posts,
                "updated_at": at,
            }
        )

    async def platform_spend(self, account_id: int, *, at: datetime) -> MonthSpend:
        """The account's spend and posts in the month of ``at`` (zeros when nothing is
        recorded)."""
        month = month_key(at)
        row = self._rows["platform_spend"].get((account_id, month))
        if row is None:
            return MonthSpend(month=month, spend_usd=0.0, posts=0)
        return MonthSpend(month=month, spend_usd=float(row["spend_usd"]), posts=int(row["posts"]))

    async def platform_costs(self, *, at: datetime) -> list[MonthSpend]:
        """Every account with spend or posts booked in the month of ``at``, by account name."""
        month = month_key(at)
        found = []
        for (account_id, row_month), row in self._rows["platform_spend"].items():
            if row_month != month:
                continue
            account = self._rows["accounts"][account_id]
            found.append(
                MonthSpend(
                    month=month,
                    spend_usd=float(row["spend_usd"]),
                    posts=int(row["posts"]),
                    account=str(account["name"]),
                    platform=str(account["platform"]),
                )
            )
        return sorted(found, key=lambda m: m.account)
