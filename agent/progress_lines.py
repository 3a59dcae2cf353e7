"""Progress for long work when nobody watches a terminal: a plain line every few percent.

A rich progress bar draws only on a terminal. In a CI log, a pipe or a file a long
``growthloop simulate`` (or a benchmark) would say nothing for minutes; :class:`ProgressLines`
prints ``simulating: 25% (day 7.5/30), 4 s`` each time the work passes another ``every``
fraction of its total, and once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console

DEFAULT_EVERY = 0.05  # a line every 5 % of the work


@dataclass
class ProgressLines:
    console: Console
    label: str
    total: float
    every: float = DEFAULT_EVERY
    clock: Callable[[], float] = time.monotonic
    _started: float = field(init=False)
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        if self.total <= 0 or not 0 < self.every <= 1:
            raise ValueError("total must be positive and every in (0, 1]")
        self._started = self.clock()
        self._next = self.every

    def update(self, done: float, detail: str = "") -> None:
        """The work has reached ``done`` of ``total``: print a line if it passed a step."""
        fraction = min(max(done / self.total, 0.0), 1.0)
        if self._next == float("inf") or (fraction < self._next and fraction < 1.0):
            return  # 100 % already said, or no new step passed
        while self._next <= fraction:
            self._next += self.every
        if fraction >= 1.0:
            self._next = float("inf")  # 100 % is said once
        elapsed = self.clock() - self._started
        where = f" ({detail})" if detail else ""
        self.console.print(
            f"{self.label}: {fraction:.0%}{where}, {elapsed:.0f} s", highlight=False, soft_wrap=True
        )
