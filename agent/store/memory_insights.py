"""The memory store's insights and health-row reads, as :mod:`agent.store.sql_insights` keeps
them (what a sync changes is decided by :mod:`agent.store.insight_rows` for both). A part of
:class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.models import NewInsight, StoredInsight, insight_order
from agent.store.insight_rows import changes, stored_insight
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, exported, refused, utc


class MemoryInsights(MemoryState):
    """Write, list and acknowledge insights; read an account's health rows, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self._insight_keys: dict[str, int] = {}  # key -> insights id
        # health rows by account, (hour_start, id) sorted; indexed up to _health_indexed (ids
        # only grow, so rows written since are picked up on the next read)
        self._health_index: dict[int, list[tuple[datetime, int]]] = {}
        self._health_indexed = 0

    async def sync_insights(
        self, account_id: int | None, found: Sequence[NewInsight], *, now: datetime
    ) -> int:
        """Make the scope's stored insights hold ``found``; returns the rows inserted or
        changed."""
        if account_id is not None and account_id not in self._accounts:
            raise refused(f"FOREIGN KEY constraint failed: insights.account_id = {account_id}")
        rows = self._rows["insights"]
        stored = {r["key"]: r for r in rows.values() if r["account_id"] == account_id}
        inserts, updates = changes(account_id, found, stored, utc(now))
        table = TABLES["insights"]
        new_rows = [table.row(values) for values in inserts]
        for values in inserts:
            if values["key"] in self._insight_keys:
                raise refused("UNIQUE constraint failed: insights.key")
        for row in new_rows:
            self._insert("insights", row)
            self._insight_keys[row["key"]] = row["id"]
        for row_id, values in updates:
            row = rows[row_id]
            rows[row_id] = table.row({**exported("insights", row), **values})
        return len(inserts) + len(updates)

    async def insights(
        self, *, account_id: int | None = None, include_closed: bool = False
    ) -> list[StoredInsight]:
        """The stored insights (one account's, or every one), most severe first; without
        ``include_closed`` only the open ones."""
        names = await self.account_names()
        found = []
        for row in self._rows["insights"].values():
            if account_id is not None and row["account_id"] != account_id:
                continue
            if not include_closed and (row["resolved_at"] or row["acknowledged_at"]):
                continue
            account = names.get(row["account_id"]) if row["account_id"] is not None else None
            found.append(stored_insight(exported("insights", row), account))
        return sorted(found, key=insight_order)

    async def acknowledge_insight(self, insight_id: int, *, now: datetime) -> bool:
        """Mark the insight acknowledged (kept at its first acknowledgement); False when there
        is no insight with this id."""
        row = self._rows["insights"].get(insight_id)
        if row is None:
            return False
        if row["acknowledged_at"] is None:
            row["acknowledged_at"] = utc(now)
        return True

    async def health_hours(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """The account's health rows with ``start <= hour_start < end``, by hour."""
        start, end = utc(start), utc(end)
        rows = self._rows["system_health_metrics"]
        last = self._last_id["system_health_metrics"]
        for row_id in range(self._health_indexed + 1, last + 1):
            row = rows.get(row_id)
            if row is not None:
                keys = self._health_index.setdefault(row["account_id"], [])
                bisect.insort(keys, (row["hour_start"], row_id))
        self._health_indexed = last
        keys = self._health_index.get(account_id, [])
        lo = bisect.bisect_left(keys, (start, 0))
        hi = bisect.bisect_left(keys, (end, 0))
        return [exported("system_health_metrics", rows[i]) for _, i in keys[lo:hi]]
