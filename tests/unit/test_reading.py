"""Cost-aware reading (agent/reading.py): the follower count is read when attribution needs it
and a read is worth its price; the simulated platform bills like X pay-per-use when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import FREE, Prices
from adapters.sandbox import SandboxWorld, Scenario
from adapters.sandbox_model import PriceSpec
from adapters.x import PRICES
from agent.clock import VirtualClock
from agent.config import DEFAULT_ACCOUNT_POLL_EVERY, DEFAULT_PAID_ACCOUNT_POLL_EVERY
from agent.core import Agent
from agent.cycles.poll import followers_cycle, poll_cycle
from agent.generators.template import TemplateGenerator
from agent.reading import (
    first_reading_at,
    next_reading_at,
    poll_horizons,
    reading_due,
    reading_interval,
)
from agent.simulator import run_until
from agent.store.memory import MemoryStore
from tests.conftest import T0, make_config
from tests.unit.vt_harness import ALWAYS

X_PAY_PER_USE = PRICES["pay_per_use"]


def priced_scenario(prices: Prices) -> Scenario:
    base = Scenario.load("default")
    spec = PriceSpec(post=prices.post, post_with_url=prices.post_with_url, read=prices.read)
    return base.model_copy(update={"platform": base.platform.model_copy(update={"prices": spec})})


@asynccontextmanager
async def priced_agent(prices: Prices, **overrides: Any) -> AsyncIterator[tuple[Agent, Any]]:
    config = make_config(
        cadence={"active_hours": ALWAYS, "jitter": "0s", "posts_per_day": 4}, **overrides
    )
    clock = VirtualClock(T0)
    world = SandboxWorld(priced_scenario(prices), seed=3, start=T0)
    platforms = {a.name: world.platform(a.name, now=clock.now) for a in config.accounts}
    agent = Agent(
        config=config,
        store=MemoryStore(),
        platforms=platforms,
        generator=TemplateGenerator(seed=3),
        clock=clock,
        seed=3,
    )
    await agent.setup()
    try:
        yield agent, clock
    finally:
        world.close()


def test_interval_is_ten_minutes_where_reads_are_free_and_longer_where_billed() -> None:
    config = make_config()
    assert reading_interval(config, FREE) == DEFAULT_ACCOUNT_POLL_EVERY
    assert reading_interval(config, X_PAY_PER_USE) == DEFAULT_PAID_ACCOUNT_POLL_EVERY
    assert DEFAULT_PAID_ACCOUNT_POLL_EVERY >= timedelta(hours=1)  # issue 16: hourly or slower


def test_billed_reads_poll_the_last_two_horizons_unless_paid_horizons_are_set() -> None:
    config = make_config()
    assert poll_horizons(config, FREE) == config.polling.horizons
    # 4 h and 24 h of 1 h / 4 h / 24 h: the last only left the learner without provisional
    # evidence (0.09 of the oracle lost in bench.cost over 90 days)
    assert poll_horizons(config, X_PAY_PER_USE) == [timedelta(hours=4), timedelta(hours=24)]
    single = make_config(polling={"horizons": ["24h"]})
    assert poll_horizons(single, X_PAY_PER_USE) == [timedelta(hours=24)]
    chosen = make_config(polling={"paid_horizons": ["24h", "4h"]})
    assert poll_horizons(chosen, X_PAY_PER_USE) == [timedelta(hours=4), timedelta(hours=24)]
    with pytest.raises(ValidationError, match="at least one horizon"):
        make_config(polling={"paid_horizons": []})


def test_a_configured_interval_applies_to_every_platform() -> None:
    config = make_config(polling={"account_every": "30m"})
    assert reading_interval(config, FREE) == timedelta(minutes=30)
    assert reading_interval(config, X_PAY_PER_USE) == timedelta(minutes=30)


def test_a_reading_is_due_when_none_exists_or_the_last_is_too_old() -> None:
    hour = timedelta(hours=1)
    assert reading_due(None, hour, T0)
    assert not reading_due(T0, hour, T0 + timedelta(minutes=59))
    assert reading_due(T0, hour, T0 + hour)
    assert next_reading_at(None, hour, T0) == T0
    assert next_reading_at(T0, hour, T0 + timedelta(minutes=5)) == T0 + hour


async def test_sandbox_bills_posts_and_every_object_read_at_its_prices() -> None:
    world = SandboxWorld(priced_scenario(X_PAY_PER_USE), seed=1, start=T0)
    platform = world.platform("acct", now=lambda: T0 + timedelta(hours=1))
    try:
        assert platform.prices == X_PAY_PER_USE
        first = await platform.publish("a plain post", idempotency_key="k1")
        await platform.publish("a post with https://example.com", idempotency_key="k2")
        await platform.publish("a plain post", idempotency_key="k1")  # replayed: nothing billed
        posts = X_PAY_PER_USE.post + X_PAY_PER_USE.post_with_url
        assert platform.spend_usd == pytest.approx(posts)
        await platform.fetch_metrics([first.platform_post_id, "unknown"])  # one object returned
        await platform.fetch_account()
        assert platform.spend_usd == pytest.approx(posts + 2 * X_PAY_PER_USE.read)
    finally:
        world.close()


async def test_default_sandbox_bills_nothing() -> None:
    world = SandboxWorld(Scenario.load("default"), seed=1, start=T0)
    platform = world.platform("acct", now=lambda: T0)
    try:
        await platform.publish("a plain post", idempotency_key="k1")
        await platform.fetch_account()
        assert (platform.prices, platform.spend_usd) == (FREE, 0.0)
    finally:
        world.close()


async def test_poll_batch_does_not_read_followers_again_when_a_reading_was_just_taken() -> None:
    """Regression: every poll batch read the follower count, even a minute after a reading."""
    async with priced_agent(FREE) as (agent, clock):
        await run_until(agent, clock, T0 + timedelta(hours=2))  # a post and its 1 h poll
        account_id = next(iter(agent.account_ids.values()))
        before = len(await agent.store.account_series(account_id, T0, clock.now()))
        last = agent.last_account_poll[account_id]
        assert clock.now() - last < DEFAULT_ACCOUNT_POLL_EVERY
        await poll_cycle(agent, clock.now())
        after = len(await agent.store.account_series(account_id, T0, clock.now()))
        assert after == before


async def test_paid_reads_keep_the_all_in_cost_per_post_within_1_3x_the_post_fee() -> None:
    async with priced_agent(X_PAY_PER_USE) as (agent, clock):
        days = 6
        await run_until(agent, clock, T0 + timedelta(days=days))
        account_id = next(iter(agent.account_ids.values()))
        readings = await agent.store.account_series(account_id, T0, clock.now())
        posts = (await agent.store.counts())["posted"]
        assert posts >= 4 * days - 1
        assert len(readings) <= 16 * days  # ~ every 2 h and one before each post, not 144 a day
        snapshots = await agent.store.due_snapshots(clock.now() + timedelta(days=2))
        assert {s.horizon_hours for s in snapshots} == {24.0}  # the last horizon only
        platform = agent.platform_for(account_id)
        assert platform.spend_usd / posts <= 1.3 * X_PAY_PER_USE.post


async def test_free_reads_keep_the_ten_minute_series() -> None:
    async with priced_agent(FREE) as (agent, clock):
        await run_until(agent, clock, T0 + timedelta(days=1))
        account_id = next(iter(agent.account_ids.values()))
        readings = await agent.store.account_series(account_id, T0, clock.now())
        assert len(readings) >= 140  # every 10 minutes, as before


def test_first_readings_of_new_accounts_are_spread_over_one_interval() -> None:
    """Issue 16: 10,000 new accounts all read their follower count in the first tick."""
    interval = timedelta(minutes=10)
    firsts = [first_reading_at(i, T0, interval) for i in range(1, 1001)]
    assert all(T0 <= at < T0 + interval for at in firsts)
    bins = [0] * 10
    for at in firsts:
        bins[int((at - T0) / interval * 10)] += 1
    assert min(bins) >= 90 and max(bins) <= 110  # even, not all at the start
    first = firsts[0]
    assert not reading_due(None, interval, first - timedelta(seconds=1), first=first)
    assert reading_due(None, interval, first, first=first)
    assert next_reading_at(None, interval, T0, first=first) == first
    assert next_reading_at(None, interval, first + interval, first=first) == first + interval


async def test_new_accounts_first_follower_readings_are_spread_not_all_at_start() -> None:
    """Regression: every account without a reading was read in the daemon's first follower
    cycle (10,000 reads and inserts competing with the first planning pass)."""
    names = [f"acc{i}" for i in range(40)]
    config = make_config(
        accounts=[
            {
                "name": n,
                "platform": "sandbox",
                "persona": "A developer",
                "niche": "software",
                "topics": ["testing", "shipping"],
            }
            for n in names
        ],
        cadence={"active_hours": ALWAYS, "jitter": "0s"},
    )
    clock = VirtualClock(T0)
    world = SandboxWorld(Scenario.load("default"), seed=3, start=T0)
    agent = Agent(
        config=config,
        store=MemoryStore(),
        platforms={n: world.platform(n, now=clock.now) for n in names},
        generator=TemplateGenerator(seed=3),
        clock=clock,
        seed=3,
    )
    try:
        await agent.setup()
        every = DEFAULT_ACCOUNT_POLL_EVERY
        assert await followers_cycle(agent, T0) <= 1
        half = await followers_cycle(agent, T0 + every / 2)
        assert 10 <= half <= 30  # about half of the 40, the others later
        rest = await followers_cycle(agent, T0 + every)
        assert half + rest >= 39 and len(agent.last_account_poll) == 40
    finally:
        world.close()
