"""The Agent: the graph of backends every cycle works on, and its in-memory counters.

``Agent(*, config, store, platforms, generator, clock)`` is built by the CLI from the config (or
by tests with the simulated platform); nothing in it is global. Cycles are plain async functions
of ``(agent, now)`` in ``agent/cycles/``.

Concurrency: the cycles work on many accounts at once (:meth:`Agent.for_accounts`), bounded per
platform: a semaphore per platform (``runtime.concurrency``) is held for each account's piece of
work - its publishes, its metric reads, its follower read - and shared by every cycle, so all the
work in flight on one platform stays under its bound. An account's own work in one cycle is one
piece, done in turn: never two publishes of one account at once. Planning is bounded by
``runtime.plan_concurrency``. :attr:`Agent.serial` (the simulator sets it) runs everything one
account at a time, in order.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from adapters.base import Platform
from agent.alerts import Alerts
from agent.breaker import Breaker, startup_check
from agent.budget import SpendBook
from agent.clock import Clock
from agent.config import Account, Config
from agent.errors import AuthFailed, PlatformError, RateLimited
from agent.generators.base import Generator
from agent.journal import PublishJournal
from agent.logs import log
from agent.metrics import Metrics
from agent.models import NewAccount
from agent.store.base import Store
from agent.workpool import each

_R = TypeVar("_R")


def new_worker_id() -> str:
    """This process's name in claims and leases: host, pid and a random part (a restarted
    process on the same host and pid is still a new worker)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


# calls whose AuthFailed says only that posting is refused (a read-only app may still read):
# they do not pause the account's reads
AUTH_PROBES = frozenset({"publish", "check_write_access"})


def hour_floor(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


@dataclass
class HourCounters:
    api_calls: int = 0
    api_errors: int = 0
    rate_limit_waits: int = 0
    platform_spend_usd: float = 0.0
    errors_by_kind: Counter[str] = field(default_factory=Counter)


@dataclass
class Stats:
    """Counters the store cannot reconstruct (API calls and errors), plus liveness for /healthz."""

    started_at: datetime | None = None
    last_run: dict[str, datetime] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    hours: dict[tuple[datetime, int], HourCounters] = field(
        default_factory=lambda: defaultdict(HourCounters)
    )

    def pop_hour(self, hour: datetime, account_id: int) -> HourCounters:
        return self.hours.pop((hour, account_id), HourCounters())


@dataclass(kw_only=True, eq=False)
class Agent:
    config: Config
    store: Store
    platforms: Mapping[str, Platform]  # account name -> adapter
    generator: Generator
    clock: Clock
    seed: int | None = None
    stats: Stats = field(default_factory=Stats)
    # the Prometheus metrics served at /metrics (a registry of this agent's own)
    metrics: Metrics = field(default_factory=Metrics)
    # where publishes the store could not record wait for it (None: no journal, e.g. simulate)
    journal: PublishJournal | None = None
    # how this worker signs its snapshot claims and leases (several workers on one database)
    worker_id: str = field(default_factory=new_worker_id)
    # True (the default) when no other worker can share the store: SQLite, which
    # agent.store.lockfile keeps to one process, and the simulator. Then no leases are needed and
    # a post left `publishing` at start-up is known to be interrupted. bootstrap.build sets it
    # False on PostgreSQL, where several workers may run.
    exclusive: bool = True
    # account name -> a policy that replaces the configured one (benchmarks: the oracle)
    policies: dict[str, Any] = field(default_factory=dict)
    # account name -> the state its policy returned with its last choice, passed to the next
    # (learning.policies.Policy; the joint policy's is a learning.joint_policy.JointState)
    learner_states: dict[str, Any] = field(default_factory=dict)
    # per-process memos learning code keeps between cycles (never needed for correctness)
    caches: dict[str, Any] = field(default_factory=dict)
    # webhook notifications (agent/alerts.py); no webhook, no requests
    alerts: Alerts = field(default_factory=Alerts.disabled)
    # this process's failure streaks and credential reads (agent/breaker.py)
    breaker: Breaker = field(default_factory=Breaker)
    # platform spend not yet written to the store's monthly ledger (agent/budget.py)
    spend: SpendBook = field(default_factory=SpendBook)
    # one account at a time, in order (the simulator: a virtual clock gains nothing from
    # overlapping I/O, and the random draws then happen in the same order on every store)
    serial: bool = False

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)  # policy sampling
        self.random = random.Random(self.seed)  # jitter, topics
        self.account_ids: dict[str, int] = {}
        # when each account's follower count was last stored (a cache of account_snapshots)
        self.last_account_poll: dict[int, datetime] = {}
        # reads the platform rate-limited: no read of that account before this time
        self.reads_blocked_until: dict[int, datetime] = {}
        self._by_id: dict[int, Account] = {}
        # platform -> its bound on work in flight (runtime.concurrency), shared by the cycles
        self._slots: dict[str, asyncio.Semaphore] = {}
        missing = [a.name for a in self.config.accounts if a.name not in self.platforms]
        if missing:
            raise ValueError(f"no platform adapter for accounts {missing}")
        for account in self.config.accounts:
            self.metrics.track(account.name, account.platform)

    async def setup(self) -> None:
        """Register every configured account in the store (idempotent; one call for them all),
        then read each one's limits and check that it may post (agent/breaker.py: one read per
        account, no post, no LLM call), many accounts at once."""
        now = self.clock.now()
        self.stats.started_at = self.stats.started_at or now
        ids = await self.store.ensure_accounts(
            [
                NewAccount(name=a.name, platform=a.platform, handle=a.handle)
                for a in self.config.accounts
            ],
            now=now,
        )
        for account in self.config.accounts:
            self.account_ids[account.name] = ids[account.name]
            self._by_id[ids[account.name]] = account
        for account_id, last in (await self.store.last_account_snapshots()).items():
            if account_id in self._by_id:
                self.last_account_poll[account_id] = last.taken_at

        async def load_limits(account_id: int) -> None:
            account = self._by_id[account_id]
            try:  # e.g. a Mastodon instance's own character limit
                await self.platforms[account.name].load_limits()
            except PlatformError as exc:
                log.warning("limits_unavailable", account=account.name, error=str(exc))

        # each account's reads concurrently, bounded per platform, as the cycles' work
        await self.for_accounts([ids[a.name] for a in self.config.accounts], load_limits)
        await startup_check(self, now)

    @property
    def lease(self) -> timedelta:
        """How long this worker's claims and leases last (``runtime.lease``)."""
        return self.config.runtime.lease

    @asynccontextmanager
    async def leased(self, name: str, now: datetime) -> AsyncIterator[bool]:
        """Hold the lease ``name`` for the block, then release it. Yields whether it is held:
        False while another worker holds it, and the caller then skips the work. An exclusive
        worker (no other can share the store) needs no lease and asks the store nothing."""
        if self.exclusive:
            yield True
            return
        if not await self.store.acquire_lease(name, worker=self.worker_id, now=now, ttl=self.lease):
            yield False
            return
        try:
            yield True
        finally:
            await self.store.release_lease(name, worker=self.worker_id)

    def platform_slot(self, platform: str) -> asyncio.Semaphore:
        """The semaphore bounding the work in flight on ``platform`` (``runtime.concurrency``)."""
        slot = self._slots.get(platform)
        if slot is None:
            slot = asyncio.Semaphore(self.config.runtime.concurrency_for(platform))
            self._slots[platform] = slot
        return slot

    async def for_accounts(
        self, account_ids: Sequence[int], work: Callable[[int], Awaitable[_R]]
    ) -> list[_R]:
        """``work(account_id)`` for each account, concurrently: at most ``runtime.concurrency``
        of one platform's accounts at once, each holding its platform's slot (shared with the
        other cycles). Results in the given order; an error stops the rest (see
        :func:`agent.workpool.each`)."""
        if self.serial:
            return [await work(account_id) for account_id in account_ids]
        by_platform: dict[str, list[int]] = defaultdict(list)
        for account_id in account_ids:
            # an account no longer configured: its work meets the KeyError a serial loop met
            account = self._by_id.get(account_id)
            by_platform[account.platform if account else ""].append(account_id)

        async def on_platform(platform: str) -> dict[int, _R]:
            slot = self.platform_slot(platform)

            async def held(account_id: int) -> _R:
                async with slot:
                    return await work(account_id)

            ids = by_platform[platform]
            limit = self.config.runtime.concurrency_for(platform)
            return dict(zip(ids, await each(ids, held, limit=limit), strict=True))

        done: dict[int, _R] = {}
        for part in await each(list(by_platform), on_platform, limit=len(by_platform) or 1):
            done |= part
        return [done[account_id] for account_id in account_ids]

    async def bounded(
        self, items: Sequence[Any], work: Callable[[Any], Awaitable[_R]], *, limit: int
    ) -> list[_R]:
        """``work(item)`` for each item, at most ``limit`` at once (one at a time when
        :attr:`serial`)."""
        return await each(items, work, limit=1 if self.serial else limit)

    def account(self, account_id: int) -> Account:
        return self._by_id[account_id]

    def platform_for(self, account_id: int) -> Platform:
        return self.platforms[self._by_id[account_id].name]

    @asynccontextmanager
    async def api_call(self, account_id: int, operation: str) -> AsyncIterator[None]:
        """Count one platform call (and its error, by kind) for the health metrics and
        Prometheus (calls, errors, rate-limit waits, platform spend, publish latency)."""
        now = self.clock.now()
        counters = self.stats.hours[(hour_floor(now), account_id)]
        counters.api_calls += 1
        self.stats.totals["api_calls"] += 1
        platform = self.platform_for(account_id)
        spent_before = platform.spend_usd
        error: BaseException | None = None
        started = time.perf_counter()  # the call's real duration, in virtual time too
        try:
            yield
        except PlatformError as exc:
            error = exc
            counters.api_errors += 1
            counters.errors_by_kind[f"{operation}:{type(exc).__name__}"] += 1
            self.stats.totals["api_errors"] += 1
            if isinstance(exc, RateLimited):
                counters.rate_limit_waits += 1
                if operation != "publish" and exc.reset_at is not None:
                    self.reads_blocked_until[account_id] = exc.reset_at
            elif isinstance(exc, AuthFailed) and operation not in AUTH_PROBES:
                # refused credentials refuse every read: wait as the breaker does between its
                # write-access reads, rather than asking again on every tick
                until = now + self.config.failsafe.credentials_check
                self.reads_blocked_until[account_id] = until
                log.warning(
                    "reads_paused",
                    account=self._by_id[account_id].name,
                    platform=self._by_id[account_id].platform,
                    operation=operation,
                    until=until.isoformat(),
                    error=str(exc),
                )
            raise
        finally:
            # adapters that bill per call (X's pay-per-use) keep a running spend_usd
            spent = platform.spend_usd - spent_before
            counters.platform_spend_usd += spent
            self.spend.note(account_id, spent, posted=operation == "publish" and error is None)
            account = self._by_id[account_id]
            self.metrics.api_call(
                account=account.name,
                platform=account.platform,
                operation=operation,
                seconds=time.perf_counter() - started,
                spent_usd=spent,
                error=error,
                rate_limited=isinstance(error, RateLimited),
            )

    def count(self, name: str, account_id: int, n: int = 1) -> None:
        """Add ``n`` to the total ``name`` (``/healthz``, ``growthloop health``) and to the
        account's Prometheus counter of that name (a :data:`agent.metrics.COUNTED` name)."""
        self.stats.totals[name] += n
        account = self._by_id[account_id]
        self.metrics.count(name, account=account.name, platform=account.platform, n=n)

    def spent_llm(self, account_id: int, usd: float) -> None:
        """The generator spent ``usd`` on one of the account's drafts (Prometheus only: the
        store keeps the same figure in each draft's ``cost_usd``)."""
        account = self._by_id[account_id]
        self.metrics.llm_spent(account=account.name, platform=account.platform, usd=usd)

    def reads_blocked(self, account_id: int, now: datetime) -> bool:
        """True while the platform has asked us to wait before reading this account again."""
        until = self.reads_blocked_until.get(account_id)
        return until is not None and now < until

    def jitter(self, amount: timedelta) -> timedelta:
        if amount <= timedelta(0):
            return timedelta(0)
        return timedelta(seconds=self.random.uniform(-1, 1) * amount.total_seconds())

    def snapshot(self) -> dict[str, Any]:
        return {
            "started_at": self.stats.started_at,
            "last_run": dict(self.stats.last_run),
            "last_error": dict(self.stats.last_error),
            "totals": dict(self.stats.totals),
        }
