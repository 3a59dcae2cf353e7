"""The audience read cycle's rules (agent/cycles/audience.py) on the sandbox and the memory store:
metered reads stay off unless ``audience.read.x_pay_per_use``, and then never pass the month's
``x_budget_usd`` (refused, logged, resumed next month); a source is read once per interval; the
follower list's reconciliation records the unfollows no notification tells."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.sandbox import SandboxWorld, Scenario
from agent.audience_models import AudienceEvent, AudienceKind
from agent.clock import VirtualClock
from agent.conversation_models import Follower
from agent.core import Agent
from agent.cycles.audience import audience_read_cycle, reads_allowed, reconcile_followers
from agent.generators.template import TemplateGenerator
from agent.store.memory import MemoryStore
from tests.conftest import T0, make_config

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
PRICE = 0.001  # per object, as X's pay-per-use


def priced(read: float) -> Scenario:
    base = Scenario.load("default").model_dump()
    base["platform"]["prices"]["read"] = read
    base["account"]["organic_followers_per_day"] = 40.0
    return Scenario.model_validate(base)


@asynccontextmanager
async def agent_on(scenario: Scenario, **read: Any) -> AsyncIterator[tuple[Agent, VirtualClock]]:
    config = make_config(audience={"read": {"sandbox": True, **read}})
    clock, store = VirtualClock(T0), MemoryStore()
    world = SandboxWorld(scenario, seed=3, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={a.name: world.platform(a.name, now=clock.now) for a in config.accounts},
        generator=TemplateGenerator(seed=3),
        clock=clock,
        seed=3,
    )
    await agent.setup()
    world.people(config.accounts[0].name, T0)  # the simulated account exists from T0
    try:
        yield agent, clock
    finally:
        world.close()


def main_of(agent: Agent) -> int:
    return agent.account_ids[agent.config.accounts[0].name]


async def at(agent: Agent, clock: VirtualClock, when: Any) -> list[dict[str, Any]]:
    clock.advance_to(when)
    with capture_logs() as logs:
        await audience_read_cycle(agent, when)
    return logs


async def test_metered_reads_are_off_unless_turned_on() -> None:
    async with agent_on(priced(PRICE)) as (agent, clock):
        assert not reads_allowed(agent, main_of(agent))
        await at(agent, clock, T0 + 3 * DAY)
        assert await agent.store.audience_interactions(main_of(agent)) == []
    async with agent_on(priced(0.0)) as (agent, _):
        assert reads_allowed(agent, main_of(agent))  # free reads need no switch
    async with agent_on(priced(PRICE), every=None) as (agent, _):
        assert not reads_allowed(agent, main_of(agent))


async def test_metered_reads_stop_at_the_monthly_budget() -> None:
    budget = 50 * PRICE
    async with agent_on(priced(PRICE), x_pay_per_use=True, x_budget_usd=budget) as (agent, clock):
        main = main_of(agent)
        platform = agent.platform_for(main)
        assert reads_allowed(agent, main)
        logs = await at(agent, clock, T0 + 10 * DAY)
        stored = len(await agent.store.audience_interactions(main))
        assert [e["event"] for e in logs if "budget" in e["event"]] == [
            "audience_read_budget_exhausted"
        ]
        # every object read was paid from the budget: 50 objects, the follower list not reached
        assert platform.spend_usd == pytest.approx(budget)
        assert stored == 50
        month = await agent.store.read_cursor(main, "spend:2026-03")
        assert month is not None and float(month.cursor or 0) == pytest.approx(budget)

        logs = await at(agent, clock, T0 + 10 * DAY + 2 * HOUR)  # later the same month: nothing
        assert platform.spend_usd == pytest.approx(budget)
        assert len(await agent.store.audience_interactions(main)) == stored

        await at(agent, clock, T0 + 31 * DAY)  # April: a new budget
        assert len(await agent.store.audience_interactions(main)) == stored + 50


async def test_a_source_is_read_once_per_interval() -> None:
    async with agent_on(priced(0.0), every="6h") as (agent, clock):
        main = main_of(agent)
        await at(agent, clock, T0 + DAY)
        first = len(await agent.store.audience_interactions(main))
        logs = await at(agent, clock, T0 + DAY + 5 * HOUR)  # before the interval: no read
        assert not [e for e in logs if e["event"] == "audience_read"]
        assert len(await agent.store.audience_interactions(main)) == first
        logs = await at(agent, clock, T0 + DAY + 6 * HOUR)
        assert [e["source"] for e in logs if e["event"] == "audience_read"] == ["notifications"]
        assert len(await agent.store.audience_interactions(main)) > first


async def test_reconciliation_records_unfollows_and_ignores_unknown_followers() -> None:
    async with agent_on(priced(0.0)) as (agent, _):
        main = main_of(agent)
        follows = [
            AudienceEvent(
                kind=AudienceKind.FOLLOW, user_id=u, handle=u, at=T0, source_id=f"follow:{u}"
            )
            for u in ("ann", "bob")
        ]
        await agent.store.record_audience(main, follows, now=T0)
        listed = [Follower(user_id="ann", handle="ann"), Follower(user_id="new", handle="new")]

        assert await reconcile_followers(agent, main, listed, T0 + DAY) == 1
        assert await reconcile_followers(agent, main, listed, T0 + 2 * DAY) == 0  # once

        members = {m.user_id: m for m in await agent.store.audience_members(main)}
        assert set(members) == {"ann", "bob"}
        assert members["ann"].following and not members["bob"].following
        assert members["bob"].unfollowed_at == T0 + DAY


async def test_a_follower_list_too_long_is_not_reconciled_and_waits_its_interval() -> None:
    async with agent_on(priced(0.0), followers_max_pages=2) as (agent, clock):
        main = main_of(agent)  # 1,500 initial followers: 15 pages of 100
        logs = await at(agent, clock, T0 + HOUR)
        assert [e["event"] for e in logs if e["event"].startswith("audience_followers")] == [
            "audience_followers_unfinished"
        ]
        logs = await at(agent, clock, T0 + 2 * HOUR)  # not before followers_every (1 day)
        assert not [e for e in logs if e["event"].startswith("audience_followers")]
        assert not [m for m in await agent.store.audience_members(main) if m.unfollowed_at]
