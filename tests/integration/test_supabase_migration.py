"""Migration 0005 on real PostgreSQL: row-level security on every table, nothing for Supabase's
``anon``/``authenticated`` roles, and the rpc functions safe to expose.

The ``anon`` and ``authenticated`` roles are created in the test cluster when missing (as on
every Supabase project) and left there: they own nothing and only ever get grants inside the
test's own database, which is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import alembic_config, head_revision, upgrade
from agent.store.schema import ARM_VIEWS, metadata
from tests.conftest import T0, fresh_pg_database

TABLES = {*metadata.tables, "alembic_version"}


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


async def ensure_supabase_roles(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for role in ("anon", "authenticated"):
            await conn.execute(
                sa.text(
                    f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
                )
            )


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


async def test_anon_and_authenticated_lose_every_grant_and_public_cannot_call_functions(
    engine: AsyncEngine,
) -> None:
    await ensure_supabase_roles(engine)
    await upgrade(engine, "0004")
    async with engine.begin() as conn:  # Supabase's default privileges in the public schema
        await conn.execute(
            sa.text("GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated")
        )

    await upgrade(engine)

    async with engine.connect() as conn:
        tables = await conn.execute(
            sa.text(
                "SELECT c.relname, has_table_privilege(r, c.oid, 'SELECT') AS can_read, "
                "has_table_privilege(r, c.oid, 'INSERT') AS can_write "
                "FROM pg_class c, unnest(ARRAY['anon', 'authenticated']) r "
                "WHERE c.relkind IN ('r', 'v') AND c.relnamespace = 'public'::regnamespace"
            )
        )
        readable = [(t.relname, t.can_read, t.can_write) for t in tables]
        assert readable and not any(read or write for _, read, write in readable), readable
        functions = (
            await conn.execute(
                sa.text(
                    "SELECT p.oid::regprocedure::text AS name, p.prosecdef, p.proconfig, "
                    "has_function_privilege('anon', p.oid, 'EXECUTE') AS anon, "
                    "has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authed, "
                    "p.proacl::text AS acl "
                    "FROM pg_proc p WHERE p.proname LIKE 'growthloop\\_%' "
                    "AND p.pronamespace = 'public'::regnamespace"
                )
            )
        ).all()
        assert len(functions) >= 10
        for f in functions:
            assert not f.prosecdef, f.name  # SECURITY INVOKER
            assert f.proconfig == ["search_path=public, pg_temp"], f.name
            assert not f.anon and not f.authed, f.name
            assert not f.acl.startswith("{=") and ",=X" not in f.acl, f.acl  # not PUBLIC
        options = await conn.scalar(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = :v").bindparams(
                v=next(iter(ARM_VIEWS))
            )
        )
        assert "security_invoker=true" in (options or [])


async def test_downgrade_drops_the_functions_and_row_level_security(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, "0004")

    assert not any(enabled for enabled, _ in (await rls(engine)).values())
    async with engine.connect() as conn:
        left = await conn.scalar(
            sa.text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'growthloop\\_%'")
        )
        assert left == 0
        options = await conn.scalar(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = :v").bindparams(
                v=next(iter(ARM_VIEWS))
            )
        )
        assert not options
    assert (await upgrade(engine))[1] == head_revision()  # and back up again
    assert all(enabled for enabled, _ in (await rls(engine)).values())
