"""Supabase's roles and row-level security (migrations 0005 and 0006) on real PostgreSQL.

Row-level security on every table; nothing for Supabase's ``anon``/``authenticated`` roles even
though a Supabase project's default privileges grant them every new table; everything the store
needs for the non-superuser role growthloop connects as (Supabase's ``postgres``, through a
connection string); and the functions of the retired Supabase API store gone.

Supabase's roles are created in the test cluster when missing (tests/conftest.py) and left there:
they own nothing and only ever get grants inside a test's own database, which is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import alembic_config, head_revision, upgrade
from agent.store.schema import ARM_VIEWS, metadata
from tests.conftest import (
    SUPABASE_AGENT_ROLE,
    T0,
    fresh_pg_database,
    fresh_supabase_project,
    superuser_url,
)

TABLES = {*metadata.tables, "alembic_version"}
# tables of later migrations (0008, 0010, 0011, 0012, 0013, 0014, 0015, 0016)
AFTER_0006 = {
    "account_suspensions",
    "platform_spend",
    "insights",
    "audience_members",
    "audience_interactions",
    "experiments",
    "experiment_variants",
    "experiment_assignments",
    "audience_credits",
    "thread_parts",
    "thread_part_snapshots",
    "conversations",
    "read_cursors",
}
RETIRED = "growthloop\\_%"  # the Supabase API store's functions (0005), dropped by 0006


@pytest.fixture
async def project() -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """A Supabase-like database: (the agent role's engine, a superuser's engine), unmigrated."""
    async with fresh_supabase_project() as url:
        agent = create_engine(normalise_postgres_url(url))
        admin = create_engine(normalise_postgres_url(superuser_url(url)))
        try:
            yield agent, admin
        finally:
            await agent.dispose()
            await admin.dispose()


async def view_options(engine: AsyncEngine) -> list[str]:
    """The storage options of an arm view (``security_invoker=true`` after 0005)."""
    async with engine.connect() as conn:
        options = await conn.scalar(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = :v").bindparams(
                v=next(iter(ARM_VIEWS))
            )
        )
    return list(options or [])


async def functions(engine: AsyncEngine) -> list[sa.Row[Any]]:
    async with engine.connect() as conn:
        return list(
            await conn.execute(
                sa.text(
                    "SELECT p.oid::regprocedure::text AS name, p.prosecdef, p.proconfig, "
                    "has_function_privilege('anon', p.oid, 'EXECUTE') AS anon, "
                    "has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authed, "
                    "p.proacl::text AS acl "
                    "FROM pg_proc p WHERE p.proname LIKE :retired "
                    "AND p.pronamespace = 'public'::regnamespace"
                ).bindparams(retired=RETIRED)
            )
        )


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_pg_database() as url:
        e = create_engine(normalise_postgres_url(url))
        try:
            yield e
        finally:
            await e.dispose()


async def rls(engine: AsyncEngine) -> dict[str, tuple[bool, bool]]:
    """table -> (row security enabled, forced), for the tables of the public schema."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
        )
        return {r.relname: (r.relrowsecurity, r.relforcerowsecurity) for r in rows}


def _downgrade(connection: Connection, target: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, target)


async def test_every_table_has_row_level_security_without_force(engine: AsyncEngine) -> None:
    await upgrade(engine, "0004")
    assert not any(enabled for enabled, _ in (await rls(engine)).values())

    await upgrade(engine)

    found = await rls(engine)
    assert set(found) == TABLES
    assert all(enabled and not forced for enabled, forced in found.values()), found


async def test_a_role_without_a_policy_reads_nothing_even_with_grants(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)
    role = f"growthloop_t_reader_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO accounts (name, platform, created_at) VALUES ('main', 'x', :t)"
            ).bindparams(t=T0)
        )
        await conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"SET ROLE {role}"))
            with pytest.raises(ProgrammingError, match="permission denied"):
                await conn.execute(sa.text("SELECT * FROM accounts"))
            await conn.rollback()
        async with engine.begin() as conn:  # what Supabase's default privileges would grant
            await conn.execute(sa.text(f"GRANT SELECT, INSERT ON accounts TO {role}"))
            await conn.execute(sa.text(f"GRANT USAGE ON SEQUENCE accounts_id_seq TO {role}"))
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"SET ROLE {role}"))
            assert (await conn.execute(sa.text("SELECT * FROM accounts"))).all() == []
            with pytest.raises(ProgrammingError, match="row-level security"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO accounts (name, platform, created_at) "
                        "VALUES ('evil', 'x', now())"
                    )
                )
            await conn.rollback()
        async with engine.connect() as conn:  # the owner (growthloop's own connection) still can
            assert await conn.scalar(sa.text("SELECT count(*) FROM accounts")) == 1
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP OWNED BY {role}"))
            await conn.execute(sa.text(f"DROP ROLE {role}"))


async def test_supabase_default_grants_are_revoked_from_anon_and_authenticated(
    project: tuple[AsyncEngine, AsyncEngine],
) -> None:
    agent, admin = project
    await upgrade(agent, "0004")  # the tables exist: Supabase's default privileges granted them
    async with admin.connect() as conn:
        assert await conn.scalar(sa.text("SELECT has_table_privilege('anon', 'content', 'SELECT')"))

    await upgrade(agent)

    async with admin.connect() as conn:
        found = await conn.execute(
            sa.text(
                "SELECT c.relname, r, has_table_privilege(r, c.oid, 'SELECT') AS can_read, "
                "has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write "
                "FROM pg_class c, unnest(ARRAY['anon', 'authenticated']) r "
                "WHERE c.relkind IN ('r', 'v') AND c.relnamespace = 'public'::regnamespace"
            )
        )
        granted = [tuple(row) for row in found]
        assert len(granted) >= 2 * len(TABLES)
        assert not any(read or write for *_, read, write in granted), granted
    assert "security_invoker=true" in await view_options(admin)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_anon_and_authenticated_can_read_and_write_nothing(
    project: tuple[AsyncEngine, AsyncEngine], role: str
) -> None:
    agent, admin = project
    await upgrade(agent)
    async with agent.begin() as conn:  # a row they must not see
        await conn.execute(
            sa.text(
                "INSERT INTO accounts (name, platform, created_at) VALUES ('main', 'x', :t)"
            ).bindparams(t=T0)
        )
    async with admin.connect() as conn:
        relations = (
            await conn.execute(
                sa.text(
                    "SELECT quote_ident(relname), relkind = 'r' FROM pg_class "
                    "WHERE relkind IN ('r', 'v') AND relnamespace = 'public'::regnamespace "
                    "ORDER BY relname"
                )
            )
        ).all()
    assert len(relations) > len(TABLES)  # the tables and the views
    for relation, is_table in relations:
        writes = [f"DELETE FROM {relation}", f"TRUNCATE {relation}"] if is_table else []
        for statement in [f"SELECT * FROM {relation}", *writes]:
            async with admin.connect() as conn:
                await conn.execute(sa.text(f"SET ROLE {role}"))
                with pytest.raises(ProgrammingError, match="permission denied"):
                    await conn.execute(sa.text(statement))
                await conn.rollback()
    async with agent.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM accounts")) == 1


async def test_the_agent_role_is_no_superuser_and_owns_what_the_store_needs(
    project: tuple[AsyncEngine, AsyncEngine],
) -> None:
    """The contract suite runs as this role (the ``supabase`` store of tests/conftest.py); here,
    why it can: it owns every table, so row-level security without FORCE does not apply to it,
    and it needs neither SUPERUSER nor BYPASSRLS."""
    agent, admin = project
    await upgrade(agent)
    async with agent.connect() as conn:
        me = (
            await conn.execute(
                sa.text(
                    "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            )
        ).one()
        assert (me.name, me.rolsuper, me.rolbypassrls) == (SUPABASE_AGENT_ROLE, False, False)
        owners = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
                    )
                )
            ).all()
        )
        assert owners == dict.fromkeys(TABLES, SUPABASE_AGENT_ROLE)
    async with admin.connect() as conn:  # service_role (Supabase's servers) keeps its grants
        assert await conn.scalar(
            sa.text(
                "SELECT bool_and(has_table_privilege('service_role', c.oid, "
                "'SELECT, INSERT, UPDATE, DELETE')) FROM pg_class c "
                "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
            )
        )


async def test_0006_drops_the_retired_api_functions_and_keeps_the_lock_down(
    project: tuple[AsyncEngine, AsyncEngine],
) -> None:
    agent, _ = project
    await upgrade(agent, "0005")
    history = await functions(agent)
    assert len(history) == 16
    for f in history:  # what 0005 made of them, while they existed
        assert not f.prosecdef, f.name  # SECURITY INVOKER
        assert f.proconfig == ["search_path=public, pg_temp"], f.name
        assert not f.anon and not f.authed, f.name
        assert not f.acl.startswith("{=") and ",=X" not in f.acl, f.acl  # not PUBLIC

    await upgrade(agent, "0006")

    assert await functions(agent) == []
    found = await rls(agent)
    assert set(found) == TABLES - AFTER_0006 and all(enabled for enabled, _ in found.values())


async def test_0006_runs_on_postgresql_without_a_function_to_drop(engine: AsyncEngine) -> None:
    await upgrade(engine, "0005")
    async with engine.begin() as conn:  # e.g. dropped by hand already
        for f in await functions(engine):
            await conn.execute(sa.text(f"DROP FUNCTION {f.name}"))

    assert (await upgrade(engine, "0006"))[1] == "0006"
    assert await functions(engine) == []


async def test_downgrade_restores_the_functions_then_drops_row_level_security(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, "0005")
    assert len(await functions(engine)) == 16

    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, "0004")

    assert not any(enabled for enabled, _ in (await rls(engine)).values())
    assert await functions(engine) == []
    assert not await view_options(engine)
    assert (await upgrade(engine))[1] == head_revision()  # and back up again
    assert all(enabled for enabled, _ in (await rls(engine)).values())
    assert await functions(engine) == []
