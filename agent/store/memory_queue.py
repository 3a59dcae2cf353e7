"""The memory store's queue of posts as a person manages it (``growthloop posts``): listing,
cancelling and moving, as :mod:`agent.store.sql_queue` does in SQL. A part of
:class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from agent.models import CANCELLABLE, MOVABLE, Post, PostStatus
from agent.store.memory_state import MemoryState, post_of
from agent.store.memory_tables import loads, utc


class MemoryQueue(MemoryState):
    """List, cancel and move queued posts, in memory."""

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
        content = self._rows["content"]
        ids: Iterable[int]
        if statuses:
            ids = {i for s in statuses for i in self._status[s.value]}
        else:
            ids = content.keys()
        found = [
            content[i] for i in ids if account_id is None or content[i]["account_id"] == account_id
        ]
        found.sort(key=lambda r: (r["scheduled_for"], r["id"]), reverse=newest_first)
        return [post_of(r) for r in found[: max(limit, 0)]]

    async def llm_spend(self, start: datetime, end: datetime) -> dict[int, float]:
        """Per account, the ``cost_usd`` of the content rows created in [start, end)."""
        start, end = utc(start), utc(end)
        spent: dict[int, float] = {}
        for row in self._rows["content"].values():
            if start <= row["created_at"] < end:
                meta = loads(row["generation_metadata"]) or {}
                cost = float(meta.get("cost_usd", 0.0) or 0.0)
                if cost:
                    spent[row["account_id"]] = spent.get(row["account_id"], 0.0) + cost
        return spent

    async def next_post_after(self, after: datetime) -> datetime | None:
        """The soonest ``scheduled_for`` of a planned post after ``after``."""
        after = utc(after)
        content = self._rows["content"]
        times = (content[i]["scheduled_for"] for i in self._status[PostStatus.PLANNED.value])
        return min((t for t in times if t > after), default=None)

    async def cancel_post(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """planned or draft -> cancelled (never sent); ``reason`` is kept as its error. False
        when the post is in any other state (already publishing, posted, ...)."""
        row = self._content_row(content_id)
        if row is None or row["status"] not in {s.value for s in CANCELLABLE}:
            return False
        self._update(
            row, status=PostStatus.CANCELLED.value, error=reason[:2000], updated_at=utc(now)
        )
        return True

    async def move_post(self, content_id: int, *, scheduled_for: datetime, now: datetime) -> bool:
        """A planned post's new slot. False when the post is not planned."""
        row = self._content_row(content_id)
        if row is None or row["status"] not in {s.value for s in MOVABLE}:
            return False
        self._update(row, scheduled_for=utc(scheduled_for), updated_at=utc(now))
        return True
