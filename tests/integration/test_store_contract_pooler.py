"""The Store contract once more, on PostgreSQL with the transaction-pooler settings forced on.

Supabase's transaction pooler (port 6543) needs prepared statements off. No pooler runs here, so
``?pgbouncer=true`` applies those settings to a connection to the real local server: every
contract test passes with asyncpg's statement cache off, SQLAlchemy's prepared-statement cache
off, uniquely named statements and no client-side pool.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from agent.store.engine import (
    ConnectionKind,
    connection_kind,
    create_engine,
    normalise_postgres_url,
)
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from tests.conftest import fresh_pg_database
from tests.integration import contract

# every contract test (tests/integration/contract/test_*.py) that runs on the ``store`` fixture,
# collected again in this module
for _part in pkgutil.iter_modules(contract.__path__):
    if _part.name.startswith("test_"):
        _module = importlib.import_module(f"{contract.__name__}.{_part.name}")
        globals().update(
            {
                name: test
                for name, test in vars(_module).items()
                if name.startswith("test_") and "store" in inspect.signature(test).parameters
            }
        )


@pytest.fixture(params=["postgresql"], ids=["transaction_pooler"])
async def store() -> AsyncIterator[SqlStore]:
    """A migrated PostgreSQL store whose engine uses the transaction-pooler settings."""
    async with fresh_pg_database() as url:
        pooled = normalise_postgres_url(url) + "?pgbouncer=true"
        assert connection_kind(pooled) is ConnectionKind.TRANSACTION_POOLER
        engine = create_engine(pooled)
        await upgrade(engine)
        s = SqlStore(engine)
        try:
            yield s
        finally:
            await s.close()


async def test_the_settings_reach_the_driver(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("SELECT count(*) FROM content"))
        names = (await conn.execute(sa.text("SELECT name FROM pg_prepared_statements"))).scalars()
        raw = await conn.get_raw_connection()
        asyncpg_conn = raw.driver_connection
        assert asyncpg_conn is not None
        assert asyncpg_conn._stmt_cache.get_max_size() == 0  # asyncpg's statement cache
        assert raw.dbapi_connection._prepared_statement_cache is None  # SQLAlchemy's
    named = list(names)
    assert named and all(n.startswith("__growthloop_") for n in named), named
    assert store.engine.pool.status().startswith("NullPool")
