"""The Store contract, platform spend: what each account's platform billed per calendar month
(UTC) and the posts published, for the monthly platform budget (agent/budget.py). (Run on every
backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from agent.errors import ConstraintViolation
from agent.models import MonthSpend
from agent.store.sql import SqlStore
from tests.integration.contract.factories import account

MAY = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)


async def test_nothing_spent_reads_as_zero_for_the_month(store: SqlStore) -> None:
    main = await account(store)
    assert await store.platform_spend(main, at=MAY) == MonthSpend(
        month="2026-05", spend_usd=0.0, posts=0
    )


async def test_spend_adds_up_per_account_and_calendar_month(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    await store.add_platform_spend(main, usd=0.015, posts=1, at=MAY)
    await store.add_platform_spend(main, usd=0.003, at=MAY)
    await store.add_platform_spend(main, usd=0.5, posts=2, at=JUNE)  # a new month starts at 0
    await store.add_platform_spend(other, usd=1.0, posts=1, at=MAY)

    may = await store.platform_spend(main, at=MAY)
    assert (may.month, may.posts) == ("2026-05", 1)
    assert may.spend_usd == pytest.approx(0.018)
    assert may.cost_per_post_usd == pytest.approx(0.018)
    june = await store.platform_spend(main, at=JUNE)
    assert (june.month, june.spend_usd, june.posts) == ("2026-06", pytest.approx(0.5), 2)
    assert (await store.platform_spend(other, at=MAY)).spend_usd == pytest.approx(1.0)


async def test_concurrent_additions_are_not_lost(store: SqlStore) -> None:
    main = await account(store)
    await asyncio.gather(
        *(store.add_platform_spend(main, usd=0.001, posts=1, at=MAY) for _ in range(10))
    )
    spent = await store.platform_spend(main, at=MAY)
    assert spent.posts == 10
    assert spent.spend_usd == pytest.approx(0.010)


async def test_spend_of_an_unknown_account_is_refused(store: SqlStore) -> None:
    await account(store)
    with pytest.raises(ConstraintViolation):
        await store.add_platform_spend(999, usd=0.001, at=MAY)


async def test_platform_costs_list_every_account_of_the_month_with_name_and_platform(
    store: SqlStore,
) -> None:
    beta = await account(store, "beta")
    alpha = await account(store, "alpha")
    await store.add_platform_spend(beta, usd=0.04, posts=2, at=MAY)
    await store.add_platform_spend(alpha, usd=0.02, posts=1, at=MAY)
    await store.add_platform_spend(alpha, usd=9.0, posts=9, at=JUNE)

    costs = await store.platform_costs(at=MAY)
    assert [(c.account, c.posts) for c in costs] == [("alpha", 1), ("beta", 2)]
    assert costs[1].cost_per_post_usd == pytest.approx(0.02)
    assert {c.platform for c in costs} == {"sandbox"}
    assert await store.platform_costs(at=datetime(2026, 7, 1, tzinfo=UTC)) == []
