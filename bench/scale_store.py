"""What the scale benchmark reads from the store: planned accounts, follower reads, lateness.

Plain SQLAlchemy Core on the store's own tables (:mod:`agent.store.schema`), so the same queries
read an SQLite file and a PostgreSQL database while the workers run; plus the fresh PostgreSQL
database each case gets and the shared sandbox world file's posts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# -- reading -----------------------------------------------------------------------------------


@asynccontextmanager
async def store_engine(backend: str, folder: Path) -> AsyncIterator[Any]:
    from agent.store.engine import create_engine, normalise_postgres_url

    if backend == "postgresql":
        url = normalise_postgres_url((folder / "database_url").read_text().strip())
    else:
        url = f"sqlite+aiosqlite:///{folder / 'store.db'}"
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def planned_accounts(engine: Any) -> int:
    from agent.store.schema import content

    query = sa.select(sa.func.count(sa.distinct(content.c.account_id)))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
    except sa.exc.SQLAlchemyError:
        return 0  # not migrated yet (SQLite: the worker creates the file)


async def account_reads(engine: Any, since: datetime, until: datetime) -> int:
    from agent.store.schema import account_snapshots as snaps

    query = sa.select(sa.func.count()).where(snaps.c.taken_at > since, snaps.c.taken_at <= until)
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


WAITING = ("planned", "publishing")  # due but not published yet


async def lateness(engine: Any, *, until: datetime, due_from: datetime) -> dict[str, Any]:
    """Publish and snapshot lateness (simulated s) of the work due in [due_from, until]."""
    from agent.store.schema import content
    from agent.store.schema import performance_snapshots as snaps

    async with engine.connect() as conn:
        posts = (
            await conn.execute(
                sa.select(content.c.scheduled_for, content.c.posted_at, content.c.status).where(
                    content.c.scheduled_for >= due_from,
                    content.c.scheduled_for <= until,
                    content.c.status.in_(("posted", *WAITING)),
                )
            )
        ).all()
        snapshots = (
            await conn.execute(
                sa.select(snaps.c.due_at, snaps.c.taken_at).where(snaps.c.due_at <= until)
            )
        ).all()
    post_late = [
        max(0.0, ((row.posted_at or until) - row.scheduled_for).total_seconds()) for row in posts
    ]
    snap_late = [
        max(0.0, ((row.taken_at or until) - row.due_at).total_seconds()) for row in snapshots
    ]
    posted = [row.posted_at for row in posts if row.posted_at is not None]
    return {
        "posts_due": len(posts),
        "posts_published": len(posted),
        "publish_backlog": len(posts) - len(posted),
        "publish_late_p50_s": percentile(post_late, 50),
        "publish_late_p95_s": percentile(post_late, 95),
        "publish_late_max_s": max(post_late, default=None),
        "snapshots_due": len(snapshots),
        "snapshots_taken": sum(row.taken_at is not None for row in snapshots),
        "snapshot_backlog": sum(row.taken_at is None for row in snapshots),
        "snapshot_late_p50_s": percentile(snap_late, 50),
        "snapshot_late_p95_s": percentile(snap_late, 95),
        "last_published": max(posted, default=None),
    }


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return round(ordered[int(rank) - 1], 2)


async def store_double_work(engine: Any) -> dict[str, Any]:
    """The store's side: posted rows, the idempotency keys of the posts that may be on the
    platform (``posted``, and ``publishing``: interrupted by the stop, reconciled at the next
    start), and (post, horizon) pairs with more than one snapshot row."""
    from agent.store.schema import accounts, content
    from agent.store.schema import performance_snapshots as snaps

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(accounts.c.name, content.c.idempotency_key, content.c.status)
                .join(accounts, accounts.c.id == content.c.account_id)
                .where(content.c.status.in_(("posted", "publishing")))
            )
        ).all()
        pairs = (
            await conn.execute(
                sa.select(snaps.c.content_id, snaps.c.horizon_hours, sa.func.count())
                .group_by(snaps.c.content_id, snaps.c.horizon_hours)
                .having(sa.func.count() > 1)
            )
        ).all()
    return {
        "posted_rows": sum(row.status == "posted" for row in rows),
        "publishing_rows": sum(row.status == "publishing" for row in rows),
        "snapshot_rows_doubled": len(pairs),
        "keys": {(row.name, row.idempotency_key) for row in rows},
    }


def world_posts(path: Path) -> list[tuple[str, str]] | None:
    """(account, idempotency key) of every post in the sandbox world file."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [
            (str(a), str(k)) for a, k in conn.execute("SELECT account, idempotency_key FROM posts")
        ]
    finally:
        conn.close()


async def posted_by(engine: Any, *, due: datetime, until: datetime) -> int:
    """How many of the posts due by ``due`` were published by ``until``."""
    from agent.store.schema import content

    query = sa.select(sa.func.count()).where(
        content.c.scheduled_for <= due,
        content.c.status == "posted",
        content.c.posted_at <= until,
    )
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@asynccontextmanager
async def fresh_store(backend: str, folder: Path) -> AsyncIterator[None]:
    """SQLite: the worker creates and migrates the file. PostgreSQL: a new database, migrated
    here (``growthloop migrate``), dropped afterwards."""
    if backend != "postgresql":
        yield
        return
    from agent.store import migrate
    from agent.store.engine import create_engine, normalise_postgres_url
    from bench.store import fresh_pg_database

    async with fresh_pg_database() as url:
        (folder / "database_url").write_text(url)
        engine = create_engine(normalise_postgres_url(url))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        yield
