"""The circuit breaker (agent/breaker.py) in virtual time on the sandbox: what suspends an account,
what a suspension stops, and what lifts it; /healthz, `growthloop health` and
`growthloop resume --account` show and lift it."""

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

from agent import breaker
from agent.bootstrap import open_store
from agent.cycles.publish import NO_PUBLISH_ENV
from agent.daemon import Daemon
from agent.errors import AuthFailed, ContentRejected, PlatformUnavailable
from agent.models import PostStatus
from agent.store.schema import content
from tests.acceptance.conftest import STORE, example_config, run_cli, write_config
from tests.conftest import T0
from tests.integration.contract.factories import suspend
from tests.unit.vt_harness import Harness, make_harness

MINUTE = timedelta(minutes=1)
DEMO_VARIABLES = ["DEMO_X_API_KEY", "DEMO_X_API_SECRET", "DEMO_X_ACCESS_TOKEN"]


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.delenv(NO_PUBLISH_ENV, raising=False)
    async with make_harness(tmp_path) as h:
        yield h


async def events(harness: Harness, *names: str) -> None:
    await harness.run_cycles(*names)


def named(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


async def publish_due(harness: Harness) -> None:
    (post,) = await harness.with_status(PostStatus.PLANNED)
    harness.clock.advance_to(max(post.scheduled_for, harness.clock.now()))
    await harness.run_cycles("publish")


async def test_auth_failed_at_publish_suspends_the_account_and_stops_its_planning(
    harness: Harness,
) -> None:
    await harness.run_cycles("plan")
    harness.world.inject_fault("auth_failed", count=2, account="demo")  # snapshot + publish
    with capture_logs() as logs:
        await publish_due(harness)
        for _ in range(3):  # later ticks, before the next credentials read: nothing happens
            harness.clock.advance_to(harness.clock.now() + 4 * MINUTE)
            await harness.run_cycles("plan", "publish")

    assert await harness.statuses() == [PostStatus.FAILED]
    assert harness.world_posts() == []
    (held,) = await harness.store.suspensions(now=harness.clock.now())
    assert (held.account, held.reason, held.error_kind, held.until) == (
        "demo",
        "auth",
        "AuthFailed",
        None,
    )
    (logged,) = named(logs, "account_suspended")
    assert (logged["account"], logged["platform"], logged["reason"]) == ("demo", "sandbox", "auth")
    assert logged["variables"] == []  # the sandbox has no credentials
    failed = named(logs, "post_publish_failed")
    assert failed[0]["account"] == "demo" and failed[0]["error_type"] == "AuthFailed"


async def test_a_streak_of_one_failure_kind_suspends_for_the_cool_down_then_planning_resumes(
    harness: Harness,
) -> None:
    await harness.run_cycles("plan")
    harness.world.inject_fault("publish_error", count=3, account="demo")
    with capture_logs() as logs:
        for _ in range(3):  # PlatformUnavailable, requeued after publish_retry_after each time
            await publish_due(harness)
    tripped_at = harness.clock.now()

    (held,) = await harness.store.suspensions(now=tripped_at)
    cool_down = harness.agent.config.failsafe.cool_down
    assert (held.reason, held.error_kind, held.until) == (
        "failures",
        "PlatformUnavailable",
        tripped_at + cool_down,
    )
    assert len(named(logs, "account_suspended")) == 1
    assert await harness.statuses() == [PostStatus.FAILED]  # its third attempt

    harness.clock.advance_to(tripped_at + cool_down - MINUTE)
    await harness.run_cycles("plan")
    assert await harness.statuses() == [PostStatus.FAILED]  # still cooling down: no draft

    harness.clock.advance_to(tripped_at + cool_down)
    await harness.run_cycles("plan")
    assert await harness.statuses() == [PostStatus.FAILED, PostStatus.PLANNED]
    await publish_due(harness)
    assert await harness.statuses() == [PostStatus.FAILED, PostStatus.POSTED]


async def test_failures_of_different_kinds_or_a_success_between_do_not_add_up(
    harness: Harness,
) -> None:
    agent, now = harness.agent, harness.clock.now()
    account = agent.config.accounts[0]
    for exc in (ContentRejected("a"), ContentRejected("b"), PlatformUnavailable("c")):
        await breaker.publish_failed(agent, account, exc, now)
    await breaker.publish_failed(agent, account, PlatformUnavailable("d"), now)
    breaker.publish_succeeded(agent, agent.account_ids[account.name])
    await breaker.publish_failed(agent, account, PlatformUnavailable("e"), now)
    assert await harness.store.suspensions() == []

    await breaker.publish_failed(agent, account, PlatformUnavailable("f"), now)
    await breaker.publish_failed(agent, account, PlatformUnavailable("g"), now)
    assert [s.error_kind for s in await harness.store.suspensions()] == ["PlatformUnavailable"]


async def test_a_failure_streak_of_zero_turns_the_streak_breaker_off(tmp_path: Path) -> None:
    async with make_harness(tmp_path, failsafe={"failure_streak": 0}) as h:
        account = h.agent.config.accounts[0]
        for _ in range(10):
            await breaker.publish_failed(h.agent, account, ContentRejected("no"), T0)
        assert await h.store.suspensions() == []
        await breaker.publish_failed(h.agent, account, AuthFailed("401"), T0)  # still suspends
        assert [s.reason for s in await h.store.suspensions()] == ["auth"]


async def test_the_periodic_write_access_read_lifts_an_auth_suspension(harness: Harness) -> None:
    agent = harness.agent
    account = agent.config.accounts[0]
    await breaker.suspend(agent, account, AuthFailed("401"), T0, reason=breaker.AUTH)
    every = agent.config.failsafe.credentials_check

    harness.clock.advance_to(T0 + every - MINUTE)
    await harness.run_cycles("publish", "plan")
    assert len(await harness.store.suspensions()) == 1 and await harness.posts() == []

    harness.clock.advance_to(T0 + every)
    with capture_logs() as logs:
        await harness.run_cycles("publish", "plan")
    assert await harness.store.suspensions() == []
    (resumed,) = named(logs, "account_resumed")
    assert (resumed["account"], resumed["cause"]) == ("demo", "write_access_ok")
    assert await harness.statuses() == [PostStatus.PLANNED]


async def test_credentials_that_changed_lift_an_auth_suspension_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x_account = {**example_config()["accounts"][0], "platform": "x", "secrets_prefix": "DEMO"}
    for name in [*DEMO_VARIABLES, "DEMO_X_ACCESS_TOKEN_SECRET"]:
        monkeypatch.setenv(name, "old")
    async with make_harness(tmp_path, accounts=[x_account]) as h:  # a sandbox adapter behind it
        account = h.agent.config.accounts[0]
        await breaker.suspend(h.agent, account, AuthFailed("401"), T0, reason=breaker.AUTH)
        (held,) = await h.store.suspensions()
        assert held.fingerprint == breaker.fingerprint(account) and "old" not in held.fingerprint

        with capture_logs() as logs:
            await h.agent.setup()  # a restart with the same credentials
        assert len(await h.store.suspensions()) == 1
        (still,) = named(logs, "account_still_suspended")
        assert still["variables"] == [*DEMO_VARIABLES, "DEMO_X_ACCESS_TOKEN_SECRET"]

        monkeypatch.setenv("DEMO_X_ACCESS_TOKEN", "new")
        with capture_logs() as logs:
            await h.agent.setup()  # a restart after the token was replaced
        assert await h.store.suspensions() == []
        assert [e["cause"] for e in named(logs, "account_resumed")] == ["credentials_changed"]


async def test_healthz_lists_the_suspended_accounts(harness: Harness) -> None:
    daemon = Daemon(harness.agent)

    async def body() -> dict[str, Any]:
        response = await daemon.healthz(cast(web.Request, None))
        assert response.text is not None
        found: dict[str, Any] = json.loads(response.text)
        return found

    assert (await body())["suspended"] == []
    account = harness.agent.config.accounts[0]
    await breaker.suspend(harness.agent, account, AuthFailed("401"), T0, reason=breaker.AUTH)
    assert (await body())["suspended"] == [
        {
            "account": "demo",
            "platform": "sandbox",
            "reason": "auth",
            "error_type": "AuthFailed",
            "since": T0.isoformat(),
            "until": None,
        }
    ]


@pytest.mark.slow
async def test_health_shows_and_resume_account_lifts_a_suspension(tmp_path: Path) -> None:
    x_account = {**example_config()["accounts"][0], "platform": "x", "secrets_prefix": "DEMO"}
    config = write_config(
        tmp_path / "c.yaml", accounts=[x_account], store={"sqlite_path": str(STORE)}
    )
    (tmp_path / STORE).parent.mkdir(parents=True)
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / STORE}", auto_migrate=True)
    try:
        demo = await store.ensure_account(name="demo", platform="x", handle=None, now=T0)
        await suspend(store, demo)
    finally:
        await store.close()

    health = run_cli("health", "--config", config, cwd=tmp_path)
    assert health.returncode == 0, health.stderr
    assert "Suspended accounts" in health.stdout and "AuthFailed" in health.stdout
    assert "DEMO_X_API_KEY" in health.stdout and "resume --account" in health.stdout

    unknown = run_cli("resume", "--account", "nobody", "--config", config, cwd=tmp_path)
    assert unknown.returncode == 2 and "No account 'nobody'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    resumed = run_cli("resume", "--account", "demo", "--config", config, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "account 'demo' resumed" in resumed.stdout and "AuthFailed" in resumed.stdout
    again = run_cli("resume", "--account", "demo", "--config", config, cwd=tmp_path)
    assert "was not suspended" in again.stdout

    health = run_cli("health", "--config", config, cwd=tmp_path)
    assert "Suspended accounts: none" in health.stdout
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / STORE}", auto_migrate=False)
    try:
        assert await store.suspensions() == []
        async with store.engine.connect() as conn:  # nothing else changed
            assert await conn.scalar(sa.select(sa.func.count()).select_from(content)) == 0
    finally:
        await store.close()
