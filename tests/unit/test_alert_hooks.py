"""Where the cycles raise alerts (agent/alerts.py), each sent once to a local webhook: the kill
switch, the LLM budget, a post stuck `publishing`, the store unavailable, a failure streak."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.alerts import Alerts
from agent.config import DEFAULT_TOKEN_PRICES
from agent.core import Agent
from agent.cycles import CYCLES
from agent.cycles.publish import NO_PUBLISH_ENV
from agent.daemon import Daemon
from agent.errors import StoreUnavailable
from agent.generators.llm import OpenAIGenerator
from agent.models import PostStatus
from tests.conftest import T0
from tests.unit.vt_harness import Harness, make_harness
from tests.unit.webhook_server import WebhookServer

MINUTE = timedelta(minutes=1)


@pytest.fixture
async def harness(
    tmp_path: Path, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.delenv(NO_PUBLISH_ENV, raising=False)
    async with make_harness(tmp_path) as h:
        h.agent.alerts = Alerts(url=webhook.url)
        yield h
        await h.agent.alerts.aclose()


async def test_the_kill_switch_is_alerted_once_per_hour(
    harness: Harness, webhook: WebhookServer
) -> None:
    await harness.store.set_paused(True, reason="maintenance", by="test", now=T0)
    for minutes in (0, 5, 30, 61):
        harness.clock.advance_to(T0 + minutes * MINUTE)
        await harness.run_cycles("publish")
    await harness.agent.alerts.drain()
    assert webhook.kinds() == [("kill_switch", None), ("kill_switch", None)]  # at 0 and 61 min
    assert "maintenance" in webhook.bodies[0]["text"]


async def test_a_post_stuck_publishing_is_alerted(harness: Harness, webhook: WebhookServer) -> None:
    await harness.run_cycles("plan")
    (post,) = await harness.with_status(PostStatus.PLANNED)
    harness.clock.advance_to(post.scheduled_for)
    assert await harness.store.begin_publish(post.id, now=harness.clock.now())
    started = harness.clock.now()

    harness.clock.advance_to(started + 14 * MINUTE)  # a slow publish, not yet stuck
    await harness.agent.alerts.drain()
    assert webhook.bodies == []
    harness.clock.advance_to(started + 16 * MINUTE)
    await harness.run_cycles("publish")
    await harness.agent.alerts.drain()
    assert webhook.kinds() == [("stuck_publishing", "demo")]
    assert f"post {post.id}" in webhook.bodies[0]["text"]


async def test_a_failure_streak_is_alerted_before_it_suspends(
    harness: Harness, webhook: WebhookServer
) -> None:
    await harness.run_cycles("plan")
    harness.world.inject_fault("publish_error", count=3, account="demo")
    for _ in range(3):
        (post,) = await harness.with_status(PostStatus.PLANNED)
        harness.clock.advance_to(max(post.scheduled_for, harness.clock.now()))
        await harness.run_cycles("publish")
    await harness.agent.alerts.drain()
    assert webhook.kinds() == [("publish_failures", "demo"), ("account_suspended", "demo")]


async def test_the_budget_reached_is_alerted(tmp_path: Path, webhook: WebhookServer) -> None:
    generator = OpenAIGenerator(  # never called: the budget stops planning first
        api_key="test",
        model="gpt-4o-mini",
        temperature=0.7,
        base_url="http://127.0.0.1:9/v1",
        max_attempts=1,
        timeout=1.0,
        prices=DEFAULT_TOKEN_PRICES,
        max_retries=0,
    )
    async with make_harness(
        tmp_path, generator=generator, budget={"llm_daily_usd_per_account": 0.0}
    ) as h:
        h.agent.alerts = Alerts(url=webhook.url)
        await h.run_cycles("plan")
        await h.agent.alerts.aclose()
        assert await h.posts() == []
    assert webhook.kinds() == [("budget_reached", "demo")]
    assert "LLM budget reached (account)" in webhook.bodies[0]["text"]


async def test_the_store_unavailable_is_alerted_once(
    harness: Harness, webhook: WebhookServer
) -> None:
    async def down(agent: Agent, now: datetime) -> int:
        raise StoreUnavailable("database unavailable: connection refused")

    daemon = Daemon(harness.agent)
    for _ in range(3):
        await daemon._run_cycle("publish", down)
    await daemon._run_cycle("publish", CYCLES["publish"])  # back: the outage is over
    await harness.agent.alerts.drain()
    assert webhook.kinds() == [("store_unavailable", None)]
    assert "connection refused" in webhook.bodies[0]["text"]
