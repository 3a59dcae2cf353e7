"""Supabase's three connection strings (and sslmode) get the engine settings they need.

The engines are inspected, not mocked: a ``do_connect`` listener records the arguments
SQLAlchemy hands to asyncpg and stops the connection attempt there, so no network is used.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from agent.errors import ConfigError
from agent.store.engine import (
    CONNECT_TIMEOUT,
    ConnectionKind,
    connection_kind,
    create_engine,
    normalise_postgres_url,
)

REF = "abcdefghijklmnopqrst"
PASSWORD = "s3cr3t-Pa55"
DIRECT = f"postgresql://postgres:{PASSWORD}@db.{REF}.supabase.co:5432/postgres"
SESSION = (
    f"postgresql://postgres.{REF}:{PASSWORD}@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
)
TRANSACTION = (
    f"postgresql://postgres.{REF}:{PASSWORD}@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
)


class Stop(Exception):
    """Raised by the listener: the connection attempt ends before any network I/O."""


async def connect_params(engine: AsyncEngine) -> dict[str, Any]:
    """What the engine passes to ``asyncpg.connect`` for a new connection."""
    seen: dict[str, Any] = {}

    @event.listens_for(engine.sync_engine, "do_connect")
    def _record(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise Stop

    with pytest.raises(Stop):
        async with engine.connect():
            pass
    await engine.dispose()
    return seen


def engine_for(url: str) -> AsyncEngine:
    return create_engine(normalise_postgres_url(url))


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (DIRECT, ConnectionKind.DIRECT),
        (SESSION, ConnectionKind.SESSION_POOLER),
        (TRANSACTION, ConnectionKind.TRANSACTION_POOLER),
        ("postgresql://u@127.0.0.1:5432/db?pgbouncer=true", ConnectionKind.TRANSACTION_POOLER),
        ("postgresql://u@127.0.0.1:5432/db?pgbouncer=false", ConnectionKind.DIRECT),
        ("postgres://u@pgbouncer.internal:6543/db", ConnectionKind.TRANSACTION_POOLER),
    ],
)
def test_connection_kind_is_read_from_host_port_and_flag(url: str, kind: ConnectionKind) -> None:
    assert connection_kind(url) is kind


@pytest.mark.parametrize("url", [DIRECT, SESSION])
async def test_direct_and_session_pooler_keep_a_pool_with_prepared_statements(
    url: str,
) -> None:
    engine = engine_for(url)
    assert not isinstance(engine.pool, NullPool)
    assert not engine.pool._pre_ping  # type: ignore[attr-defined]  # the store's retry instead
    params = await connect_params(engine)
    assert params["password"] == PASSWORD
    assert params["port"] == 5432
    assert params["timeout"] == CONNECT_TIMEOUT
    assert "statement_cache_size" not in params
    assert "prepared_statement_name_func" not in params
    assert "ssl" not in params


async def test_transaction_pooler_turns_prepared_statements_off_without_a_client_pool() -> None:
    engine = engine_for(TRANSACTION)
    assert isinstance(engine.pool, NullPool)
    params = await connect_params(engine)
    assert params["host"] == "aws-0-eu-central-1.pooler.supabase.com"
    assert params["port"] == 6543
    assert params["user"] == f"postgres.{REF}"
    assert params["statement_cache_size"] == 0
    assert params["prepared_statement_cache_size"] == 0
    names = {params["prepared_statement_name_func"]() for _ in range(50)}
    assert len(names) == 50  # unique across every client sharing a server session
    assert all(name.startswith("__growthloop_") for name in names)


@pytest.mark.parametrize(
    ("query", "ssl"),
    [
        ("sslmode=require", "require"),
        ("sslmode=verify-full", "verify-full"),
        ("sslmode=disable", "disable"),
        ("ssl=true", "require"),
    ],
)
async def test_sslmode_becomes_asyncpg_ssl(query: str, ssl: str) -> None:
    engine = engine_for(f"{TRANSACTION}?{query}")
    assert "sslmode" not in engine.url.query and "ssl" not in engine.url.query
    params = await connect_params(engine)
    assert params["ssl"] == ssl
    assert "sslmode" not in params
    assert params["statement_cache_size"] == 0  # the query string does not hide the pooler


async def test_connect_timeout_and_application_name_are_translated() -> None:
    engine = engine_for(f"{DIRECT}?connect_timeout=3&application_name=growthloop-worker")
    params = await connect_params(engine)
    assert params["timeout"] == 3.0
    assert params["server_settings"] == {"application_name": "growthloop-worker"}
    assert "connect_timeout" not in params and "application_name" not in params


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmode=sometimes", "sslmode='sometimes' is not one of"),
        ("connect_timeout=soon", "connect_timeout='soon' is not a number"),
        ("target_session_attrs=read-write", "target_session_attrs"),
    ],
)
def test_bad_url_parameters_are_a_config_error_without_the_password(
    query: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        engine_for(f"{DIRECT}?{query}")
    assert message in str(caught.value)
    assert PASSWORD not in str(caught.value)
