"""The audience reads in virtual time (agent/cycles/audience.py) against the sandbox's simulated
people (adapters/sandbox_people.py), on a real SQLite store: after a short simulation every
person-level event the sandbox exposes is stored exactly once (also across a rate limit in the
middle and a re-read from the start), every reply once in ``conversations``, and the cohort
retention table computed from the store equals the one computed from the truth. On the memory
store, to keep it fast (the store contract suite runs the same methods on SQLite and PostgreSQL);
``python -m bench.audience`` runs it for 60 days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from adapters.sandbox import SandboxWorld, Scenario
from adapters.sandbox_people import PersonEvent
from agent.audience import spans_of
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles.audience import audience_read_cycle, reads_allowed
from agent.generators.template import TemplateGenerator
from agent.simulator import run_until
from agent.store.memory import MemoryStore
from learning.audience import Span, cohort_retention
from tests.conftest import T0, make_config
from tests.unit.vt_harness import ALWAYS

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
DAYS = 7.5  # T0 is a Monday 06:00: two weekly cohorts, the first with a 1-week checkpoint
EPOCH = datetime.fromtimestamp(0, tz=T0.tzinfo)


@dataclass
class Harness:
    agent: Agent
    clock: VirtualClock
    world: SandboxWorld
    store: MemoryStore


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    config = make_config(
        cadence={"active_hours": ALWAYS, "jitter": "0s"},
        audience={"read": {"sandbox": True}},
    )
    clock, store = VirtualClock(T0), MemoryStore()
    world = SandboxWorld(Scenario.load("default"), seed=7, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={a.name: world.platform(a.name, now=clock.now) for a in config.accounts},
        generator=TemplateGenerator(seed=7),
        clock=clock,
        seed=7,
    )
    await agent.setup()
    try:
        yield Harness(agent, clock, world, store)
    finally:
        world.close()


def truth_spans(events: list[PersonEvent]) -> dict[str, Span]:
    """Each person's first follow and, when their latest follow change is an unfollow, its
    time: folded from the truth independently of the store's code."""
    first: dict[str, int] = {}
    last: dict[str, tuple[int, str]] = {}
    for e in events:
        if e.kind not in ("follow", "unfollow"):
            continue
        if e.kind == "follow":
            first.setdefault(e.person, e.at_us)
        last[e.person] = (e.at_us, e.kind)
    return {
        p: Span(
            followed_at=EPOCH + timedelta(microseconds=at),
            unfollowed_at=EPOCH + timedelta(microseconds=last[p][0])
            if last[p][1] == "unfollow"
            else None,
        )
        for p, at in first.items()
    }


async def test_every_exposed_event_is_stored_once_and_retention_matches_the_truth(
    harness: Harness,
) -> None:
    agent, clock, world, store = harness.agent, harness.clock, harness.world, harness.store
    name = agent.config.accounts[0].name
    main = agent.account_ids[name]
    assert reads_allowed(agent, main)
    await run_until(agent, clock, T0 + 4 * DAY)
    world.inject_fault("read_rate_limit", account=name)  # a 429 in the middle of the run
    clock.advance_to(clock.now() + HOUR)
    with capture_logs() as logs:
        await audience_read_cycle(agent, clock.now())
    assert [e["event"] for e in logs if e["event"].startswith("audience_read")] == [
        "audience_read_paused"
    ]
    await run_until(agent, clock, T0 + DAYS * DAY)
    end = clock.now() + 2 * HOUR  # past the rate limit's reset and the read interval
    clock.advance_to(end)
    await audience_read_cycle(agent, end)

    truth = list(world.people(name, end).events)  # (the live list grows with time)
    stored = await store.audience_interactions(main)
    members = {m.id: m for m in await store.audience_members(main)}
    assert len(truth) > 200 and {e.kind for e in truth} >= {"follow", "unfollow", "like", "reply"}
    assert sorted(
        (i.source_id, str(i.kind), members[i.member_id].user_id, i.at, i.platform_post_id)
        for i in stored
    ) == sorted(
        (
            f"n{e.seq}",
            e.kind,
            e.person,
            EPOCH + timedelta(microseconds=e.at_us),
            None if e.kind in ("follow", "unfollow") else e.post_id,  # exposed as a platform does
        )
        for e in truth
    )
    assert all(i.content_id is not None for i in stored if i.platform_post_id)
    # regression: the sandbox told which post brought each follow, which no platform does
    assert all(i.platform_post_id is None for i in stored if i.kind in ("follow", "unfollow"))
    replies = [e for e in truth if e.kind == "reply"]
    said = await store.conversations(main)
    assert sorted((c.author_id, c.parent_post_id, c.text) for c in said) == sorted(
        (e.person, e.post_id, e.text) for e in replies
    )

    # read everything again from the start: nothing new is stored
    await store.set_read_cursor(main, "notifications", None, now=end - DAY)
    again = end + 2 * HOUR
    clock.advance_to(again)
    await audience_read_cycle(agent, again)
    assert len(await store.audience_interactions(main)) == len(world.people(name, again).events)
    assert len(await store.conversations(main)) == sum(
        1 for e in world.people(name, again).events if e.kind == "reply"
    )

    truly = truth_spans(truth)
    assert {
        m.user_id: Span(followed_at=m.followed_at, unfollowed_at=m.unfollowed_at)
        for m in members.values()
        if m.followed_at is not None
    } == truly
    spans = spans_of(list(members.values()))
    assert cohort_retention(spans, now=end) == cohort_retention(list(truly.values()), now=end)
    table = cohort_retention(spans, now=end)
    assert len(table) == 2 and table[0].retained[1] is not None  # a checkpoint to compare
