"""Concurrent cycles with bounds (issue 16): every due post published in one cycle, at most
``runtime.concurrency`` platform calls in flight per platform and one publish per account;
planning ``runtime.plan_concurrency`` accounts at once; polls and follower reads concurrent;
rate limits still respected; the daemon woken for the next post instead of a whole tick.

Latency comes from a :class:`Slow` platform (the sandbox's adapter behind an ``asyncio.sleep``)
that counts the calls in flight; a real SQLite store takes the concurrent writes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from adapters.base import AccountInfo, PostMetrics, PublishedPost
from adapters.sandbox import SandboxPlatform, SandboxWorld, Scenario
from agent.clock import Clock, ScaledClock, SystemClock, VirtualClock
from agent.config import DEFAULT_CONCURRENCY, load_config
from agent.core import Agent
from agent.cycles.plan import plan_cycle
from agent.cycles.poll import followers_cycle, poll_cycle
from agent.cycles.publish import publish_cycle
from agent.daemon import Daemon
from agent.errors import ConfigError, RateLimited
from agent.generators.base import Generator
from agent.generators.template import TemplateGenerator
from agent.models import Draft, GenerationRequest, NewContent, Post, PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from agent.workpool import each
from tests.conftest import T0, example_raw, make_config
from tests.unit.vt_harness import ALWAYS, make_harness

LATENCY = 0.02  # seconds each slow platform call takes


@dataclass
class InFlight:
    """Calls in flight now and at most, overall and per account."""

    now: int = 0
    peak: int = 0
    per_account: Counter[str] = field(default_factory=Counter)
    account_peak: int = 0
    calls: Counter[str] = field(default_factory=Counter)

    @asynccontextmanager
    async def call(self, account: str, operation: str) -> AsyncIterator[None]:
        self.now += 1
        self.per_account[account] += 1
        self.peak = max(self.peak, self.now)
        self.account_peak = max(self.account_peak, self.per_account[account])
        self.calls[operation] += 1
        try:
            await asyncio.sleep(LATENCY)
            yield
        finally:
            self.now -= 1
            self.per_account[account] -= 1


class Slow:
    """The sandbox's adapter with a latency on publish, metrics and account reads; counts the
    calls in flight. ``rate_limited``: accounts whose publish the platform refuses with 429."""

    def __init__(
        self,
        inner: SandboxPlatform,
        gauge: InFlight,
        *,
        rate_limited: Mapping[str, datetime] | None = None,
    ) -> None:
        self.inner, self.gauge = inner, gauge
        self.rate_limited = rate_limited or {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        async with self.gauge.call(self.inner.handle, "publish"):
            if self.inner.handle in self.rate_limited:
                raise RateLimited("429", reset_at=self.rate_limited[self.inner.handle])
            return await self.inner.publish(text, idempotency_key=idempotency_key, labels=labels)

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        async with self.gauge.call(self.inner.handle, "fetch_metrics"):
            return await self.inner.fetch_metrics(post_ids)

    async def fetch_account(self) -> AccountInfo:
        async with self.gauge.call(self.inner.handle, "fetch_account"):
            return await self.inner.fetch_account()


class SlowWriter:
    """The template generator behind a latency (an LLM's), counting the drafts in flight."""

    name = "slow"

    def __init__(self, inner: Generator, gauge: InFlight) -> None:
        self.inner, self.gauge = inner, gauge

    async def write(self, request: GenerationRequest) -> Draft:
        async with self.gauge.call(request.persona, "write"):
            return await self.inner.write(request)

    async def moderate(self, text: str) -> str | None:
        return None


def accounts(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"acc{i}",
            "platform": "sandbox",
            "persona": f"A pragmatic developer number {i}",
            "niche": "indie software",
            "topics": ["testing", "shipping"],
        }
        for i in range(n)
    ]


@dataclass
class Rig:
    agent: Agent
    store: SqlStore
    world: SandboxWorld
    gauge: InFlight
    writing: InFlight

    async def with_status(self, status: PostStatus) -> list[Any]:
        posts = await self.store.list_posts(statuses=[status], limit=10_000)
        return list(posts)


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    n: int,
    clock: Clock | None = None,
    rate_limited: Mapping[str, datetime] | None = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    config = make_config(
        accounts=accounts(n), cadence={"active_hours": ALWAYS, "jitter": "0s"}, **overrides
    )
    clock = clock or VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=3, start=clock.now())
    gauge, writing = InFlight(), InFlight()
    platforms = {
        a.name: Slow(world.platform(a.name, now=clock.now), gauge, rate_limited=rate_limited)
        for a in config.accounts
    }
    agent = Agent(
        config=config,
        store=store,
        platforms=platforms,  # type: ignore[arg-type]  # Slow delegates the rest
        generator=SlowWriter(TemplateGenerator(seed=3), writing),
        clock=clock,
        seed=3,
    )
    await agent.setup()
    try:
        yield Rig(agent, store, world, gauge, writing)
    finally:
        await store.close()
        world.close()


async def test_every_due_post_goes_out_in_one_cycle_bounded_per_platform(tmp_path: Path) -> None:
    """120 posts due at once (the cycle used to take 50 a tick, one after the other)."""
    async with rig(tmp_path, n=120, runtime={"concurrency": {"sandbox": 6}}) as r:
        assert await plan_cycle(r.agent, T0) == 120
        with capture_logs() as logs:
            sent = await publish_cycle(r.agent, T0)
        assert sent == 120
        assert len(await r.with_status(PostStatus.POSTED)) == 120
        assert r.gauge.calls["publish"] == 120
        assert 1 < r.gauge.peak <= 6  # concurrent, and never above runtime.concurrency
        assert r.gauge.account_peak == 1
        # the concurrent writes went through one SQLite file without a lock retry
        assert not [e for e in logs if e["event"] == "store_retrying"]


async def test_an_accounts_own_posts_go_out_one_at_a_time(tmp_path: Path) -> None:
    async with rig(tmp_path, n=2) as r:
        await plan_cycle(r.agent, T0)
        first = r.agent.account_ids["acc0"]
        for i in range(3):  # more of acc0's posts due (e.g. retried after a rate limit)
            await r.store.add_content(
                NewContent(
                    account_id=first,
                    status=PostStatus.PLANNED,
                    text=f"another post number {i} about testing",
                    text_hash=f"h{i}",
                    generation_metadata={},
                    scheduled_for=T0,
                    idempotency_key=f"key-{i}",
                ),
                now=T0,
            )
        assert await publish_cycle(r.agent, T0) == 5
        assert len(await r.with_status(PostStatus.POSTED)) == 5
        assert r.gauge.peak == 2  # both accounts at once...
        assert r.gauge.account_peak == 1  # ...but never two publishes of one account


async def test_a_rate_limited_account_waits_for_its_reset_while_the_others_post(
    tmp_path: Path,
) -> None:
    reset = T0 + timedelta(minutes=15)
    async with rig(tmp_path, n=10, rate_limited={"acc3": reset}) as r:
        await plan_cycle(r.agent, T0)
        await publish_cycle(r.agent, T0)
        posted = await r.with_status(PostStatus.POSTED)
        [waiting] = await r.with_status(PostStatus.PLANNED)
        assert len(posted) == 9
        assert waiting.account_id == r.agent.account_ids["acc3"]
        assert waiting.scheduled_for >= reset  # not before the platform's reset
        assert waiting.publish_attempts == 0  # a 429 is not an attempt


async def test_plan_cycle_plans_accounts_concurrently_within_plan_concurrency(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, n=12, runtime={"plan_concurrency": 3}) as r:
        assert await plan_cycle(r.agent, T0) == 12
        assert len(await r.with_status(PostStatus.PLANNED)) == 12
        assert 1 < r.writing.peak <= 3
        assert r.writing.account_peak == 1
        assert await plan_cycle(r.agent, T0) == 0  # every account has its post queued


async def test_polls_and_follower_reads_run_concurrently_within_the_bound(tmp_path: Path) -> None:
    async with rig(tmp_path, n=8, runtime={"concurrency": {"sandbox": 3}}) as r:
        await plan_cycle(r.agent, T0)
        await publish_cycle(r.agent, T0)
        r.gauge.peak = 0
        later = T0 + timedelta(hours=2)
        r.agent.clock.advance_to(later)  # type: ignore[attr-defined]
        assert await poll_cycle(r.agent, later) == 8  # each post's 1h snapshot
        assert 1 < r.gauge.peak <= 3
        r.gauge.peak = 0
        assert await followers_cycle(r.agent, later + timedelta(hours=1)) == 8
        assert 1 < r.gauge.peak <= 3
        assert r.gauge.account_peak == 1


async def test_each_returns_results_in_the_items_order_whatever_order_they_finish() -> None:
    async def work(i: int) -> int:
        await asyncio.sleep(0.01 * (5 - i))  # the last items finish first
        return i * 2

    assert await each(list(range(6)), work, limit=3) == [0, 2, 4, 6, 8, 10]


async def test_each_stops_taking_work_after_an_error_but_lets_work_in_flight_finish() -> None:
    finished: list[int] = []

    async def work(i: int) -> int:
        if i == 1:
            raise ValueError("item 1 failed")
        await asyncio.sleep(0.01)
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="item 1 failed"):
        await each(list(range(10)), work, limit=3)
    # item 0 was in flight when item 1 failed and finished; no item was started after it
    assert finished == [0]


async def publish_one_queued_post(
    r: Rig, clock: Clock, at: datetime
) -> tuple[Post, list[dict[str, Any]]]:
    """Queue one post for ``at``, run the daemon until it is posted, stop it: the post and the
    daemon's log events."""
    await r.store.add_content(
        NewContent(
            account_id=r.agent.account_ids["acc0"],
            status=PostStatus.PLANNED,
            text="a post queued a little ahead",
            text_hash="h",
            generation_metadata={},
            scheduled_for=at,
            idempotency_key="key",
        ),
        now=clock.now(),
    )
    daemon = Daemon(r.agent, host="127.0.0.1", port=0)
    with capture_logs() as logs:
        running = asyncio.create_task(daemon.run(install_signals=False))
        for _ in range(400):
            if await r.with_status(PostStatus.POSTED) or running.done():
                break
            await asyncio.sleep(0.05)
        daemon.stop()
        assert await running == 0
    [posted] = await r.with_status(PostStatus.POSTED)
    return posted, logs


async def test_daemon_wakes_the_publish_cycle_for_the_next_post_instead_of_a_whole_tick(
    tmp_path: Path,
) -> None:
    """With an hour's tick, the post queued for two seconds from now goes out then."""
    clock = SystemClock()
    async with rig(tmp_path, n=1, clock=clock, runtime={"tick": "1h"}) as r:
        soon = clock.now() + timedelta(seconds=2)
        posted, logs = await publish_one_queued_post(r, clock, soon)
        assert posted.posted_at is not None and posted.posted_at >= soon  # never early
        woken = [e for e in logs if e["event"] == "publish_woken"]
        assert woken and datetime.fromisoformat(woken[0]["at"]) == soon
        # the publish job's own first run was a seventh of the hour away
        assert posted.posted_at < soon + timedelta(minutes=1)
        assert datetime.now(UTC) < soon + timedelta(minutes=1)


async def test_wake_time_on_a_compressed_clock_is_converted_to_the_wall_clock(
    tmp_path: Path,
) -> None:
    """Regression: the publish job was woken at the store's (simulated) time read as wall time.
    On a clock 600x faster a post ten simulated minutes away is one real second away."""
    clock = ScaledClock(start=datetime.now(UTC) + timedelta(days=30), factor=600)
    async with rig(tmp_path, n=1, clock=clock, runtime={"tick": "1h"}) as r:
        soon = clock.now() + timedelta(minutes=10)
        started = datetime.now(UTC)
        posted, logs = await publish_one_queued_post(r, clock, soon)
        assert posted.posted_at is not None and posted.posted_at >= soon
        woken = [e for e in logs if e["event"] == "publish_woken"]
        assert woken
        # a wall-clock time about one second after the start, not thirty days ahead
        at = datetime.fromisoformat(woken[0]["at"])
        assert started <= at < started + timedelta(minutes=1)


class CountingStore:
    """The real store, counting the calls made to it."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.inner, name)


async def test_budget_check_reads_every_accounts_spend_once_per_cycle_not_per_account(
    tmp_path: Path,
) -> None:
    """Regression: with a paid generator each account's plan read the health inputs of every
    account (N x N reads: 120 accounts took 156 s to plan, against 1.5 s now)."""
    async with rig(tmp_path, n=6, budget={"llm_daily_usd_total": 100}) as r:
        counting = CountingStore(r.store)
        r.agent.store = counting  # type: ignore[assignment]
        assert await plan_cycle(r.agent, T0) == 6
        assert counting.calls["llm_spend"] == 1
        assert counting.calls["health_inputs"] == 0
        assert await plan_cycle(r.agent, T0) == 0
        assert counting.calls["llm_spend"] == 1  # nothing to plan: no read


async def test_budget_spent_during_a_cycle_stops_the_accounts_planned_after_it(
    tmp_path: Path,
) -> None:
    """The cycle's own drafts count: the budget is checked against what was read at the start
    plus what this cycle's drafts cost (one account at a time here: drafts in flight at once
    are each checked before any of them is paid, see plan.Spend)."""
    budget = {"llm_daily_usd_total": 0.015}
    async with rig(tmp_path, n=3, budget=budget, runtime={"plan_concurrency": 1}) as r:
        priced = PricedWriter(r.agent.generator, usd=0.01)
        r.agent.generator = priced
        with capture_logs() as logs:
            planned = await plan_cycle(r.agent, T0)
        assert planned == 2  # 0.01 then 0.02 >= 0.015: the third waits for tomorrow
        assert [e["scope"] for e in logs if e["event"] == "planning_paused_budget"] == ["total"]


class PricedWriter:
    """A generator whose every draft costs ``usd``."""

    name = "priced"

    def __init__(self, inner: Generator, *, usd: float) -> None:
        self.inner, self.usd = inner, usd

    async def write(self, request: GenerationRequest) -> Draft:
        draft = await self.inner.write(request)
        return replace(draft, cost_usd=self.usd)

    async def moderate(self, text: str) -> str | None:
        return None


def test_concurrency_config_names_platforms_and_keeps_the_defaults_of_those_not_set() -> None:
    runtime = make_config(runtime={"concurrency": {"x": 4}}).runtime
    assert runtime.concurrency_for("x") == 4
    assert runtime.concurrency_for("sandbox") == DEFAULT_CONCURRENCY["sandbox"]
    assert runtime.concurrency_for("bluesky") == DEFAULT_CONCURRENCY["bluesky"]


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"concurrency": {"twitter": 4}}, "runtime.concurrency: unknown platform(s) twitter"),
        ({"concurrency": {"x": 0}}, "runtime.concurrency.x: Input should be greater than"),
        ({"plan_concurrency": 0}, "runtime.plan_concurrency: Input should be greater than"),
    ],
)
def test_bad_concurrency_is_a_config_error_naming_its_key(
    tmp_path: Path, runtime: dict[str, Any], message: str
) -> None:
    raw = example_raw()
    raw["runtime"] = {**raw["runtime"], **runtime}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)


async def test_a_simulation_on_the_sql_store_is_the_same_run_after_run(tmp_path: Path) -> None:
    """The simulator runs serially: with several accounts on SQLite (whose I/O would interleave
    concurrent accounts differently each run) two runs plan and publish the same posts."""
    runs = []
    for n in range(2):
        (tmp_path / str(n)).mkdir()
        async with make_harness(tmp_path / str(n), accounts=accounts(3)) as h:
            await run_until(h.agent, h.clock, T0 + timedelta(hours=12))
            runs.append(
                [
                    (p.account_id, p.status, p.text, p.scheduled_for, p.posted_at)
                    for p in await h.posts()
                ]
            )
    assert len({r[0] for r in runs[0]}) == 3  # every account posted
    assert runs[0] == runs[1]


async def test_a_followers_cycle_writes_its_readings_in_one_store_call(tmp_path: Path) -> None:
    async with rig(tmp_path, n=8) as r:
        counting = CountingStore(r.store)
        r.agent.store = counting  # type: ignore[assignment]
        later = T0 + timedelta(hours=1)

        assert await followers_cycle(r.agent, later) == 8

        assert counting.calls["add_account_snapshots"] == 1
        assert counting.calls["add_account_snapshot"] == 0
        assert counting.calls["acquire_leases"] == 0  # an exclusive worker takes no lease
        latest = await r.store.last_account_snapshots()
        assert set(latest) == set(r.agent.account_ids.values())
        assert {s.taken_at for s in latest.values()} == {later}
        assert await followers_cycle(r.agent, later + timedelta(minutes=1)) == 0  # not due


async def test_a_shared_workers_followers_cycle_leases_in_one_call_and_skips_fresh_readings(
    tmp_path: Path,
) -> None:
    """Several workers on one store: the cycle takes its accounts' leases in one statement,
    leaves an account whose lease another worker holds, and one another worker has just read,
    and releases its leases (before issue 16: four store calls per account read)."""
    async with rig(tmp_path, n=6) as r:
        r.agent.exclusive = False
        ids = r.agent.account_ids
        later = T0 + timedelta(hours=1)
        busy, fresh = ids["acc1"], ids["acc2"]
        assert await r.store.acquire_lease(
            f"followers:{busy}", worker="other", now=later, ttl=timedelta(minutes=5)
        )
        just = later - timedelta(minutes=2)
        info = AccountInfo(handle="@acc2", followers=77, following=1, posts=3)
        await r.store.add_account_snapshot(fresh, info, taken_at=just)
        counting = CountingStore(r.store)
        r.agent.store = counting  # type: ignore[assignment]

        assert await followers_cycle(r.agent, later) == 4

        assert r.gauge.calls["fetch_account"] == 4
        for call in ("acquire_leases", "last_account_snapshots", "add_account_snapshots"):
            assert counting.calls[call] == 1, call
        assert counting.calls["release_leases"] == 1
        assert counting.calls["acquire_lease"] == counting.calls["add_account_snapshot"] == 0
        latest = await r.store.last_account_snapshots()
        assert latest[fresh].taken_at == just  # not read again
        assert busy not in latest  # another worker's to read
        assert r.agent.last_account_poll[fresh] == just
        assert busy not in r.agent.last_account_poll  # still due: tried again next cycle
        held = await r.store.acquire_leases(
            [f"followers:{i}" for i in ids.values()],
            worker="third",
            now=later,
            ttl=timedelta(minutes=5),
        )
        assert held == {f"followers:{i}" for i in ids.values()} - {f"followers:{busy}"}
