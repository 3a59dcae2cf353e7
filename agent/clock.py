"""The one clock seam: real time for the daemon, virtual time for the simulator.

Logic never reads the wall clock; it takes ``now`` from a :class:`Clock`, so the exact same cycle
code runs in real time and in simulated time.

Three clocks:

- :class:`SystemClock`: wall-clock UTC (the daemon);
- :class:`VirtualClock`: jumps to whatever it is told (the simulator: no real waiting at all);
- :class:`ScaledClock`: compressed real time, ``start + (wall time - epoch) x factor``: the real
  daemon, scheduler and all, with a simulated hour passing in ``3600 / factor`` real seconds (the
  scale benchmark, ``bench/scale.py``). Several processes given the same ``start``, ``factor``
  and ``epoch`` (a Unix time) read the same simulated time. Only ``now()`` and
  ``sleep_until()`` are scaled: an interval the daemon waits in real seconds
  (``runtime.tick`` for APScheduler) must be divided by ``factor`` by whoever configures it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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


class ScaledClock:
    """Compressed real time: ``start + (wall() - epoch) * factor``.

    ``epoch`` is the Unix time (``time.time()``) at which the clock reads ``start``; default: the
    moment it is built. Sleeping until a simulated moment waits ``1 / factor`` of the simulated
    delay in real seconds.
    """

    def __init__(
        self,
        *,
        start: datetime,
        factor: float,
        epoch: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware datetime")
        if not factor > 0:
            raise ValueError(f"factor must be positive, got {factor!r}")
        self._start = start.astimezone(UTC)
        self._factor = float(factor)
        self._wall = wall
        self._epoch = wall() if epoch is None else float(epoch)

    @property
    def factor(self) -> float:
        return self._factor

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def epoch(self) -> float:
        return self._epoch

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._wall() - self._epoch) * self._factor)

    def at(self, wall: float) -> datetime:
        """The simulated moment of the Unix time ``wall``."""
        return self._start + timedelta(seconds=(wall - self._epoch) * self._factor)

    def wall_at(self, when: datetime) -> float:
        """The Unix time at which the clock reads ``when``."""
        return self._epoch + (when - self._start).total_seconds() / self._factor

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds() / self._factor
        if delay > 0:
            await asyncio.sleep(delay)
