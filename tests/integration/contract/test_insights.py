"""The Store contract, insights: one row per key updated in place, resolved when no longer
found, acknowledged by a person; and one account's health rows. (Run on every backend: see
``__init__.py``.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.errors import ConstraintViolation
from agent.models import NewInsight
from agent.store.insight_rows import insight_key
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import account, health_row

HOUR = timedelta(hours=1)


def insight(
    account_id: int | None, kind: str = "leader", subject: str = "hook", **overrides: Any
) -> NewInsight:
    values: dict[str, Any] = {
        "key": insight_key(account_id, kind, subject),
        "account_id": account_id,
        "kind": kind,
        "subject": subject,
        "severity": "info",
        "recommendation": False,
        "statement": f"{subject} 'a' leads",
        "value": 4.2,
        "low": 3.1,
        "high": 5.6,
        "probability": 0.97,
        "unit": "followers per post",
        "evidence": {"arm": "a", "runner_up": {"arm": "b", "p_best": 0.03}},
    }
    return NewInsight(**(values | overrides))


async def test_an_insight_computed_again_updates_its_row(store: SqlStore) -> None:
    main = await account(store)
    assert await store.sync_insights(main, [insight(main)], now=T0) == 1
    again = insight(main, value=4.5, statement="hook 'a' leads more")
    assert await store.sync_insights(main, [again], now=T0 + HOUR) == 1
    (row,) = await store.insights(include_closed=True)
    assert (row.value, row.statement, row.account) == (4.5, "hook 'a' leads more", "main")
    assert (row.first_seen_at, row.updated_at) == (T0, T0 + HOUR)
    assert row.evidence == {"arm": "a", "runner_up": {"arm": "b", "p_best": 0.03}}
    assert (row.low, row.high, row.probability, row.recommendation) == (3.1, 5.6, 0.97, False)


async def test_an_insight_no_longer_found_is_resolved_and_listed_only_with_closed(
    store: SqlStore,
) -> None:
    main = await account(store)
    await store.sync_insights(main, [insight(main), insight(main, "period", "7d")], now=T0)
    await store.sync_insights(main, [insight(main, "period", "7d")], now=T0 + HOUR)
    assert [i.kind for i in await store.insights()] == ["period"]
    closed = {i.kind: i for i in await store.insights(include_closed=True)}
    assert closed["leader"].resolved_at == T0 + HOUR
    assert not closed["leader"].open and closed["period"].open
    # resolving is done once: a later sync leaves it as it was
    assert await store.sync_insights(main, [insight(main, "period", "7d")], now=T0 + 2 * HOUR) == 1


async def test_acknowledged_stays_so_until_it_comes_back_or_gets_worse(store: SqlStore) -> None:
    main = await account(store)
    await store.sync_insights(
        main, [insight(main, "followers_below", "followers", severity="warning")], now=T0
    )
    (row,) = await store.insights()
    assert await store.acknowledge_insight(row.id, now=T0 + HOUR)
    assert await store.insights() == []
    await store.sync_insights(
        main, [insight(main, "followers_below", "followers", severity="warning")], now=T0 + 2 * HOUR
    )
    assert await store.insights() == []  # the same, still acknowledged
    await store.sync_insights(
        main,
        [insight(main, "followers_below", "followers", severity="critical")],
        now=T0 + 3 * HOUR,
    )
    (worse,) = await store.insights()
    assert worse.id == row.id and worse.acknowledged_at is None and worse.severity == "critical"
    assert await store.acknowledge_insight(row.id, now=T0 + 4 * HOUR)
    await store.sync_insights(main, [], now=T0 + 5 * HOUR)
    await store.sync_insights(
        main,
        [insight(main, "followers_below", "followers", severity="critical")],
        now=T0 + 6 * HOUR,
    )
    (back,) = await store.insights()
    assert back.id == row.id and back.first_seen_at == T0 + 6 * HOUR and back.resolved_at is None


async def test_acknowledging_an_unknown_insight_says_so(store: SqlStore) -> None:
    await account(store)
    assert await store.acknowledge_insight(999, now=T0) is False


async def test_scopes_are_apart_and_listed_most_severe_first(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    await store.sync_insights(main, [insight(main)], now=T0)
    await store.sync_insights(
        other, [insight(other, "publish_failures", "publish", severity="critical")], now=T0
    )
    await store.sync_insights(None, [insight(None, "platform", "platforms")], now=T0)
    listed = await store.insights()
    assert [(i.account, i.kind) for i in listed] == [
        ("other", "publish_failures"),
        (None, "platform"),
        ("main", "leader"),
    ]
    assert [i.kind for i in await store.insights(account_id=main)] == ["leader"]
    await store.sync_insights(None, [], now=T0 + HOUR)  # resolves the account-wide one only
    assert {i.kind for i in await store.insights()} == {"publish_failures", "leader"}


async def test_an_insight_of_an_unknown_account_is_refused(store: SqlStore) -> None:
    await account(store)
    with pytest.raises(ConstraintViolation):
        await store.sync_insights(999, [insight(999)], now=T0)


async def test_health_hours_are_one_accounts_rows_in_the_range_by_hour(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    for k in (2, 0, 1, 3):
        await store.write_health(health_row(main, T0 + k * HOUR, followers_gained=float(k)))
    await store.write_health(health_row(other, T0 + HOUR))
    rows = await store.health_hours(main, T0 + HOUR, T0 + 3 * HOUR)
    assert [(r["hour_start"], r["followers_gained"]) for r in rows] == [
        (T0 + HOUR, 1.0),
        (T0 + 2 * HOUR, 2.0),
    ]
