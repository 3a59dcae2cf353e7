"""The Store contract, run against a migrated SQLite file and a fresh PostgreSQL database.

Every test takes the parametrised ``store`` fixture, so each one runs on both backends. The
exactly-once guarantees (a post is claimed, finished, attributed and learned from once) are
checked by counting the rows the database actually holds, not by trusting return values alone.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.base import AccountInfo, PostMetrics, text_hash
from agent.errors import StoreError
from agent.models import (
    AccountSnapshot,
    ArmStat,
    Attribution,
    NewContent,
    Post,
    PostCounts,
    PostStatus,
)
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.memory import MemoryStore
from agent.store.migrate import upgrade
from agent.store.schema import (
    accounts,
    content,
    follower_attributions,
    leases,
    performance_snapshots,
    system_health_metrics,
)
from agent.store.sql import SqlStore
from tests.conftest import T0, fresh_pg_database

HOUR = timedelta(hours=1)
HORIZONS = (HOUR, 4 * HOUR, 24 * HOUR)
METHOD = "time_window"
REFUSED = (IntegrityError, StoreError)  # a constraint violation may surface as either


# -- factories ------------------------------------------------------------------------------


async def account(store: SqlStore, name: str = "main") -> int:
    return await store.ensure_account(name=name, platform="sandbox", handle=f"@{name}", now=T0)


def new_content(account_id: int, **overrides: Any) -> NewContent:
    text = overrides.pop("text", f"a post about sleep {uuid.uuid4().hex[:8]}")
    values: dict[str, Any] = {
        "account_id": account_id,
        "status": PostStatus.PLANNED,
        "text": text,
        "text_hash": text_hash(text),
        "generation_metadata": {"content_type": "tip", "formula": "list", "hook": "question"},
        "scheduled_for": T0,
        "idempotency_key": uuid.uuid4().hex,
    }
    values.update(overrides)
    return NewContent(**values)


async def planned(store: SqlStore, account_id: int, **overrides: Any) -> Post:
    return await store.add_content(new_content(account_id, **overrides), now=T0)


async def publishing(store: SqlStore, account_id: int, **overrides: Any) -> Post:
    post = await planned(store, account_id, **overrides)
    assert await store.begin_publish(post.id, now=post.scheduled_for)
    return post


async def posted(
    store: SqlStore,
    account_id: int,
    *,
    posted_at: datetime,
    horizons: tuple[timedelta, ...] = HORIZONS,
    **overrides: Any,
) -> Post:
    post = await publishing(store, account_id, scheduled_for=posted_at, **overrides)
    assert await store.finish_publish(
        post.id,
        platform_post_id=f"pid-{post.id}",
        posted_at=posted_at,
        horizons=horizons,
        now=posted_at,
    )
    found = await store.get_post(post.id)
    assert found is not None
    return found


def metrics(**overrides: int) -> PostMetrics:
    values = {
        "platform_post_id": "pid",
        "likes": 10,
        "reposts": 2,
        "replies": 3,
        "impressions": 400,
    }
    return PostMetrics(**(values | overrides))  # type: ignore[arg-type]


async def take(
    store: SqlStore, content_id: int, horizon: timedelta, taken_at: datetime, **counters: int
) -> None:
    """Record the snapshot of ``content_id`` at ``horizon``."""
    due = [
        d
        for d in await store.due_snapshots(taken_at)
        if d.content_id == content_id and d.horizon_hours == horizon.total_seconds() / 3600
    ]
    assert len(due) == 1, due
    await store.record_snapshot(
        due[0].id,
        metrics(**counters),
        taken_at=taken_at,
        hours_since_post=(taken_at - due[0].posted_at).total_seconds() / 3600,
        followers_at=1000,
    )


def attribution(content_id: int, **overrides: Any) -> Attribution:
    values: dict[str, Any] = {
        "content_id": content_id,
        "attribution_method": METHOD,
        "window_hours": 24.0,
        "followers_before": 1000.0,
        "followers_after": 1003.5,
        "followers_gained": 2.5,
        "confidence_score": 0.75,
        "inputs": {"baseline_per_hour": 0.04, "overlapping_posts": [3, 4]},
    }
    values.update(overrides)
    return Attribution(**values)


def arm_stat(account_id: int, dimension: str, arm: str, **overrides: Any) -> ArmStat:
    values: dict[str, Any] = {
        "account_id": account_id,
        "dimension": dimension,
        "arm": arm,
        "posts": 1,
        "mean": 2.5,
        "interval_low": 1.25,
        "interval_high": 4.0,
        "p_best": 0.5,
        "model": "joint",
    }
    values.update(overrides)
    return ArmStat(**values)


def learned_stats(account_id: int, **overrides: Any) -> list[ArmStat]:
    return [
        arm_stat(account_id, "content_type", "tip", **overrides),
        arm_stat(account_id, "formula", "list", **overrides),
        arm_stat(account_id, "hook", "question", **overrides),
    ]


async def learn(store: SqlStore, account_id: int, content_id: int, **overrides: Any) -> int:
    """One learning step from one post (tests/integration/test_model_estimates_store.py has the
    learning writes' contract)."""
    return await store.apply_learning(
        account_id=account_id,
        content_ids=overrides.pop("content_ids", [content_id]),
        stats=overrides.pop("stats", learned_stats(account_id)),
        evidence=overrides.pop("evidence", {"reward": 2.5, "arms": {"hook": "question"}}),
        updates_applied={"model": "joint", "changes": []},
        insights_summary={"leaders": {"hook": {"arm": "question"}}},
        now=overrides.pop("now", T0 + 30 * HOUR),
    )


def health_row(account_id: int, hour: datetime, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "hour_start": hour,
        "account_id": account_id,
        "posts_attempted": 2,
        "posts_succeeded": 1,
        "posts_failed": 1,
        "posts_rejected": 0,
        "polls_due": 3,
        "polls_done": 3,
        "polls_late": 0,
        "api_calls": 5,
        "api_errors": 1,
        "rate_limit_waits": 0,
        "errors_by_kind": {"PlatformUnavailable": 1},
        "engagement_rate": 0.05,
        "followers_total": 1000,
        "followers_gained": 2.0,
        "llm_spend_usd": 0.01,
        "platform_spend_usd": 0.0,
        "cost_per_follower_usd": 0.005,
        "created_at": hour + HOUR,
    }
    values.update(overrides)
    return values


_MIGRATED: list[Path] = []  # an empty SQLite file at the head revision, made once


@asynccontextmanager
async def inspected(store: SqlStore) -> AsyncIterator[AsyncEngine]:
    """An engine on the store's rows: its own, or, for the in-memory store (which has no
    tables), a copy of a migrated SQLite file its rows were exported into."""
    if not isinstance(store, MemoryStore):
        yield store.engine
        return
    with tempfile.TemporaryDirectory() as tmp:
        if not _MIGRATED or not _MIGRATED[0].exists():
            template = Path(tempfile.mkdtemp(prefix="growthloop-migrated-")) / "empty.db"
            engine = create_engine(f"sqlite+aiosqlite:///{template}")
            await upgrade(engine)
            await engine.dispose()
            _MIGRATED[:] = [template]
            atexit.register(shutil.rmtree, template.parent, True)
        copy = Path(tmp) / "export.db"
        shutil.copyfile(_MIGRATED[0], copy)
        engine = create_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            await store.export(engine)
            yield engine
        finally:
            await engine.dispose()


async def count(store: SqlStore, table: sa.Table, *where: Any) -> int:
    async with inspected(store) as engine, engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where)))


async def rows(store: SqlStore, query: Any) -> list[Any]:
    async with inspected(store) as engine, engine.connect() as conn:
        return list((await conn.execute(query)).all())


# -- accounts and content -------------------------------------------------------------------


async def test_store_reports_its_backend(store: SqlStore, request: pytest.FixtureRequest) -> None:
    assert store.backend == request.node.callspec.params["store"]


async def test_ensure_account_is_idempotent(store: SqlStore) -> None:
    first = await store.ensure_account(name="main", platform="sandbox", handle="@a", now=T0)
    again = await store.ensure_account(name="main", platform="x", handle="@b", now=T0 + HOUR)
    other = await store.ensure_account(name="second", platform="sandbox", handle=None, now=T0)

    assert again == first
    assert other != first
    assert await count(store, accounts) == 2
    [row] = await rows(store, sa.select(accounts).where(accounts.c.id == first))
    assert (row.platform, row.handle) == ("x", "@b")  # the config's current values
    assert row.created_at == T0  # kept from the first call


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
    with pytest.raises(REFUSED):
        await planned(store, acc, idempotency_key="same-key")
    assert await count(store, content) == 1


# -- the exactly-once publish protocol ------------------------------------------------------


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


async def test_recent_texts_are_newest_first(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    for text in ("one", "two", "three"):
        await planned(store, acc, text=text)
    await planned(store, acc, text="refused", status=PostStatus.REJECTED)
    await planned(store, other, text="elsewhere")

    assert await store.recent_texts(acc, 2) == ["three", "two"]
    assert await store.recent_texts(acc, 10) == ["three", "two", "one"]


# -- polling --------------------------------------------------------------------------------


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


# -- attribution and learning ---------------------------------------------------------------


async def test_posts_to_attribute_lists_posts_whose_window_closed(store: SqlStore) -> None:
    acc = await account(store)
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + 2 * HOUR)
    await planned(store, acc, scheduled_for=T0)

    async def ids(closed_before: datetime, method: str = METHOD, window: float = 24.0) -> list[int]:
        posts = await store.posts_to_attribute(
            closed_before=closed_before, method=method, window_hours=window
        )
        return [p.id for p in posts]

    assert await ids(T0 + 24 * HOUR - timedelta(seconds=1)) == []
    assert await ids(T0 + 24 * HOUR) == [first.id]
    assert await ids(T0 + 26 * HOUR) == [first.id, second.id]

    await store.add_attribution(attribution(first.id), now=T0 + 26 * HOUR)

    assert await ids(T0 + 26 * HOUR) == [second.id]
    assert await ids(T0 + 26 * HOUR, method="other") == [first.id, second.id]
    assert await ids(T0 + 99 * HOUR, window=48.0) == [first.id, second.id]


async def test_add_attribution_is_unique_per_content_method_and_window(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    await store.add_attribution(attribution(post.id), now=T0 + 25 * HOUR)

    with pytest.raises(REFUSED):
        await store.add_attribution(attribution(post.id, followers_gained=9.0), now=T0 + 26 * HOUR)

    fa = follower_attributions
    [row] = await rows(store, sa.select(fa))
    assert (row.content_id, row.attribution_method, row.window_hours) == (post.id, METHOD, 24.0)
    assert (row.followers_gained, row.confidence_score) == (2.5, 0.75)
    assert row.inputs == {"baseline_per_hour": 0.04, "overlapping_posts": [3, 4]}
    assert row.created_at == T0 + 25 * HOUR
    await store.add_attribution(attribution(post.id, window_hours=48.0), now=T0 + 49 * HOUR)
    await store.add_attribution(attribution(post.id, attribution_method="other"), now=T0)
    assert await count(store, fa) == 3


async def test_posted_between_returns_posts_with_their_latest_counts(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR)
    await posted(store, acc, posted_at=T0 + 10 * HOUR)
    await posted(store, other, posted_at=T0)
    await take(store, first.id, 4 * HOUR, T0 + 4 * HOUR, likes=10, replies=2, quotes=1)
    # taken after the longer horizon: the longer horizon's counts still win
    await take(store, first.id, HOUR, T0 + 5 * HOUR, likes=3, reposts=1, profile_clicks=2)
    await take(
        store, first.id, 24 * HOUR, T0 + 25 * HOUR, likes=20, impressions=900, profile_clicks=6
    )
    await take(store, second.id, HOUR, T0 + 2 * HOUR, likes=1, impressions=80, profile_clicks=1)
    # (metrics() adds reposts=2 and replies=3 to every snapshot: 25 and 6 engagements)

    found = await store.posted_between(acc, T0, T0 + HOUR)  # both ends included

    assert [p.id for p, _counts in found] == [first.id, second.id]
    assert found[0][0] == first
    assert found[0][1] == PostCounts(
        engagements=25, impressions=900, profile_clicks=6, hours_observed=25.0
    )
    assert found[1][1] == PostCounts(
        engagements=6, impressions=80, profile_clicks=1, hours_observed=1.0
    )
    [(_, never_polled)] = await store.posted_between(acc, T0 + 10 * HOUR, T0 + 10 * HOUR)
    assert never_polled == PostCounts()  # no snapshot taken: zeros, not observed
    assert await store.posted_between(acc, T0 + 11 * HOUR, T0 + 12 * HOUR) == []


async def test_posts_to_learn_waits_for_the_final_snapshot_and_attribution(
    store: SqlStore,
) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    await posted(store, acc, posted_at=T0 + HOUR)  # never polled
    await take(store, post.id, HOUR, T0 + HOUR)
    await take(store, post.id, 4 * HOUR, T0 + 4 * HOUR)

    assert await store.posts_to_learn(method=METHOD, need_attribution=False) == []

    await take(store, post.id, 24 * HOUR, T0 + 25 * HOUR, likes=40, impressions=800)
    [item] = await store.posts_to_learn(method=METHOD, need_attribution=False)
    assert item.post == await store.get_post(post.id)
    assert item.attribution is None
    assert (item.final.horizon_hours, item.final.taken_at) == (24.0, T0 + 25 * HOUR)
    assert (item.final.likes, item.final.impressions, item.final.followers_at) == (40, 800, 1000)
    assert item.final.hours_since_post == pytest.approx(25.0)
    assert item.final.engagement_rate == pytest.approx(45 / 800)
    assert await store.posts_to_learn(method=METHOD, need_attribution=True) == []

    await store.add_attribution(attribution(post.id), now=T0 + 25 * HOUR)

    [item] = await store.posts_to_learn(method=METHOD, need_attribution=True)
    assert item.post.id == post.id
    assert item.attribution == attribution(post.id)
    assert await store.posts_to_learn(method="other", need_attribution=True) == []
    assert await store.posts_to_learn(method=METHOD, need_attribution=True, limit=0) == []


async def test_learning_history_shows_each_posted_post_with_its_latest_outcome(
    store: SqlStore,
) -> None:
    acc = await account(store)
    other = await account(store, "second")
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + 2 * HOUR)
    await posted(store, other, posted_at=T0)  # another account's post is not in the history
    await take(store, first.id, HOUR, T0 + HOUR, likes=3, reposts=1, replies=0)
    await take(
        store, first.id, 24 * HOUR, T0 + 25 * HOUR, likes=30, reposts=2, replies=1, profile_clicks=7
    )
    await store.add_attribution(attribution(first.id, followers_gained=4.5), now=T0 + 25 * HOUR)
    await learn(store, acc, first.id, now=T0 + 26 * HOUR)

    old, new = await store.learning_history(acc, method=METHOD)

    assert (old.content_id, new.content_id) == (first.id, second.id)
    assert old.posted_at == T0 and old.arms == first.arms
    assert (old.engagements, old.hours_observed) == (33, pytest.approx(25.0))
    assert old.profile_clicks == 7  # of the latest snapshot, like the engagements
    assert (old.followers, old.learned) == (4.5, True)
    assert (new.engagements, new.hours_observed, new.followers, new.learned) == (
        0,
        None,
        None,
        False,
    )
    [only] = await store.learning_history(acc, method=METHOD, since=T0 + HOUR)
    assert only.content_id == second.id
    [unattributed, _] = await store.learning_history(acc, method="other")
    assert unattributed.followers is None


async def test_learning_history_read_between_changes_shows_each_change(store: SqlStore) -> None:
    """Regression (memory store's cached rows): each snapshot, attribution and learning mark
    that lands after a read shows in the next read."""
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    [before] = await store.learning_history(acc, method=METHOD)
    await take(store, post.id, HOUR, T0 + HOUR, likes=3, reposts=1, replies=0, profile_clicks=2)
    [polled] = await store.learning_history(acc, method=METHOD)
    await take(store, post.id, 24 * HOUR, T0 + 24 * HOUR, likes=9, reposts=1, replies=0)
    await store.add_attribution(attribution(post.id, followers_gained=2.0), now=T0 + 25 * HOUR)
    [attributed] = await store.learning_history(acc, method=METHOD)
    await learn(store, acc, post.id, now=T0 + 26 * HOUR)
    [learned] = await store.learning_history(acc, method=METHOD)

    assert (before.engagements, before.hours_observed, before.followers) == (0, None, None)
    assert (polled.engagements, polled.profile_clicks, polled.followers) == (4, 2, None)
    assert (attributed.engagements, attributed.followers, attributed.learned) == (10, 2.0, False)
    assert learned.learned and learned.followers == 2.0


# -- health ---------------------------------------------------------------------------------


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


# -- errors ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def unmigrated_store(request: pytest.FixtureRequest, sqlite_url: str) -> Any:
    if request.param == "sqlite":
        s = SqlStore(create_engine(sqlite_url))
        try:
            yield s
        finally:
            await s.close()
        return
    async with fresh_pg_database() as url:
        s = SqlStore(create_engine(normalise_postgres_url(url)))
        try:
            yield s
        finally:
            await s.close()


async def test_database_errors_are_translated_to_store_error(unmigrated_store: SqlStore) -> None:
    with pytest.raises(StoreError, match="database error"):
        await unmigrated_store.counts()
    with pytest.raises(StoreError):
        await unmigrated_store.ensure_account(name="main", platform="x", handle=None, now=T0)


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    acc = await account(store)
    naive = datetime(2026, 3, 2, 6, 0)
    with pytest.raises(Exception, match="naive datetime"):
        await planned(store, acc, scheduled_for=naive)
    assert await count(store, content) == 0


# -- runtime state: the kill switch ---------------------------------------------------------


async def test_publishing_is_not_paused_until_someone_pauses_it(store: SqlStore) -> None:
    assert await store.paused() == (False, None)


async def test_set_paused_then_resume_keeps_one_row_with_who_and_when(store: SqlStore) -> None:
    from agent.store.schema import runtime_state

    await store.set_paused(True, reason="maintenance", by="cli:ops@host", now=T0)
    assert await store.paused() == (True, "maintenance")

    later = T0 + HOUR
    await store.set_paused(True, reason="still broken", by="cli:ops@host", now=later)
    assert await store.paused() == (True, "still broken")

    await store.set_paused(False, reason="resumed", by="cli:other@host", now=later + HOUR)
    assert await store.paused() == (False, None)

    (row,) = await rows(store, sa.select(runtime_state))
    assert row.key == "paused"
    assert row.value == {"paused": False, "reason": "resumed"}
    assert row.updated_by == "cli:other@host"
    assert row.updated_at == later + HOUR


async def test_concurrent_pauses_leave_one_consistent_row(store: SqlStore) -> None:
    await asyncio.gather(
        *(store.set_paused(True, reason=f"r{i}", by="w", now=T0) for i in range(5))
    )
    paused, reason = await store.paused()
    assert paused and reason in {f"r{i}" for i in range(5)}


# -- approval queue -------------------------------------------------------------------------


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


# -- several workers: snapshot claims and leases --------------------------------------------

LEASE = timedelta(minutes=5)


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


async def test_acquire_lease_new_renew_and_refuse(store: SqlStore) -> None:
    assert await store.acquire_lease("plan:1", worker="w1", now=T0, ttl=LEASE)
    assert not await store.acquire_lease("plan:1", worker="w2", now=T0 + LEASE / 2, ttl=LEASE)
    assert await store.acquire_lease("plan:2", worker="w2", now=T0, ttl=LEASE)  # another name
    renewed_at = T0 + LEASE / 2
    assert await store.acquire_lease("plan:1", worker="w1", now=renewed_at, ttl=LEASE)

    # the renewal moved the expiry: still held at the first expiry, not after the second
    assert not await store.acquire_lease("plan:1", worker="w2", now=T0 + LEASE, ttl=LEASE)
    assert not await store.acquire_lease("plan:1", worker="w2", now=renewed_at + LEASE, ttl=LEASE)
    [row] = await rows(store, sa.select(leases).where(leases.c.name == "plan:1"))
    assert (row.holder, row.expires_at, row.acquired_at) == ("w1", renewed_at + LEASE, T0)


async def test_an_expired_lease_is_taken_over(store: SqlStore) -> None:
    assert await store.acquire_lease("followers:1", worker="dead", now=T0, ttl=LEASE)
    later = T0 + LEASE + HOUR / 60
    assert await store.acquire_lease("followers:1", worker="alive", now=later, ttl=LEASE)
    [row] = await rows(store, sa.select(leases).where(leases.c.name == "followers:1"))
    assert (row.holder, row.expires_at, row.acquired_at) == ("alive", later + LEASE, later)
    assert not await store.acquire_lease("followers:1", worker="dead", now=later, ttl=LEASE)


async def test_release_lease_only_by_its_holder(store: SqlStore) -> None:
    assert await store.acquire_lease("learn", worker="w1", now=T0, ttl=LEASE)
    await store.release_lease("learn", worker="w2")  # not w2's: a no-op
    assert not await store.acquire_lease("learn", worker="w2", now=T0, ttl=LEASE)
    await store.release_lease("learn", worker="w1")
    assert await count(store, leases) == 0
    assert await store.acquire_lease("learn", worker="w2", now=T0, ttl=LEASE)
    await store.release_lease("nothing-held", worker="w2")  # unknown: a no-op
    assert await count(store, leases) == 1


async def test_concurrent_acquire_lease_has_one_winner(store: SqlStore) -> None:
    won = await asyncio.gather(
        *(store.acquire_lease("plan:7", worker=f"w{i}", now=T0, ttl=LEASE) for i in range(6))
    )
    assert sum(won) == 1
    [row] = await rows(store, sa.select(leases))
    assert row.holder == f"w{won.index(True)}"
