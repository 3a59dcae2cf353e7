"""A draft the quality gate refuses is stored as rejected and never reaches the platform.

The generator here is a scripted one (the Generator protocol is the seam): it returns exactly the
text each case needs, after one ordinary post has been published.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles.plan import REDRAFTS, plan_cycle
from agent.cycles.publish import publish_cycle
from agent.models import Draft, GenerationRequest, PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.conftest import T0, make_config

FIRST = (
    "Shipping small tools taught me one thing: write the README before the code. "
    "It forces you to decide what the tool is for, and it catches bad ideas in ten minutes."
)
CASES = {
    "exact duplicate": (FIRST, "exact duplicate"),
    "near duplicate": (FIRST.replace("ten minutes", "five minutes"), "near duplicate"),
    "too long": ("x" * 281, "too long"),
    "blocklisted": ("Honestly this is a scam, do not buy it.", "blocklisted term 'scam'"),
}


class Scripted:
    name = "scripted"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.requests: list[GenerationRequest] = []

    async def write(self, request: GenerationRequest) -> Draft:
        self.requests.append(request)
        text = self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]  # the last one repeats
        return Draft(text=text, generator=self.name)

    async def moderate(self, text: str) -> str | None:
        return None


@pytest.mark.parametrize("case", list(CASES))
async def test_refused_draft_is_rejected_and_never_published(case: str, tmp_path: Path) -> None:
    text, reason = CASES[case]
    config = make_config(
        cadence={"active_hours": {"start": "00:00", "end": "00:00"}, "jitter": "0s"},
        gate={"blocklist": ["scam"]},
    )
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=1, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={"demo": world.platform("demo", now=clock.now)},
        generator=Scripted([FIRST, text]),
        clock=clock,
        seed=1,
    )
    try:
        await agent.setup()
        await plan_cycle(agent, clock.now())
        await publish_cycle(agent, clock.now())  # the ordinary first post goes out
        clock.advance_to(T0 + timedelta(hours=3))
        await plan_cycle(agent, clock.now())  # the scripted second draft is checked
        clock.advance_to(T0 + timedelta(hours=6))
        await publish_cycle(agent, clock.now())
        async with store.engine.connect() as conn:
            rows = (await conn.execute(sa.select(content).order_by(content.c.id))).all()
        # the refused draft is redrafted at once (REDRAFTS times); this writer repeats itself
        assert [r.status for r in rows] == [PostStatus.POSTED] + [PostStatus.REJECTED] * (
            1 + REDRAFTS
        )
        assert all(reason in row.error for row in rows[1:])
        published = [t for (t,) in world._db.execute("SELECT text FROM posts")]  # type: ignore[attr-defined]
        assert published == [FIRST]
    finally:
        await store.close()
        world.close()


async def test_a_refused_draft_is_redrafted_in_the_same_cycle_so_the_slot_is_not_lost(
    tmp_path: Path,
) -> None:
    config = make_config(
        cadence={"active_hours": {"start": "00:00", "end": "00:00"}, "jitter": "0s"},
    )
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=1, start=T0)
    fresh = "A different post: measure before you optimise, then measure again."
    writer = Scripted([FIRST, FIRST, fresh])  # the second draft repeats the first post
    agent = Agent(
        config=config,
        store=store,
        platforms={"demo": world.platform("demo", now=clock.now)},
        generator=writer,
        clock=clock,
        seed=1,
    )
    try:
        await agent.setup()
        await plan_cycle(agent, clock.now())
        await publish_cycle(agent, clock.now())
        clock.advance_to(T0 + timedelta(hours=3))
        assert await plan_cycle(agent, clock.now()) == 1  # one cycle: refused, then redrafted
        async with store.engine.connect() as conn:
            rows = (await conn.execute(sa.select(content).order_by(content.c.id))).all()
        assert [r.status for r in rows] == [
            PostStatus.POSTED,
            PostStatus.REJECTED,
            PostStatus.PLANNED,
        ]
        assert rows[2].text == fresh
        refused, redraft = writer.requests[1], writer.requests[2]
        assert redraft.arms.topic != refused.arms.topic  # a redraft is not the same post again
    finally:
        await store.close()
        world.close()
