"""The memory store's replies inbox and read cursors, as :mod:`agent.store.sql_conversations`
keeps them (shared: :mod:`agent.store.conversation_rows`). A part of
:class:`agent.store.memory.MemoryStore`. Conversations live in ``_rows["conversations"]`` by id,
read cursors in ``_rows["read_cursors"]`` by (account, source), so ``export`` copies both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.conversation_models import (
    Conversation,
    ConversationsRecorded,
    ReadCursor,
    StoredConversation,
)
from agent.store.conversation_rows import (
    check_conversations,
    check_source,
    conversation_of,
    conversation_row,
    new_conversations,
)
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, refused, utc


class MemoryConversations(MemoryState):
    """Record and read replies and mentions; keep each audience source's read cursor."""

    async def record_conversations(
        self, account_id: int, items: Sequence[Conversation], *, now: datetime
    ) -> ConversationsRecorded:
        check_conversations(items)
        now = utc(now)
        if account_id not in self._accounts:
            raise refused(f"FOREIGN KEY constraint failed: conversations.account_id = {account_id}")
        rows = self._rows["conversations"]
        stored = {
            r["platform_post_id"]
            for r in rows.values()
            if r["account_id"] == account_id
            and r["platform_post_id"] in {i.platform_post_id for i in items}
        }
        fresh, duplicates = new_conversations(items, stored)
        ours = {
            row["platform_post_id"]: row["id"]
            for row in (self._rows["content"][i] for i in self._accounts[account_id].content)
            if row["platform_post_id"] is not None
        }
        for item in fresh:
            row = conversation_row(account_id, item, ours.get(item.parent_post_id or ""), now=now)
            self._insert("conversations", TABLES["conversations"].row(row))
        return ConversationsRecorded(stored=len(fresh), duplicates=duplicates)

    async def conversations(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[StoredConversation]:
        start = utc(since) if since is not None else None
        found = [
            r
            for r in self._rows["conversations"].values()
            if r["account_id"] == account_id and (start is None or r["at"] >= start)
        ]
        found.sort(key=lambda r: (r["at"], r["id"]))
        return [conversation_of(r) for r in found]

    async def read_cursor(self, account_id: int, source: str) -> ReadCursor | None:
        check_source(source)
        row = self._rows["read_cursors"].get((account_id, source))
        return (
            None if row is None else ReadCursor(cursor=row["cursor"], updated_at=row["updated_at"])
        )

    async def set_read_cursor(
        self, account_id: int, source: str, cursor: str | None, *, now: datetime
    ) -> None:
        check_source(source)
        if account_id not in self._accounts:
            raise refused(f"FOREIGN KEY constraint failed: read_cursors.account_id = {account_id}")
        self._rows["read_cursors"][(account_id, source)] = TABLES["read_cursors"].row(
            {"account_id": account_id, "source": source, "cursor": cursor, "updated_at": utc(now)}
        )
