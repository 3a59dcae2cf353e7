"""The SQL store's replies inbox and read cursors (issue 21 item 2, issue 19 item 2;
docs/conversations.md). A part of :class:`agent.store.sql.SqlStore`; what it shares with the
memory store is in :mod:`agent.store.conversation_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.conversation_models import (
    Conversation,
    ConversationsRecorded,
    ReadCursor,
    StoredConversation,
)
from agent.store.audience_rows import chunks
from agent.store.conversation_rows import (
    check_conversations,
    check_source,
    conversation_of,
    conversation_row,
    new_conversations,
)
from agent.store.schema import content, conversations, read_cursors
from agent.store.sql_state import SqlState


class SqlConversations(SqlState):
    """Record and read replies and mentions; keep each audience source's read cursor."""

    async def record_conversations(
        self, account_id: int, items: Sequence[Conversation], *, now: datetime
    ) -> ConversationsRecorded:
        """Store each reply or mention not stored yet (by the account and its platform id), in
        one transaction; the post it answers gets our content id when it is ours."""
        check_conversations(items)
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert

        async def go(conn: AsyncConnection) -> ConversationsRecorded:
            stored: set[str] = set()
            for part in chunks(sorted({i.platform_post_id for i in items})):
                stored.update(
                    await conn.scalars(
                        sa.select(conversations.c.platform_post_id).where(
                            conversations.c.account_id == account_id,
                            conversations.c.platform_post_id.in_(part),
                        )
                    )
                )
            fresh, duplicates = new_conversations(items, stored)
            if not fresh:
                return ConversationsRecorded(stored=0, duplicates=duplicates)
            ours: dict[str, int] = {}
            for part in chunks(sorted({i.parent_post_id for i in fresh if i.parent_post_id})):
                result = await conn.execute(
                    sa.select(content.c.platform_post_id, content.c.id).where(
                        content.c.account_id == account_id, content.c.platform_post_id.in_(part)
                    )
                )
                ours.update({str(r.platform_post_id): int(r.id) for r in result})
            result = await conn.execute(
                insert(conversations)
                .on_conflict_do_nothing(
                    index_elements=[conversations.c.account_id, conversations.c.platform_post_id]
                )
                .returning(conversations.c.id),
                [
                    conversation_row(account_id, i, ours.get(i.parent_post_id or ""), now=now)
                    for i in fresh
                ],
            )
            written = len(result.all())
            return ConversationsRecorded(
                stored=written, duplicates=duplicates + len(fresh) - written
            )

        return await self._run(go)

    async def conversations(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[StoredConversation]:
        """The account's replies and mentions (``at >= since``), by time."""
        query = sa.select(conversations).where(conversations.c.account_id == account_id)
        if since is not None:
            query = query.where(conversations.c.at >= since)

        async def go(conn: AsyncConnection) -> list[StoredConversation]:
            rows = await conn.execute(query.order_by(conversations.c.at, conversations.c.id))
            return [conversation_of(dict(r._mapping)) for r in rows]

        return await self._once(go)

    async def read_cursor(self, account_id: int, source: str) -> ReadCursor | None:
        """Where ``source`` of the account is read from next and when it was last written
        (None: never read)."""
        check_source(source)
        query = sa.select(read_cursors.c.cursor, read_cursors.c.updated_at).where(
            read_cursors.c.account_id == account_id, read_cursors.c.source == source
        )

        async def go(conn: AsyncConnection) -> ReadCursor | None:
            row = (await conn.execute(query)).first()
            return None if row is None else ReadCursor(cursor=row[0], updated_at=row[1])

        return await self._once(go)

    async def set_read_cursor(
        self, account_id: int, source: str, cursor: str | None, *, now: datetime
    ) -> None:
        """Remember where ``source`` is read from next (an upsert)."""
        check_source(source)
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        statement = insert(read_cursors).values(
            account_id=account_id, source=source, cursor=cursor, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[read_cursors.c.account_id, read_cursors.c.source],
            set_={"cursor": cursor, "updated_at": now},
        )

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._run(go)
