"""The Supabase backend beyond the shared store contract: connecting (wrong key, wrong URL,
unmigrated database), choosing it from the environment, the CLI on it, and the PostgREST test
double's own protocol (so the contract suite's results mean what they say).

The store contract itself runs on this backend through the ``store`` fixture
(tests/integration/test_store_contract.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.base import AccountInfo
from agent.bootstrap import SUPABASE_PREFIX, open_store, store_url
from agent.errors import ConfigError, SchemaOutOfDate, StoreError
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from agent.store.supabase import SupabaseStore
from tests.acceptance.conftest import cli_env, run_cli, write_config
from tests.conftest import SUPABASE_TEST_KEY, T0, fresh_pg_database, make_config
from tests.integration.postgrest_server import running_postgrest

KEY = SUPABASE_TEST_KEY
INFO = AccountInfo(handle="@a", followers=1, following=1, posts=1)


@pytest.fixture
async def migrated_api() -> AsyncIterator[tuple[str, str]]:
    """(the test double's base URL, the database URL) of a fresh database migrated to head."""
    async with fresh_pg_database() as url:
        engine = create_engine(normalise_postgres_url(url))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        async with running_postgrest(url, KEY) as base:
            yield base, url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- connecting -----------------------------------------------------------------------------


async def test_a_wrong_service_key_is_a_config_error_naming_the_variable(
    migrated_api: tuple[str, str],
) -> None:
    base, _ = migrated_api
    wrong = "sb-wrong-key-5f3a9c"
    with pytest.raises(ConfigError) as refused:
        await SupabaseStore.connect(base, wrong)
    message = str(refused.value)
    assert "SUPABASE_SERVICE_ROLE_KEY" in message and "401" in message
    assert wrong not in message
    assert "\n" not in message  # one paragraph


async def test_an_unreachable_url_is_a_config_error_naming_supabase_url() -> None:
    with pytest.raises(ConfigError, match="SUPABASE_URL") as refused:
        await SupabaseStore.connect(f"http://127.0.0.1:{free_port()}", KEY)
    assert KEY not in str(refused.value)
    with pytest.raises(ConfigError, match="SUPABASE_URL"):
        await SupabaseStore.connect("db.example.supabase.co", KEY)  # no scheme


async def test_an_unmigrated_database_is_schema_out_of_date() -> None:
    async with fresh_pg_database() as url, running_postgrest(url, KEY) as base:
        with pytest.raises(SchemaOutOfDate, match="growthloop migrate --sql"):
            await SupabaseStore.connect(base, KEY)


async def test_a_database_behind_the_code_is_schema_out_of_date() -> None:
    async with fresh_pg_database() as url:
        engine = create_engine(normalise_postgres_url(url))
        try:
            await upgrade(engine, "0004")
        finally:
            await engine.dispose()
        async with running_postgrest(url, KEY) as base:
            with pytest.raises(SchemaOutOfDate, match="revision 0004"):
                await SupabaseStore.connect(base, KEY)


async def test_database_errors_come_back_as_store_errors(migrated_api: tuple[str, str]) -> None:
    base, url = migrated_api
    store = await SupabaseStore.connect(base, KEY)
    try:
        with pytest.raises(StoreError, match="database error: 23503"):  # no such account
            await store.add_account_snapshot(424242, INFO, taken_at=T0)
        engine = create_engine(normalise_postgres_url(url))
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP FUNCTION growthloop_counts()"))
        await engine.dispose()
        with pytest.raises(StoreError, match=r"database error: (PGRST202|42883)"):
            await store.counts()
    finally:
        await store.close()


async def test_an_api_that_went_away_is_a_store_error() -> None:
    async with fresh_pg_database() as url:
        engine = create_engine(normalise_postgres_url(url))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        async with running_postgrest(url, KEY) as base:
            store = await SupabaseStore.connect(base, KEY)
        try:
            with pytest.raises(StoreError, match="cannot reach Supabase") as failed:
                await store.paused()
            assert KEY not in str(failed.value)
        finally:
            await store.close()


# -- choosing the backend -------------------------------------------------------------------


def test_database_url_wins_over_supabase_then_supabase_over_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    config = make_config(store={"sqlite_path": str(tmp_path / "g.db")})
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "secret-key-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.abc.supabase.co:5432/postgres")
    assert store_url(config).startswith("postgresql+asyncpg://")

    monkeypatch.delenv("DATABASE_URL")
    url = store_url(config)
    assert url == SUPABASE_PREFIX + "https://abc.supabase.co"
    assert "secret-key-value" not in url  # the key stays in the environment
    assert store_url(config, sqlite_path=tmp_path / "sim.db").startswith("sqlite")

    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY")
    with pytest.raises(ConfigError, match="SUPABASE_SERVICE_ROLE_KEY is not set"):
        store_url(config)
    monkeypatch.delenv("SUPABASE_URL")
    assert store_url(config).startswith("sqlite")


async def test_open_store_opens_the_supabase_backend_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_api: tuple[str, str]
) -> None:
    base, _ = migrated_api
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SUPABASE_URL", base)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", KEY)
    store = await open_store(store_url(make_config()), auto_migrate=False)
    try:
        assert isinstance(store, SupabaseStore)
        assert await store.paused() == (False, None)
    finally:
        await store.close()


# -- the CLI on Supabase --------------------------------------------------------------------


@pytest.mark.slow
async def test_cli_pause_and_health_on_supabase_and_a_wrong_key_exits_2(
    tmp_path: Path, migrated_api: tuple[str, str]
) -> None:
    base, url = migrated_api
    config = write_config(tmp_path / "c.yaml")
    env = cli_env(SUPABASE_URL=base, SUPABASE_SERVICE_ROLE_KEY=KEY)

    # the double answers in this event loop, so the CLI runs in a thread
    paused = await asyncio.to_thread(
        run_cli, "pause", "--reason", "db work", "--config", config, cwd=tmp_path, env=env
    )
    assert paused.returncode == 0, paused.stderr
    health = await asyncio.to_thread(run_cli, "health", "--config", config, cwd=tmp_path, env=env)
    assert health.returncode == 0, health.stderr
    assert "Pending work" in health.stdout
    engine = create_engine(normalise_postgres_url(url))
    async with engine.connect() as conn:
        value = await conn.scalar(sa.text("SELECT value FROM runtime_state WHERE key = 'paused'"))
    await engine.dispose()
    assert value == {"paused": True, "reason": "db work"}

    wrong = "sb-secret-wrong-9d1e"
    env["SUPABASE_SERVICE_ROLE_KEY"] = wrong
    refused = await asyncio.to_thread(run_cli, "health", "--config", config, cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "SUPABASE_SERVICE_ROLE_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert wrong not in refused.stderr + refused.stdout

    sql = await asyncio.to_thread(
        run_cli, "migrate", "--sql", "--config", config, cwd=tmp_path, env=env
    )
    assert sql.returncode == 0, sql.stderr
    assert "ENABLE ROW LEVEL SECURITY" in sql.stdout
    assert "CREATE OR REPLACE FUNCTION growthloop_finish_publish" in sql.stdout
    apply = await asyncio.to_thread(run_cli, "migrate", "--config", config, cwd=tmp_path, env=env)
    assert apply.returncode == 2
    assert "DATABASE_URL" in apply.stderr and "Traceback" not in apply.stderr


# -- the PostgREST test double --------------------------------------------------------------


def _headers(key: str = KEY) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {key}"}


async def test_the_double_checks_the_key_and_answers_postgrest_error_objects(
    migrated_api: tuple[str, str],
) -> None:
    base, _ = migrated_api
    rest = f"{base}/rest/v1"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{rest}/accounts")).status_code == 401
        only_apikey = await http.get(f"{rest}/accounts", headers={"apikey": KEY})
        assert only_apikey.status_code == 401
        assert (await http.get(f"{rest}/accounts", headers=_headers("nope"))).status_code == 401

        missing = await http.get(f"{rest}/no_such_table", headers=_headers())
        assert (missing.status_code, missing.json()["code"]) == (404, "PGRST205")
        unknown = await http.post(f"{rest}/rpc/no_such_function", json={}, headers=_headers())
        assert (unknown.status_code, unknown.json()["code"]) == (404, "PGRST202")
        bad_column = await http.get(f"{rest}/accounts?nope=eq.1", headers=_headers())
        assert (bad_column.status_code, bad_column.json()["code"]) == (400, "42703")

        row = {"name": "a", "platform": "sandbox", "created_at": T0.isoformat()}
        made = await http.post(
            f"{rest}/accounts", json=row, headers=_headers() | {"Prefer": "return=representation"}
        )
        assert made.status_code == 201 and made.json()[0]["name"] == "a"
        again = await http.post(f"{rest}/accounts", json=row, headers=_headers())
        body = again.json()
        assert again.status_code == 409
        assert set(body) == {"code", "message", "details", "hint"}
        assert body["code"] == "23505"


async def test_the_double_binds_filter_values_and_parses_quoted_lists(
    migrated_api: tuple[str, str],
) -> None:
    base, _ = migrated_api
    rest = f"{base}/rest/v1"
    names = ["plain", "with,comma", 'quo"te', "x'); DROP TABLE accounts; --"]
    async with httpx.AsyncClient() as http:
        rows = [{"name": n, "platform": "sandbox", "created_at": T0.isoformat()} for n in names]
        assert (await http.post(f"{rest}/accounts", json=rows, headers=_headers())).is_success
        quoted = ",".join('"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names)
        found = await http.get(
            f"{rest}/accounts",
            params={"select": "name", "name": f"in.({quoted})", "order": "name.desc"},
            headers=_headers() | {"Prefer": "count=exact"},
        )
        assert found.status_code == 200
        assert [r["name"] for r in found.json()] == sorted(names, reverse=True)
        assert found.headers["Content-Range"] == "0-3/4"
        injected = await http.get(
            f"{rest}/accounts", params={"name": f"eq.{names[3]}"}, headers=_headers()
        )
        assert [r["name"] for r in injected.json()] == [names[3]]
        single = await http.get(
            f"{rest}/accounts",
            params={"name": "neq.plain"},
            headers=_headers() | {"Accept": "application/vnd.pgrst.object+json"},
        )
        assert (single.status_code, single.json()["code"]) == (406, "PGRST116")
        head = await http.head(f"{rest}/accounts", params={"name": "like.*o*"}, headers=_headers())
        assert head.status_code == 200 and head.content == b""


async def test_the_service_key_never_reaches_the_logs(
    migrated_api: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = migrated_api
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG/INFO
    with capture_logs() as events:
        store = await SupabaseStore.connect(base, KEY)
        try:
            await store.set_paused(True, reason="x", by="t", now=T0)
            with pytest.raises(StoreError):
                await store.add_account_snapshot(424242, INFO, taken_at=T0)
        finally:
            await store.close()
        with pytest.raises(ConfigError):
            await SupabaseStore.connect(base, "sb-another-secret-77")
    assert caplog.records  # the HTTP clients did log
    assert KEY not in caplog.text and "sb-another-secret-77" not in caplog.text
    assert KEY not in repr(events)
