"""Simulated time: the same cycles, against the sandbox, on a virtual clock.

The clock jumps straight to the next moment anything is due (a queued post, a snapshot, an
account poll, the end of an hour), runs the cycles in order, and repeats. Thirty simulated days
take seconds. The agent runs serially (:attr:`agent.core.Agent.serial`), so a run is the same
whatever the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.budget import Stage
from agent.clock import VirtualClock
from agent.core import Agent, hour_floor
from agent.cycles import CYCLES, reconcile_cycle
from agent.cycles.poll import first_reading_for, reading_interval_for
from agent.reading import next_reading_at

MIN_STEP = timedelta(seconds=1)


@dataclass
class SimulationResult:
    start: datetime
    end: datetime
    steps: int
    counts: dict[str, int] = field(default_factory=dict)


# Which cycles a step runs, by what fell due. Every step runs at least "poll".
STEP_CYCLES = {
    "post": ("publish", "plan"),
    "snapshot": ("poll", "attribute", "learn"),
    "account": ("followers",),
    # publish too: a post held past its time (see next_event) goes out at the hour after
    "hour": ("publish", "plan", "poll", "followers", "audience", "attribute", "learn", "health"),
}
ORDER = (  # in one step
    "publish",
    "plan",
    "poll",
    "followers",
    "audience",
    "attribute",
    "learn",
    "health",
)
QUEUE_CHANGERS = {"plan", "publish", "poll"}  # cycles that can move the next post or snapshot


async def next_event(
    agent: Agent, now: datetime, queue: tuple[datetime | None, datetime | None] | None = None
) -> tuple[datetime, set[str]]:
    """When the next thing falls due, and what kinds of thing fall due then.

    ``queue``: the store's (next post, next snapshot) when the caller knows them unchanged.
    """
    next_post, next_poll = queue if queue is not None else await agent.store.next_due()
    candidates: list[tuple[datetime, str]] = [(hour_floor(now) + timedelta(hours=1), "hour")]
    # A post due before this step that the step's publish cycle left queued is held (its
    # account suspended, publishing paused): it wakes nothing; the hour or another event will.
    # Without this the clock crept forward one MIN_STEP at a time while it was held.
    if next_post is not None and next_post >= now:
        candidates.append((next_post, "post"))
    if next_poll is not None:
        candidates.append((next_poll, "snapshot"))
    for account_id in agent.account_ids.values():
        if agent.spend.stage(account_id) >= Stage.NO_PERIODIC_READS:
            continue  # the monthly platform budget stopped its periodic reads
        last = agent.last_account_poll.get(account_id)
        interval = reading_interval_for(agent, account_id)
        first = first_reading_for(agent, account_id, interval)
        due_at = next_reading_at(last, interval, now, first=first)
        blocked = agent.reads_blocked_until.get(account_id)
        candidates.append((max(due_at, blocked) if blocked else due_at, "account"))
    when = max(min(c[0] for c in candidates), now + MIN_STEP)
    return when, {kind for at, kind in candidates if at <= when}


async def run_until(
    agent: Agent,
    clock: VirtualClock,
    end: datetime,
    *,
    progress: Callable[[datetime], None] | None = None,
) -> SimulationResult:
    start = clock.now()
    # one account at a time: virtual time gains nothing from overlapping I/O, and the random
    # draws (planning's, the sandbox's) then come in account order on every store
    agent.serial = True
    await agent.setup()
    await reconcile_cycle(agent, clock.now())
    steps = 0
    due: set[str] = set(STEP_CYCLES)  # the first step runs everything
    queue: tuple[datetime | None, datetime | None] | None = None
    while clock.now() < end:
        now = clock.now()
        wanted = {name for kind in due for name in STEP_CYCLES[kind]}
        for name in ORDER:
            if name in wanted:
                with agent.metrics.time_cycle(name):
                    await CYCLES[name](agent, now)
                agent.stats.last_run[name] = now
        steps += 1
        if progress is not None:
            progress(now)
        if wanted & QUEUE_CHANGERS:
            queue = await agent.store.next_due()
        when, due = await next_event(agent, now, queue)
        clock.advance_to(min(when, end))
    counts: dict[str, Any] = await agent.store.counts()
    return SimulationResult(start=start, end=clock.now(), steps=steps, counts=counts)
