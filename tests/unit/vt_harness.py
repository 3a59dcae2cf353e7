"""A shared virtual-time agent harness: a real SQLite store, the in-memory sandbox.

``make_harness`` builds an :class:`Agent` on a :class:`VirtualClock`, a migrated SQLite
:class:`SqlStore` under ``tmp_path``, a :class:`SandboxWorld` and (unless another is given) a
:class:`TemplateGenerator`; the cadence is always-active with no jitter, merged with any
``cadence`` override.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles import CYCLES
from agent.generators.template import TemplateGenerator
from agent.models import Post, PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.conftest import T0, make_config

ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}


class Harness:
    def __init__(self, agent: Agent, clock: VirtualClock, world: SandboxWorld, store: SqlStore):
        self.agent, self.clock, self.world, self.store = agent, clock, world, store

    async def run_cycles(self, *names: str) -> None:
        for name in names or tuple(CYCLES):
            await CYCLES[name](self.agent, self.clock.now())

    async def rows(self, table: sa.Table) -> list[Any]:
        async with self.store.engine.connect() as conn:
            return list((await conn.execute(sa.select(table).order_by(table.c.id))).all())

    async def posts(self) -> list[Any]:
        return await self.rows(content)

    async def statuses(self) -> list[str]:
        return [p.status for p in await self.posts()]

    async def with_status(self, status: PostStatus) -> list[Any]:
        return [p for p in await self.posts() if p.status == status]

    def world_posts(self) -> list[tuple[str, str]]:
        return list(self.world._db.execute("SELECT id, text FROM posts"))  # type: ignore[attr-defined]

    def world_texts(self) -> list[str]:
        rows = self.world._db.execute("SELECT text FROM posts")  # type: ignore[attr-defined]
        return [r[0] for r in rows]

    async def publish_when_due(self, post: Post) -> None:
        self.clock.advance_to(post.scheduled_for)
        await self.run_cycles("publish")


@asynccontextmanager
async def make_harness(
    tmp_path: Path,
    *,
    seed: int = 7,
    generator: Any = None,
    scenario: str = "default",
    **config_overrides: Any,
) -> AsyncIterator[Harness]:
    overrides: dict[str, Any] = dict(config_overrides)
    cadence: Mapping[str, Any] = overrides.pop("cadence", {})
    config = make_config(cadence={"active_hours": ALWAYS, "jitter": "0s", **cadence}, **overrides)
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load(scenario), seed=seed, start=T0)
    platforms = {a.name: world.platform(a.name, now=clock.now) for a in config.accounts}
    agent = Agent(
        config=config,
        store=store,
        platforms=platforms,
        generator=generator if generator is not None else TemplateGenerator(seed=seed),
        clock=clock,
        seed=seed,
    )
    await agent.setup()
    try:
        yield Harness(agent, clock, world, store)
    finally:
        await store.close()
        world.close()
