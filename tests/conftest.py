"""Shared fixtures: configs, SQLite and PostgreSQL stores, a sandbox-backed agent.

PostgreSQL tests use ``GROWTHLOOP_TEST_PG_URL`` (default: the local server's ``test`` database).
Each test gets its own freshly created database. Without a server they skip with a clear message;
with ``GROWTHLOOP_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) that skip becomes a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.config import Config
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from agent.store.supabase import SupabaseStore

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "agent" / "defaults" / "growthloop.example.yaml"  # the built-in config
PG_URL = os.environ.get("GROWTHLOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("GROWTHLOOP_REQUIRE_POSTGRES") == "1"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, before the default active hours


def example_raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_CONFIG.read_text())


def make_config(**overrides: Any) -> Config:
    """The example config with top-level sections replaced/merged by ``overrides``."""
    raw = example_raw()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return Config.model_validate(raw)


@pytest.fixture
def config_factory() -> Callable[..., Config]:
    return make_config


async def _pg_admin_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_available() -> str | None:
    try:
        await _pg_admin_execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: list[str | None] = []


async def require_postgres() -> None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(await _pg_available())
    problem = _PG_PROBLEM[0]
    if problem is None:
        return
    message = f"PostgreSQL is not reachable at {PG_URL} ({problem})"
    if REQUIRE_PG:
        pytest.fail(message + "; GROWTHLOOP_REQUIRE_POSTGRES=1 makes this a failure")
    pytest.skip(message + "; set GROWTHLOOP_TEST_PG_URL to run the PostgreSQL tests")


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    await require_postgres()
    name = f"growthloop_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin_execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'growthloop.db'}"


SUPABASE_TEST_KEY = "test-service-role-key"  # the key the PostgREST test double accepts
_SESSION_DB: list[str] = []  # the session's migrated database for the Supabase store, once made


async def emptied_session_database() -> str:
    """The URL of a PostgreSQL database migrated to head, made once per test session and emptied
    (every table but ``alembic_version`` truncated, ids restarting at 1) for each test: creating
    and migrating a database per test costs seconds, emptying one milliseconds. The Supabase
    store's tests never change the schema. Dropped at the end of the session."""
    await require_postgres()
    base = PG_URL.rsplit("/", 1)[0]
    if not _SESSION_DB:
        name = f"growthloop_s_{uuid.uuid4().hex[:12]}"
        await _pg_admin_execute(f'CREATE DATABASE "{name}"')
        _SESSION_DB.append(name)
        engine = create_engine(normalise_postgres_url(f"{base}/{name}"))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
    url = f"{base}/{_SESSION_DB[0]}"
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS t FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        await conn.execute(f"TRUNCATE {', '.join(r['t'] for r in tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import asyncio

    for name in _SESSION_DB:
        asyncio.run(_pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class InspectedSupabaseStore(SupabaseStore):
    """The Supabase store, plus an engine on its database for tests to count rows with."""

    engine: AsyncEngine

    async def close(self) -> None:
        await super().close()
        await self.engine.dispose()


@asynccontextmanager
async def supabase_store() -> AsyncIterator[InspectedSupabaseStore]:
    """A fresh PostgreSQL database migrated to head, the PostgREST test double in front of it
    (tests/integration/postgrest_server.py) and a SupabaseStore connected to that."""
    from tests.integration.postgrest_server import running_postgrest

    raw_url = await emptied_session_database()
    async with AsyncExitStack() as stack:
        base = await stack.enter_async_context(running_postgrest(raw_url, SUPABASE_TEST_KEY))
        s = await InspectedSupabaseStore.connect(base, SUPABASE_TEST_KEY)
        s.engine = create_engine(normalise_postgres_url(raw_url))
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture(params=["sqlite", "postgresql", "supabase", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A migrated store, on real SQLite, on real PostgreSQL and on the Supabase backend (through
    the PostgREST test double, on real PostgreSQL). Each has an ``engine`` to inspect rows with.
    And the in-memory store (agent/store/memory.py), which has none: its rows are read by
    exporting them into a SQLite file (``MemoryStore.export``)."""
    if request.param == "supabase":
        async with supabase_store() as s:
            yield s
        return
    if request.param == "memory":
        from agent.store.memory import MemoryStore

        yield MemoryStore()
        return
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'growthloop.db'}"
        else:
            url = normalise_postgres_url(await stack.enter_async_context(fresh_pg_database()))
        engine = create_engine(url)
        await upgrade(engine)
        s = SqlStore(engine)
        try:
            yield s
        finally:
            await s.close()
