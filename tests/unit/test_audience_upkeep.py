"""The daily audience upkeep (agent/cycles/audience.py) in virtual time on a real SQLite store: the
health cycle scores the members and purges past ``audience.retention`` when it writes a day's
last hour, and not on the other hours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.audience_models import AudienceEvent, AudienceKind, Tier
from agent.cycles.health import health_cycle
from tests.conftest import T0
from tests.unit.vt_harness import Harness, make_harness

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, audience={"retention": "30d"}) as h:
        yield h


def like(user: str, at_day: float, n: int) -> AudienceEvent:
    return AudienceEvent(
        kind=AudienceKind.LIKE,
        user_id=user,
        handle=user,
        at=T0 + at_day * DAY,
        source_id=f"like:{user}:{at_day}:{n}",
    )


async def test_the_health_cycle_scores_and_purges_once_a_day(harness: Harness) -> None:
    store, agent = harness.store, harness.agent
    main = agent.account_ids[agent.config.accounts[0].name]
    # T0 is 06:00: "old" liked 12 times 40 days before, "fan" 120 times today
    events = [like("old", -40, i) for i in range(12)] + [like("fan", 0, i) for i in range(120)]
    await store.record_audience(main, events, now=T0)

    await health_cycle(agent, T0 + 3 * HOUR)  # writes 08:00 (and earlier): no upkeep
    assert {m.tier for m in await store.audience_members(main)} == {Tier.INACTIVE}

    midnight = T0 + 18 * HOUR + timedelta(minutes=5)  # 00:05: the 23:00 hour is written
    with capture_logs() as logs:
        await health_cycle(agent, midnight)
    (upkeep,) = [e for e in logs if e["event"] == "audience_upkeep"]
    assert upkeep["interactions_purged"] == 12 and upkeep["members_purged"] == 1
    (fan,) = await store.audience_members(main)
    # 120 likes 18 h 05 min old, 1 point each, halved every 90 days
    assert fan.user_id == "fan" and fan.tier == Tier.ACTIVE
    age_days = (18 + 5 / 60) / 24
    assert fan.engagement_score == pytest.approx(120 * 0.5 ** (age_days / 90), rel=1e-9)

    with capture_logs() as logs:
        await health_cycle(agent, T0 + 20 * HOUR)
    assert not [e for e in logs if e["event"] == "audience_upkeep"]


async def test_the_upkeep_stores_each_touch_models_credit_of_recent_follows(
    harness: Harness,
) -> None:
    from tests.integration.contract.factories import posted

    store, agent = harness.store, harness.agent
    main = agent.account_ids[agent.config.accounts[0].name]
    first = await posted(store, main, posted_at=T0 - 5 * HOUR)
    second = await posted(store, main, posted_at=T0 - 3 * HOUR)
    events = [
        AudienceEvent(
            kind=kind, user_id="ann", handle="ann", at=at, source_id=f"{kind}:{at}", content_id=post
        )
        for kind, at, post in (
            (AudienceKind.LIKE, T0 - 4 * HOUR, first.id),
            (AudienceKind.REPLY, T0 - 2 * HOUR, second.id),
            (AudienceKind.FOLLOW, T0, None),
        )
    ]
    await store.record_audience(main, events, now=T0)
    with capture_logs() as logs:
        await health_cycle(agent, T0 + 18 * HOUR + timedelta(minutes=5))
    (upkeep,) = [e for e in logs if e["event"] == "audience_upkeep"]
    assert upkeep["touch_credits"] == 7  # last touch 1 row, each other model 2
    by_model: dict[str, dict[int, float]] = {}
    for c in await store.audience_credits(main):
        by_model.setdefault(c.model, {})[c.content_id] = c.credit
    assert by_model["last_touch"] == {second.id: 1.0}
    assert by_model["linear"] == {first.id: 0.5, second.id: 0.5}
    assert by_model["position_based"] == {first.id: 0.5, second.id: 0.5}
    # ages 4 h and 2 h at the default one-day half-life
    w1, w2 = 0.5 ** (4 / 24), 0.5 ** (2 / 24)
    assert by_model["time_decay"] == pytest.approx(
        {first.id: w1 / (w1 + w2), second.id: w2 / (w1 + w2)}
    )
