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

from agent.config import Config
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "growthloop.example.yaml"
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


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated store, on real SQLite and on real PostgreSQL."""
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
