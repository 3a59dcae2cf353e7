"""The in-memory store: the same simulation on it and on SQLite leaves the same rows; leases and
snapshot claims behave alike on every backend; what it hands out cannot change what it holds.

The whole Store contract (tests/integration/contract/) also runs on it, through the
``memory`` parameter of the ``store`` fixture.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.base import text_hash
from agent.bootstrap import build, save_sqlite
from agent.clock import VirtualClock
from agent.config import Config
from agent.models import NewContent, PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.memory import MemoryStore
from agent.store.schema import metadata
from tests.conftest import T0, make_config

HOUR = timedelta(hours=1)


def sandbox_config() -> Config:
    cfg = make_config()
    accounts = [a.model_copy(update={"platform": "sandbox"}) for a in cfg.accounts]
    return cfg.model_copy(update={"accounts": accounts})


async def simulate(store: str, path: Path, *, days: float, seed: int) -> Path:
    """Run ``days`` simulated days on ``store``; the rows end up in the SQLite file ``path``."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    clock = VirtualClock(start)
    built = await build(
        sandbox_config(),
        clock=clock,
        seed=seed,
        sqlite_path=path,
        world_in_memory=True,
        store=store,
    )
    try:
        await run_until(built.agent, clock, start + timedelta(days=days))
        if isinstance(built.store, MemoryStore):
            await save_sqlite(built.store, path)
    finally:
        await built.aclose()
    return path


async def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, but the idempotency keys (random UUIDs)."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            out = {}
            for table in metadata.sorted_tables:
                columns = [c for c in table.c if c.name != "idempotency_key"]
                query = sa.select(*columns).order_by(*columns)
                out[table.name] = [tuple(r) for r in await conn.execute(query)]
            return out
    finally:
        await engine.dispose()


async def test_a_simulation_leaves_the_same_rows_in_memory_as_in_sqlite(tmp_path: Path) -> None:
    on_sqlite = await simulate("sql", tmp_path / "sqlite.db", days=1.5, seed=3)
    in_memory = await simulate("memory", tmp_path / "memory.db", days=1.5, seed=3)

    expected, got = await table_rows(on_sqlite), await table_rows(in_memory)
    assert len(expected["content"]) >= 4 and expected["learning_updates"], "a run that did work"
    for table in expected:
        assert got[table] == expected[table], table


async def test_build_refuses_an_unknown_store(tmp_path: Path) -> None:
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown store 'redis'"):
        await build(
            sandbox_config(), clock=VirtualClock(T0), sqlite_path=tmp_path / "x.db", store="redis"
        )


def new_content(account_id: int, **overrides: Any) -> NewContent:
    values: dict[str, Any] = {
        "account_id": account_id,
        "status": PostStatus.PLANNED,
        "text": "a post",
        "text_hash": text_hash("a post"),
        "generation_metadata": {"content_type": "tip", "tags": ["a"]},
        "scheduled_for": T0,
        "idempotency_key": uuid.uuid4().hex,
    }
    return NewContent(**(values | overrides))


async def test_what_the_memory_store_hands_out_or_takes_in_is_not_shared() -> None:
    store = MemoryStore()
    acc = await store.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    meta: dict[str, Any] = {"content_type": "tip", "tags": ["a"]}
    post = await store.add_content(new_content(acc, generation_metadata=meta), now=T0)

    meta["tags"].append("changed by the caller")
    post.generation_metadata["content_type"] = "changed"
    fetched = await store.get_post(post.id)
    assert fetched is not None
    assert fetched.generation_metadata == {"content_type": "tip", "tags": ["a"]}
    fetched.generation_metadata["tags"].append("again")
    [due] = await store.due_posts(T0)
    assert due.generation_metadata == {"content_type": "tip", "tags": ["a"]}


async def test_the_memory_store_refuses_what_a_database_cannot_store() -> None:
    from agent.errors import StoreError

    store = MemoryStore()
    acc = await store.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    with pytest.raises(StoreError, match=r"generation_metadata: the value cannot be stored"):
        await store.add_content(new_content(acc, generation_metadata={"x": object()}), now=T0)
    with pytest.raises(ValueError, match="naive datetime"):
        await store.due_posts(datetime(2026, 1, 1))
    assert await store.counts() == {"snapshots_taken": 0, "learning_updates": 0}


async def test_an_exported_memory_store_keeps_counting_ids_on_postgresql(pg_url: str) -> None:
    from agent.store.engine import normalise_postgres_url
    from agent.store.migrate import upgrade
    from agent.store.sql import SqlStore

    memory = MemoryStore()
    acc = await memory.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    first = await memory.add_content(new_content(acc), now=T0)
    engine = create_engine(normalise_postgres_url(pg_url))
    await upgrade(engine)
    await memory.export(engine)
    store = SqlStore(engine)
    try:
        assert await store.get_post(first.id) == first
        second = await store.add_content(new_content(acc), now=T0)
        assert second.id == first.id + 1
    finally:
        await store.close()


# -- several workers: the same semantics on every backend ---------------------------------


async def posted_with_snapshots(store: Any) -> int:
    acc = await store.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    post = await store.add_content(new_content(acc), now=T0)
    assert await store.begin_publish(post.id, now=T0)
    assert await store.finish_publish(
        post.id, platform_post_id="p1", posted_at=T0, horizons=[HOUR, 4 * HOUR], now=T0
    )
    return int(post.id)


async def test_claimed_snapshots_go_to_one_worker_until_the_claim_expires(store: Any) -> None:
    await posted_with_snapshots(store)
    lease = timedelta(minutes=5)
    now = T0 + 4 * HOUR

    mine = await store.claim_snapshots(now, worker="a", lease=lease)
    assert [d.horizon_hours for d in mine] == [1.0, 4.0]  # ordered by due time
    assert await store.claim_snapshots(now, worker="b", lease=lease) == []
    again = await store.claim_snapshots(now + timedelta(minutes=1), worker="a", lease=lease)
    assert [d.id for d in again] == [d.id for d in mine]  # a worker re-claims its own
    assert [d.id for d in await store.claim_snapshots(now, worker="a", lease=lease, limit=1)] == [
        mine[0].id
    ]

    await store.record_snapshot(
        mine[0].id, None, taken_at=now, hours_since_post=4.0, followers_at=None, error="gone"
    )
    later = now + timedelta(minutes=7)  # a's claim (renewed at +1 min) ran out at +6 min
    taken_over = await store.claim_snapshots(later, worker="b", lease=lease)
    assert [d.id for d in taken_over] == [mine[1].id]  # the taken one is nobody's any more
    assert await store.claim_snapshots(later, worker="a", lease=lease) == []


async def test_a_lease_is_held_by_one_worker_until_released_or_expired(store: Any) -> None:
    ttl = timedelta(minutes=10)
    assert await store.acquire_lease("plan:1", worker="a", now=T0, ttl=ttl) is True
    assert await store.acquire_lease("plan:1", worker="b", now=T0 + HOUR / 12, ttl=ttl) is False
    assert await store.acquire_lease("plan:2", worker="b", now=T0, ttl=ttl) is True
    assert await store.acquire_lease("plan:1", worker="a", now=T0 + HOUR / 6, ttl=ttl) is True
    # renewed at +10 min until +20 min: still a's at +15 min
    assert await store.acquire_lease("plan:1", worker="b", now=T0 + HOUR / 4, ttl=ttl) is False
    assert await store.acquire_lease("plan:1", worker="b", now=T0 + HOUR / 2, ttl=ttl) is True

    await store.release_lease("plan:1", worker="a")  # not a's any more: left alone
    assert await store.acquire_lease("plan:1", worker="a", now=T0 + HOUR / 2, ttl=ttl) is False
    await store.release_lease("plan:1", worker="b")
    assert await store.acquire_lease("plan:1", worker="a", now=T0 + HOUR / 2, ttl=ttl) is True
