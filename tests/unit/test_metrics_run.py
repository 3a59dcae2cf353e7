"""/metrics over HTTP: its counters move as a simulated run posts, polls and fails, and agree with
the store and ``/healthz``; the daemon serves it beside ``/healthz``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client import CONTENT_TYPE_LATEST

from agent.cycles import CYCLES
from agent.daemon import Daemon
from agent.metrics import metrics_route
from agent.models import PostStatus
from agent.simulator import run_until
from agent.store.schema import content, performance_snapshots
from tests.conftest import T0, example_raw
from tests.unit.test_metrics import value
from tests.unit.vt_harness import Harness, make_harness

DAYS = 2  # simulated days of the run


async def get_metrics(session: ClientSession, url: str) -> str:
    async with session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        return await response.text()


async def store_counts(h: Harness, account: str) -> dict[str, int]:
    """Posts by status and snapshots taken of one account, as the store has them."""
    account_id = h.agent.account_ids[account]
    async with h.store.engine.connect() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(content.c.status, sa.func.count())
                    .where(content.c.account_id == account_id)
                    .group_by(content.c.status)
                )
            ).all()
        )
        taken = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(performance_snapshots.join(content))
            .where(content.c.account_id == account_id, performance_snapshots.c.taken_at.isnot(None))
        )
    return {**{str(k): int(v) for k, v in statuses.items()}, "snapshots_taken": int(taken or 0)}


async def test_metrics_move_as_a_simulated_run_posts_polls_and_fails(tmp_path: Path) -> None:
    raw = example_raw()["accounts"][0]
    accounts = [raw, {**raw, "name": "other", "handle": "@other"}]
    async with make_harness(tmp_path, accounts=accounts) as h:
        app = web.Application()
        app.router.add_get("/metrics", metrics_route(h.agent))
        async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
            url = str(server.make_url("/metrics"))
            before = await get_metrics(session, url)
            h.world.inject_fault("publish_error", count=3, account="other")  # one post fails
            h.world.inject_fault("rate_limit", account="demo")
            h.world.inject_fault("metrics_error", account="demo")
            await run_until(h.agent, h.clock, T0 + timedelta(days=DAYS))
            after = await get_metrics(session, url)

        totals = h.agent.stats.totals
        for name in ("posts_planned", "posts_published", "posts_failed", "snapshots_taken"):
            assert value(before, f"growthloop_{name}_total") == 0, name
            assert value(after, f"growthloop_{name}_total") == totals[name], name
        for account in ("demo", "other"):
            labels = {"account": account, "platform": "sandbox"}
            stored = await store_counts(h, account)
            published = value(after, "growthloop_posts_published_total", **labels)
            assert published == stored[PostStatus.POSTED.value] >= 4 * DAYS
            failed = value(after, "growthloop_posts_failed_total", **labels)
            assert failed == stored.get(PostStatus.FAILED.value, 0)
            taken = value(after, "growthloop_snapshots_taken_total", **labels)
            assert taken == stored["snapshots_taken"] >= 2 * published
            assert value(after, "growthloop_publish_latency_seconds_count", **labels) >= published
            last = await h.store.last_account_snapshot(h.agent.account_ids[account])
            assert last is not None
            assert value(after, "growthloop_followers", **labels) == last.followers

        assert value(after, "growthloop_posts_failed_total", account="other") == 1
        unavailable = {"operation": "publish", "kind": "PlatformUnavailable"}
        assert value(after, "growthloop_api_errors_total", account="other", **unavailable) == 3
        assert value(after, "growthloop_api_errors_total", account="demo", kind="RateLimited") == 1
        assert value(after, "growthloop_rate_limit_waits_total", account="demo") == 1
        assert (
            value(after, "growthloop_api_errors_total", operation="fetch_metrics", account="demo")
            == 1
        )
        assert value(after, "growthloop_api_errors_total") == totals["api_errors"] == 5
        assert value(after, "growthloop_api_calls_total") == totals["api_calls"]

        pending = await h.store.pending_work(h.clock.now())
        assert value(after, "growthloop_snapshots_due") == pending["polls_due"]
        assert value(after, "growthloop_posts_queued") == pending["posts_queued"]
        assert value(after, "growthloop_store_up") == 1
        for cycle in CYCLES:  # the simulator times every cycle it runs
            assert value(before, "growthloop_cycle_duration_seconds_count", cycle=cycle) == 0
            assert value(after, "growthloop_cycle_duration_seconds_count", cycle=cycle) > 0


async def healthz_after_first_plan(session: ClientSession, daemon: Daemon) -> dict[str, Any]:
    """/healthz once the daemon is listening and its first plan cycle has run (at once)."""
    while True:
        if daemon.bound_port is not None:
            async with session.get(f"http://127.0.0.1:{daemon.bound_port}/healthz") as response:
                health: dict[str, Any] = await response.json()
            if "plan" in health["last_run"]:
                return health
        await asyncio.sleep(0.05)


async def test_the_daemon_serves_metrics_beside_healthz(tmp_path: Path) -> None:
    async with make_harness(tmp_path) as h:
        daemon = Daemon(h.agent, host="127.0.0.1", port=0)
        running = asyncio.create_task(daemon.run(install_signals=False))
        try:
            async with ClientSession() as session, asyncio.timeout(30):
                health = await healthz_after_first_plan(session, daemon)
                text = await get_metrics(session, f"http://127.0.0.1:{daemon.bound_port}/metrics")
        finally:
            daemon.stop()
            assert await running == 0
        planned = health["totals"]["posts_planned"]
        assert planned >= 1
        assert value(text, "growthloop_posts_planned_total", account="demo") == planned
        assert value(text, "growthloop_cycle_duration_seconds_count", cycle="plan") >= 1
        assert value(text, "growthloop_store_up") == 1
