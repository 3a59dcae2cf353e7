"""The raw-driver baseline of bench/store.py.

:class:`RawStore` answers the Store calls one lifecycle makes (bench/store.py's ``lifecycle``)
with the **same statements in the same transactions** as :class:`agent.store.sql.SqlStore`,
written by hand for the bare driver: ``sqlite3`` (called directly on the event loop's thread),
``aiosqlite`` (the SQL store's SQLite driver: every call crosses to its thread) or ``asyncpg``
(the SQL store's PostgreSQL driver). It converts values as the store does (aware UTC datetimes,
JSON text on SQLite) and builds the same value objects (``Post``, ``DueSnapshot``, ``ArmStat``)
from the rows, so the difference in client CPU between the two is what the store's layers
(SQLAlchemy, the retry loop, the row mapping) cost. What both send is counted by
:mod:`bench.store_counts`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapters.base import AccountInfo
from agent.models import ArmStat, Attribution, DueSnapshot, NewContent, Post, PostStatus
from agent.store.base import SnapshotReading
from bench.store_counts import Counts, sqlite_tracer

SCHEDULED = ("planned", "publishing", "posted", "dry_run")  # agent.store.queries


# -- the bare drivers --------------------------------------------------------------------------


class Driver(Protocol):
    """The least a driver does for :class:`RawStore`: ``$1``-numbered SQL in, tuples out."""

    sqlite: bool

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]: ...
    async def execute(self, sql: str, *args: Any) -> int: ...  # the rowcount
    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...
    def transaction(self) -> Any: ...  # an async context manager
    def single(self) -> Any: ...  # the same, for one statement (PostgreSQL: autocommit)
    async def close(self) -> None: ...


_NUMBERED = re.compile(r"\$\d+")


@dataclass
class _Sql:
    """``$1``-numbered SQL as ``?`` for SQLite (each parameter is used once, in order)."""

    cache: dict[str, str]

    def __call__(self, sql: str) -> str:
        found = self.cache.get(sql)
        if found is None:
            found = self.cache[sql] = _NUMBERED.sub("?", sql)
        return found


class Sqlite3Driver:
    """``sqlite3`` on the event loop's thread (the cheapest way to SQLite from Python)."""

    sqlite = True

    def __init__(self, path: str, counts: Counts | None) -> None:
        self.conn = sqlite3.connect(path, timeout=30)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            self.conn.execute(f"PRAGMA {pragma}")
        if counts is not None:
            self.conn.set_trace_callback(sqlite_tracer(counts))
        self.sql = _Sql({})

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return self.conn.execute(self.sql(sql), args).fetchall()

    async def execute(self, sql: str, *args: Any) -> int:
        return self.conn.execute(self.sql(sql), args).rowcount

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(self.sql(sql), rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        if self.conn.in_transaction:  # sqlite3 opened one before a write
            self.conn.commit()

    def single(self) -> Any:
        return self.transaction()

    async def close(self) -> None:
        self.conn.close()


class AiosqliteDriver:
    """``aiosqlite``: each call runs on its thread, one crossing per call."""

    sqlite = True

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sql = _Sql({})

    @classmethod
    async def open(cls, path: str, counts: Counts | None) -> AiosqliteDriver:
        import aiosqlite

        conn = await aiosqlite.connect(path, timeout=30)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        if counts is not None:
            await conn.set_trace_callback(sqlite_tracer(counts))
        return cls(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return list(await self.conn.execute_fetchall(self.sql(sql), args))

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self.conn.execute(self.sql(sql), args)
        rowcount = int(cursor.rowcount)
        await cursor.close()
        return rowcount

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await (await self.conn.executemany(self.sql(sql), rows)).close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            await self.conn.rollback()
            raise
        if self.conn.in_transaction:  # sqlite3 opened one before a write
            await self.conn.commit()

    def single(self) -> Any:
        return self.transaction()

    async def close(self) -> None:
        await self.conn.close()


class AsyncpgDriver:
    """``asyncpg`` with its statement cache: a statement is prepared once per connection."""

    sqlite = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> AsyncpgDriver:
        import asyncpg

        return cls(await asyncpg.connect(url, timeout=10))

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return list(await self.conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self.conn.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self.conn.executemany(sql, rows)

    def transaction(self) -> Any:
        return self.conn.transaction()

    def single(self) -> Any:
        return nullcontext()  # autocommit: the statement is its own transaction

    async def close(self) -> None:
        await self.conn.close()


# -- the store calls of one lifecycle, by hand -------------------------------------------------


def _utc(value: Any) -> Any:
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


_POST_COLUMNS = (
    "id, account_id, status, text, text_hash, generation_metadata, scheduled_for, "
    "idempotency_key, platform_post_id, publish_started_at, publish_attempts, posted_at, "
    "learned_at, error, created_at, updated_at"
)
_ARM_COLUMNS = "account_id, dimension, arm, posts, mean, interval_low, interval_high, p_best, model"


class RawStore:
    """The Store calls of bench/store.py's ``lifecycle``, statement for statement as
    :class:`agent.store.sql.SqlStore` runs them, on a bare driver."""

    def __init__(self, driver: Driver) -> None:
        self.db = driver

    def _time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        if self.db.sqlite:  # as SQLAlchemy stores it
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def _json(self, value: Any) -> str:
        return json.dumps(value)

    def _post(self, r: Sequence[Any]) -> Post:
        meta = r[5]
        return Post(
            id=r[0],
            account_id=r[1],
            status=PostStatus(r[2]),
            text=r[3],
            text_hash=r[4],
            generation_metadata=dict(json.loads(meta) if isinstance(meta, str) else meta or {}),
            scheduled_for=_utc(r[6]),
            idempotency_key=r[7],
            platform_post_id=r[8],
            publish_started_at=_utc(r[9]),
            publish_attempts=r[10],
            posted_at=_utc(r[11]),
            learned_at=_utc(r[12]),
            error=r[13],
            created_at=_utc(r[14]),
            updated_at=_utc(r[15]),
        )

    async def close(self) -> None:
        await self.db.close()

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int:
        async with self.db.transaction():
            rows = await self.db.fetch(
                "INSERT INTO accounts (name, platform, handle, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (name) DO UPDATE SET platform = excluded.platform RETURNING id",
                name,
                platform,
                handle,
                self._time(now),
            )
        return int(rows[0][0])

    async def arm_stats(self, account_id: int) -> list[ArmStat]:
        async with self.db.single():
            rows = await self.db.fetch(
                f"SELECT {_ARM_COLUMNS} FROM arm_statistics "
                "WHERE account_id = $1 ORDER BY dimension, arm",
                account_id,
            )
        return [
            ArmStat(
                account_id=r[0],
                dimension=r[1],
                arm=r[2],
                posts=r[3],
                mean=r[4],
                interval_low=r[5],
                interval_high=r[6],
                p_best=r[7],
                model=r[8],
            )
            for r in rows
        ]

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        statuses = ", ".join(f"'{status}'" for status in SCHEDULED)
        # SQLAlchemy adds OFFSET 0 on SQLite (whose LIMIT needs one)
        offset = " OFFSET $3" if self.db.sqlite else ""
        async with self.db.single():
            rows = await self.db.fetch(
                f"SELECT text FROM content WHERE account_id = $1 AND status IN ({statuses}) "
                f"ORDER BY id DESC LIMIT $2{offset}",
                account_id,
                limit,
                *((0,) if self.db.sqlite else ()),
            )
        return [r[0] for r in rows]

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        async with self.db.single():
            rows = await self.db.fetch(
                "INSERT INTO content (account_id, status, text, text_hash, generation_metadata, "
                "scheduled_for, idempotency_key, error, created_at, updated_at) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_POST_COLUMNS}",
                new.account_id,
                new.status.value,
                new.text,
                new.text_hash,
                self._json(new.generation_metadata),
                self._time(new.scheduled_for),
                new.idempotency_key,
                new.error,
                self._time(now),
                self._time(now),
            )
        return self._post(rows[0])

    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None:
        async with self.db.single():
            await self.db.execute(
                "INSERT INTO account_snapshots (account_id, taken_at, followers, following, posts) "
                "VALUES ($1, $2, $3, $4, $5)",
                account_id,
                self._time(taken_at),
                info.followers,
                info.following,
                info.posts,
            )

    async def begin_publish(self, content_id: int, *, now: datetime) -> bool:
        async with self.db.single():
            changed = await self.db.execute(
                "UPDATE content SET status = $1, publish_started_at = $2, "
                "publish_attempts = (publish_attempts + $3), updated_at = $4 "
                "WHERE id = $5 AND status = $6",
                "publishing",
                self._time(now),
                1,
                self._time(now),
                content_id,
                "planned",
            )
        return changed == 1

    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool:
        async with self.db.transaction():
            changed = await self.db.execute(
                "UPDATE content SET status = $1, platform_post_id = $2, posted_at = $3, "
                "error = $4, updated_at = $5 WHERE id = $6 AND status = $7",
                "posted",
                platform_post_id,
                self._time(posted_at),
                None,
                self._time(now),
                content_id,
                "publishing",
            )
            if changed != 1:
                return False
            rows = [
                (content_id, h.total_seconds() / 3600, self._time(posted_at + h)) for h in horizons
            ]
            await self._insert_snapshots(rows)
        return True

    async def _insert_snapshots(self, rows: list[tuple[Any, ...]]) -> None:
        await self.db.executemany(
            "INSERT INTO performance_snapshots (content_id, horizon_hours, due_at) "
            "VALUES ($1, $2, $3)",
            rows,
        )

    async def due_snapshots(self, now: datetime, limit: int = 500) -> list[DueSnapshot]:
        async with self.db.single():
            rows = await self.db.fetch(
                "SELECT ps.id, ps.content_id, ps.horizon_hours, ps.due_at, c.account_id, "
                "c.platform_post_id, c.posted_at FROM performance_snapshots AS ps "
                "JOIN content AS c ON c.id = ps.content_id "
                "WHERE ps.taken_at IS NULL AND ps.due_at <= $1 ORDER BY ps.due_at, ps.id "
                "LIMIT $2 OFFSET $3",
                self._time(now),
                limit,
                0,
            )
        return [
            DueSnapshot(
                id=r[0],
                content_id=r[1],
                horizon_hours=r[2],
                due_at=_utc(r[3]),
                account_id=r[4],
                platform_post_id=r[5],
                posted_at=_utc(r[6]),
            )
            for r in rows
        ]

    async def record_snapshots(self, readings: Sequence[SnapshotReading]) -> None:
        rows = []
        for r in readings:
            m = r.metrics
            assert m is not None  # the bench always has them
            rate = m.engagements / m.impressions if m.impressions else None
            rows.append(
                (
                    self._time(r.taken_at),
                    r.hours_since_post,
                    r.followers_at,
                    r.error,
                    None,
                    None,
                    m.likes,
                    m.reposts,
                    m.replies,
                    m.quotes,
                    m.bookmarks,
                    m.impressions,
                    m.profile_clicks,
                    m.url_clicks,
                    rate,
                    r.snapshot_id,
                )
            )
        async with self.db.single() if len(rows) == 1 else self.db.transaction():
            await self.db.executemany(
                "UPDATE performance_snapshots SET taken_at = $1, hours_since_post = $2, "
                "followers_at = $3, error = $4, claimed_by = $5, claimed_until = $6, "
                "likes = $7, reposts = $8, replies = $9, quotes = $10, bookmarks = $11, "
                "impressions = $12, profile_clicks = $13, url_clicks = $14, "
                "engagement_rate = $15 WHERE id = $16 AND taken_at IS NULL",
                rows,
            )

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        a = attribution
        async with self.db.single():
            await self.db.execute(
                "INSERT INTO follower_attributions (content_id, attribution_method, window_hours, "
                "followers_before, followers_after, followers_gained, confidence_score, inputs, "
                "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                a.content_id,
                a.attribution_method,
                a.window_hours,
                a.followers_before,
                a.followers_after,
                a.followers_gained,
                a.confidence_score,
                self._json(a.inputs),
                self._time(now),
            )

    async def apply_learning(
        self,
        *,
        account_id: int,
        content_ids: Sequence[int],
        stats: Sequence[ArmStat],
        evidence: dict[str, Any],
        updates_applied: dict[str, Any],
        insights_summary: dict[str, Any],
        now: datetime,
    ) -> int:
        at = self._time(now)
        async with self.db.transaction():
            ids = ", ".join(f"${i + 3}" for i in range(len(content_ids)))
            claimed = await self.db.execute(
                f"UPDATE content SET learned_at = $1, updated_at = $2 WHERE id IN ({ids}) "
                "AND learned_at IS NULL",
                at,
                at,
                *content_ids,
            )
            if claimed < 1:
                return 0
            kept: list[Any] = []
            for s in stats:
                values = (s.posts, s.mean, s.interval_low, s.interval_high, s.p_best, s.model, at)
                updated = await self.db.execute(
                    "UPDATE arm_statistics SET posts = $1, mean = $2, interval_low = $3, "
                    "interval_high = $4, p_best = $5, model = $6, updated_at = $7 "
                    "WHERE account_id = $8 AND dimension = $9 AND arm = $10",
                    *values,
                    s.account_id,
                    s.dimension,
                    s.arm,
                )
                if updated == 0:
                    await self.db.execute(
                        "INSERT INTO arm_statistics (account_id, dimension, arm, posts, mean, "
                        "interval_low, interval_high, p_best, model, updated_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        s.account_id,
                        s.dimension,
                        s.arm,
                        *values,
                    )
                kept += (s.dimension, s.arm)
            pairs = ", ".join(f"(${2 * i + 2}, ${2 * i + 3})" for i in range(len(stats)))
            await self.db.execute(
                "DELETE FROM arm_statistics WHERE account_id = $1 "
                f"AND (dimension, arm) NOT IN ({pairs})",
                account_id,
                *kept,
            )
            await self.db.execute(
                "INSERT INTO learning_updates (account_id, content_id, created_at, update_type, "
                "component, evidence, updates_applied, insights_summary) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                account_id,
                content_ids[-1],
                at,
                "model_estimates",
                "all",
                self._json(evidence),
                self._json(updates_applied),
                self._json(insights_summary),
            )
        return claimed
