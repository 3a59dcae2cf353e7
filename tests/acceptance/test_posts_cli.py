"""``growthloop posts`` against a running ``growthloop run``, on SQLite and on PostgreSQL.

The daemon runs in compressed real time on the sandbox (tests/acceptance/conftest.py): the first
post goes out at once and the next one is queued for later (the cadence's spacing). The operator
pauses publishing, moves that queued post to now with ``posts reschedule --at now`` (the paused
publish cycle then reads it as due on every tick), cancels it with ``posts cancel`` and resumes:
the daemon's publish cycle runs on, unpaused, and the post stays ``cancelled``, the platform
never gets it and no ``post_published`` names it. Had the cancel not held, the first tick after
``resume`` would have sent it. Then the refusals an operator meets, as they read them. (The race
of a cancel between the publish cycle's read and its claim is pinned by the store's contract
tests, tests/integration/contract/test_queue.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import (
    STORE,
    WORLD,
    Daemon,
    cli_env,
    free_port,
    query,
    realtime_overrides,
    run_cli,
    store_time,
    write_config,
    write_scenario,
)
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.slow

WAIT = 45  # s: bounded waits, generous for a loaded 2-core machine
AFTER = timedelta(seconds=3)  # the daemon runs on this long after the cancel (6 publish ticks)
REASON = "off-brand, dropped by the operator"
CONTENT = (
    "SELECT id, status, text, idempotency_key, publish_attempts, publish_started_at, error,"
    " scheduled_for FROM content ORDER BY id"
)


class Database:
    """Where the daemon's store is (SQLite file or PostgreSQL URL), read as an operator would."""

    def __init__(self, cwd: Path, url: str | None) -> None:
        self.cwd, self.url = cwd, url

    @property
    def env(self) -> dict[str, str]:
        return cli_env(DATABASE_URL=self.url) if self.url else cli_env()

    async def content(self) -> list[dict[str, Any]]:
        if self.url is None:
            found = query(self.cwd / STORE, CONTENT) or []
            for r in found:
                r["scheduled_for"] = store_time(r["scheduled_for"])
            return found
        conn = await asyncpg.connect(self.url, timeout=5)
        try:
            return [dict(r) for r in await conn.fetch(CONTENT)]
        finally:
            await conn.close()

    async def row(self, content_id: int) -> dict[str, Any]:
        [found] = [r for r in await self.content() if r["id"] == content_id]
        return found


@asynccontextmanager
async def database(backend: str, cwd: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        yield Database(cwd, None)
        return
    async with fresh_pg_database() as url:
        yield Database(cwd, url)


async def wait_until(
    probe: Callable[[], Any], *, daemon: Daemon, what: str, within: float = WAIT
) -> Any:
    deadline = time.monotonic() + within
    while not (found := await probe()):
        daemon.assert_alive()
        if time.monotonic() > deadline:
            print(daemon.log_tail(60))
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.25)
    return found


def posts(*args: str | Path, db: Database, config: Path) -> Any:
    return run_cli("posts", *args, "--config", config, cwd=db.cwd, env=db.env)


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of each row of a rich table as printed (a row is one line: `posts list` never
    wraps a cell)."""
    return [
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in stdout.splitlines()
        if "│" in line
    ]


def world_texts(cwd: Path) -> list[str]:
    return [r["text"] for r in query(cwd / WORLD, "SELECT text FROM posts") or []]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_cancelled_queued_post_never_publishes_while_the_daemon_runs(
    tmp_path: Path, daemons: Callable[..., Daemon], backend: str
) -> None:
    scenario = write_scenario(tmp_path / "scenario.yaml")
    config = write_config(tmp_path / "growthloop.yaml", **realtime_overrides(scenario, free_port()))
    async with database(backend, tmp_path) as db:
        if db.url is not None:
            migrated = run_cli("migrate", "--config", config, cwd=tmp_path, env=db.env)
            assert migrated.returncode == 0, migrated.stderr
        daemon = daemons(config, env={"DATABASE_URL": db.url} if db.url else None)
        daemon.wait_started()

        async def queued() -> dict[str, Any] | None:
            rows = await db.content()
            first_out = any(r["status"] == "posted" for r in rows)
            waiting = [r for r in rows if r["status"] == "planned"]
            return waiting[0] if first_out and waiting else None

        post = await wait_until(queued, daemon=daemon, what="a posted post and a queued one")
        pid = post["id"]
        assert post["scheduled_for"] > datetime.now(UTC) + timedelta(minutes=1), post

        listed = posts("list", db=db, config=config)
        assert listed.returncode == 0, listed.stderr
        assert [str(pid), "demo", "planned"] in [r[:3] for r in table_rows(listed.stdout)]

        # The operator holds publishing and makes the post due at once: the daemon's publish
        # cycle reads it as due on every tick (and, paused, sends nothing), so the cancel below
        # meets a post the daemon is about to send, however slowly this machine runs.
        cli = {"cwd": tmp_path, "env": db.env}
        paused = run_cli("pause", "--reason", "reviewing the queue", "--config", config, **cli)
        assert paused.returncode == 0, paused.stderr
        moved = posts("reschedule", str(pid), "--at", "now", db=db, config=config)
        assert moved.returncode == 0, moved.stderr
        assert f"rescheduled post {pid} to" in moved.stdout
        assert (await db.row(pid))["scheduled_for"] <= datetime.now(UTC)
        seen = len(daemon.events("publishing_paused"))

        async def read_as_due() -> bool:
            return any(e["due"] >= 1 for e in daemon.events("publishing_paused")[seen:])

        await wait_until(read_as_due, daemon=daemon, what="the publish cycle to see the post due")

        cancelled = posts("cancel", str(pid), "--reason", REASON, db=db, config=config)
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"cancelled post {pid} ({REASON})" in cancelled.stdout
        resumed = run_cli("resume", "--config", config, **cli)
        assert resumed.returncode == 0, resumed.stderr
        resumed_at = datetime.now(UTC)

        # the daemon's publish cycle runs on, unpaused, for a few ticks
        async def publish_ran_since() -> bool:
            ran = (daemon.healthz() or {}).get("last_run", {}).get("publish")
            return ran is not None and datetime.fromisoformat(ran) > resumed_at + AFTER

        await wait_until(publish_ran_since, daemon=daemon, what="publish cycles after resume")

        after = await db.row(pid)
        assert after["status"] == "cancelled", daemon.log_tail()
        assert after["error"] == REASON
        assert (after["publish_attempts"], after["publish_started_at"]) == (0, None)
        assert post["text"] not in world_texts(tmp_path)
        assert world_texts(tmp_path), "the daemon published nothing at all"
        assert pid not in [e["content_id"] for e in daemon.events("post_published")]
        assert not daemon.events("cycle_crashed"), daemon.log_tail()

        # what an operator reads afterwards
        shown = posts("show", str(pid), db=db, config=config)
        assert shown.returncode == 0, shown.stderr
        assert "cancelled" in shown.stdout and REASON in shown.stdout
        assert post["text"].split()[0] in shown.stdout
        history = posts("list", "--status", "cancelled", db=db, config=config)
        assert history.returncode == 0, history.stderr
        assert [[str(pid), "demo", "cancelled"]] == [r[:3] for r in table_rows(history.stdout)]
        again = posts("cancel", str(pid), db=db, config=config)
        assert again.returncode == 0 and "already cancelled" in again.stdout, again.stdout

        rows = await db.content()
        posted = [r for r in rows if r["status"] == "posted"]
        assert len(posted) == 1, (rows, daemon.log_tail())
        published = posted[0]
        refusals = {
            ("cancel", str(published["id"])): "already posted",
            ("reschedule", str(pid), "--at", "now"): "only a queued (planned) post",
            ("show", "999999"): "There is no post with id 999999",
            ("cancel", "abc"): "'abc' is not a post id",
            ("list", "--account", "nobody"): "no account named 'nobody'",
        }
        for args, message in refusals.items():
            refused = posts(*args, db=db, config=config)
            assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
            assert message in refused.stderr, (args, refused.stderr)
            assert "Traceback" not in refused.stderr
            assert len(refused.stderr.strip().splitlines()) <= 3, refused.stderr
        assert (await db.row(published["id"]))["status"] == "posted"

        assert daemon.terminate() == 0
