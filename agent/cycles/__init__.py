"""The daemon's cycles. Each is ``async def cycle(agent, now) -> int`` (units of work done).

They run in this order in simulated time, and as independent interval jobs in real time; each
reads its due work from the store, so any order and any restart converge to the same state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from agent.core import Agent
from agent.cycles.attribute import attribute_cycle
from agent.cycles.audience import audience_read_cycle
from agent.cycles.health import health_cycle
from agent.cycles.learn import learn_cycle
from agent.cycles.plan import plan_cycle
from agent.cycles.poll import followers_cycle, poll_cycle
from agent.cycles.publish import publish_cycle, reconcile_cycle

Cycle = Callable[[Agent, datetime], Awaitable[int]]

CYCLES: dict[str, Cycle] = {
    "plan": plan_cycle,
    "publish": publish_cycle,
    "poll": poll_cycle,
    "followers": followers_cycle,
    "audience": audience_read_cycle,
    "attribute": attribute_cycle,
    "learn": learn_cycle,
    "health": health_cycle,
}

__all__ = ["CYCLES", "Cycle", "reconcile_cycle"]
