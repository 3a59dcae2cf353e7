"""What the contract tests build their cases from: accounts, posts at each step of the
publish protocol, metrics, attributions, arm statistics, health rows, and a way to read the rows
a store holds (an engine on its database, or a SQLite copy of the in-memory store's rows).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.base import PostMetrics, text_hash
from agent.models import (
    ArmStat,
    Attribution,
    NewContent,
    Post,
    PostStatus,
)
from agent.store.engine import create_engine
from agent.store.memory import MemoryStore
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from tests.conftest import T0

HOUR = timedelta(hours=1)

HORIZONS = (HOUR, 4 * HOUR, 24 * HOUR)

METHOD = "time_window"


async def account(store: SqlStore, name: str = "main") -> int:
    return await store.ensure_account(name=name, platform="sandbox", handle=f"@{name}", now=T0)


async def suspend(store: SqlStore, account_id: int, **overrides: Any) -> bool:
    """Suspend the account as the circuit breaker does for refused credentials (``auth``,
    until lifted), at T0 unless ``now`` is given; ``overrides`` replace any field."""
    values: dict[str, Any] = {
        "reason": "auth",
        "error_kind": "AuthFailed",
        "detail": "X refused the OAuth 1.0a credentials (401)",
        "fingerprint": None,
        "now": T0,
    }
    return bool(await store.suspend_account(account_id=account_id, **(values | overrides)))


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


LEASE = timedelta(minutes=5)
