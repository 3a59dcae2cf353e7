"""The Store contract, accounts: one row per configured account, found again by name.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

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
