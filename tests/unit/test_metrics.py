"""Each Prometheus metric family: exposed under its name, with its labels, moved by its event."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import prometheus_client
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles.plan import plan_cycle
from agent.cycles.poll import poll_cycle
from agent.cycles.publish import replay_journal
from agent.daemon import Daemon
from agent.errors import StoreUnavailable
from agent.generators.template import TemplateGenerator
from agent.journal import JournalEntry, PublishJournal
from agent.metrics import COUNTED, Metrics, metrics_route, refresh
from agent.models import PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.retry import RetryPolicy
from agent.store.sql import SqlStore
from tests.adapters.test_x import make_platform
from tests.adapters.x_server import XServer
from tests.conftest import T0, example_raw, make_config
from tests.integration.contract.factories import suspend
from tests.unit.openai_server import OpenAIServer
from tests.unit.test_llm_generator import ONE_CALL_USD, close_agent, content_rows, make_agent
from tests.unit.vt_harness import Harness, make_harness

DEMO = {"account": "demo", "platform": "sandbox"}
ACCOUNT_LABELS = {"account", "platform"}


# --- reading an exposition ----------------------------------------------------------------------


def samples(text: str) -> list[Sample]:
    """Every sample of an exposition, through prometheus_client's own parser."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_sets(text: str, name: str) -> list[set[str]]:
    """The label names of each sample called ``name``."""
    return [set(s.labels) for s in samples(text) if s.name == name]


def scrape(agent: Agent) -> str:
    return agent.metrics.exposition().decode()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path) as h:
        yield h


async def publish_one(h: Harness) -> None:
    """Plan the next post (due at once: always active, no jitter) and publish it."""
    await h.run_cycles("plan", "publish")


# --- the registry --------------------------------------------------------------------------------


async def test_each_agent_counts_in_a_registry_of_its_own_never_the_global_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    async with (
        make_harness(tmp_path / "a") as first,
        make_harness(tmp_path / "b") as second,
    ):
        await publish_one(first)
        assert value(scrape(first.agent), "growthloop_posts_published_total", **DEMO) == 1
        assert value(scrape(second.agent), "growthloop_posts_published_total", **DEMO) == 0
    global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "growthloop_" not in global_text


async def test_every_configured_account_starts_at_zero_with_its_platform(harness: Harness) -> None:
    text = scrape(harness.agent)
    for name in COUNTED:
        assert label_sets(text, f"growthloop_{name}_total") == [ACCOUNT_LABELS], name
        assert value(text, f"growthloop_{name}_total", **DEMO) == 0
    for name in ("growthloop_llm_spend_usd_total", "growthloop_platform_spend_usd_total"):
        assert label_sets(text, name) == [ACCOUNT_LABELS]
    assert label_sets(text, "growthloop_accounts_suspended") == [ACCOUNT_LABELS]
    assert value(text, "growthloop_accounts_suspended", **DEMO) == 0
    assert value(text, "growthloop_publish_latency_seconds_count", **DEMO) == 0


# --- posts ---------------------------------------------------------------------------------------


async def test_posts_planned_and_published_are_counted_with_the_publish_latency(
    harness: Harness,
) -> None:
    await harness.run_cycles("plan")
    text = scrape(harness.agent)
    assert value(text, "growthloop_posts_planned_total", **DEMO) == 1
    assert value(text, "growthloop_posts_published_total", **DEMO) == 0

    await harness.run_cycles("publish")
    text = scrape(harness.agent)
    assert value(text, "growthloop_posts_published_total", **DEMO) == 1
    assert harness.agent.stats.totals["posts_published"] == 1  # /healthz counts the same
    assert value(text, "growthloop_publish_latency_seconds_count", **DEMO) == 1
    assert value(text, "growthloop_publish_latency_seconds_sum", **DEMO) > 0
    buckets = [s for s in samples(text) if s.name == "growthloop_publish_latency_seconds_bucket"]
    assert {frozenset(s.labels) for s in buckets} == {frozenset({*ACCOUNT_LABELS, "le"})}
    assert value(text, "growthloop_publish_latency_seconds_bucket", le="+Inf", **DEMO) == 1


async def test_a_post_failed_after_publish_errors_counts_as_failed_with_errors_by_kind(
    harness: Harness,
) -> None:
    harness.world.inject_fault("publish_error", count=3, account="demo")
    await harness.run_cycles("plan", "publish")
    for _ in range(2):  # requeued after each unseen attempt, failed after the third
        harness.clock.advance_to(harness.clock.now() + timedelta(minutes=6))
        await harness.run_cycles("publish")
    assert [p.status for p in await harness.posts()] == [PostStatus.FAILED]

    text = scrape(harness.agent)
    assert value(text, "growthloop_posts_failed_total", **DEMO) == 1
    assert value(text, "growthloop_posts_published_total", **DEMO) == 0
    errors = [s for s in samples(text) if s.name == "growthloop_api_errors_total"]
    assert {frozenset(s.labels) for s in errors} == {
        frozenset({*ACCOUNT_LABELS, "operation", "kind"})
    }
    assert (
        value(text, "growthloop_api_errors_total", operation="publish", kind="PlatformUnavailable")
        == 3
    )
    assert value(text, "growthloop_api_calls_total", operation="publish", **DEMO) == 3
    assert value(text, "growthloop_publish_latency_seconds_count", **DEMO) == 3
    assert value(text, "growthloop_api_errors_total") == harness.agent.stats.totals["api_errors"]


async def test_posts_rejected_by_the_gate_are_counted(tmp_path: Path) -> None:
    # words every template draft uses: the gate refuses each draft (and its redrafts)
    async with make_harness(tmp_path, gate={"blocklist": ["the", "a", "to", "and", "you"]}) as h:
        await h.run_cycles("plan")
        rejected = len(await h.with_status(PostStatus.REJECTED))
        assert rejected >= 1
        assert value(scrape(h.agent), "growthloop_posts_rejected_total", **DEMO) == rejected


async def test_rate_limit_waits_are_counted_by_operation(harness: Harness) -> None:
    harness.world.inject_fault("rate_limit", account="demo")
    await publish_one(harness)
    text = scrape(harness.agent)
    assert label_sets(text, "growthloop_rate_limit_waits_total") == [{*ACCOUNT_LABELS, "operation"}]
    assert value(text, "growthloop_rate_limit_waits_total", operation="publish", **DEMO) == 1
    assert value(text, "growthloop_api_errors_total", kind="RateLimited", **DEMO) == 1


async def test_api_calls_are_counted_by_operation(harness: Harness) -> None:
    await publish_one(harness)
    text = scrape(harness.agent)
    calls = {
        s.labels["operation"]: s.value
        for s in samples(text)
        if s.name == "growthloop_api_calls_total"
    }
    # the circuit breaker's write-access read (the plan cycle's first), the "before" follower
    # reading, the post
    assert calls == {"check_write_access": 1, "fetch_account": 1, "publish": 1}
    assert sum(calls.values()) == harness.agent.stats.totals["api_calls"]
    assert label_sets(text, "growthloop_api_calls_total") == [{*ACCOUNT_LABELS, "operation"}] * 3


# --- snapshots -----------------------------------------------------------------------------------


async def test_snapshots_taken_on_time_and_late(harness: Harness) -> None:
    await publish_one(harness)
    posted = harness.clock.now()
    harness.clock.advance_to(posted + timedelta(hours=1))  # the 1 h horizon, on time
    await poll_cycle(harness.agent, harness.clock.now())
    text = scrape(harness.agent)
    assert value(text, "growthloop_snapshots_taken_total", **DEMO) == 1
    assert value(text, "growthloop_snapshots_late_total", **DEMO) == 0

    harness.clock.advance_to(posted + timedelta(hours=4, minutes=30))  # 30 minutes late
    await poll_cycle(harness.agent, harness.clock.now())
    text = scrape(harness.agent)
    assert value(text, "growthloop_snapshots_taken_total", **DEMO) == 2
    assert value(text, "growthloop_snapshots_late_total", **DEMO) == 1
    assert harness.agent.stats.totals["snapshots_late"] == 1


async def test_store_gauges_are_read_at_scrape_time(harness: Harness) -> None:
    await publish_one(harness)
    await harness.run_cycles("plan")  # the next post, queued
    harness.clock.advance_to(harness.clock.now() + timedelta(hours=5))  # 1 h and 4 h now due
    await refresh(harness.agent, harness.clock.now())
    text = scrape(harness.agent)
    pending = await harness.store.pending_work(harness.clock.now())
    assert pending["polls_due"] == 2
    assert value(text, "growthloop_snapshots_due") == 2
    assert value(text, "growthloop_posts_queued") == pending["posts_queued"] == 1
    assert value(text, "growthloop_posts_in_flight") == 0
    assert label_sets(text, "growthloop_snapshots_due") == [set()]


async def test_followers_gauge_is_the_latest_account_reading(harness: Harness) -> None:
    await harness.run_cycles("followers")
    harness.clock.advance_to(harness.clock.now() + timedelta(hours=6))
    await harness.run_cycles("followers")
    await refresh(harness.agent, harness.clock.now())
    text = scrape(harness.agent)
    latest = await harness.store.last_account_snapshot(harness.agent.account_ids["demo"])
    assert latest is not None and latest.taken_at == harness.clock.now()
    assert label_sets(text, "growthloop_followers") == [ACCOUNT_LABELS]
    assert value(text, "growthloop_followers", **DEMO) == latest.followers > 0


# --- spend ---------------------------------------------------------------------------------------


async def test_llm_spend_is_the_cost_stored_with_each_draft(tmp_path: Path) -> None:
    server = OpenAIServer()
    await server.start()
    agent = await make_agent(tmp_path, server)
    try:
        await plan_cycle(agent, T0)
        stored = sum(float(r.generation_metadata["cost_usd"]) for r in await content_rows(agent))
        assert stored == pytest.approx(ONE_CALL_USD)
        spent = value(scrape(agent), "growthloop_llm_spend_usd_total", **DEMO)
        assert spent == pytest.approx(stored)
    finally:
        await close_agent(agent)
        await server.close()


async def test_platform_spend_is_what_the_x_adapter_billed(tmp_path: Path) -> None:
    server = XServer()
    await server.start()
    x = make_platform(server)
    raw = example_raw()["accounts"][0]
    config = make_config(accounts=[{**raw, "name": "xa", "platform": "x", "tier": "pay_per_use"}])
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    agent = Agent(
        config=config,
        store=SqlStore(engine),
        platforms={"xa": x},
        generator=TemplateGenerator(seed=1),
        clock=VirtualClock(T0),
    )
    try:
        await agent.setup()
        account_id = agent.account_ids["xa"]
        async with agent.api_call(account_id, "publish"):
            await x.publish("a post billed as one", idempotency_key="k1")
        assert x.spend_usd > 0
        text = scrape(agent)
        labels = {"account": "xa", "platform": "x"}
        assert value(text, "growthloop_platform_spend_usd_total", **labels) == pytest.approx(
            x.spend_usd
        )
        assert value(text, "growthloop_publish_latency_seconds_count", **labels) == 1
    finally:
        await x.aclose()
        await agent.store.close()
        await server.close()


# --- suspension, cycles and the store -------------------------------------------------------------


def test_set_suspended_moves_the_gauge_per_account() -> None:
    metrics = Metrics()
    metrics.track("demo", "sandbox")
    metrics.track("other", "x")
    metrics.set_suspended("other", "x", True)
    text = metrics.exposition().decode()
    assert value(text, "growthloop_accounts_suspended", account="other", platform="x") == 1
    assert value(text, "growthloop_accounts_suspended", **DEMO) == 0
    metrics.set_suspended("other", "x", False)
    text = metrics.exposition().decode()
    assert value(text, "growthloop_accounts_suspended", account="other", platform="x") == 0


async def test_posts_recorded_from_the_journal_count_as_published_for_their_account(
    harness: Harness, tmp_path: Path
) -> None:
    """Regression: a publish the store could only record later, from the journal, reached
    /healthz's totals but not growthloop_posts_published_total."""
    agent = harness.agent
    await agent.setup()
    await harness.run_cycles("plan")
    (post,) = await harness.with_status(PostStatus.PLANNED)
    now = harness.clock.now()
    assert await agent.store.begin_publish(post.id, now=now)
    agent.journal = PublishJournal(tmp_path / "journal.jsonl")
    agent.journal.append(
        JournalEntry(
            content_id=post.id,
            account="demo",
            platform="sandbox",
            platform_post_id="demo-journaled",
            posted_at=now,
            horizons_s=tuple(h.total_seconds() for h in agent.config.polling.horizons),
            idempotency_key=post.idempotency_key,
            text_hash=post.text_hash,
            written_at=now,
        )
    )
    assert await replay_journal(agent, now) == 1
    assert value(scrape(agent), "growthloop_posts_published_total", **DEMO) == 1
    assert agent.stats.totals["posts_published"] == 1


async def test_suspended_gauge_reads_the_breakers_suspensions_from_the_store(
    harness: Harness,
) -> None:
    """A suspension written by any worker (or lifted by `growthloop resume --account`) shows on
    the next scrape: the gauge is read from the store, the breaker's one truth."""
    agent = harness.agent
    now = agent.clock.now()
    await agent.setup()
    account_id = agent.account_ids["demo"]
    assert await suspend(agent.store, account_id, now=now)
    await refresh(agent, now)
    assert value(scrape(agent), "growthloop_accounts_suspended", **DEMO) == 1
    assert await agent.store.lift_suspension(account_id)
    await refresh(agent, now)
    assert value(scrape(agent), "growthloop_accounts_suspended", **DEMO) == 0


async def ok_cycle(_agent: Agent, _now: Any) -> int:
    return 0


async def store_down_cycle(_agent: Agent, _now: Any) -> int:
    raise StoreUnavailable("the database did not answer")


async def test_daemon_times_each_cycle_and_reports_the_store_up_or_down(harness: Harness) -> None:
    daemon = Daemon(harness.agent)
    await daemon._run_cycle("health", store_down_cycle)
    text = scrape(harness.agent)
    assert value(text, "growthloop_store_up") == 0
    assert value(text, "growthloop_cycle_duration_seconds_count", cycle="health") == 1

    await daemon._run_cycle("health", ok_cycle)
    text = scrape(harness.agent)
    assert value(text, "growthloop_store_up") == 1
    assert value(text, "growthloop_cycle_duration_seconds_count", cycle="health") == 2
    assert label_sets(text, "growthloop_cycle_duration_seconds_count") == [{"cycle"}]


class SilentDatabase:
    """A TCP server that accepts connections and never answers: a database behind a dead route."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await reader.read()  # until the client gives up

    async def close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            await writer.wait_closed()
        await self.server.wait_closed()


async def test_scrape_answers_with_store_up_zero_when_the_store_does_not_answer(
    harness: Harness,
) -> None:
    database = SilentDatabase()
    port = await database.start()
    engine = create_engine(f"postgresql+asyncpg://growthloop@127.0.0.1:{port}/test")
    silent = SqlStore(engine, retry=RetryPolicy(attempts=1))
    agent = Agent(
        config=harness.agent.config,
        store=silent,
        platforms=harness.agent.platforms,
        generator=harness.agent.generator,
        clock=harness.clock,
    )
    agent.metrics.set_store_up(True)
    handler = metrics_route(agent, timeout=0.3)
    try:
        response = await handler(cast(web.Request, None))
    finally:
        await silent.close()
        await database.close()
    gc.collect()  # a connection left open would warn here, in this test
    assert database.writers, "the scrape never reached the database"
    assert response.status == 200
    assert response.headers["Content-Type"] == prometheus_client.CONTENT_TYPE_LATEST
    assert isinstance(response.body, bytes)
    text = response.body.decode()
    assert value(text, "growthloop_store_up") == 0
    assert value(text, "growthloop_posts_published_total", **DEMO) == 0  # still the full page
