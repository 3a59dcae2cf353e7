"""Building the database engine from the configuration.

``DATABASE_URL`` (PostgreSQL, via asyncpg) wins when set; otherwise growthloop uses an embedded
SQLite file (``store.sqlite_path``, default ``data/growthloop.db``), creating its directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent.errors import ConfigError


def database_url(*, sqlite_path: Path, env_url: str | None) -> str:
    """The SQLAlchemy URL to use: ``env_url`` (DATABASE_URL) or the SQLite file."""
    if env_url:
        return normalise_postgres_url(env_url)
    ensure_writable_dir(sqlite_path.parent)
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
    raise ConfigError(
        f"DATABASE_URL uses the unsupported scheme {driver!r}; growthloop supports PostgreSQL "
        "(postgresql://...) or, without DATABASE_URL, its embedded SQLite file."
    )


def ensure_writable_dir(directory: Path) -> None:
    """Create ``directory`` if needed; a ConfigError when it cannot be created or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"The data directory {directory} cannot be created ({exc.strerror}). Point "
            "store.sqlite_path at a writable location or set DATABASE_URL."
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The data directory {directory} is not writable by this user. Point "
            "store.sqlite_path at a writable location or set DATABASE_URL."
        )


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine with growthloop's settings for the URL's backend."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)
