"""Prometheus metrics, served at ``/metrics`` by the daemon (docs/metrics.md lists them all).

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the global
one), so several agents in one process - tests, benchmarks - each count their own. Every
``Agent`` has one (``agent.metrics``); the cycles move it through ``Agent.count`` (the in-memory
total shown by ``/healthz`` and the Prometheus counter, together) and ``Agent.api_call`` (every
platform call, its error kind, rate-limit waits, publish latency and platform spend).

Two kinds of figure:

- **counted where it happens**: posts planned / published / failed / rejected, snapshots taken
  and late, API calls and errors, spend, publish latency, cycle durations, suspensions;
- **read from the store at scrape time** (:func:`refresh`): snapshots due, posts queued and in
  flight, each account's latest follower count, its platform spend this month and the all-in
  platform cost per post (agent/budget.py). A store that does not answer within
  :data:`REFRESH_TIMEOUT` leaves them as they were and sets ``growthloop_store_up`` to 0; the
  scrape is still answered.

Counters start at 0 for every configured account (:meth:`Metrics.track`), so ``rate()`` works
from the first scrape and the dashboard shows a flat line rather than "no data".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from agent.errors import StoreError
from agent.logs import log

if TYPE_CHECKING:
    from agent.core import Agent

PREFIX = "growthloop"
REFRESH_TIMEOUT = 2.0  # seconds a scrape waits for the store's gauges before answering without
# seconds of one platform publish call (an X create is ~0.3 s; a slow instance several seconds)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# seconds of one cycle (plan with an LLM call or learn's refit can take tens of seconds)
CYCLE_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
ACCOUNT = ("account", "platform")
# Agent.count names that have a per-account Prometheus counter (growthloop_<name>_total)
COUNTED = {
    "posts_planned": "Posts written, checked and queued to publish.",
    "posts_published": "Posts the platform accepted (recorded posted).",
    "posts_failed": "Posts that could not be published (recorded failed).",
    "posts_rejected": "Drafts the gate or moderation refused, or that could not be written.",
    "snapshots_taken": "Performance snapshots taken.",
    "snapshots_late": (
        "Snapshots taken late (more than agent.cycles.health.LATE_AFTER, 5 min, after due)."
    ),
}

Handler = Callable[[web.Request], Awaitable[web.Response]]


class Metrics:
    """The metric families of one agent, in a registry of their own (``registry``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.counters = {
            name: Counter(f"{PREFIX}_{name}", doc, ACCOUNT, registry=r)
            for name, doc in COUNTED.items()
        }
        self.publish_latency = Histogram(
            f"{PREFIX}_publish_latency_seconds",
            "Seconds of the platform's publish call, whatever its outcome.",
            ACCOUNT,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_calls = Counter(
            f"{PREFIX}_api_calls", "Platform API calls.", (*ACCOUNT, "operation"), registry=r
        )
        self.api_errors = Counter(
            f"{PREFIX}_api_errors",
            "Platform API calls that failed, by the error's kind (agent.errors class name).",
            (*ACCOUNT, "operation", "kind"),
            registry=r,
        )
        self.rate_limit_waits = Counter(
            f"{PREFIX}_rate_limit_waits",
            "Platform calls answered with a rate limit (the account then waits for the reset).",
            (*ACCOUNT, "operation"),
            registry=r,
        )
        self.llm_spend = Counter(
            f"{PREFIX}_llm_spend_usd",
            "US dollars the content generator spent (the cost_usd stored with each draft).",
            ACCOUNT,
            registry=r,
        )
        self.platform_spend = Counter(
            f"{PREFIX}_platform_spend_usd",
            "US dollars billed by the platform (X's pay-per-use).",
            ACCOUNT,
            registry=r,
        )
        self.followers = Gauge(
            f"{PREFIX}_followers",
            "Followers at the account's latest stored reading.",
            ACCOUNT,
            registry=r,
        )
        self.month_spend = Gauge(
            f"{PREFIX}_platform_spend_month_usd",
            "US dollars the platform billed the account this calendar month (UTC), every worker.",
            ACCOUNT,
            registry=r,
        )
        self.cost_per_post = Gauge(
            f"{PREFIX}_platform_cost_per_post_usd",
            "This month's platform spend over the posts published this month (all-in: posts "
            "and every read), per account.",
            ACCOUNT,
            registry=r,
        )
        self.suspended = Gauge(
            f"{PREFIX}_accounts_suspended",
            "1 while the account's planning and publishing are suspended, else 0.",
            ACCOUNT,
            registry=r,
        )
        self.cycle_duration = Histogram(
            f"{PREFIX}_cycle_duration_seconds",
            "Seconds one run of a cycle took (plan, publish, poll, ...).",
            ("cycle",),
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.snapshots_due = Gauge(
            f"{PREFIX}_snapshots_due", "Snapshots due now and not yet taken.", registry=r
        )
        self.posts_queued = Gauge(
            f"{PREFIX}_posts_queued", "Posts planned and waiting for their time.", registry=r
        )
        self.posts_in_flight = Gauge(
            f"{PREFIX}_posts_in_flight", "Posts being published (status publishing).", registry=r
        )
        self.store_up = Gauge(
            f"{PREFIX}_store_up",
            "1 when the store answered the last cycle or scrape, 0 when it did not.",
            registry=r,
        )
        self.store_up.set(1)

    def track(self, account: str, platform: str) -> None:
        """Start every per-account series of ``account`` at 0."""
        for counter in (*self.counters.values(), self.llm_spend, self.platform_spend):
            counter.labels(account, platform)
        self.publish_latency.labels(account, platform)
        self.suspended.labels(account, platform).set(0)

    def count(self, name: str, *, account: str, platform: str, n: float = 1) -> None:
        """Add ``n`` to the counter ``name`` (one of :data:`COUNTED`)."""
        if n:
            self.counters[name].labels(account, platform).inc(n)

    def api_call(
        self,
        *,
        account: str,
        platform: str,
        operation: str,
        seconds: float,
        spent_usd: float,
        error: BaseException | None,
        rate_limited: bool,
    ) -> None:
        """One platform call: counted, timed when it is a publish, its error kind and spend."""
        self.api_calls.labels(account, platform, operation).inc()
        if operation == "publish":
            self.publish_latency.labels(account, platform).observe(seconds)
        if error is not None:
            self.api_errors.labels(account, platform, operation, type(error).__name__).inc()
        if rate_limited:
            self.rate_limit_waits.labels(account, platform, operation).inc()
        if spent_usd > 0:
            self.platform_spend.labels(account, platform).inc(spent_usd)

    def llm_spent(self, *, account: str, platform: str, usd: float) -> None:
        if usd > 0:
            self.llm_spend.labels(account, platform).inc(usd)

    def set_suspended(self, account: str, platform: str, suspended: bool) -> None:
        """Whether the account is suspended now (``growthloop_accounts_suspended``)."""
        self.suspended.labels(account, platform).set(1 if suspended else 0)

    def set_store_up(self, up: bool) -> None:
        self.store_up.set(1 if up else 0)

    @contextmanager
    def time_cycle(self, cycle: str) -> Iterator[None]:
        """Observe the block's duration (also when it raises) as one run of ``cycle``."""
        with self.cycle_duration.labels(cycle).time():
            yield

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


async def refresh(agent: Agent, now: datetime) -> None:
    """Read the store's gauges: snapshots due, posts queued and in flight, each account's
    latest follower count, whether it is suspended (the circuit breaker's state, shared by
    every worker) and its platform spend and cost per post this month. Nothing is set unless
    every read answered (StoreError otherwise)."""
    pending = await agent.store.pending_work(now)
    suspended = {s.account_id for s in await agent.store.suspensions(now=now)}
    costs = await agent.store.platform_costs(at=now)
    followers = {}
    for account in agent.config.accounts:
        account_id = agent.account_ids.get(account.name)
        if account_id is None:  # not registered yet (before Agent.setup)
            continue
        last = await agent.store.last_account_snapshot(account_id)
        if last is not None:
            followers[account.name, account.platform] = last.followers
    metrics = agent.metrics
    metrics.snapshots_due.set(pending["polls_due"])
    metrics.posts_queued.set(pending["posts_queued"])
    metrics.posts_in_flight.set(pending["posts_in_flight"])
    for (account_name, platform), value in followers.items():
        metrics.followers.labels(account_name, platform).set(value)
    for account in agent.config.accounts:
        account_id = agent.account_ids.get(account.name)
        if account_id is not None:
            metrics.set_suspended(account.name, account.platform, account_id in suspended)
    for cost in costs:
        metrics.month_spend.labels(cost.account, cost.platform).set(cost.spend_usd)
        if cost.cost_per_post_usd is not None:
            metrics.cost_per_post.labels(cost.account, cost.platform).set(cost.cost_per_post_usd)


def metrics_route(agent: Agent, *, timeout: float = REFRESH_TIMEOUT) -> Handler:
    """The aiohttp handler of ``GET /metrics``: refresh the store's gauges (at most ``timeout``
    seconds; a store that does not answer sets ``growthloop_store_up`` 0), then expose."""

    async def handle(_request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(timeout):
                await refresh(agent, agent.clock.now())
        except (StoreError, TimeoutError) as exc:
            agent.metrics.set_store_up(False)
            # every scrape while the store is down: the daemon logs the outage itself, once
            log.debug("metrics_refresh_failed", error=str(exc) or type(exc).__name__)
        else:
            agent.metrics.set_store_up(True)
        return web.Response(
            body=agent.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return handle
