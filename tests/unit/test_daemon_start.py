"""What a starting daemon tells its operator: ``daemon_started`` (never a secret), where
``/healthz`` is, the deploy warnings (sandbox or SQLite on an ephemeral disk on Heroku/Railway)
and the periodic ``status`` line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from agent.config import load_config
from agent.daemon import Daemon
from agent.deploy_checks import deploy_warnings, store_kind
from agent.errors import ConfigError
from agent.status import health_command, healthz_url, read_status, until
from tests.conftest import EXAMPLE_CONFIG, T0, example_raw, make_config
from tests.unit.vt_harness import Harness, make_harness

PASSWORD = "s3cret-Passw0rd"
POSTGRES = f"postgresql+asyncpg://app:{PASSWORD}@db.example.test:6543/postgres"
X_ACCOUNT = {
    "name": "real",
    "platform": "x",
    "persona": "A pragmatic indie developer",
    "niche": "indie software",
    "topics": ["testing"],
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path) as h:
        yield h


async def _start_logs(
    harness: Harness, *, store_url: str, environ: dict[str, str]
) -> list[dict[str, Any]]:
    """The events a daemon logs from its start until it has stopped again."""
    daemon = Daemon(
        harness.agent,
        host="127.0.0.1",
        port=0,
        store_url=store_url,
        config_path=Path("config/prod.yaml"),
        environ=environ,
    )
    with capture_logs() as logs:
        running = asyncio.create_task(daemon.run(install_signals=False))
        for _ in range(200):
            if any(e["event"] == "daemon_started" for e in logs) or running.done():
                break
            await asyncio.sleep(0.05)
        daemon.stop()
        assert await running == 0
    return logs


def _one(logs: list[dict[str, Any]], event: str) -> dict[str, Any]:
    [found] = [e for e in logs if e["event"] == event]
    return found


async def test_daemon_started_names_mode_accounts_platforms_and_store_kind_but_no_secret(
    harness: Harness,
) -> None:
    logs = await _start_logs(harness, store_url=POSTGRES, environ={})

    started = _one(logs, "daemon_started")
    assert started["mode"] == "live"
    assert started["accounts"] == ["demo"]
    assert started["platforms"] == ["sandbox"]
    assert started["store"] == "postgresql"
    assert started["demo"] is False
    assert PASSWORD not in json.dumps(logs, default=str)
    assert "db.example.test" not in json.dumps(logs, default=str)
    hint = _one(logs, "health_endpoint")
    assert hint["url"] == f"http://127.0.0.1:{started['port']}/healthz"
    assert hint["command"] == "growthloop health --config config/prod.yaml"
    assert not [e for e in logs if e["event"] == "deploy_warning"]  # not on a host


async def test_sandbox_on_heroku_is_a_deploy_warning_postgres_is_not(harness: Harness) -> None:
    logs = await _start_logs(harness, store_url=POSTGRES, environ={"DYNO": "worker.1"})

    [warning] = [e for e in logs if e["event"] == "deploy_warning"]
    assert warning["log_level"] == "warning"
    assert (warning["problem"], warning["host"]) == ("sandbox_deployed", "heroku")
    assert "demo" in warning["detail"] and "platform: sandbox" in warning["detail"]


async def test_sqlite_on_a_heroku_dyno_is_a_deploy_warning(
    harness: Harness, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    logs = await _start_logs(harness, store_url=url, environ={"DYNO": "worker.1"})

    problems = sorted(e["problem"] for e in logs if e["event"] == "deploy_warning")
    assert problems == ["sandbox_deployed", "sqlite_ephemeral"]
    assert _one(logs, "daemon_started")["store"] == "sqlite"


@pytest.mark.parametrize(
    ("environ", "path", "expected"),
    [
        ({}, "/data/g.db", []),  # not on a host
        ({"DYNO": "worker.1"}, "/app/data/g.db", ["sqlite_ephemeral"]),
        ({"RAILWAY_ENVIRONMENT": "production"}, "/app/data/g.db", ["sqlite_ephemeral"]),
        (
            {"RAILWAY_PROJECT_ID": "p1", "RAILWAY_VOLUME_MOUNT_PATH": "/data"},
            "/app/data/g.db",
            ["sqlite_ephemeral"],
        ),
        ({"RAILWAY_PROJECT_ID": "p1", "RAILWAY_VOLUME_MOUNT_PATH": "/data"}, "/data/g.db", []),
    ],
)
def test_sqlite_on_an_ephemeral_disk_is_found_per_host(
    environ: dict[str, str], path: str, expected: list[str]
) -> None:
    config = make_config(accounts=[X_ACCOUNT])
    found = deploy_warnings(config, store_url=f"sqlite+aiosqlite:///{path}", environ=environ)
    assert [w.kind for w in found] == expected
    if found and "RAILWAY_VOLUME_MOUNT_PATH" in environ:
        assert "/data" in found[0].message  # names the volume to move the file into


def test_postgres_on_a_host_with_real_platforms_has_no_warning() -> None:
    config = make_config(accounts=[X_ACCOUNT])
    environ = {"DYNO": "worker.1", "RAILWAY_ENVIRONMENT": "production"}
    assert deploy_warnings(config, store_url=POSTGRES, environ=environ) == []


def test_supabase_url_without_database_url_warns_that_the_data_stays_in_sqlite() -> None:
    """SUPABASE_URL once selected the retired Supabase API store, and refused to start without
    DATABASE_URL; since it only serves report uploads, a store that falls back to the SQLite
    file says so at start (anywhere, not only on Heroku or Railway)."""
    config = make_config(accounts=[X_ACCOUNT])
    environ = {"SUPABASE_URL": "http://127.0.0.1:54321"}
    [warning] = deploy_warnings(config, store_url="sqlite+aiosqlite:///data/g.db", environ=environ)
    assert warning.kind == "supabase_not_the_store" and warning.host == "local"
    assert "DATABASE_URL" in warning.message and "data/g.db" in warning.message
    assert deploy_warnings(config, store_url=POSTGRES, environ=environ) == []
    assert deploy_warnings(config, store_url="sqlite+aiosqlite:///g.db", environ={}) == []
    assert deploy_warnings(config, store_url="", environ=environ) == []  # no URL given


def test_store_kind_is_the_backend_only() -> None:
    assert store_kind(POSTGRES) == "postgresql"
    assert store_kind("sqlite+aiosqlite:///data/g.db") == "sqlite"
    assert store_kind("not a url") == "unknown"


async def test_status_shows_the_next_post_the_snapshots_due_and_learning(
    harness: Harness,
) -> None:
    now = harness.clock.now()
    empty = await read_status(harness.agent, now=now, last_learning_at=None)
    assert (empty.posts_queued, empty.next_post_at, empty.posted) == (0, None, 0)

    await harness.run_cycles("plan")
    queued = await read_status(harness.agent, now=now, last_learning_at=None)
    assert queued.posts_queued == 1 and queued.next_post_at is not None
    fields = queued.as_log(now)
    assert fields["accounts"] == ["demo"]
    assert fields["next_post_at"] == queued.next_post_at.isoformat()

    [post] = await harness.posts()
    await harness.publish_when_due(post)
    later = harness.clock.now() + timedelta(hours=2)
    posted = await read_status(harness.agent, now=later, last_learning_at=T0)
    assert posted.posted == 1 and posted.posts_queued == 0
    assert posted.snapshots_due == 1  # the 1h poll is due; 4h and 24h are not
    assert posted.as_log(later)["last_learning_at"] == T0.isoformat()


def test_until_and_the_health_hints_read_as_a_person_would() -> None:
    assert until(None, T0) is None
    assert until(T0, T0) == "due now"
    assert until(T0 + timedelta(seconds=42), T0) == "in 42s"
    assert until(T0 + timedelta(minutes=4, seconds=5), T0) == "in 4m"
    assert until(T0 + timedelta(hours=2, minutes=5), T0) == "in 2h 5m"
    assert healthz_url("0.0.0.0", 8080) == "http://localhost:8080/healthz"
    assert healthz_url("::1", 8080) == "http://[::1]:8080/healthz"
    assert health_command(None) == "growthloop health"


def test_status_every_must_be_positive(tmp_path: Path) -> None:
    raw = example_raw()
    raw["runtime"]["status_every"] = "0s"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"runtime\.status_every: .*must be a positive duration"):
        load_config(path)
    assert load_config(EXAMPLE_CONFIG).runtime.status_every == timedelta(minutes=5)
