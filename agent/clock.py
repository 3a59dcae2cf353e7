"""The one clock seam: real time for the daemon, virtual time for the simulator.

Logic never reads the wall clock; it takes ``now`` from a :class:`Clock`, so the exact same cycle
code runs in real time and in simulated time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """Simulated time: it only moves when told to, and sleeping jumps straight to the target."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when.astimezone(UTC)

    async def sleep_until(self, when: datetime) -> None:
        self.advance_to(when)
