"""The Store contract, content and the exactly-once publish protocol: planned posts, the compare-
and-set transitions of a publish (begin, finish, fail, reschedule), the schedule queries and the
approval queue.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.base import text_hash
from agent.errors import ConstraintViolation
from agent.models import (
    Post,
    PostStatus,
    QueueState,
)
from agent.store.schema import (
    content,
    performance_snapshots,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HORIZONS,
    HOUR,
    account,
    count,
    new_content,
    planned,
    posted,
    publishing,
    rows,
)


async def test_add_content_round_trips_metadata_and_aware_utc_datetimes(store: SqlStore) -> None:
    acc = await account(store)
    meta = {
        "content_type": "tip",
        "formula": "list",
        "hook": "question",
        "topic": "sleep",
        "cost_usd": 0.0012,
        "tokens": {"in": 120, "out": 40},
        "tags": ["nuit", "sommeil ü", None, True],
    }
    scheduled = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    post = await store.add_content(
        new_content(acc, text="Sleep well ✨", generation_metadata=meta, scheduled_for=scheduled),
        now=T0,
    )

    fetched = await store.get_post(post.id)
    assert fetched == post
    assert fetched.generation_metadata == meta
    assert fetched.scheduled_for == scheduled
    assert fetched.scheduled_for.utcoffset() == timedelta(0)
    assert fetched.scheduled_for.hour == 7  # stored as UTC
    assert (fetched.created_at, fetched.updated_at) == (T0, T0)
    assert fetched.created_at.tzinfo is not None
    assert fetched.text == "Sleep well ✨" and fetched.text_hash == text_hash("Sleep well ✨")
    assert fetched.status is PostStatus.PLANNED
    assert fetched.publish_attempts == 0
    assert (fetched.posted_at, fetched.platform_post_id, fetched.learned_at) == (None, None, None)
    assert fetched.arms.topic == "sleep"
    assert await store.get_post(post.id + 1000) is None


async def test_idempotency_key_is_unique(store: SqlStore) -> None:
    acc = await account(store)
    await planned(store, acc, idempotency_key="same-key")
    with pytest.raises(ConstraintViolation):
        await planned(store, acc, idempotency_key="same-key")
    assert await count(store, content) == 1


async def test_begin_publish_succeeds_only_once(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)

    assert await store.begin_publish(post.id, now=T0 + HOUR) is True
    assert await store.begin_publish(post.id, now=T0 + 2 * HOUR) is False

    claimed = await store.get_post(post.id)
    assert claimed is not None
    assert claimed.status is PostStatus.PUBLISHING
    assert claimed.publish_attempts == 1
    assert claimed.publish_started_at == T0 + HOUR
    assert claimed.updated_at == T0 + HOUR


async def test_begin_publish_refuses_posts_that_are_not_planned(store: SqlStore) -> None:
    acc = await account(store)
    rejected = await planned(store, acc, status=PostStatus.REJECTED, error="too long")

    assert await store.begin_publish(rejected.id, now=T0) is False
    assert await store.begin_publish(rejected.id + 1000, now=T0) is False
    after = await store.get_post(rejected.id)
    assert after is not None
    assert (after.status, after.publish_attempts) == (PostStatus.REJECTED, 0)


async def test_concurrent_begin_publish_claims_the_post_once(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)

    results = await asyncio.gather(*(store.begin_publish(post.id, now=T0) for _ in range(5)))

    assert sorted(results) == [False] * 4 + [True]
    claimed = await store.get_post(post.id)
    assert claimed is not None and claimed.publish_attempts == 1


async def test_finish_publish_creates_one_due_snapshot_per_horizon(store: SqlStore) -> None:
    acc = await account(store)
    post = await publishing(store, acc)
    posted_at = T0 + timedelta(seconds=30)

    done = await store.finish_publish(
        post.id, platform_post_id="111", posted_at=posted_at, horizons=HORIZONS, now=posted_at
    )
    again = await store.finish_publish(
        post.id, platform_post_id="222", posted_at=T0 + HOUR, horizons=HORIZONS, now=T0 + HOUR
    )

    assert (done, again) == (True, False)
    ps = performance_snapshots
    snaps = await rows(
        store,
        sa.select(ps.c.horizon_hours, ps.c.due_at, ps.c.taken_at)
        .where(ps.c.content_id == post.id)
        .order_by(ps.c.horizon_hours),
    )
    assert [tuple(r) for r in snaps] == [
        (h.total_seconds() / 3600, posted_at + h, None) for h in HORIZONS
    ]
    after = await store.get_post(post.id)
    assert after is not None
    assert after.status is PostStatus.POSTED
    assert (after.platform_post_id, after.posted_at) == ("111", posted_at)
    assert after.error is None


async def test_finish_publish_requires_a_publishing_post(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)

    assert not await store.finish_publish(
        post.id, platform_post_id="111", posted_at=T0, horizons=HORIZONS, now=T0
    )
    assert await count(store, performance_snapshots) == 0
    after = await store.get_post(post.id)
    assert after is not None and after.status is PostStatus.PLANNED


async def test_concurrent_finish_publish_creates_snapshots_once(store: SqlStore) -> None:
    acc = await account(store)
    post = await publishing(store, acc)

    results = await asyncio.gather(
        *(
            store.finish_publish(
                post.id, platform_post_id=f"p{i}", posted_at=T0, horizons=HORIZONS, now=T0
            )
            for i in range(4)
        )
    )

    assert sorted(results) == [False] * 3 + [True]
    assert await count(store, performance_snapshots) == len(HORIZONS)


async def test_fail_publish_marks_planned_or_publishing_posts_only(store: SqlStore) -> None:
    acc = await account(store)
    in_flight = await publishing(store, acc)
    queued = await planned(store, acc)
    done = await posted(store, acc, posted_at=T0)

    await store.fail_publish(in_flight.id, error="x" * 5000, now=T0 + HOUR)
    await store.fail_publish(
        queued.id, error="quality gate", now=T0 + HOUR, status=PostStatus.REJECTED
    )
    await store.fail_publish(done.id, error="late failure", now=T0 + HOUR)

    failed = await store.get_post(in_flight.id)
    assert failed is not None
    assert failed.status is PostStatus.FAILED
    assert failed.error == "x" * 2000
    assert failed.updated_at == T0 + HOUR
    rejected = await store.get_post(queued.id)
    assert rejected is not None
    assert (rejected.status, rejected.error) == (PostStatus.REJECTED, "quality gate")
    assert await store.get_post(done.id) == done  # a posted post is never failed
    assert await store.begin_publish(in_flight.id, now=T0 + 2 * HOUR) is False


async def test_reschedule_returns_a_post_to_planned_at_a_later_time(store: SqlStore) -> None:
    acc = await account(store)
    post = await publishing(store, acc)
    done = await posted(store, acc, posted_at=T0)
    later = T0 + 3 * HOUR

    await store.reschedule(post.id, scheduled_for=later, error="rate limited", now=T0 + HOUR)
    await store.reschedule(done.id, scheduled_for=later, error="rate limited", now=T0 + HOUR)

    back = await store.get_post(post.id)
    assert back is not None
    assert back.status is PostStatus.PLANNED
    assert back.scheduled_for == later
    assert back.publish_started_at is None
    assert back.error == "rate limited"
    assert back.publish_attempts == 1  # attempts are kept
    assert await store.get_post(done.id) == done
    assert await store.begin_publish(post.id, now=later) is True
    again = await store.get_post(post.id)
    assert again is not None and again.publish_attempts == 2


async def test_in_flight_lists_only_publishing_posts(store: SqlStore) -> None:
    acc = await account(store)
    first = await publishing(store, acc)
    await planned(store, acc)
    await posted(store, acc, posted_at=T0)
    second = await publishing(store, acc)

    assert await store.in_flight() == [
        await store.get_post(first.id),
        await store.get_post(second.id),
    ]


async def test_due_posts_are_ordered_by_schedule_and_filtered_by_time(store: SqlStore) -> None:
    acc = await account(store)
    late = await planned(store, acc, scheduled_for=T0 + 2 * HOUR)
    early = await planned(store, acc, scheduled_for=T0 + HOUR)
    early_too = await planned(store, acc, scheduled_for=T0 + HOUR)
    await planned(store, acc, scheduled_for=T0 + 5 * HOUR)
    await planned(store, acc, scheduled_for=T0, status=PostStatus.REJECTED)
    await publishing(store, acc, scheduled_for=T0)

    due = await store.due_posts(T0 + 2 * HOUR)
    assert [p.id for p in due] == [early.id, early_too.id, late.id]
    assert all(p.status is PostStatus.PLANNED for p in due)
    assert [p.id for p in await store.due_posts(T0 + 2 * HOUR, limit=2)] == [early.id, early_too.id]
    assert await store.due_posts(T0 + HOUR - timedelta(seconds=1)) == []


async def test_schedule_queries_follow_a_rescheduled_post(store: SqlStore) -> None:
    """Regression (the memory store indexes scheduled_for and skips stale entries): a post
    moved to another time counts at its new time only, earlier or later."""
    acc = await account(store)
    first = await planned(store, acc, scheduled_for=T0 + HOUR)
    second = await planned(store, acc, scheduled_for=T0 + 2 * HOUR)
    await store.reschedule(second.id, scheduled_for=T0 + 30 * HOUR, error="rate limited", now=T0)
    assert await store.latest_scheduled(acc) == T0 + 30 * HOUR
    assert await store.count_scheduled(acc, T0, T0 + 24 * HOUR) == 1
    await store.reschedule(second.id, scheduled_for=T0 + 3 * HOUR, error="again", now=T0)
    await store.reschedule(first.id, scheduled_for=T0 + 40 * HOUR, error="again", now=T0)
    assert await store.latest_scheduled(acc) == T0 + 40 * HOUR
    assert await store.count_scheduled(acc, T0, T0 + 24 * HOUR) == 1
    assert await store.count_scheduled(acc, T0 + 24 * HOUR, T0 + 48 * HOUR) == 1


async def test_schedule_queries_count_only_posts_that_use_a_cadence_slot(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    assert await store.latest_scheduled(acc) is None

    await planned(store, acc, scheduled_for=T0 + HOUR)
    await posted(store, acc, posted_at=T0 + 2 * HOUR)
    await planned(store, acc, scheduled_for=T0 + 3 * HOUR, status=PostStatus.DRY_RUN)
    in_flight = await publishing(store, acc, scheduled_for=T0 + 4 * HOUR)
    await store.fail_publish(in_flight.id, error="refused", now=T0)
    await planned(store, acc, scheduled_for=T0 + 9 * HOUR, status=PostStatus.REJECTED)

    latest = await store.latest_scheduled(acc)
    assert latest == T0 + 3 * HOUR
    assert latest is not None and latest.utcoffset() == timedelta(0)
    assert await store.count_scheduled(acc, T0 + HOUR, T0 + 3 * HOUR) == 2  # end excluded
    assert await store.count_scheduled(acc, T0, T0 + 24 * HOUR) == 3
    assert await store.pending_count(acc) == 1
    assert await store.latest_scheduled(other) is None
    assert await store.count_scheduled(other, T0, T0 + 24 * HOUR) == 0
    assert await store.pending_count(other) == 0


async def test_queued_accounts_are_those_with_a_planned_post_or_a_waiting_draft(
    store: SqlStore,
) -> None:
    """One query tells the plan cycle which accounts need nothing (their post is queued)."""
    queued_acc = await account(store)
    draft_acc = await account(store, "second")
    idle = await account(store, "third")
    assert await store.queued_accounts() == set()

    await planned(store, queued_acc, scheduled_for=T0 + HOUR)
    await planned(store, queued_acc, scheduled_for=T0 + 2 * HOUR)
    await planned(store, draft_acc, scheduled_for=T0 + HOUR, status=PostStatus.DRAFT)
    await posted(store, idle, posted_at=T0)
    await publishing(store, idle, scheduled_for=T0)
    await planned(store, idle, scheduled_for=T0 + HOUR, status=PostStatus.REJECTED)
    assert await store.queued_accounts() == {queued_acc, draft_acc}


async def test_accounts_without_content_are_those_without_any_row_of_any_status(
    store: SqlStore,
) -> None:
    """One query tells the plan cycle which accounts are new (no post to read)."""
    queued_acc = await account(store)
    rejected_acc = await account(store, "second")
    new_acc = await account(store, "third")
    assert await store.accounts_without_content() == {queued_acc, rejected_acc, new_acc}

    await planned(store, queued_acc, scheduled_for=T0 + HOUR)
    await planned(store, rejected_acc, scheduled_for=T0 + HOUR, status=PostStatus.REJECTED)
    assert await store.accounts_without_content() == {new_acc}
    await posted(store, new_acc, posted_at=T0)
    assert await store.accounts_without_content() == set()


async def test_queue_state_says_whether_a_post_or_draft_waits_and_whether_the_account_is_new(
    store: SqlStore,
) -> None:
    acc = await account(store)
    other = await account(store, "second")
    assert await store.queue_state(acc) == QueueState(queued=False, new=True)

    await posted(store, acc, posted_at=T0)
    await planned(store, acc, scheduled_for=T0 + HOUR, status=PostStatus.REJECTED)
    assert await store.queue_state(acc) == QueueState(queued=False, new=False)
    draft = await planned(store, acc, scheduled_for=T0 + HOUR, status=PostStatus.DRAFT)
    assert await store.queue_state(acc) == QueueState(queued=True, new=False)
    assert await store.reject_draft(draft.id, reason="no", now=T0)
    assert not (await store.queue_state(acc)).queued
    await planned(store, acc, scheduled_for=T0 + 2 * HOUR)
    assert await store.queue_state(acc) == QueueState(queued=True, new=False)
    assert await store.queue_state(other) == QueueState(queued=False, new=True)


async def test_recent_texts_are_newest_first(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    for text in ("one", "two", "three"):
        await planned(store, acc, text=text)
    await planned(store, acc, text="refused", status=PostStatus.REJECTED)
    await planned(store, other, text="elsewhere")

    assert await store.recent_texts(acc, 2) == ["three", "two"]
    assert await store.recent_texts(acc, 10) == ["three", "two", "one"]


async def draft(store: SqlStore, account_id: int, *, now: datetime = T0, **overrides: Any) -> Post:
    return await store.add_content(
        new_content(account_id, status=PostStatus.DRAFT, **overrides), now=now
    )


async def test_drafts_lists_only_drafts_oldest_first_per_account_or_all(store: SqlStore) -> None:
    a, b = await account(store, "a"), await account(store, "b")
    older = await draft(store, a, now=T0)
    other = await draft(store, b, now=T0 + HOUR)
    newer = await draft(store, a, now=T0 + 2 * HOUR)
    await planned(store, a)
    assert [p.id for p in await store.drafts()] == [older.id, other.id, newer.id]
    assert [p.id for p in await store.drafts(a)] == [older.id, newer.id]
    assert [p.id for p in await store.drafts(b)] == [other.id]
    assert all(p.status is PostStatus.DRAFT for p in await store.drafts())
    assert await store.account_names() == {a: "a", b: "b"}


async def test_drafts_do_not_occupy_a_cadence_slot_or_fall_due(store: SqlStore) -> None:
    a = await account(store)
    await draft(store, a, scheduled_for=T0)
    assert await store.due_posts(T0 + HOUR) == []
    assert await store.latest_scheduled(a) is None
    assert await store.begin_publish((await store.drafts(a))[0].id, now=T0) is False


async def test_approve_draft_queues_it_at_the_later_of_now_and_its_slot(store: SqlStore) -> None:
    a = await account(store)
    early, late = await draft(store, a), await draft(store, a, scheduled_for=T0 + 5 * HOUR)
    now = T0 + HOUR
    assert await store.approve_draft(early.id, now=now)
    assert await store.approve_draft(late.id, now=now)
    got_early, got_late = await store.get_post(early.id), await store.get_post(late.id)
    assert got_early is not None and got_late is not None
    assert (got_early.status, got_early.scheduled_for) == (PostStatus.PLANNED, now)
    assert (got_late.status, got_late.scheduled_for) == (PostStatus.PLANNED, T0 + 5 * HOUR)
    assert got_early.updated_at == now
    assert [p.id for p in await store.due_posts(now)] == [early.id]
    assert await store.approve_draft(early.id, now=now) is False  # only once


async def test_approve_draft_takes_an_explicit_slot(store: SqlStore) -> None:
    post = await draft(store, await account(store))
    assert await store.approve_draft(post.id, now=T0, scheduled_for=T0 + 3 * HOUR)
    got = await store.get_post(post.id)
    assert got is not None and got.scheduled_for == T0 + 3 * HOUR


async def test_draft_transitions_refuse_posts_that_are_not_drafts(store: SqlStore) -> None:
    a = await account(store)
    queued = await planned(store, a)
    for content_id in (queued.id, 424242):
        assert await store.approve_draft(content_id, now=T0) is False
        assert await store.reject_draft(content_id, reason="no", now=T0) is False
        assert (
            await store.edit_draft(content_id, text="new", text_hash=text_hash("new"), now=T0)
            is False
        )
    got = await store.get_post(queued.id)
    assert got is not None and (got.status, got.text) == (PostStatus.PLANNED, queued.text)


async def test_reject_draft_keeps_the_reason(store: SqlStore) -> None:
    post = await draft(store, await account(store))
    assert await store.reject_draft(post.id, reason="off topic", now=T0 + HOUR)
    got = await store.get_post(post.id)
    assert got is not None
    assert (got.status, got.error, got.updated_at) == (PostStatus.REJECTED, "off topic", T0 + HOUR)
    assert await store.drafts() == []
    assert await store.approve_draft(post.id, now=T0 + HOUR) is False


async def test_edit_draft_replaces_text_and_hash_while_it_is_a_draft(store: SqlStore) -> None:
    post = await draft(store, await account(store))
    assert await store.edit_draft(post.id, text="better", text_hash=text_hash("better"), now=T0)
    got = await store.get_post(post.id)
    assert got is not None
    assert (got.status, got.text, got.text_hash) == (
        PostStatus.DRAFT,
        "better",
        text_hash("better"),
    )
    assert got.idempotency_key == post.idempotency_key


async def test_expire_drafts_rejects_only_drafts_created_before_the_cutoff(
    store: SqlStore,
) -> None:
    a = await account(store)
    old = await draft(store, a, now=T0)
    young = await draft(store, a, now=T0 + 2 * HOUR)
    queued = await store.add_content(new_content(a), now=T0)
    now = T0 + 30 * HOUR
    assert await store.expire_drafts(T0 + HOUR, now) == 1
    assert await store.expire_drafts(T0 + HOUR, now) == 0  # once
    got_old, got_young = await store.get_post(old.id), await store.get_post(young.id)
    got_queued = await store.get_post(queued.id)
    assert got_old is not None and got_young is not None and got_queued is not None
    assert (got_old.status, got_old.error) == (PostStatus.REJECTED, "expired unapproved")
    assert got_young.status is PostStatus.DRAFT
    assert got_queued.status is PostStatus.PLANNED


async def test_latest_slot_is_the_latest_scheduled_post_and_its_cadence_time(
    store: SqlStore,
) -> None:
    acc = await account(store)
    assert await store.latest_slot(acc) is None
    await planned(store, acc, scheduled_for=T0 + HOUR)  # no cadence_at: its own time
    assert await store.latest_slot(acc) == (T0 + HOUR, T0 + HOUR)

    moved = {"cadence_at": (T0 + 3 * HOUR).isoformat(), "hour": "05"}
    await planned(store, acc, scheduled_for=T0 + 5 * HOUR, generation_metadata=moved)
    await planned(store, acc, scheduled_for=T0 + 9 * HOUR, status=PostStatus.REJECTED)
    latest = await store.latest_slot(acc)
    assert latest == (T0 + 5 * HOUR, T0 + 3 * HOUR)
    assert latest is not None and latest[1].utcoffset() == timedelta(0)
    assert latest[0] == await store.latest_scheduled(acc)
    broken = {"cadence_at": "not a time"}
    await planned(store, acc, scheduled_for=T0 + 7 * HOUR, generation_metadata=broken)
    assert await store.latest_slot(acc) == (T0 + 7 * HOUR, T0 + 7 * HOUR)
