"""SqlStore on real PostgreSQL whose connections are terminated and whose role is shut out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa

from agent.errors import StoreUnavailable
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from agent.store.retry import RetryPolicy
from agent.store.schema import accounts
from agent.store.sql import SqlStore
from tests.conftest import PG_URL, T0, fresh_pg_database, require_postgres

QUICK = RetryPolicy(attempts=4, first_wait=0.05, max_wait=0.2, give_up_after=2.0)
PATIENT = RetryPolicy(attempts=20, first_wait=0.05, max_wait=0.3, give_up_after=20.0)


async def account_count(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(accounts)))


class Outage:
    """A LOGIN role owning a fresh database, and a superuser to cut it off and let it back."""

    def __init__(self, server: asyncpg.Connection, role: str, url: str) -> None:
        self.server, self.role, self.url = server, role, url

    async def cut(self) -> None:
        await self.server.execute(f'ALTER ROLE "{self.role}" NOLOGIN')
        await self.terminate()

    async def terminate(self) -> None:
        await self.server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", self.role
        )

    async def restore(self) -> None:
        await self.server.execute(f'ALTER ROLE "{self.role}" LOGIN')


@pytest.fixture
async def outage() -> AsyncIterator[Outage]:
    await require_postgres()
    role = f"gl_retry_{uuid.uuid4().hex[:10]}"
    server = await asyncpg.connect(PG_URL, timeout=5)
    await server.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        async with fresh_pg_database() as admin_url:
            await server.execute(
                f'ALTER DATABASE "{admin_url.rsplit("/", 1)[1]}" OWNER TO "{role}"'
            )
            scheme, rest = admin_url.split("://", 1)
            url = normalise_postgres_url(f"{scheme}://{role}@{rest.split('@', 1)[1]}")
            engine = create_engine(url)
            await upgrade(engine)
            await engine.dispose()
            yield Outage(server, role, url)
            await server.execute(f'ALTER ROLE "{role}" LOGIN')
    finally:
        await server.execute(f'DROP ROLE IF EXISTS "{role}"')
        await server.close()


async def test_a_terminated_connection_is_retried_transparently(outage: Outage) -> None:
    store = SqlStore(create_engine(outage.url), retry=QUICK)
    try:
        first = await store.ensure_account(name="a", platform="sandbox", handle=None, now=T0)
        await outage.terminate()  # the pooled connection is dead now
        assert await store.ensure_account(name="a", platform="sandbox", handle=None, now=T0) == (
            first
        )
        assert await account_count(store) == 1
    finally:
        await store.close()


async def test_an_outage_longer_than_the_retries_is_store_unavailable(outage: Outage) -> None:
    store = SqlStore(create_engine(outage.url), retry=QUICK)
    try:
        first = await store.ensure_account(name="a", platform="sandbox", handle=None, now=T0)
        await outage.cut()
        with pytest.raises(StoreUnavailable) as caught:
            await store.counts()
        assert "not permitted to log in" in str(caught.value)
        await outage.restore()
        again = await store.ensure_account(name="a", platform="sandbox", handle=None, now=T0)
        assert again == first  # and it works again at once
    finally:
        await store.close()


async def test_a_write_waits_out_a_short_outage_and_is_applied_once(outage: Outage) -> None:
    store = SqlStore(create_engine(outage.url), retry=PATIENT)
    try:
        await store.ensure_account(name="a", platform="sandbox", handle=None, now=T0)
        await outage.cut()

        async def restore_soon() -> None:
            await asyncio.sleep(1.0)
            await outage.restore()

        restoring = asyncio.create_task(restore_soon())
        await store.ensure_account(name="b", platform="sandbox", handle=None, now=T0)
        await restoring
        assert await account_count(store) == 2
    finally:
        await store.close()


async def test_an_unreachable_server_is_store_unavailable_not_a_traceback() -> None:
    store = SqlStore(
        create_engine("postgresql+asyncpg://nobody:hunter22@127.0.0.1:1/none"), retry=QUICK
    )
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.counts()
        assert "hunter22" not in str(caught.value)
    finally:
        await store.close()
