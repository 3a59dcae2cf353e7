"""The Store contract, the queue a person manages (``growthloop posts``): listing posts by
account and status, cancelling a queued post (it never publishes, whatever the publish cycle
is doing at that moment) and moving its slot.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from agent.models import PostStatus
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    account,
    new_content,
    planned,
    posted,
    publishing,
    rows,
)

REASON = "not this week"


async def status_of(store: SqlStore, content_id: int) -> PostStatus:
    post = await store.get_post(content_id)
    assert post is not None
    return post.status


async def test_list_posts_filters_by_account_and_status_soonest_first(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    later = await planned(store, acc, scheduled_for=T0 + 3 * HOUR)
    sooner = await planned(store, acc, scheduled_for=T0 + HOUR)
    elsewhere = await planned(store, other, scheduled_for=T0 + 2 * HOUR)
    draft = await planned(store, acc, status=PostStatus.DRAFT, scheduled_for=T0 + 4 * HOUR)
    done = await posted(store, acc, posted_at=T0 - HOUR)
    queue = (PostStatus.PLANNED, PostStatus.PUBLISHING, PostStatus.DRAFT)

    listed = await store.list_posts(statuses=queue)
    assert [p.id for p in listed] == [sooner.id, elsewhere.id, later.id, draft.id]
    assert listed[0] == await store.get_post(sooner.id)  # whole posts, as get_post gives them
    assert [p.id for p in await store.list_posts(account_id=acc, statuses=queue)] == [
        sooner.id,
        later.id,
        draft.id,
    ]
    assert [p.id for p in await store.list_posts(account_id=other)] == [elsewhere.id]
    assert [p.id for p in await store.list_posts(statuses=[PostStatus.POSTED])] == [done.id]
    assert [p.id for p in await store.list_posts()] == [
        done.id,
        sooner.id,
        elsewhere.id,
        later.id,
        draft.id,
    ]


async def test_list_posts_newest_first_and_limit(store: SqlStore) -> None:
    acc = await account(store)
    made = [await planned(store, acc, scheduled_for=T0 + i * HOUR) for i in range(5)]

    newest = await store.list_posts(newest_first=True, limit=2)
    assert [p.id for p in newest] == [made[4].id, made[3].id]
    assert [p.id for p in await store.list_posts(limit=3)] == [p.id for p in made[:3]]
    assert await store.list_posts(limit=0) == []
    assert await store.list_posts(statuses=[PostStatus.CANCELLED]) == []


async def test_cancel_post_drops_a_planned_post_from_the_queue_and_frees_its_slot(
    store: SqlStore,
) -> None:
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0 + HOUR)

    assert await store.cancel_post(post.id, reason=REASON, now=T0 + 5 * timedelta(minutes=1))

    after = await store.get_post(post.id)
    assert after is not None
    assert after.status is PostStatus.CANCELLED
    assert after.error == REASON
    assert after.updated_at == T0 + timedelta(minutes=5)
    assert (after.publish_attempts, after.publish_started_at) == (0, None)
    # never due, never claimed; the planner sees a free slot and an empty queue
    assert await store.due_posts(T0 + 10 * HOUR) == []
    assert await store.begin_publish(post.id, now=T0 + 2 * HOUR) is False
    assert await store.pending_count(acc) == 0
    assert await store.count_scheduled(acc, T0, T0 + 24 * HOUR) == 0
    assert await store.latest_scheduled(acc) is None
    assert (await store.counts()).get("cancelled") == 1
    found = await rows(store, sa.select(content.c.status).where(content.c.id == post.id))
    assert [r.status for r in found] == ["cancelled"]


async def test_cancel_post_drops_a_draft(store: SqlStore) -> None:
    acc = await account(store)
    draft = await planned(store, acc, status=PostStatus.DRAFT)

    assert await store.cancel_post(draft.id, reason=REASON, now=T0)

    assert await status_of(store, draft.id) is PostStatus.CANCELLED
    assert await store.drafts() == []
    assert await store.approve_draft(draft.id, now=T0) is False


@pytest.mark.parametrize(
    "status",
    [PostStatus.FAILED, PostStatus.REJECTED, PostStatus.DRY_RUN, PostStatus.CANCELLED],
)
async def test_cancel_post_refuses_posts_that_are_not_queued(
    store: SqlStore, status: PostStatus
) -> None:
    acc = await account(store)
    post = await planned(store, acc, status=status, error="before")

    assert await store.cancel_post(post.id, reason=REASON, now=T0 + HOUR) is False

    after = await store.get_post(post.id)
    assert after is not None
    assert (after.status, after.error, after.updated_at) == (status, "before", T0)


async def test_cancel_post_refuses_a_post_being_published_or_posted(store: SqlStore) -> None:
    acc = await account(store)
    flying = await publishing(store, acc)
    done = await posted(store, acc, posted_at=T0 + HOUR)

    assert await store.cancel_post(flying.id, reason=REASON, now=T0) is False
    assert await store.cancel_post(done.id, reason=REASON, now=T0) is False
    assert await store.cancel_post(done.id + 1000, reason=REASON, now=T0) is False

    assert await status_of(store, flying.id) is PostStatus.PUBLISHING
    assert await status_of(store, done.id) is PostStatus.POSTED


async def test_cancel_between_due_posts_and_begin_publish_wins_over_the_publish_cycle(
    store: SqlStore,
) -> None:
    """The race a running daemon meets: its publish cycle has read the post as due, a person
    cancels it, then the cycle tries to claim it."""
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0)

    due = await store.due_posts(T0 + HOUR)
    assert [p.id for p in due] == [post.id]
    assert await store.cancel_post(post.id, reason=REASON, now=T0 + HOUR)

    assert await store.begin_publish(due[0].id, now=T0 + HOUR) is False

    after = await store.get_post(post.id)
    assert after is not None
    assert after.status is PostStatus.CANCELLED
    assert (after.publish_attempts, after.publish_started_at) == (0, None)
    assert await store.in_flight() == []


async def test_claimed_post_can_no_longer_be_cancelled(store: SqlStore) -> None:
    """The other order: the cycle claimed the post first; the cancel is refused, so the row
    never says cancelled while the platform has the post."""
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0)

    assert await store.begin_publish(post.id, now=T0)
    assert await store.cancel_post(post.id, reason=REASON, now=T0) is False

    assert await status_of(store, post.id) is PostStatus.PUBLISHING


async def test_move_between_due_posts_and_begin_publish_is_not_sent_at_its_old_time(
    store: SqlStore,
) -> None:
    """Regression: a publish cycle that had read the post as due, then a person moves it two
    hours later, then the cycle claims it: it was sent at its old time."""
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0)

    due = await store.due_posts(T0 + HOUR)
    assert [p.id for p in due] == [post.id]
    assert await store.move_post(post.id, scheduled_for=T0 + 3 * HOUR, now=T0 + HOUR)

    assert await store.begin_publish(due[0].id, now=T0 + HOUR, due_by=T0 + HOUR) is False
    after = await store.get_post(post.id)
    assert after is not None and after.status is PostStatus.PLANNED
    assert after.scheduled_for == T0 + 3 * HOUR
    # at its new time it is claimed; without due_by (the journal's replay) the time is not asked
    assert await store.begin_publish(post.id, now=T0 + 3 * HOUR, due_by=T0 + 3 * HOUR)
    other = await planned(store, acc, scheduled_for=T0 + 5 * HOUR)
    assert await store.begin_publish(other.id, now=T0 + HOUR)


async def test_concurrent_cancel_and_begin_publish_exactly_one_wins(store: SqlStore) -> None:
    acc = await account(store)
    for i in range(5):
        post = await planned(store, acc, scheduled_for=T0 + i * HOUR)

        cancelled, claimed = await asyncio.gather(
            store.cancel_post(post.id, reason=REASON, now=T0),
            store.begin_publish(post.id, now=T0),
        )

        assert cancelled != claimed, (cancelled, claimed)
        expected = PostStatus.CANCELLED if cancelled else PostStatus.PUBLISHING
        assert await status_of(store, post.id) is expected


async def test_publish_failure_paths_never_revive_a_cancelled_post(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)
    assert await store.cancel_post(post.id, reason=REASON, now=T0)

    await store.fail_publish(post.id, error="refused", now=T0 + HOUR)
    await store.fail_publish(post.id, error="dry", now=T0 + HOUR, status=PostStatus.DRY_RUN)
    await store.reschedule(post.id, scheduled_for=T0 + HOUR, error="429", now=T0 + HOUR)
    assert await store.move_post(post.id, scheduled_for=T0 + HOUR, now=T0 + HOUR) is False

    after = await store.get_post(post.id)
    assert after is not None
    assert (after.status, after.error, after.scheduled_for) == (PostStatus.CANCELLED, REASON, T0)


async def test_cancelled_posts_are_not_failures_in_the_health_inputs(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)
    assert await store.cancel_post(post.id, reason=REASON, now=T0 + timedelta(minutes=10))

    inputs = await store.health_inputs(acc, T0, T0 + HOUR)

    assert inputs["status_counts"] == {"cancelled": 1}
    assert inputs["posts_attempted"] == 0
    assert inputs["posts_succeeded"] == 0
    pending = await store.pending_work(T0 + HOUR)
    assert (pending["posts_queued"], pending["next_post_at"]) == (0, None)


async def test_move_post_changes_a_planned_posts_slot(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0 + HOUR)
    other = await planned(store, acc, scheduled_for=T0 + 2 * HOUR)

    assert await store.move_post(post.id, scheduled_for=T0 + 3 * HOUR, now=T0)

    moved = await store.get_post(post.id)
    assert moved is not None
    assert (moved.status, moved.scheduled_for, moved.updated_at) == (
        PostStatus.PLANNED,
        T0 + 3 * HOUR,
        T0,
    )
    assert moved.scheduled_for.utcoffset() == timedelta(0)
    assert [p.id for p in await store.due_posts(T0 + 2 * HOUR)] == [other.id]
    assert [p.id for p in await store.due_posts(T0 + 3 * HOUR)] == [other.id, post.id]
    assert await store.latest_scheduled(acc) == T0 + 3 * HOUR

    assert await store.move_post(post.id, scheduled_for=T0, now=T0)  # earlier: due at once
    assert [p.id for p in await store.due_posts(T0)] == [post.id]


async def test_move_post_refuses_posts_that_are_not_planned(store: SqlStore) -> None:
    acc = await account(store)
    draft = await planned(store, acc, status=PostStatus.DRAFT)
    flying = await publishing(store, acc)
    done = await posted(store, acc, posted_at=T0 + HOUR)

    for post in (draft, flying, done):
        assert await store.move_post(post.id, scheduled_for=T0 + 9 * HOUR, now=T0) is False
        after = await store.get_post(post.id)
        assert after is not None and after.scheduled_for != T0 + 9 * HOUR
    assert await store.move_post(done.id + 1000, scheduled_for=T0, now=T0) is False


async def test_move_post_refuses_a_naive_time(store: SqlStore) -> None:
    acc = await account(store)
    post = await planned(store, acc)

    with pytest.raises(ValueError):
        await store.move_post(post.id, scheduled_for=T0.replace(tzinfo=None), now=T0)
    after = await store.get_post(post.id)
    assert after is not None and after.scheduled_for == T0


async def test_next_post_after_is_the_soonest_planned_post_strictly_after_the_time(
    store: SqlStore,
) -> None:
    acc = await account(store)
    other = await account(store, "second")
    assert await store.next_post_after(T0) is None
    held = await planned(store, acc, scheduled_for=T0)  # due, held (a suspended account, say)
    await planned(store, other, scheduled_for=T0 + 3 * HOUR)
    soon = await planned(store, other, scheduled_for=T0 + 2 * HOUR)
    await store.add_content(
        new_content(acc, status=PostStatus.DRAFT, scheduled_for=T0 + HOUR), now=T0
    )
    await publishing(store, acc, scheduled_for=T0 + HOUR)
    # only planned posts after the time count: not the held one, not the draft nor publishing
    assert await store.next_post_after(T0) == T0 + 2 * HOUR
    assert await store.next_post_after(T0 - HOUR) == held.scheduled_for
    assert await store.next_post_after(T0 + 2 * HOUR) == T0 + 3 * HOUR
    assert await store.next_post_after(T0 + 3 * HOUR) is None
    assert await store.cancel_post(soon.id, reason=REASON, now=T0)
    assert await store.next_post_after(T0) == T0 + 3 * HOUR


async def test_llm_spend_sums_each_accounts_draft_costs_created_in_the_window(
    store: SqlStore,
) -> None:
    acc = await account(store)
    other = await account(store, "second")
    free = await account(store, "third")

    async def drafted(account_id: int, cost: float | None, at: timedelta) -> None:
        meta = {"content_type": "tip"} | ({} if cost is None else {"cost_usd": cost})
        await store.add_content(new_content(account_id, generation_metadata=meta), now=T0 + at)

    await drafted(acc, 0.25, timedelta(0))
    await drafted(acc, 0.5, 2 * HOUR)
    await drafted(other, 1.0, HOUR)
    await drafted(other, 4.0, timedelta(days=1))  # created after the window
    await drafted(acc, 8.0, -HOUR)  # before it
    await drafted(free, None, HOUR)  # the template generator records no cost
    await drafted(free, 0.0, HOUR)
    spent = await store.llm_spend(T0, T0 + timedelta(days=1))
    assert spent == {acc: pytest.approx(0.75), other: pytest.approx(1.0)}
    assert await store.llm_spend(T0 + timedelta(days=2), T0 + timedelta(days=3)) == {}
