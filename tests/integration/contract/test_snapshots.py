"""The Store contract, snapshots and claims: the due performance snapshots a publish creates,
recording them once, the account (follower) series, and claiming due snapshots so that several
workers never poll the same one.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import sqlalchemy as sa

from adapters.base import AccountInfo, PostMetrics
from agent.models import (
    AccountReading,
    AccountSnapshot,
)
from agent.store.base import SnapshotReading
from agent.store.schema import (
    performance_snapshots,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    LEASE,
    account,
    metrics,
    posted,
    rows,
)


async def test_due_snapshots_returns_untaken_rows_that_are_due(store: SqlStore) -> None:
    acc = await account(store)
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR / 2)

    [one] = await store.due_snapshots(T0 + HOUR)  # due_at == now counts as due
    assert (one.content_id, one.horizon_hours, one.due_at) == (first.id, 1.0, T0 + HOUR)
    assert (one.account_id, one.platform_post_id, one.posted_at) == (acc, f"pid-{first.id}", T0)

    due = await store.due_snapshots(T0 + 5 * HOUR)
    assert [(d.content_id, d.horizon_hours) for d in due] == [
        (first.id, 1.0),
        (second.id, 1.0),
        (first.id, 4.0),
        (second.id, 4.0),
    ]
    await store.record_snapshot(
        one.id, metrics(), taken_at=T0 + 5 * HOUR, hours_since_post=5.0, followers_at=None
    )
    assert [d.id for d in await store.due_snapshots(T0 + 5 * HOUR)] == [d.id for d in due[1:]]
    assert [d.id for d in await store.due_snapshots(T0 + 5 * HOUR, limit=1)] == [due[1].id]


async def test_record_snapshot_sets_taken_at_once(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    [due] = await store.due_snapshots(T0 + HOUR)
    counters = PostMetrics(
        platform_post_id="pid",
        likes=10,
        reposts=2,
        replies=3,
        quotes=1,
        bookmarks=4,
        impressions=400,
        profile_clicks=5,
        url_clicks=6,
    )

    await store.record_snapshot(
        due.id, counters, taken_at=T0 + 70 * HOUR / 60, hours_since_post=70 / 60, followers_at=990
    )
    await store.record_snapshot(
        due.id, metrics(likes=99), taken_at=T0 + 2 * HOUR, hours_since_post=2.0, followers_at=1
    )

    ps = performance_snapshots
    [row] = await rows(store, sa.select(ps).where(ps.c.id == due.id))
    assert row.content_id == post.id
    assert row.taken_at == T0 + 70 * HOUR / 60
    assert row.hours_since_post == pytest.approx(70 / 60)
    counted = (row.likes, row.reposts, row.replies, row.quotes, row.bookmarks, row.impressions)
    assert counted == (10, 2, 3, 1, 4, 400)
    assert (row.profile_clicks, row.url_clicks, row.followers_at) == (5, 6, 990)
    assert row.engagement_rate == pytest.approx(20 / 400)
    assert row.error is None


async def test_record_snapshot_without_metrics_keeps_the_error(store: SqlStore) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    one, four = await store.due_snapshots(T0 + 4 * HOUR)

    await store.record_snapshot(
        one.id,
        None,
        taken_at=T0 + 4 * HOUR,
        hours_since_post=4.0,
        followers_at=None,
        error="post not found on the platform",
    )
    await store.record_snapshot(
        four.id,
        metrics(impressions=0),
        taken_at=T0 + 4 * HOUR,
        hours_since_post=4.0,
        followers_at=None,
    )

    ps = performance_snapshots
    missing, unseen = await rows(
        store, sa.select(ps).where(ps.c.id.in_([one.id, four.id])).order_by(ps.c.horizon_hours)
    )
    assert missing.taken_at == T0 + 4 * HOUR
    assert (missing.likes, missing.engagement_rate) == (None, None)
    assert missing.error == "post not found on the platform"
    assert (unseen.likes, unseen.impressions, unseen.engagement_rate) == (10, 0, None)
    assert await store.due_snapshots(T0 + 4 * HOUR) == []


async def test_account_snapshots_series_and_last(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    assert await store.last_account_snapshot(acc) is None
    for at, followers in ((T0 + 2 * HOUR, 100), (T0, 90), (T0 + HOUR, 95)):
        info = AccountInfo(handle="@main", followers=followers, following=10, posts=7)
        await store.add_account_snapshot(acc, info, taken_at=at)
    await store.add_account_snapshot(
        other, AccountInfo(handle="@s", followers=5, following=1, posts=0), taken_at=T0 + 9 * HOUR
    )

    assert await store.last_account_snapshot(acc) == AccountSnapshot(
        account_id=acc, taken_at=T0 + 2 * HOUR, followers=100, following=10, posts=7
    )
    series = await store.account_series(acc, T0, T0 + HOUR)  # both ends included
    assert [(s.taken_at, s.followers) for s in series] == [(T0, 90), (T0 + HOUR, 95)]
    series = await store.account_series(acc, T0 + HOUR / 2, T0 + 9 * HOUR)
    assert [s.followers for s in series] == [95, 100]
    assert all(s.account_id == acc for s in series)


async def test_last_account_snapshots_gives_each_accounts_latest_reading(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    await account(store, "never_read")
    assert await store.last_account_snapshots() == {}
    for at, followers in ((T0 + 2 * HOUR, 100), (T0, 90), (T0 + 2 * HOUR, 101), (T0 + HOUR, 95)):
        info = AccountInfo(handle="@main", followers=followers, following=10, posts=7)
        await store.add_account_snapshot(acc, info, taken_at=at)
    await store.add_account_snapshot(
        other, AccountInfo(handle="@s", followers=5, following=1, posts=0), taken_at=T0
    )

    latest = await store.last_account_snapshots()

    assert latest == {
        acc: await store.last_account_snapshot(acc),  # of two at one time, the later stored
        other: AccountSnapshot(account_id=other, taken_at=T0, followers=5, following=1, posts=0),
    }
    assert latest[acc].followers == 101


async def test_last_account_snapshots_of_some_accounts(store: SqlStore) -> None:
    ids = [await account(store, f"a{i}") for i in range(4)]
    for n, acc in enumerate(ids[:3]):
        info = AccountInfo(handle="@a", followers=10 * n, following=1, posts=0)
        await store.add_account_snapshot(acc, info, taken_at=T0 + n * HOUR)

    some = await store.last_account_snapshots([ids[1], ids[3], 999_999])

    assert some == {ids[1]: await store.last_account_snapshot(ids[1])}  # none for 3, unknown
    assert some[ids[1]].followers == 10
    assert await store.last_account_snapshots([]) == {}
    assert set(await store.last_account_snapshots()) == set(ids[:3])


async def test_add_account_snapshots_writes_each_reading_as_add_account_snapshot(
    store: SqlStore,
) -> None:
    first, second = await account(store), await account(store, "second")
    readings = [
        AccountReading(first, AccountInfo(handle="@m", followers=100, following=3, posts=9), T0),
        AccountReading(second, AccountInfo(handle="@s", followers=7, following=1, posts=2), T0),
        AccountReading(
            first, AccountInfo(handle="@m", followers=104, following=3, posts=9), T0 + HOUR
        ),
    ]

    await store.add_account_snapshots(readings)
    await store.add_account_snapshots([])

    assert await store.last_account_snapshots() == {
        first: AccountSnapshot(
            account_id=first, taken_at=T0 + HOUR, followers=104, following=3, posts=9
        ),
        second: AccountSnapshot(account_id=second, taken_at=T0, followers=7, following=1, posts=2),
    }
    series = await store.account_series(first, T0, T0 + 2 * HOUR)
    assert [(s.taken_at, s.followers) for s in series] == [(T0, 100), (T0 + HOUR, 104)]


async def due_ids(store: SqlStore, now: datetime) -> list[int]:
    return [d.id for d in await store.due_snapshots(now)]


async def test_claim_snapshots_returns_due_rows_like_due_snapshots_and_marks_them(
    store: SqlStore,
) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    await posted(store, acc, posted_at=T0 + HOUR / 2)
    now = T0 + 5 * HOUR
    expected = await store.due_snapshots(now)
    assert len(expected) == 4  # the 1h and 4h rows of both posts; the 24h rows are not due

    claimed = await store.claim_snapshots(now, worker="w1", lease=LEASE)

    assert claimed == expected  # same rows, same fields, same order
    ps = performance_snapshots
    marks = await rows(store, sa.select(ps.c.id, ps.c.claimed_by, ps.c.claimed_until))
    by_id = {r.id: (r.claimed_by, r.claimed_until) for r in marks}
    assert {by_id[d.id] for d in claimed} == {("w1", now + LEASE)}
    assert sum(1 for value in by_id.values() if value == (None, None)) == 2  # the 24h rows


async def test_claimed_snapshots_are_not_claimed_by_another_worker_until_the_claim_expires(
    store: SqlStore,
) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    now = T0 + 2 * HOUR
    [first] = await store.claim_snapshots(now, worker="w1", lease=LEASE)

    assert await store.claim_snapshots(now + LEASE / 2, worker="w2", lease=LEASE) == []
    assert await store.claim_snapshots(now + LEASE, worker="w2", lease=LEASE) == []  # not yet
    [taken_over] = await store.claim_snapshots(now + LEASE + HOUR / 60, worker="w2", lease=LEASE)
    assert taken_over.id == first.id
    assert await store.claim_snapshots(now + LEASE + HOUR / 60, worker="w1", lease=LEASE) == []


async def test_a_worker_claims_its_own_unexpired_claims_again_and_renews_them(
    store: SqlStore,
) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    now = T0 + 2 * HOUR
    [first] = await store.claim_snapshots(now, worker="w1", lease=LEASE)
    later = now + LEASE / 2
    [again] = await store.claim_snapshots(later, worker="w1", lease=LEASE)
    assert again.id == first.id
    ps = performance_snapshots
    [row] = await rows(store, sa.select(ps.c.claimed_until).where(ps.c.id == first.id))
    assert row.claimed_until == later + LEASE
    assert await store.claim_snapshots(now + LEASE + HOUR / 60, worker="w2", lease=LEASE) == []


async def test_claim_snapshots_respects_the_limit_and_skips_taken_rows(store: SqlStore) -> None:
    acc = await account(store)
    for i in range(3):
        await posted(store, acc, posted_at=T0 + i * HOUR / 10)
    now = T0 + 5 * HOUR
    everything = await due_ids(store, now)
    taken = everything[0]
    await store.record_snapshot(
        taken, metrics(), taken_at=now, hours_since_post=5.0, followers_at=None
    )

    two = await store.claim_snapshots(now, worker="w1", lease=LEASE, limit=2)
    rest = await store.claim_snapshots(now, worker="w2", lease=LEASE)

    assert [d.id for d in two] == everything[1:3]
    assert [d.id for d in rest] == everything[3:]


async def test_record_snapshot_clears_the_claim(store: SqlStore) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    now = T0 + 2 * HOUR
    [snap] = await store.claim_snapshots(now, worker="w1", lease=LEASE)
    await store.record_snapshot(
        snap.id, metrics(), taken_at=now, hours_since_post=2.0, followers_at=1000
    )
    ps = performance_snapshots
    [row] = await rows(
        store,
        sa.select(ps.c.taken_at, ps.c.claimed_by, ps.c.claimed_until).where(ps.c.id == snap.id),
    )
    assert (row.taken_at, row.claimed_by, row.claimed_until) == (now, None, None)
    # taken: nobody claims it again, even once the old claim would have expired
    assert await store.claim_snapshots(now + 2 * LEASE, worker="w2", lease=LEASE) == []


async def test_concurrent_claims_from_two_workers_get_disjoint_sets(store: SqlStore) -> None:
    acc = await account(store)
    for i in range(8):
        await posted(store, acc, posted_at=T0 + i * HOUR / 60)
    now = T0 + 5 * HOUR
    everything = set(await due_ids(store, now))
    assert len(everything) == 16

    one, two = await asyncio.gather(
        store.claim_snapshots(now, worker="w1", lease=LEASE, limit=10),
        store.claim_snapshots(now, worker="w2", lease=LEASE, limit=10),
    )

    assert not {d.id for d in one} & {d.id for d in two}, "two workers claimed one snapshot"
    assert {d.id for d in one} | {d.id for d in two} == everything
    assert sorted([len(one), len(two)]) == [6, 10]


async def test_concurrent_claims_from_many_workers_never_overlap(store: SqlStore) -> None:
    acc = await account(store)
    for i in range(8):
        await posted(store, acc, posted_at=T0 + i * HOUR / 60)
    now = T0 + 5 * HOUR

    batches = await asyncio.gather(
        *(store.claim_snapshots(now, worker=f"w{i}", lease=LEASE, limit=2) for i in range(8))
    )

    claimed = [d.id for batch in batches for d in batch]
    assert len(claimed) == len(set(claimed)) == 16


async def test_record_snapshots_writes_a_poll_batch_as_record_snapshot_writes_each(
    store: SqlStore,
) -> None:
    acc = await account(store)
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR / 2)
    due = await store.due_snapshots(T0 + 5 * HOUR)  # 1h and 4h of both posts
    gone, kept = due[:3], due[3]
    taken = T0 + 5 * HOUR
    readings = [
        SnapshotReading(
            snapshot_id=gone[0].id,
            metrics=metrics(likes=7, impressions=100),
            taken_at=taken,
            hours_since_post=5.0,
            followers_at=1010,
        ),
        SnapshotReading(
            snapshot_id=gone[1].id,
            metrics=None,
            taken_at=taken,
            hours_since_post=4.5,
            followers_at=1010,
            error="post not found on the platform",
        ),
        SnapshotReading(
            snapshot_id=gone[2].id,
            metrics=metrics(likes=9),
            taken_at=taken,
            hours_since_post=5.0,
            followers_at=None,
        ),
    ]

    await store.record_snapshots(readings)
    await store.record_snapshots([])  # nothing to write: no error

    assert [d.id for d in await store.due_snapshots(taken)] == [kept.id]
    ps = performance_snapshots
    found = {
        r.id: r for r in await rows(store, sa.select(ps).where(ps.c.id.in_([d.id for d in gone])))
    }
    assert {found[d.id].content_id for d in gone} == {first.id, second.id}
    one, two, three = (found[d.id] for d in gone)
    assert (one.taken_at, one.likes, one.impressions, one.followers_at) == (taken, 7, 100, 1010)
    assert one.engagement_rate == pytest.approx((7 + 2 + 3) / 100)
    assert (two.likes, two.error, two.hours_since_post) == (None, readings[1].error, 4.5)
    assert (three.likes, three.followers_at, three.error) == (9, None, None)


async def test_record_snapshots_leaves_a_taken_snapshot_as_it_was(store: SqlStore) -> None:
    acc = await account(store)
    await posted(store, acc, posted_at=T0)
    one, four = await store.due_snapshots(T0 + 4 * HOUR)
    await store.record_snapshot(
        one.id, metrics(likes=1), taken_at=T0 + HOUR, hours_since_post=1.0, followers_at=5
    )

    late = T0 + 4 * HOUR
    await store.record_snapshots(
        [
            SnapshotReading(
                snapshot_id=s.id,
                metrics=metrics(likes=50),
                taken_at=late,
                hours_since_post=4.0,
                followers_at=6,
            )
            for s in (one, four)
        ]
    )

    ps = performance_snapshots
    taken = {r.id: r for r in await rows(store, sa.select(ps))}
    assert (taken[one.id].likes, taken[one.id].taken_at, taken[one.id].followers_at) == (
        1,
        T0 + HOUR,
        5,
    )
    assert (taken[four.id].likes, taken[four.id].taken_at) == (50, late)
    assert await store.due_snapshots(late) == []
