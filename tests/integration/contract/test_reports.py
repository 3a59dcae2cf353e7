"""The Store contract, health and reports: the hourly health rows and their inputs, pending work,
the next due times and the row counts.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.base import AccountInfo
from agent.models import (
    PostStatus,
)
from agent.store.schema import (
    performance_snapshots,
    system_health_metrics,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HORIZONS,
    HOUR,
    account,
    count,
    health_row,
    learn,
    metrics,
    new_content,
    planned,
    posted,
    publishing,
    rows,
    take,
)


async def test_write_health_keeps_one_row_per_hour_and_account(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    hour = T0 + 5 * HOUR
    assert await store.last_health_hour() is None

    await store.write_health(health_row(acc, hour))
    await store.write_health(health_row(acc, hour, api_calls=99))  # a retry or another worker
    await store.write_health(health_row(other, hour))
    await store.write_health(health_row(acc, hour + HOUR, errors_by_kind={}))

    h = system_health_metrics
    assert await count(store, h) == 3
    [kept] = await rows(
        store, sa.select(h.c.api_calls).where(h.c.account_id == acc, h.c.hour_start == hour)
    )
    assert kept.api_calls == 5
    last = await store.last_health_hour()
    assert last == hour + HOUR and last.utcoffset() == timedelta(0)
    latest = await store.latest_health(limit=2)
    assert [(r["hour_start"], r["account"]) for r in latest] == [
        (hour + HOUR, "main"),
        (hour, "main"),
    ]
    assert latest[1]["errors_by_kind"] == {"PlatformUnavailable": 1}
    assert latest[1]["engagement_rate"] == pytest.approx(0.05)
    assert len(await store.latest_health()) == 3


async def test_health_inputs_summarise_one_hour(store: SqlStore) -> None:
    acc = await account(store)
    start = T0 + HOUR
    minute = timedelta(minutes=1)
    # posted before the hour; its 90-minute snapshot falls due and is taken inside it
    earlier = await store.add_content(
        new_content(acc, generation_metadata={"cost_usd": 0.5}, scheduled_for=T0), now=T0 - HOUR
    )
    assert await store.begin_publish(earlier.id, now=T0)
    assert await store.finish_publish(
        earlier.id, platform_post_id="e", posted_at=T0, horizons=[90 * minute], now=T0
    )
    await store.record_snapshot(
        (await store.due_snapshots(start + 30 * minute))[0].id,
        metrics(likes=5, reposts=0, replies=0, impressions=100),
        taken_at=start + 40 * minute,
        hours_since_post=100 / 60,
        followers_at=None,
    )
    # inside the hour: one published, one failed, one rejected
    made = await store.add_content(
        new_content(acc, generation_metadata={"cost_usd": 0.01}, scheduled_for=start),
        now=start + 5 * minute,
    )
    assert await store.begin_publish(made.id, now=start + 10 * minute)
    assert await store.finish_publish(
        made.id,
        platform_post_id="m",
        posted_at=start + 10 * minute,
        horizons=HORIZONS,
        now=start + 10 * minute,
    )
    broke = await store.add_content(new_content(acc, scheduled_for=start), now=start + minute)
    assert await store.begin_publish(broke.id, now=start + 2 * minute)
    await store.fail_publish(broke.id, error="refused", now=start + 3 * minute)
    await store.add_content(
        new_content(acc, status=PostStatus.REJECTED, generation_metadata={"cost_usd": 0.02}),
        now=start + 20 * minute,
    )
    for at, followers in ((T0 + 30 * minute, 100), (start + 50 * minute, 104), (start + HOUR, 200)):
        info = AccountInfo(handle="@main", followers=followers, following=1, posts=1)
        await store.add_account_snapshot(acc, info, taken_at=at)

    data = await store.health_inputs(acc, start, start + HOUR)

    assert data["status_counts"] == {"posted": 1, "failed": 1, "rejected": 1}
    assert (data["posts_succeeded"], data["posts_attempted"]) == (1, 2)
    assert (data["polls_due"], data["polls_done_of_due"]) == (1, 1)
    assert data["engagement_rate"] == pytest.approx(0.05)
    assert data["polls_done"] == [(start + 30 * minute, start + 40 * minute)]
    assert data["llm_spend_usd"] == pytest.approx(0.03)
    assert (data["followers_start"], data["followers_end"]) == (100, 104)
    empty = await store.health_inputs(acc, start + 48 * HOUR, start + 49 * HOUR)
    assert (empty["posts_attempted"], empty["polls_due"], empty["engagement_rate"]) == (0, 0, None)
    assert (empty["followers_start"], empty["followers_end"]) == (200, 200)


async def test_pending_work_and_next_due(store: SqlStore) -> None:
    acc = await account(store)
    assert await store.pending_work(T0) == {
        "polls_due": 0,
        "polls_upcoming": 0,
        "next_poll_at": None,
        "posts_queued": 0,
        "next_post_at": None,
        "posts_in_flight": 0,
    }
    assert await store.next_due() == (None, None)

    await planned(store, acc, scheduled_for=T0 + 5 * HOUR)
    await planned(store, acc, scheduled_for=T0 + 3 * HOUR)
    await publishing(store, acc, scheduled_for=T0 + HOUR)
    done = await posted(store, acc, posted_at=T0)
    await take(store, done.id, HOUR, T0 + HOUR)
    ahead = await posted(store, acc, posted_at=T0 + 2 * HOUR, horizons=(4 * HOUR,))
    [(early_id,)] = await rows(
        store,
        sa.select(performance_snapshots.c.id).where(performance_snapshots.c.content_id == ahead.id),
    )
    await store.record_snapshot(  # taken before it fell due: neither due nor upcoming
        early_id, metrics(), taken_at=T0 + 3 * HOUR, hours_since_post=1.0, followers_at=None
    )

    work = await store.pending_work(T0 + 4 * HOUR)
    assert work == {
        "polls_due": 1,
        "polls_upcoming": 1,
        "next_poll_at": T0 + 4 * HOUR,
        "posts_queued": 2,
        "next_post_at": T0 + 3 * HOUR,
        "posts_in_flight": 1,
    }
    assert work["next_poll_at"].utcoffset() == timedelta(0)
    post_at, poll_at = await store.next_due()
    assert (post_at, poll_at) == (T0 + 3 * HOUR, T0 + 4 * HOUR)
    assert post_at is not None and post_at.tzinfo is not None


async def test_counts(store: SqlStore) -> None:
    acc = await account(store)
    assert await store.counts() == {"snapshots_taken": 0, "learning_updates": 0}

    await planned(store, acc)
    await planned(store, acc)
    await planned(store, acc, status=PostStatus.REJECTED)
    await publishing(store, acc)
    done = await posted(store, acc, posted_at=T0)
    await take(store, done.id, HOUR, T0 + HOUR)
    await take(store, done.id, 4 * HOUR, T0 + 4 * HOUR)
    await learn(store, acc, done.id)

    assert await store.counts() == {
        "planned": 2,
        "rejected": 1,
        "publishing": 1,
        "posted": 1,
        "snapshots_taken": 2,
        "learning_updates": 1,
    }
