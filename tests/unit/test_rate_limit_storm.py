"""A 429 storm: every call rate-limited for hours, in virtual time, against the in-memory sandbox.

The daemon must keep running, post nothing extra while the storm lasts (the one planned post
waits, rescheduled at each reset time), resume at the reset time once the storm is over, keep to
its cadence afterwards, and never publish anything twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles import CYCLES
from agent.generators.template import TemplateGenerator
from agent.models import PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.conftest import T0, make_config

ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
STORM = timedelta(hours=3)  # how long every call is rate-limited
AFTER = timedelta(days=1)  # how long the daemon runs once the storm is over
ENDLESS = 1_000_000  # fault count: far more calls than the storm can make


class Storm:
    """Rate-limit every sandbox call (publish and reads) from now until :meth:`end`."""

    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        self.active = False

    def start(self) -> None:
        self.world.inject_fault("rate_limit", count=ENDLESS)
        self.world.inject_fault("read_rate_limit", count=ENDLESS)
        self.active = True

    def end(self) -> None:
        # The sandbox has no "clear faults" call: use up what is left of the queued ones.
        self.world._db.execute("UPDATE faults SET remaining = 0")
        self.active = False

    def platform_posts(self) -> list[tuple[str, str]]:
        return list(self.world._db.execute("SELECT id, text FROM posts ORDER BY idx"))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Agent, VirtualClock, Storm, SqlStore]]:
    config = make_config(cadence={"active_hours": ALWAYS, "jitter": "0s"})
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=3, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={a.name: world.platform(a.name, now=clock.now) for a in config.accounts},
        generator=TemplateGenerator(seed=3),
        clock=clock,
        seed=3,
    )
    try:
        yield agent, clock, Storm(world), store
    finally:
        await store.close()
        world.close()


async def content_rows(store: SqlStore) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(sa.select(content).order_by(content.c.id))).all())


def naive(when: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; compare everything as naive UTC."""
    return when.replace(tzinfo=None)


async def test_a_429_storm_posts_nothing_extra_and_resumes_at_the_reset_time(
    setup: tuple[Agent, VirtualClock, Storm, SqlStore],
) -> None:
    agent, clock, storm, store = setup
    storm_end = T0 + STORM
    posts_during_storm: list[int] = []

    def weather(now: datetime) -> None:  # after every simulated step
        if storm.active:
            posts_during_storm.append(len(storm.platform_posts()))
            if now >= storm_end:
                storm.end()

    storm.start()
    with capture_logs() as logs:
        await run_until(agent, clock, storm_end + AFTER, progress=weather)  # nothing escapes

    assert not storm.active
    assert posts_during_storm and max(posts_during_storm) == 0  # nothing went out in the storm

    rows = await content_rows(store)
    planned_in_storm = [r for r in rows if naive(r.created_at) < naive(storm_end)]
    assert len(planned_in_storm) == 1  # one post planned; it waited, no others piled up
    waiting = planned_in_storm[0]

    retries = [
        datetime.fromisoformat(e["retry_at"])
        for e in logs
        if e["event"] == "post_rescheduled" and e["content_id"] == waiting.id
    ]
    assert len(retries) >= STORM / timedelta(minutes=20)  # came back at each reset, not sooner
    assert all(b - a >= timedelta(minutes=15) for a, b in pairwise(retries))
    assert waiting.status == PostStatus.POSTED
    assert naive(waiting.posted_at) == naive(retries[-1])  # resumed exactly at the reset time
    assert naive(waiting.posted_at) >= naive(storm_end)
    health = await store.latest_health(limit=100)  # the hourly rows count every 429
    assert sum(h["rate_limit_waits"] for h in health) >= len(retries)

    # afterwards: the cadence, and exactly once (platform posts == the store's posted rows)
    posted = [r for r in rows if r.status == PostStatus.POSTED]
    cadence = agent.config.cadence
    assert 2 <= len(posted) <= cadence.posts_per_day * 2  # a day after the storm: two local days
    times = sorted(naive(r.posted_at) for r in posted)
    assert min(b - a for a, b in pairwise(times)) >= cadence.min_gap
    per_day: dict[object, int] = {}
    for when in times:
        per_day[when.date()] = per_day.get(when.date(), 0) + 1
    assert max(per_day.values()) <= cadence.posts_per_day
    on_platform = storm.platform_posts()
    assert sorted(post_id for post_id, _ in on_platform) == sorted(
        r.platform_post_id for r in posted
    )
    texts = [text for _, text in on_platform]
    assert len(texts) == len(set(texts))
    assert not [r for r in rows if r.status == PostStatus.PUBLISHING]


# -- regressions: bugs this suite found, fixed --------------------------------------------------


async def test_reads_wait_for_the_reset_during_a_429_storm(
    setup: tuple[Agent, VirtualClock, Storm, SqlStore],
) -> None:
    agent, clock, storm, _ = setup
    storm.start()
    with capture_logs() as logs:
        await run_until(agent, clock, T0 + STORM)
    failed_reads = [e for e in logs if e["event"] == "account_snapshot_failed"]
    windows = STORM / timedelta(minutes=15)  # the sandbox's reset: 15 minutes after each 429
    assert len(failed_reads) <= 4 * windows  # a few reads per reset window, not one a second


async def test_rate_limited_attempts_do_not_use_up_the_publish_retries(
    setup: tuple[Agent, VirtualClock, Storm, SqlStore],
) -> None:
    agent, clock, storm, store = setup
    await agent.setup()
    storm.world.inject_fault("rate_limit", count=3)
    storm.world.inject_fault("publish_timeout_before", count=1)  # AmbiguousPublish, not posted
    await CYCLES["plan"](agent, clock.now())
    for _ in range(5):
        await CYCLES["publish"](agent, clock.now())
        (post,) = await content_rows(store)
        clock.advance_to(post.scheduled_for)
    (post,) = await content_rows(store)
    assert post.status == PostStatus.POSTED  # requeued after the timeout, then published
    assert len(storm.platform_posts()) == 1
