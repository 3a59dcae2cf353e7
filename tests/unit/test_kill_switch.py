"""The kill switch: `growthloop pause`/`resume` and GROWTHLOOP_NO_PUBLISH, in virtual time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiohttp import web
from structlog.testing import capture_logs

from agent.bootstrap import open_store
from agent.cycles.publish import NO_PUBLISH_ENV, STALE_AFTER, publish_cycle
from agent.daemon import Daemon
from agent.models import PostStatus
from agent.store.schema import content, runtime_state
from tests.acceptance.conftest import STORE, run_cli, write_config
from tests.conftest import T0
from tests.unit.vt_harness import Harness, make_harness


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.delenv(NO_PUBLISH_ENV, raising=False)
    async with make_harness(tmp_path) as h:
        yield h


async def test_paused_publish_cycle_sends_nothing_and_resume_publishes(harness: Harness) -> None:
    await harness.run_cycles("plan")
    assert await harness.statuses() == [PostStatus.PLANNED]
    await harness.store.set_paused(True, reason="maintenance", by="test", now=harness.clock.now())

    with capture_logs() as logs:
        for _ in range(3):  # due all along, never sent
            harness.clock.advance_to(harness.clock.now() + timedelta(minutes=5))
            assert await publish_cycle(harness.agent, harness.clock.now()) == 0

    assert harness.world_posts() == []
    assert await harness.statuses() == [PostStatus.PLANNED]
    paused = [e for e in logs if e["event"] == "publishing_paused"]
    assert len(paused) == 3  # once per cycle
    assert {(e["reason"], e["due"]) for e in paused} == {("maintenance", 1)}
    assert not any(e["event"] == "post_published" for e in logs)

    await harness.store.set_paused(False, reason="resumed", by="test", now=harness.clock.now())
    await harness.run_cycles("publish")

    assert len(harness.world_posts()) == 1
    assert await harness.statuses() == [PostStatus.POSTED]


async def test_no_publish_environment_variable_keeps_the_worker_from_publishing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NO_PUBLISH_ENV, "1")
    with capture_logs() as logs:
        await harness.run_cycles("plan", "publish")

    assert harness.world_posts() == []
    assert await harness.statuses() == [PostStatus.PLANNED]
    (event,) = [e for e in logs if e["event"] == "publishing_paused"]
    assert NO_PUBLISH_ENV in event["reason"]

    monkeypatch.delenv(NO_PUBLISH_ENV)  # read at each cycle: no restart needed
    await harness.run_cycles("publish")
    assert len(harness.world_posts()) == 1


async def test_an_interrupted_publish_is_still_reconciled_while_paused(harness: Harness) -> None:
    await harness.run_cycles("plan")
    (post,) = await harness.rows(content)
    assert await harness.store.begin_publish(post.id, now=harness.clock.now())  # then a crash
    await harness.store.set_paused(True, reason="incident", by="test", now=harness.clock.now())
    harness.clock.advance_to(harness.clock.now() + STALE_AFTER + timedelta(minutes=1))

    with capture_logs() as logs:
        await harness.run_cycles("publish")

    assert [e["outcome"] for e in logs if e["event"] == "post_reconciled"] == ["requeued"]
    assert harness.world_posts() == []  # looked for, not sent again
    assert await harness.statuses() == [PostStatus.PLANNED]


async def test_healthz_reports_the_pause_and_its_reason(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = Daemon(harness.agent)
    request = cast(web.Request, None)

    async def body() -> dict[str, Any]:
        response = await daemon.healthz(request)
        assert response.status == 200
        assert response.text is not None
        found: dict[str, Any] = json.loads(response.text)
        return found

    assert (await body())["paused"] is False
    await harness.store.set_paused(True, reason="maintenance", by="test", now=T0)
    running = await body()
    assert (running["paused"], running["pause_reason"]) == (True, "maintenance")
    await harness.store.set_paused(False, reason="resumed", by="test", now=T0)
    monkeypatch.setenv(NO_PUBLISH_ENV, "1")
    running = await body()
    assert running["paused"] is True and NO_PUBLISH_ENV in running["pause_reason"]


@pytest.mark.slow
async def test_pause_and_resume_commands_flip_the_switch_in_the_store(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", store={"sqlite_path": str(STORE)})

    paused = run_cli("pause", "--reason", "maintenance", "--config", config, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert "publishing paused" in paused.stdout and "maintenance" in paused.stdout
    assert await switch(tmp_path / STORE) == ((True, "maintenance"), 1)

    resumed = run_cli("resume", "--config", config, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "publishing resumed" in resumed.stdout and "maintenance" in resumed.stdout
    assert await switch(tmp_path / STORE) == ((False, None), 1)

    again = run_cli("resume", "--config", config, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "not paused" in again.stdout


async def switch(db: Path) -> tuple[tuple[bool, str | None], int]:
    """The store's pause state and how many runtime_state rows hold it."""
    store = await open_store(f"sqlite+aiosqlite:///{db}", auto_migrate=False)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.scalar(sa.select(sa.func.count()).select_from(runtime_state))
        return await store.paused(), int(rows or 0)
    finally:
        await store.close()
