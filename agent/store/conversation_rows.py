"""What both stores do the same way with the replies inbox (agent/store/sql_conversations.py,
agent/store/memory_conversations.py): checking a batch, keeping its first copy of each reply, and
the conversion of rows to value objects. Written once, so the two stores cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.conversation_models import Conversation, ConversationKind, StoredConversation
from agent.store.audience_rows import normal_handle

MAX_SOURCE = 64  # characters of a read cursor's source name (read_cursors.source)


def check_conversations(items: Sequence[Conversation]) -> None:
    """Refuse what no store should hold (a caller's bug)."""
    for item in items:
        if not item.platform_post_id or not item.author_id:
            raise ValueError(f"a conversation needs a platform_post_id and an author_id: {item!r}")
        ConversationKind(item.kind)


def check_source(source: str) -> None:
    if not source or len(source) > MAX_SOURCE:
        raise ValueError(f"a read cursor's source is 1-{MAX_SOURCE} characters: {source!r}")


def new_conversations(
    items: Sequence[Conversation], stored: set[str]
) -> tuple[list[Conversation], int]:
    """The replies not stored yet (first of each platform id in the batch), and the duplicates."""
    seen = set(stored)
    fresh = []
    for item in items:
        if item.platform_post_id in seen:
            continue
        seen.add(item.platform_post_id)
        fresh.append(item)
    return fresh, len(items) - len(fresh)


def conversation_row(
    account_id: int, item: Conversation, content_id: int | None, *, now: datetime
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "kind": str(item.kind),
        "platform_post_id": item.platform_post_id,
        "parent_post_id": item.parent_post_id,
        "content_id": content_id,
        "author_id": item.author_id,
        "author_handle": normal_handle(item.author_handle),
        "text": item.text,
        "at": item.at,
        "read_at": now,
    }


def conversation_of(row: Mapping[str, Any]) -> StoredConversation:
    return StoredConversation(
        id=int(row["id"]),
        account_id=int(row["account_id"]),
        kind=ConversationKind(row["kind"]),
        platform_post_id=str(row["platform_post_id"]),
        parent_post_id=row["parent_post_id"],
        content_id=row["content_id"],
        author_id=str(row["author_id"]),
        author_handle=row["author_handle"],
        text=str(row["text"]),
        at=row["at"],
        read_at=row["read_at"],
    )
