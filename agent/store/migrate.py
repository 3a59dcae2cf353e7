"""Applying and checking Alembic migrations programmatically.

The daemon migrates an SQLite store automatically on start; for PostgreSQL it checks that the
schema is current and refuses to run otherwise (``growthloop migrate`` applies migrations).
"""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from agent.errors import SchemaOutOfDate

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no migration"
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(engine: AsyncEngine, target: str = "head") -> tuple[str | None, str]:
    """Apply migrations up to ``target``; returns (revision before, revision after)."""
    async with engine.begin() as conn:
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade, target)
        after = await conn.run_sync(_current)
    return before, after or ""


async def ensure_current(engine: AsyncEngine) -> None:
    """Raise SchemaOutOfDate unless the database is at the head revision."""
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        where = "is empty" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"The database {where}, but this version of growthloop needs revision {head}. "
            "Run `growthloop migrate` (back up the database first), then start again."
        )


def offline_sql(url: str) -> str:
    """The SQL that `migrate` would run, for pasting into an SQL console."""
    buffer = io.StringIO()
    cfg = AlembicConfig(output_buffer=buffer)
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()
