"""The Store contract, errors: the store raises only its own (agent/errors.py's StoreError tree),
never the database driver's or SQLAlchemy's.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from agent.errors import ConstraintViolation, StoreError
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.schema import (
    content,
    follower_attributions,
)
from agent.store.sql import SqlStore
from tests.conftest import T0, fresh_pg_database
from tests.integration.contract.factories import (
    account,
    attribution,
    count,
    planned,
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def unmigrated_store(request: pytest.FixtureRequest, sqlite_url: str) -> Any:
    if request.param == "sqlite":
        s = SqlStore(create_engine(sqlite_url))
        try:
            yield s
        finally:
            await s.close()
        return
    async with fresh_pg_database() as url:
        s = SqlStore(create_engine(normalise_postgres_url(url)))
        try:
            yield s
        finally:
            await s.close()


async def test_database_errors_are_translated_to_store_error(unmigrated_store: SqlStore) -> None:
    with pytest.raises(StoreError, match="database error"):
        await unmigrated_store.counts()
    with pytest.raises(StoreError):
        await unmigrated_store.ensure_account(name="main", platform="x", handle=None, now=T0)


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    acc = await account(store)
    naive = datetime(2026, 3, 2, 6, 0)
    with pytest.raises(ValueError, match="naive datetime") as refused:
        await planned(store, acc, scheduled_for=naive)
    assert not isinstance(refused.value, sa.exc.SQLAlchemyError)  # the same on every backend
    assert await count(store, content) == 0


async def test_integrity_error_does_not_cross_the_store_boundary(store: SqlStore) -> None:
    """Regression: SQLAlchemy's IntegrityError used to leave the SQL store on purpose, and the
    in-memory store fabricated one. Now both raise the store's own ConstraintViolation."""
    acc = await account(store)
    post = await planned(store, acc, idempotency_key="same")
    violations = []
    with pytest.raises(ConstraintViolation) as duplicate:
        await planned(store, acc, idempotency_key="same")
    violations.append(duplicate.value)
    with pytest.raises(ConstraintViolation) as missing_post:
        await store.add_attribution(attribution(post.id + 1000), now=T0)
    violations.append(missing_post.value)
    for violation in violations:
        assert isinstance(violation, StoreError)
        assert not isinstance(violation, sa.exc.SQLAlchemyError)
        assert "the database refused the write" in str(violation)
    assert await count(store, content) == 1
    assert await count(store, follower_attributions) == 0
