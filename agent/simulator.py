"""Simulated time: the same cycles, against the sandbox, on a virtual clock.

The clock jumps straight to the next moment anything is due (a queued post, a snapshot, an
account poll, the end of an hour), runs the cycles in order, and repeats. Thirty simulated days
take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.clock import VirtualClock
from agent.core import Agent, hour_floor
from agent.cycles import CYCLES, reconcile_cycle

MIN_STEP = timedelta(seconds=1)


@dataclass
class SimulationResult:
    start: datetime
    end: datetime
    steps: int
    counts: dict[str, int] = field(default_factory=dict)


async def next_event(agent: Agent, now: datetime) -> datetime:
    pending = await agent.store.pending_work(now)
    candidates = [hour_floor(now) + timedelta(hours=1)]
    for key in ("next_post_at", "next_poll_at"):
        if pending[key] is not None:
            candidates.append(pending[key])
    every = agent.config.polling.account_every
    for account_id in agent.account_ids.values():
        last = await agent.store.last_account_snapshot(account_id)
        candidates.append(now if last is None else last.taken_at + every)
    return max(min(candidates), now + MIN_STEP)


async def run_until(
    agent: Agent,
    clock: VirtualClock,
    end: datetime,
    *,
    progress: Callable[[datetime], None] | None = None,
) -> SimulationResult:
    start = clock.now()
    await agent.setup()
    await reconcile_cycle(agent, clock.now())
    steps = 0
    while clock.now() < end:
        now = clock.now()
        for name, cycle in CYCLES.items():
            await cycle(agent, now)
            agent.stats.last_run[name] = now
        steps += 1
        if progress is not None:
            progress(now)
        clock.advance_to(min(await next_event(agent, now), end))
    counts: dict[str, Any] = await agent.store.counts()
    return SimulationResult(start=start, end=clock.now(), steps=steps, counts=counts)
