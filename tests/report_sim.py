"""A sandbox simulation in virtual time for the report tests: the real cycles, an in-memory
store, one or more accounts; returns what the report reads (store, config, truth, period)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.config import Config
from agent.simulator import run_until
from tests.conftest import example_raw

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, as `growthloop simulate` starts


@dataclass
class Simulated:
    built: Any
    config: Config
    start: datetime
    end: datetime

    @property
    def store(self) -> Any:
        return self.built.store

    @property
    def truth(self) -> Any:
        return self.built.world.ground_truth()


def report_config(accounts: int = 1, posts_per_day: int = 3) -> Config:
    return Config.model_validate(report_raw(accounts, posts_per_day))


def report_raw(accounts: int = 1, posts_per_day: int = 3) -> dict[str, Any]:
    """The example config with ``accounts`` sandbox accounts; time-window attribution only
    (the deconvolution fit is most of a month's simulated time, and the report shows either)."""
    raw = example_raw()
    first = raw["accounts"][0]
    raw["accounts"] = [
        {**copy.deepcopy(first), "name": "demo" if i == 0 else f"demo{i + 1}"}
        for i in range(accounts)
    ]
    raw["cadence"] = {**raw["cadence"], "posts_per_day": posts_per_day}
    raw["learning"] = {
        **raw["learning"],
        "attribution_method": "time_window",
        "compare_attribution": False,
    }
    return raw


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors are logged (a month of debug events costs seconds), the configuration put
    back afterwards so that no other test sees it."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(**saved)


async def simulate(tmp: Path, *, days: float, accounts: int = 1, seed: int = 1) -> Simulated:
    with quiet_logs():
        return await _simulate(tmp, days=days, accounts=accounts, seed=seed)


async def _simulate(tmp: Path, *, days: float, accounts: int, seed: int) -> Simulated:
    config = report_config(accounts)
    clock = VirtualClock(START)
    built = await build(
        config,
        clock=clock,
        seed=seed,
        sqlite_path=tmp / "sim.db",
        world_in_memory=True,
        store="memory",
    )
    result = await run_until(built.agent, clock, START + timedelta(days=days))
    return Simulated(built=built, config=config, start=result.start, end=result.end)
