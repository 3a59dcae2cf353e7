"""The Store contract, the replies inbox (docs/conversations.md): replies and mentions stored once
by their platform id (also when a batch repeats one, or another account holds the same id), our
post found from the parent's platform id, and read cursors kept per account and source. (Run on
every backend: see ``__init__.py``.) Rows are counted in the database itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.conversation_models import Conversation, ConversationKind, ReadCursor
from agent.errors import ConstraintViolation
from agent.store.schema import conversations, read_cursors
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import account, count, posted

HOUR = timedelta(hours=1)


def reply(reply_id: str, **overrides: Any) -> Conversation:
    values: dict[str, Any] = {
        "kind": ConversationKind.REPLY,
        "platform_post_id": reply_id,
        "parent_post_id": None,
        "author_id": "u-ann",
        "author_handle": "@ann.example",
        "text": f"reply {reply_id}",
        "at": T0 + HOUR,
    }
    return Conversation(**(values | overrides))


async def test_replies_are_stored_once_by_platform_id(store: SqlStore) -> None:
    main = await account(store)
    post = await posted(store, main, posted_at=T0)
    batch = [
        reply("r1", parent_post_id=post.platform_post_id),
        reply("r2", parent_post_id="someone-elses-post", at=T0 + 2 * HOUR),
        reply("m1", kind=ConversationKind.MENTION, at=T0 + 3 * HOUR, author_handle=None),
    ]

    first = await store.record_conversations(main, [*batch, batch[0]], now=T0 + 4 * HOUR)
    again = await store.record_conversations(main, batch, now=T0 + 5 * HOUR)

    assert (first.stored, first.duplicates) == (3, 1)
    assert (again.stored, again.duplicates) == (0, 3)
    assert await count(store, conversations) == 3
    found = await store.conversations(main)
    assert [c.platform_post_id for c in found] == ["r1", "r2", "m1"]
    assert [c.content_id for c in found] == [post.id, None, None]  # ours only
    assert found[0].author_handle == "ann.example"  # stored without the "@"
    assert found[0].read_at == T0 + 4 * HOUR
    assert found[2].kind == ConversationKind.MENTION
    assert [c.platform_post_id for c in await store.conversations(main, since=T0 + 2 * HOUR)] == [
        "r2",
        "m1",
    ]


async def test_the_same_reply_id_in_two_accounts_is_two_rows(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")

    await store.record_conversations(main, [reply("r1")], now=T0)
    await store.record_conversations(other, [reply("r1")], now=T0)

    assert await count(store, conversations) == 2
    assert len(await store.conversations(other)) == 1


async def test_a_reply_of_an_unknown_account_or_without_an_author_is_refused(
    store: SqlStore,
) -> None:
    with pytest.raises(ConstraintViolation):
        await store.record_conversations(9999, [reply("r1")], now=T0)
    main = await account(store)
    with pytest.raises(ValueError, match="author_id"):
        await store.record_conversations(main, [reply("r1", author_id="")], now=T0)
    assert await count(store, conversations) == 0


async def test_read_cursors_are_kept_per_account_and_source(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    assert await store.read_cursor(main, "notifications") is None

    await store.set_read_cursor(main, "notifications", "c1", now=T0)
    await store.set_read_cursor(main, "notifications", "c2", now=T0 + HOUR)
    await store.set_read_cursor(main, "followers", None, now=T0)
    await store.set_read_cursor(other, "notifications", "o1", now=T0)

    assert await store.read_cursor(main, "notifications") == ReadCursor(
        cursor="c2", updated_at=T0 + HOUR
    )
    assert await store.read_cursor(main, "followers") == ReadCursor(cursor=None, updated_at=T0)
    assert (
        await store.read_cursor(other, "notifications") or ReadCursor(cursor=None, updated_at=T0)
    ).cursor == "o1"
    assert await count(store, read_cursors) == 3
    with pytest.raises(ConstraintViolation):
        await store.set_read_cursor(9999, "notifications", "x", now=T0)
