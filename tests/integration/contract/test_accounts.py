"""The Store contract, accounts: one row per configured account, found again by name.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from agent.models import NewAccount
from agent.store.schema import (
    accounts,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    count,
    rows,
)


async def test_store_reports_its_backend(store: SqlStore, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["store"]
    assert store.backend == {"supabase": "postgresql"}.get(backend, backend)


async def test_ensure_account_is_idempotent(store: SqlStore) -> None:
    first = await store.ensure_account(name="main", platform="sandbox", handle="@a", now=T0)
    again = await store.ensure_account(name="main", platform="x", handle="@b", now=T0 + HOUR)
    other = await store.ensure_account(name="second", platform="sandbox", handle=None, now=T0)

    assert again == first
    assert other != first
    assert await count(store, accounts) == 2
    [row] = await rows(store, sa.select(accounts).where(accounts.c.id == first))
    assert (row.platform, row.handle) == ("x", "@b")  # the config's current values
    assert row.created_at == T0  # kept from the first call


async def test_ensure_accounts_registers_the_missing_in_order_and_keeps_the_others(
    store: SqlStore,
) -> None:
    kept = await store.ensure_account(name="b", platform="sandbox", handle="@b", now=T0)
    wanted = [
        NewAccount(name="a", platform="sandbox", handle="@a"),
        NewAccount(name="b", platform="x", handle="@b2"),
        NewAccount(name="c", platform="mastodon", handle=None),
    ]

    ids = await store.ensure_accounts(wanted, now=T0 + HOUR)

    assert list(ids) == ["a", "b", "c"]
    assert ids["b"] == kept  # an existing account keeps its id
    assert ids["a"] < ids["c"]  # the missing ones are numbered in the order given
    assert len(set(ids.values())) == 3
    stored = {r.name: r for r in await rows(store, sa.select(accounts))}
    assert (stored["b"].platform, stored["b"].handle, stored["b"].created_at) == ("x", "@b2", T0)
    assert (stored["c"].platform, stored["c"].handle, stored["c"].created_at) == (
        "mastodon",
        None,
        T0 + HOUR,
    )
    # a restart: the same ids, nothing added, one by one or all at once
    assert await store.ensure_accounts(wanted, now=T0 + 2 * HOUR) == ids
    assert (
        await store.ensure_account(name="c", platform="mastodon", handle=None, now=T0) == ids["c"]
    )
    assert await count(store, accounts) == 3
    assert await store.ensure_accounts([], now=T0) == {}


async def test_ensure_accounts_run_at_once_by_two_workers_agree(store: SqlStore) -> None:
    wanted = [NewAccount(name=f"a{i}", platform="sandbox", handle=None) for i in range(50)]

    first, second = await asyncio.gather(
        store.ensure_accounts(wanted, now=T0), store.ensure_accounts(wanted[::-1], now=T0)
    )

    assert first == second
    assert await count(store, accounts) == 50
