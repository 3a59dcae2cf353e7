"""The Store contract, account suspensions: the circuit breaker's state (agent/breaker.py), one
row per account, seen by every worker and the CLI. (Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from agent.errors import ConstraintViolation
from agent.models import Suspension
from agent.store.schema import account_suspensions
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import HOUR, account, count, rows, suspend

FINGERPRINT = "a" * 64


async def test_no_account_is_suspended_until_one_is(store: SqlStore) -> None:
    await account(store)
    assert await store.suspensions() == []
    assert await store.suspensions(now=T0) == []


async def test_suspend_then_list_with_the_account_name_and_platform(store: SqlStore) -> None:
    main = await account(store, "main")
    await account(store, "other")

    assert await store.suspend_account(
        account_id=main,
        reason="auth",
        error_kind="AuthFailed",
        detail="X refused the OAuth 1.0a credentials (401)",
        fingerprint=FINGERPRINT,
        now=T0,
    )

    expected = Suspension(
        account_id=main,
        account="main",
        platform="sandbox",
        reason="auth",
        error_kind="AuthFailed",
        detail="X refused the OAuth 1.0a credentials (401)",
        fingerprint=FINGERPRINT,
        suspended_at=T0,
        until=None,
    )
    assert await store.suspensions() == [expected]
    assert await store.suspensions(now=T0 + 1000 * HOUR) == [expected]  # no end: in force


async def test_a_second_suspension_keeps_the_first(store: SqlStore) -> None:
    main = await account(store)
    assert await suspend(store, main)
    assert not await suspend(
        store,
        main,
        reason="failures",
        error_kind="ContentRejected",
        detail="3 in a row",
        now=T0 + HOUR,
        until=T0 + 2 * HOUR,
    )
    (found,) = await store.suspensions()
    assert (found.reason, found.suspended_at, found.until) == ("auth", T0, None)
    assert await count(store, account_suspensions) == 1


async def test_a_cool_down_ends_and_is_then_replaced(store: SqlStore) -> None:
    main = await account(store)
    end = T0 + HOUR
    assert await suspend(
        store, main, reason="failures", error_kind="PlatformUnavailable", until=end
    )
    assert [s.account_id for s in await store.suspensions(now=end - HOUR / 2)] == [main]
    assert await store.suspensions(now=end) == []  # over at its end
    assert len(await store.suspensions()) == 1  # the row is still there to read

    assert await suspend(store, main, fingerprint=FINGERPRINT, now=end)
    (found,) = await store.suspensions(now=end)
    assert (found.reason, found.until, found.fingerprint) == ("auth", None, FINGERPRINT)


async def test_lift_ends_a_suspension_once(store: SqlStore) -> None:
    main = await account(store)
    await suspend(store, main)
    assert await store.lift_suspension(main)
    assert not await store.lift_suspension(main)
    assert await store.suspensions() == []
    assert await rows(store, sa.select(account_suspensions)) == []


async def test_concurrent_suspensions_of_one_account_report_one_winner(store: SqlStore) -> None:
    main = await account(store)
    won = await asyncio.gather(*(suspend(store, main, detail=f"worker {i}") for i in range(4)))
    assert sorted(won) == [False, False, False, True]
    assert await count(store, account_suspensions) == 1


async def test_suspending_an_unknown_account_is_refused(store: SqlStore) -> None:
    with pytest.raises(ConstraintViolation):
        await suspend(store, 999)


async def test_a_long_detail_is_cut_not_refused(store: SqlStore) -> None:
    main = await account(store)
    await suspend(store, main, detail="x" * 5000)
    (found,) = await store.suspensions()
    assert found.detail == "x" * 2000
