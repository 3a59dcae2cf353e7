"""Shared fixtures: configs, SQLite and PostgreSQL stores (one set up like a Supabase project),
a sandbox-backed agent.

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
EXAMPLE_CONFIG = REPO / "config" / "growthloop.example.yaml"  # the built-in config
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


# -- a PostgreSQL database set up like a Supabase project -------------------------------------
#
# A Supabase project is PostgreSQL with three NOLOGIN roles the project's APIs switch to (``anon``
# and ``authenticated`` for clients, ``service_role``, which bypasses RLS, for servers), default
# privileges that grant every new table in ``public`` to all three, and a ``postgres`` login role
# that is not a superuser: what its connection strings (direct and poolers) log in as, and so what
# growthloop connects and migrates as. Here ``SUPABASE_AGENT_ROLE`` stands in for that role, with
# neither SUPERUSER nor BYPASSRLS: growthloop's store must work as the tables' owner alone.
SUPABASE_ROLES = ("anon", "authenticated", "service_role")
SUPABASE_AGENT_ROLE = "growthloop_supabase_postgres"
_SUPABASE_ROLE_SQL = {
    "anon": "NOLOGIN NOINHERIT",
    "authenticated": "NOLOGIN NOINHERIT",
    "service_role": "NOLOGIN NOINHERIT BYPASSRLS",
    SUPABASE_AGENT_ROLE: "LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE",
}


def ensure_role_sql(role: str, options: str) -> str:
    """CREATE ROLE, idempotent even when another test process creates it at the same moment
    (roles are cluster-wide)."""
    return (
        f"DO $$ BEGIN CREATE ROLE {role} {options}; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


async def ensure_supabase_roles() -> None:
    """Create Supabase's roles and the agent's login role in the test cluster when missing."""
    for role, options in _SUPABASE_ROLE_SQL.items():
        await _pg_admin_execute(ensure_role_sql(role, options))


async def make_supabase_project(name: str) -> str:
    """Create database ``name`` as on Supabase (owned by the agent's role, Supabase's schema
    grants and default privileges) and return its URL for the agent's role, not yet migrated."""
    import asyncpg

    await ensure_supabase_roles()
    await _pg_admin_execute(f'CREATE DATABASE "{name}" OWNER {SUPABASE_AGENT_ROLE}')
    base = PG_URL.rsplit("/", 1)[0]
    conn = await asyncpg.connect(f"{base}/{name}", timeout=5)
    try:
        roles = ", ".join(SUPABASE_ROLES)
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {roles}")
        for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
            await conn.execute(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {SUPABASE_AGENT_ROLE} IN SCHEMA public "
                f"GRANT ALL ON {kind} TO {roles}"
            )
    finally:
        await conn.close()
    scheme, rest = base.split("://", 1)
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{SUPABASE_AGENT_ROLE}@{host}/{name}"


@asynccontextmanager
async def fresh_supabase_project() -> AsyncIterator[str]:
    """The agent-role URL of a new, unmigrated Supabase-like database, dropped afterwards."""
    await require_postgres()
    name = f"growthloop_t_{uuid.uuid4().hex[:12]}"
    try:
        yield await make_supabase_project(name)
    finally:
        await _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def superuser_url(url: str) -> str:
    """The same database's URL for the test server's superuser (GROWTHLOOP_TEST_PG_URL's)."""
    return f"{PG_URL.rsplit('/', 1)[0]}/{url.rsplit('/', 1)[1]}"


_SESSION_DB: dict[str, str] = {}  # name -> agent URL of the session's Supabase-like database


async def emptied_supabase_database() -> str:
    """The agent-role URL of a Supabase-like database migrated to head (as the agent's role),
    made once per test session and emptied for each test (every table but ``alembic_version``
    truncated, ids restarting at 1): creating and migrating a database per test costs seconds,
    emptying one milliseconds. Dropped at the end of the session."""
    import asyncpg

    await require_postgres()
    if not _SESSION_DB:
        name = f"growthloop_s_{uuid.uuid4().hex[:12]}"
        url = await make_supabase_project(name)
        _SESSION_DB[name] = url
        engine = create_engine(normalise_postgres_url(url))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
    url = next(iter(_SESSION_DB.values()))
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


@asynccontextmanager
async def supabase_store() -> AsyncIterator[SqlStore]:
    """The SQL store on a Supabase-like PostgreSQL database (see above), connected as the
    agent's non-superuser role, the way a Supabase connection string connects."""
    store = SqlStore(create_engine(normalise_postgres_url(await emptied_supabase_database())))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql", "supabase", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A migrated store: the SQL store on real SQLite, on real PostgreSQL (as a superuser) and on
    PostgreSQL set up like a Supabase project (as a non-superuser role, with Supabase's roles,
    grants and row-level security). Each has an ``engine`` to inspect rows with. And the
    in-memory store (agent/store/memory.py), which has none: its rows are read by
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


@pytest.fixture
async def webhook() -> AsyncIterator[Any]:
    """A webhook server (tests/unit/webhook_server.py) on 127.0.0.1 for one test."""
    from tests.unit.webhook_server import WebhookServer

    server = WebhookServer()
    await server.start()
    yield server
    await server.close()
