"""Building the database engine from the configuration.

``DATABASE_URL`` (PostgreSQL, via asyncpg) wins when set; otherwise growthloop uses an embedded
SQLite file (``store.sqlite_path``, default ``data/growthloop.db``), creating its directory.

Supabase hands out three PostgreSQL connection strings, and :func:`connection_kind` tells them
apart so each gets the settings it needs (docs/operations.md says which to pick):

- direct, ``db.<ref>.supabase.co:5432``, and the session pooler,
  ``aws-0-<region>.pooler.supabase.com:5432``: one server session per client connection, so
  growthloop keeps a small pool of connections. They are not pinged before use (a ping is three
  more round trips, ``BEGIN``, ``;``, ``ROLLBACK``, on every checkout): a pooled connection
  the server or the network has dropped fails its first statement, SQLAlchemy discards the
  pool's connections, and the store's retry (:mod:`agent.store.retry`) runs the transaction
  again on a new one;
- the transaction pooler, port 6543 (or any URL with ``?pgbouncer=true``, for a self-hosted
  PgBouncer in transaction mode): consecutive transactions of one client connection may run on
  different server sessions, so nothing may outlive a transaction. asyncpg's statement cache
  and SQLAlchemy's prepared-statement cache are off, and the statements the asyncpg dialect
  still prepares get unique names (two clients sharing a server session would otherwise both
  create ``__asyncpg_stmt_1__``). The engine uses ``NullPool``, as SQLAlchemy's asyncpg
  documentation advises behind PgBouncer: the pooler already pools, and a named statement can
  only be freed by closing the client connection, which NullPool does after every checkout.

libpq-style query parameters in the URL are translated for asyncpg: ``sslmode=require`` (what
Supabase's strings carry) becomes asyncpg's ``ssl``, ``connect_timeout`` its ``timeout``,
``application_name`` a server setting; an unknown parameter is a ConfigError naming it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from agent.errors import ConfigError
from agent.store import sqlite_driver


def database_url(*, sqlite_path: Path, env_url: str | None) -> str:
    """The SQLAlchemy URL to use: ``env_url`` (DATABASE_URL) or the SQLite file."""
    if env_url:
        return normalise_postgres_url(env_url)
    ensure_writable_file(sqlite_path)
    return f"sqlite+aiosqlite:///{sqlite_path}"


def normalise_postgres_url(url: str) -> str:
    """Accept the URL forms hosts hand out (postgres://, postgresql://) and use asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a valid database URL; expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from None
    driver = parsed.drivername
    if driver in {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if driver.startswith("sqlite"):
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if driver in {"http", "https"} or driver.startswith("supabase"):
        raise ConfigError(
            "DATABASE_URL is a web address (Supabase's project URL?), not a database's: "
            "growthloop reaches Supabase's PostgreSQL through the project's connection string "
            "(Supabase dashboard: Connect; direct or pooler), postgresql://USER:PASSWORD@HOST:"
            "PORT/postgres."
        )
    raise ConfigError(
        f"DATABASE_URL uses the unsupported scheme {driver!r}; growthloop supports PostgreSQL "
        "(postgresql://...) or, without DATABASE_URL, its embedded SQLite file."
    )


SQLITE_FIX = "Point store.sqlite_path at a writable location or set DATABASE_URL."


def ensure_writable_dir(directory: Path, *, fix: str = SQLITE_FIX) -> None:
    """Create ``directory`` if needed; a ConfigError ending with ``fix`` (which names the config
    key to change) when it cannot be created or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"The data directory {directory} cannot be created ({exc.strerror}). {fix}"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"The data directory {directory} is not writable by this user. {fix}")


def ensure_writable_file(path: Path, *, fix: str = SQLITE_FIX) -> None:
    """Check at start that the file ``path`` can be created or appended to (its directory is
    created), so an unusable path is a ConfigError now rather than a failure later."""
    ensure_writable_dir(path.parent, fix=fix)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a file. {fix}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"The file {path} is not writable by this user. {fix}")


TRANSACTION_POOLER_PORT = 6543  # Supabase's transaction pooler (Supavisor)
SUPABASE_POOLER_DOMAIN = ".pooler.supabase.com"  # session (5432) and transaction (6543) pooler
CONNECT_TIMEOUT = 10  # seconds to open a PostgreSQL connection (asyncpg's default is 60)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TRUE = {"1", "true", "yes", "on"}
# URL query parameters handled here (libpq's names) or passed on (SQLAlchemy's asyncpg dialect)
_QUERY_KEYS = {
    "sslmode",
    "ssl",
    "connect_timeout",
    "application_name",
    "pgbouncer",
    "prepared_statement_cache_size",
}


class ConnectionKind(StrEnum):
    """How growthloop reaches PostgreSQL, from the URL."""

    DIRECT = "direct"  # the server itself (db.<ref>.supabase.co, a local server...)
    SESSION_POOLER = "session_pooler"  # a pooler that keeps one server session per client
    TRANSACTION_POOLER = "transaction_pooler"  # a pooler that may switch sessions per transaction


def connection_kind(url: str | URL) -> ConnectionKind:
    """Port 6543 or ``?pgbouncer=true``: the transaction pooler; ``*.pooler.supabase.com``
    on another port: the session pooler; anything else: a direct connection."""
    parsed = make_url(url) if isinstance(url, str) else url
    flag = parsed.query.get("pgbouncer")
    if isinstance(flag, str) and flag.strip().lower() in _TRUE:
        return ConnectionKind.TRANSACTION_POOLER
    if parsed.port == TRANSACTION_POOLER_PORT:
        return ConnectionKind.TRANSACTION_POOLER
    if (parsed.host or "").lower().endswith(SUPABASE_POOLER_DOMAIN):
        return ConnectionKind.SESSION_POOLER
    return ConnectionKind.DIRECT


def _unique_statement_name() -> str:
    return f"__growthloop_{uuid.uuid4().hex}__"


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """What :func:`create_engine` passes to SQLAlchemy for a PostgreSQL URL."""

    url: URL  # the URL with the parameters asyncpg does not take removed
    kind: ConnectionKind
    connect_args: dict[str, Any] = field(default_factory=dict)
    engine_args: dict[str, Any] = field(default_factory=dict)


def postgres_settings(url: str | URL) -> PostgresSettings:
    """The engine settings for a ``postgresql+asyncpg`` URL (see the module docstring)."""
    parsed = make_url(url) if isinstance(url, str) else url
    kind = connection_kind(parsed)
    query = {k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()}
    unknown = sorted(set(query) - _QUERY_KEYS)
    if unknown:
        raise ConfigError(
            f"DATABASE_URL has the parameter(s) {', '.join(unknown)}, which growthloop does not "
            f"use; supported: {', '.join(sorted(_QUERY_KEYS))}."
        )
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
    ssl = query.get("sslmode", query.get("ssl"))
    if ssl is not None:
        mode = {"true": "require", "false": "disable"}.get(ssl.lower(), ssl.lower())
        if mode not in SSL_MODES:
            raise ConfigError(
                f"DATABASE_URL: sslmode={ssl!r} is not one of {', '.join(SSL_MODES)}."
            )
        connect_args["ssl"] = mode
    if "connect_timeout" in query:
        try:
            connect_args["timeout"] = float(query["connect_timeout"])
        except ValueError:
            raise ConfigError(
                f"DATABASE_URL: connect_timeout={query['connect_timeout']!r} is not a number of "
                "seconds."
            ) from None
    if "application_name" in query:
        connect_args["server_settings"] = {"application_name": query["application_name"]}
    engine_args: dict[str, Any] = {}
    if kind is ConnectionKind.TRANSACTION_POOLER:
        connect_args |= {
            "statement_cache_size": 0,  # asyncpg's own cache of named statements
            "prepared_statement_cache_size": 0,  # SQLAlchemy's asyncpg dialect's cache
            "prepared_statement_name_func": _unique_statement_name,
        }
        engine_args["poolclass"] = NullPool
    kept = {k: v for k, v in parsed.query.items() if k == "prepared_statement_cache_size"}
    if kind is ConnectionKind.TRANSACTION_POOLER:
        kept = {}
    return PostgresSettings(
        url=parsed.set(query=kept),
        kind=kind,
        connect_args=connect_args,
        engine_args=engine_args,
    )


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine with growthloop's settings for the URL's backend."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, module=sqlite_driver.dbapi(), connect_args={"timeout": 30}, **kwargs
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    settings = postgres_settings(url)
    options = settings.engine_args | kwargs
    connect_args = settings.connect_args | options.pop("connect_args", {})
    return create_async_engine(settings.url, connect_args=connect_args, **options)
