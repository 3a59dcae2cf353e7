"""Several workers on one PostgreSQL database: two engines (two workers' connection pools)
claiming snapshots and taking leases at the same moment never share one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from adapters.base import text_hash
from agent.models import NewContent, PostStatus
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from tests.conftest import T0, fresh_pg_database

pytestmark = pytest.mark.postgres

LEASE = timedelta(minutes=5)
POSTS = 60
HORIZONS = (timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))


@pytest.fixture
async def two_workers() -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    async with fresh_pg_database() as raw:
        url = normalise_postgres_url(raw)
        first, second = SqlStore(create_engine(url)), SqlStore(create_engine(url))
        try:
            await upgrade(first.engine)
            yield first, second
        finally:
            await first.close()
            await second.close()


async def publish_many(store: SqlStore) -> None:
    acc = await store.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    for i in range(POSTS):
        text = f"post {i} {uuid.uuid4().hex}"
        post = await store.add_content(
            NewContent(
                account_id=acc,
                status=PostStatus.PLANNED,
                text=text,
                text_hash=text_hash(text),
                generation_metadata={},
                scheduled_for=T0,
                idempotency_key=uuid.uuid4().hex,
            ),
            now=T0,
        )
        assert await store.begin_publish(post.id, now=T0)
        assert await store.finish_publish(
            post.id, platform_post_id=f"p{i}", posted_at=T0, horizons=HORIZONS, now=T0
        )


async def test_two_engines_claiming_at_once_get_disjoint_snapshots(
    two_workers: tuple[SqlStore, SqlStore],
) -> None:
    first, second = two_workers
    await publish_many(first)
    now = T0 + 4 * timedelta(hours=1)
    total = POSTS * len(HORIZONS)

    # 40 claims of 10 at once, alternating workers and engines; each worker id is distinct, so
    # no claim may return a row another claim returned
    batches = await asyncio.gather(
        *(
            (first if i % 2 else second).claim_snapshots(now, worker=f"w{i}", lease=LEASE, limit=10)
            for i in range(40)
        )
    )

    claimed = [d.id for batch in batches for d in batch]
    assert len(claimed) == len(set(claimed)), "a snapshot was claimed twice"
    assert len(claimed) == total  # SKIP LOCKED skips rows, it never loses them: 400 >= 180
    assert await first.claim_snapshots(now, worker="late", lease=LEASE) == []


async def test_two_engines_racing_for_leases_have_one_winner_each(
    two_workers: tuple[SqlStore, SqlStore],
) -> None:
    first, second = two_workers
    names = [f"plan:{i}" for i in range(20)]
    results = await asyncio.gather(
        *(
            store.acquire_lease(name, worker=worker, now=T0, ttl=LEASE)
            for name in names
            for store, worker in ((first, "a"), (second, "b"), (first, "c"), (second, "d"))
        )
    )
    for i in range(len(names)):
        assert sum(results[4 * i : 4 * i + 4]) == 1, names[i]
