"""PostgreSQL access cut off mid-run and restored: nothing the platform has is missing after.

A real ``growthloop run`` works on a fresh PostgreSQL database as its own LOGIN role. While it
is publishing (the sandbox holds each publish open for a few seconds), a superuser turns the
role into NOLOGIN and terminates its connections: the post in flight reaches the platform while
the database is unreachable, so it can only be recorded through the publish journal, and the
snapshots of the post published just before fall due during the outage. Then the role may log
in again, and the daemon, which never stopped, must catch up on its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import upgrade
from tests.acceptance.conftest import (
    HORIZONS_S,
    WORLD,
    Daemon,
    cli_env,
    free_port,
    growthloop_command,
    query,
    realtime_overrides,
    write_config,
    write_scenario,
)
from tests.conftest import PG_URL, fresh_pg_database, require_postgres

pytestmark = pytest.mark.slow

HOLD_S = 3.0  # the sandbox holds every publish open this long (real seconds)
TIMEOUT = 45.0  # s: bounded waits, generous for a loaded 2-core machine
JOURNAL = Path("data/publish-journal.jsonl")  # runtime.journal_path's default, under the cwd
T = TypeVar("T")


class PostgresDaemon(Daemon):
    """``growthloop run`` with DATABASE_URL set (the shared helper clears it)."""

    def __init__(self, cwd: Path, config: Path, port: int, database_url: str) -> None:
        self.cwd, self.config, self.port = cwd, config, port
        self.log_path = cwd / "daemon-outage.log"
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [*growthloop_command(), "run", "--config", str(config)],
            cwd=cwd,
            env=cli_env(PORT=str(port), DATABASE_URL=database_url),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_until(daemon: Daemon, probe: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    deadline = time.monotonic() + TIMEOUT
    while True:
        daemon.assert_alive()
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            print(daemon.log_tail(80))
            pytest.fail(f"timed out after {TIMEOUT:g} s waiting for {what}")
        await asyncio.sleep(0.2)


def with_user(url: str, user: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


async def test_posts_published_while_postgres_is_unreachable_are_all_recorded_afterwards(
    tmp_path: Path,
) -> None:
    await require_postgres()
    role = f"gl_outage_{uuid.uuid4().hex[:10]}"
    server = await asyncpg.connect(PG_URL, timeout=5)  # a superuser, as an operator would be
    await server.execute(f'CREATE ROLE "{role}" LOGIN')
    daemon: Daemon | None = None
    try:
        async with fresh_pg_database() as admin_url:
            database = admin_url.rsplit("/", 1)[1]
            await server.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
            url = with_user(admin_url, role)
            engine = create_engine(normalise_postgres_url(url))
            await upgrade(engine)  # the role owns its tables, as after `growthloop migrate`
            await engine.dispose()
            admin = await asyncpg.connect(admin_url, timeout=5)
            try:
                daemon = PostgresDaemon(tmp_path, _config(tmp_path), free_port(), url)
                await _cut_off_and_restore(tmp_path, daemon, admin, server, role)
                assert daemon.terminate() == 0
            finally:
                await admin.close()
                if daemon is not None:
                    daemon.kill()
    finally:
        await server.execute(f'ALTER ROLE "{role}" LOGIN')
        await server.execute(f'DROP ROLE IF EXISTS "{role}"')
        await server.close()


def _config(tmp_path: Path) -> Path:
    scenario = write_scenario(
        tmp_path / "scenario.yaml", platform={"publish_delay_before_s": HOLD_S}
    )
    overrides = realtime_overrides(scenario, free_port(), two_accounts=True)
    # one publish at a time (runtime.concurrency), so the outage can start between the two
    # accounts' posts: the first recorded, the second on its way to the platform
    overrides["runtime"]["concurrency"] = {"sandbox": 1}
    return write_config(tmp_path / "growthloop.yaml", **overrides)


async def _cut_off_and_restore(
    cwd: Path, daemon: Daemon, admin: asyncpg.Connection, server: asyncpg.Connection, role: str
) -> None:
    async def content() -> list[dict[str, Any]]:
        """The posts sent or being sent (later ones are planned, six real minutes ahead)."""
        rows = await admin.fetch(
            "SELECT id, status, text, idempotency_key, platform_post_id, posted_at"
            " FROM content WHERE status <> 'planned' ORDER BY id"
        )
        return [dict(r) for r in rows]

    async def one_posted_one_in_flight() -> list[dict[str, Any]] | None:
        rows = await content()
        statuses = sorted(r["status"] for r in rows)
        return rows if statuses == ["posted", "publishing"] else None

    # 1. The first post is recorded; the second is being sent: cut the role off now.
    before = await wait_until(daemon, one_posted_one_in_flight, what="one post out, one sending")
    [first] = [r for r in before if r["status"] == "posted"]
    [second] = [r for r in before if r["status"] == "publishing"]
    await server.execute(f'ALTER ROLE "{role}" NOLOGIN')
    await server.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
    )
    cut_at = datetime.now(UTC)

    # 2. The platform accepts the second post; the daemon cannot record it and journals it.
    async def journaled() -> list[dict[str, Any]]:
        return daemon.events("post_journaled")

    [entry] = await wait_until(daemon, journaled, what="the publish to be journaled")
    assert entry["content_id"] == second["id"]
    assert (cwd / JOURNAL).stat().st_size > 0
    assert (await admin.fetchval("SELECT status FROM content WHERE id = $1", second["id"])) == (
        "publishing"
    )
    # ... and the outage lasts until the first post's snapshots have all fallen due.
    last_due = first["posted_at"] + timedelta(seconds=max(HORIZONS_S) + 0.5)
    await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds()))

    pending = await admin.fetch(
        "SELECT due_at, taken_at FROM performance_snapshots WHERE content_id = $1", first["id"]
    )
    assert len(pending) == len(HORIZONS_S)
    assert all(p["taken_at"] is None and cut_at < p["due_at"] for p in pending)

    # 3. Access restored. The daemon, still running, catches up by itself.
    await server.execute(f'ALTER ROLE "{role}" LOGIN')
    restored_at = datetime.now(UTC)

    async def caught_up() -> list[dict[str, Any]] | None:
        rows = await content()
        if sorted(r["status"] for r in rows) != ["posted", "posted"]:
            return None
        snaps = await admin.fetch("SELECT content_id, due_at, taken_at FROM performance_snapshots")
        done = len(snaps) == 2 * len(HORIZONS_S) and all(s["taken_at"] for s in snaps)
        return [dict(s) for s in snaps] if done else None

    snapshots = await wait_until(daemon, caught_up, what="both posts recorded and polled")

    # Every post on the platform is in the database as posted, with its id; none twice.
    world = query(cwd / WORLD, "SELECT id, text, idempotency_key FROM posts") or []
    rows = await content()
    assert sorted(p["id"] for p in world) == sorted(r["platform_post_id"] for r in rows)
    by_id = {p["id"]: p for p in world}
    for r in rows:
        assert by_id[r["platform_post_id"]]["text"] == r["text"]
        assert by_id[r["platform_post_id"]]["idempotency_key"] == r["idempotency_key"]
    assert len({p["text"] for p in world}) == len(world) == 2

    # The first post's snapshots fell due during the outage (untaken then, see above) and were
    # taken after it; the second post's were created from the journal and taken too.
    missed = [s for s in snapshots if s["content_id"] == first["id"]]
    assert len(missed) == len(HORIZONS_S)
    for snap in missed:
        assert cut_at < snap["due_at"] < restored_at
        assert snap["taken_at"] >= snap["due_at"]

    # It was written from the journal (not found again by reconciliation), and the journal
    # was emptied; the outage was one warning, not a traceback per tick.
    applied = daemon.events("journal_entry_applied")
    assert [e["content_id"] for e in applied] == [second["id"]]
    assert (cwd / JOURNAL).read_bytes() == b""
    assert len(daemon.events("store_unavailable")) == 1
    assert daemon.events("store_available")
    assert daemon.events("cycle_crashed") == []
    assert "Traceback" not in daemon.log_path.read_text(encoding="utf-8")
