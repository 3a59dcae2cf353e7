"""The sandbox's simulated network latency (``platform.latency_ms`` / ``read_latency_ms``).

Only lower bounds on elapsed time are asserted (asyncio never wakes a sleep early), so a slow
machine cannot fail these tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from adapters.sandbox import SandboxWorld, Scenario
from agent.errors import ConfigError

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def scenario(tmp_path: Path, **platform: float) -> Scenario:
    path = tmp_path / "latency.yaml"
    path.write_text(yaml.safe_dump({"extends": "default", "platform": platform}))
    return Scenario.load(path)


def loop_clock() -> Callable[[], datetime]:
    """The sandbox's ``now``: START plus the event loop's elapsed time."""
    loop = asyncio.get_running_loop()
    zero = loop.time()
    return lambda: START + timedelta(seconds=loop.time() - zero)


def test_latency_is_off_by_default() -> None:
    platform = Scenario.load("default").platform
    assert platform.latency_ms == 0 and platform.read_latency_ms == 0


def test_a_negative_latency_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platform\.latency_ms"):
        scenario(tmp_path, latency_ms=-5)


async def test_publish_waits_half_the_latency_before_the_post_and_half_after(
    tmp_path: Path,
) -> None:
    now = loop_clock()
    with SandboxWorld(scenario(tmp_path, latency_ms=400), seed=1, start=START) as world:
        platform = world.platform("acct", now=now)
        began = now()
        post = await platform.publish("hello there, a first post", idempotency_key="k1")
        ended = now()
    assert post.posted_at - began >= timedelta(seconds=0.2)  # the request on its way
    assert ended - post.posted_at >= timedelta(seconds=0.2)  # the answer on its way back


async def test_reads_wait_the_read_latency(tmp_path: Path) -> None:
    now = loop_clock()
    with SandboxWorld(scenario(tmp_path, read_latency_ms=150), seed=1, start=START) as world:
        platform = world.platform("acct", now=now)
        posted = await platform.publish("hello there, a first post", idempotency_key="k1")
        for read in (
            platform.fetch_account(),
            platform.fetch_metrics([posted.platform_post_id]),
            platform.find_recent(since=START),
        ):
            began = now()
            await read
            assert now() - began >= timedelta(seconds=0.15)
