"""The Store contract, thread parts (docs/threads.md): each part of a thread is its own publish
intent, begun once, finished once; each part's counters are kept per snapshot. (Run on every
backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.base import PostMetrics
from agent.errors import ConstraintViolation
from agent.models import PartReading, PartStatus
from agent.store.schema import thread_part_snapshots, thread_parts
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import account, count, posted, publishing, rows

LATER = T0 + timedelta(minutes=1)


async def begin(store: SqlStore, content_id: int, position: int, **overrides: object) -> bool:
    values: dict[str, object] = {
        "text_hash": f"hash-{position}",
        "idempotency_key": f"key-{content_id}:{position}",
        "reply_to": None if position == 0 else f"pid-{position - 1}",
        "now": T0,
    }
    return await store.begin_part(content_id, position, **(values | overrides))  # type: ignore[arg-type]


async def test_a_part_is_begun_once_and_finished_once(store: SqlStore) -> None:
    post = await publishing(store, await account(store))
    assert await begin(store, post.id, 0)
    assert not await begin(store, post.id, 0)  # publishing: nobody sends it again
    (part,) = await store.thread_parts(post.id)
    assert (part.status, part.publish_attempts, part.reply_to) == (PartStatus.PUBLISHING, 1, None)
    assert part.idempotency_key == f"key-{post.id}:0"
    assert await store.finish_part(post.id, 0, platform_post_id="pid-0", posted_at=LATER, now=LATER)
    assert not await store.finish_part(
        post.id, 0, platform_post_id="other", posted_at=LATER, now=LATER
    )
    assert not await begin(store, post.id, 0)  # posted: never sent again
    (part,) = await store.thread_parts(post.id)
    assert (part.status, part.platform_post_id, part.posted_at) == (
        PartStatus.POSTED,
        "pid-0",
        LATER,
    )
    assert await count(store, thread_parts) == 1


async def test_a_part_not_on_the_platform_is_reset_and_begun_again(store: SqlStore) -> None:
    post = await publishing(store, await account(store))
    assert await begin(store, post.id, 0)
    assert await store.finish_part(post.id, 0, platform_post_id="pid-0", posted_at=T0, now=T0)
    assert await begin(store, post.id, 1)
    assert await store.reset_part(post.id, 1, error="not on the platform", now=LATER)
    assert not await store.reset_part(post.id, 1, error="again", now=LATER)  # planned already
    parts = await store.thread_parts(post.id)
    assert [p.status for p in parts] == [PartStatus.POSTED, PartStatus.PLANNED]
    assert parts[1].error == "not on the platform"
    assert await begin(store, post.id, 1, reply_to="pid-0", now=LATER)
    part = (await store.thread_parts(post.id))[1]
    assert (part.status, part.publish_attempts, part.publish_started_at) == (
        PartStatus.PUBLISHING,
        2,
        LATER,
    )
    # reconciliation may find a part it had put back: it is recorded, once
    assert await store.reset_part(post.id, 1, error="not found", now=LATER)
    assert await store.finish_part(post.id, 1, platform_post_id="pid-1", posted_at=T0, now=LATER)
    assert await count(store, thread_parts) == 2


async def test_concurrent_begins_of_one_part_claim_it_once(store: SqlStore) -> None:
    post = await publishing(store, await account(store))
    won = await asyncio.gather(*(begin(store, post.id, 2) for _ in range(8)))
    assert sum(won) == 1
    assert await count(store, thread_parts) == 1


async def test_parts_of_an_unknown_post_are_refused(store: SqlStore) -> None:
    await account(store)
    with pytest.raises(ConstraintViolation):
        await begin(store, 999, 0)


async def test_thread_post_ids_are_the_posted_parts_in_order(store: SqlStore) -> None:
    main = await account(store)
    thread = await publishing(store, main)
    single = await publishing(store, main)
    for position in (1, 0, 2):  # recorded in any order, read by position
        assert await begin(store, thread.id, position)
        assert await store.finish_part(
            thread.id, position, platform_post_id=f"t{position}", posted_at=T0, now=T0
        )
    assert await begin(store, thread.id, 3)  # in flight: not read
    found = await store.thread_post_ids([thread.id, single.id])
    assert found == {thread.id: ["t0", "t1", "t2"]}
    assert await store.thread_post_ids([]) == {}


async def test_part_readings_are_kept_once_per_snapshot_and_position(store: SqlStore) -> None:
    main = await account(store)
    post = await posted(store, main, posted_at=T0)
    (due, *_) = sorted(await store.due_snapshots(T0 + timedelta(days=2)), key=lambda d: d.id)
    readings = [
        PartReading(
            snapshot_id=due.id,
            position=i,
            metrics=PostMetrics(platform_post_id=f"p{i}", likes=10 - i, impressions=100 * (4 - i)),
        )
        for i in range(3)
    ]
    await store.record_part_readings(readings)
    await store.record_part_readings(readings[:1])  # a poll retried: nothing doubles
    kept = await store.part_readings(due.id)
    assert [(r["position"], r["likes"], r["impressions"]) for r in kept] == [
        (0, 10, 400),
        (1, 9, 300),
        (2, 8, 200),
    ]
    assert await count(store, thread_part_snapshots) == 3
    first = await rows(
        store,
        sa.select(thread_part_snapshots.c.platform_post_id).where(
            thread_part_snapshots.c.position == 0
        ),
    )
    assert [r.platform_post_id for r in first] == ["p0"]
    assert post.id == due.content_id


async def test_learning_history_carries_the_format_a_post_was_written_as(store: SqlStore) -> None:
    main = await account(store)
    meta = {"content_type": "how_to", "formula": "listicle", "hook": "question", "topic": "t"}
    thread = await posted(
        store, main, posted_at=T0, generation_metadata={**meta, "format": "thread", "parts": []}
    )
    single = await posted(store, main, posted_at=T0 + timedelta(hours=2), generation_metadata=meta)
    history = {o.content_id: o for o in await store.learning_history(main, method="time_window")}
    assert history[thread.id].arms.format == "thread"
    assert history[single.id].arms.format == "single"  # written before threads: a single post
