"""The migrations build exactly the schema the code expects, on SQLite and on PostgreSQL.

Procrastinate's migration test is the model: apply every migration to an empty database and
compare the result with ``agent.store.schema.metadata``, so schema drift fails CI, not production.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.errors import SchemaOutOfDate
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import (
    alembic_config,
    current_revision,
    ensure_current,
    head_revision,
    offline_sql,
    upgrade,
)
from agent.store.schema import (
    ARM_VIEWS,
    AUDIENCE_VIEWS,
    EXPERIMENT_VIEWS,
    REPORT_VIEWS,
    THREAD_VIEWS,
    metadata,
)
from tests.conftest import fresh_pg_database

TABLES = set(metadata.tables)
VIEWS = (
    set(ARM_VIEWS)
    | set(REPORT_VIEWS)
    | set(AUDIENCE_VIEWS)
    | set(EXPERIMENT_VIEWS)
    | set(THREAD_VIEWS)
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database: an SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'growthloop.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    async with fresh_pg_database() as url:
        engine = create_engine(normalise_postgres_url(url))
        try:
            yield engine
        finally:
            await engine.dispose()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def describe(difference: Any) -> tuple[str, str]:
    """(operation, object name) of one compare_metadata entry; column changes come as lists."""
    if isinstance(difference, list):
        operation, *_, table, column = difference[0][:4]
        return operation, f"{table}.{column}"
    return difference[0], difference[1].name


async def schema_diff(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_diff)


async def names(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """The tables and views the database holds."""

    def inspect(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = sa.inspect(connection)
        return set(inspector.get_table_names()), set(inspector.get_view_names())

    async with engine.connect() as conn:
        return await conn.run_sync(inspect)


async def assert_views_are_queryable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        for view, dimension in ARM_VIEWS.items():
            result = await conn.execute(sa.text(f"SELECT * FROM {view}"))
            assert result.all() == []
            columns = set(result.keys())
            expected = {"account", dimension, "rank", "posts_count", "mean", "p_best"}
            assert expected | {"interval_low", "interval_high", "model"} <= columns, view
        for view in (*REPORT_VIEWS, *AUDIENCE_VIEWS, *EXPERIMENT_VIEWS, *THREAD_VIEWS):
            assert (await conn.execute(sa.text(f"SELECT * FROM {view}"))).all() == [], view


async def downgrade(engine: AsyncEngine, target: str) -> None:
    def go(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, target)

    async with engine.begin() as conn:
        await conn.run_sync(go)


async def test_migrations_create_the_schema_the_code_expects(empty_engine: AsyncEngine) -> None:
    before, after = await upgrade(empty_engine)

    assert (before, after) == (None, head_revision())
    assert await schema_diff(empty_engine) == []
    tables, views = await names(empty_engine)
    assert tables == TABLES | {"alembic_version"}
    assert views == VIEWS
    await assert_views_are_queryable(empty_engine)


async def test_schema_comparison_detects_drift(empty_engine: AsyncEngine) -> None:
    """The comparison above is not vacuous: a missing index and an unknown table are reported."""
    await upgrade(empty_engine)
    async with empty_engine.begin() as conn:
        await conn.execute(sa.text("DROP INDEX ix_content_account_id_text_hash"))
        await conn.execute(sa.text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))

    diff = await schema_diff(empty_engine)

    assert sorted(describe(d) for d in diff) == [
        ("add_index", "ix_content_account_id_text_hash"),
        ("remove_table", "stray"),
    ]


async def test_ensure_current_refuses_an_empty_database_until_upgraded(
    empty_engine: AsyncEngine,
) -> None:
    assert await current_revision(empty_engine) is None
    with pytest.raises(SchemaOutOfDate, match="is empty") as refused:
        await ensure_current(empty_engine)
    assert "growthloop migrate" in str(refused.value)
    assert head_revision() in str(refused.value)

    await upgrade(empty_engine)

    await ensure_current(empty_engine)
    assert await current_revision(empty_engine) == head_revision()


async def test_ensure_current_refuses_a_database_at_another_revision(
    empty_engine: AsyncEngine,
) -> None:
    await upgrade(empty_engine)
    async with empty_engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))

    with pytest.raises(SchemaOutOfDate, match="is at revision 0000") as refused:
        await ensure_current(empty_engine)
    assert "growthloop migrate" in str(refused.value)


async def test_upgrade_twice_is_a_no_op(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    async with empty_engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO accounts (name, platform, created_at) "
                "VALUES ('main', 'sandbox', CURRENT_TIMESTAMP)"
            )
        )

    again = await upgrade(empty_engine)

    assert again == (head_revision(), head_revision())
    async with empty_engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM accounts")) == 1
        assert await conn.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    assert await schema_diff(empty_engine) == []


async def test_downgrade_to_base_then_upgrade_again(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)

    await downgrade(empty_engine, "base")

    assert await current_revision(empty_engine) is None
    tables, views = await names(empty_engine)
    assert tables - {"alembic_version"} == set()
    assert views == set()
    with pytest.raises(SchemaOutOfDate):
        await ensure_current(empty_engine)

    assert await upgrade(empty_engine) == (None, head_revision())
    assert await schema_diff(empty_engine) == []
    await assert_views_are_queryable(empty_engine)
    await ensure_current(empty_engine)


async def test_offline_sql_applied_with_psql_gives_the_expected_schema(
    pg_url: str, tmp_path: Path
) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("the psql client is not installed; it applies the offline SQL in this test")
    script = tmp_path / "migrate.sql"
    sql = offline_sql("postgresql://u@h/db")
    assert "CREATE TABLE content" in sql and "CREATE VIEW hook_performance" in sql
    script.write_text(sql)

    process = await asyncio.create_subprocess_exec(
        psql,
        pg_url,
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-f",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out.decode(), err.decode())

    engine = create_engine(normalise_postgres_url(pg_url))
    try:
        assert await schema_diff(engine) == []
        assert await current_revision(engine) == head_revision()
        await ensure_current(engine)
        tables, views = await names(engine)
        assert tables == TABLES | {"alembic_version"}
        assert views == VIEWS
        await assert_views_are_queryable(engine)
    finally:
        await engine.dispose()
