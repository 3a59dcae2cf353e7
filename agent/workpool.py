"""Bounded concurrency for the cycles: one piece of work per item, at most ``limit`` at once.

:func:`each` starts ``limit`` workers (never more than there are items) that take the items in
order, so a thousand due posts cost a handful of tasks, not a thousand. Results come back in the
items' order.

Errors: a cycle that meets an error stops, as a serial loop would, but without cutting off work
already under way: once a piece of work has raised, no worker takes another item, the pieces in
flight finish (a publish that has reached the platform is recorded), and then the first error is
raised. Cancelling the caller (the daemon's forced shutdown) cancels the workers with it.

``limit`` 1, or a single item, runs the work in a plain loop in the caller's task: the order of
everything the work does (the random draws of planning, the simulated platform's draws) is then
exactly the serial order, whatever the store's I/O does (see :attr:`agent.core.Agent.serial`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


async def each(items: Sequence[_T], work: Callable[[_T], Awaitable[_R]], *, limit: int) -> list[_R]:
    """``[await work(item) for item in items]`` with at most ``limit`` running at once."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if limit == 1 or len(items) <= 1:
        return [await work(item) for item in items]
    results: dict[int, _R] = {}
    errors: list[Exception] = []
    todo = iter(enumerate(items))

    async def worker() -> None:
        for index, item in todo:  # one shared iterator: each item is taken by one worker
            if errors:
                return
            try:
                results[index] = await work(item)
            except Exception as exc:  # re-raised below, once the others have finished
                errors.append(exc)
                return

    async with asyncio.TaskGroup() as group:
        for n in range(min(limit, len(items))):
            group.create_task(worker(), name=f"worker-{n}")
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(items))]
