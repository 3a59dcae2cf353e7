"""Three workers on one PostgreSQL database, one of them SIGKILLed midway.

Three ``growthloop run`` subprocesses share a fresh PostgreSQL database and one sandbox world
file, with 20 sandbox accounts on a compressed schedule (the ``demo_realtime`` scenario, polls
at 2/4/6 s, 1 s ticks, ``runtime.lease`` of 3 s). Each account posts once as soon as the workers
start (the cadence allows the next post only minutes later). The sandbox holds every publish
open for a moment after the post is created (``publish_delay_after_s``), so the worker killed
once the first posts are out is likely to die inside a publish, holding snapshot claims and
leases. Afterwards:

- every post is on the platform exactly once and ``posted`` exactly once in the store; nothing
  is left ``publishing`` or due;
- every snapshot row is taken, and the workers' JSON logs show each snapshot taken by one
  worker only (two workers polling one snapshot would both log ``snapshot_taken`` for its id);
- no post was learned from twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import (
    ALWAYS_ACTIVE,
    WORLD,
    Daemon,
    cli_env,
    example_config,
    free_port,
    run_cli,
    write_config,
    write_scenario,
)
from tests.conftest import fresh_pg_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ACCOUNTS = 20
HORIZONS_S = (2, 4, 6)
# s for all posts and snapshots once the workers run (bounded). 45 s timed out once on a busy
# 2-core machine after issue 14: each learning step now refits the deciding model to write its
# estimates, and a worker's cycles run one after another
DEADLINE = 90


def workers_config(tmp_path: Path) -> Path:
    scenario = write_scenario(tmp_path / "scenario.yaml", platform={"publish_delay_after_s": 0.3})
    template = example_config()["accounts"][0]
    accounts = [
        {**template, "name": f"acct{i:02d}", "handle": f"@acct{i:02d}"} for i in range(ACCOUNTS)
    ]
    return write_config(
        tmp_path / "growthloop.yaml",
        accounts=accounts,
        cadence={
            "posts_per_day": 48,
            "max_posts_per_hour": 10,
            "min_gap": "1s",
            "jitter": "0s",
            "active_hours": ALWAYS_ACTIVE,
        },
        polling={"horizons": [f"{s}s" for s in HORIZONS_S], "account_every": "3s"},
        # one platform call in flight per worker: a worker killed mid-publish then leaves at
        # most one post committed but not yet logged (with concurrent publishes, as many as
        # were awaiting their commit: the log check below would need a bound per worker)
        runtime={
            "tick": "1s",
            "shutdown_grace": "5s",
            "lease": "3s",
            "concurrency": {"sandbox": 1},
        },
        sandbox={"scenario": str(scenario), "seed": 5, "world_path": str(WORLD)},
        server={"host": "127.0.0.1", "port": free_port()},
    )


async def fetch(url: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def world_posts(cwd: Path) -> list[dict[str, Any]]:
    path = cwd / WORLD
    if not path.is_file():
        return []
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT id, account, idempotency_key FROM posts")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


async def wait_until(
    probe: Callable[[], Any], *, within: float, what: str, alive: list[Daemon]
) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        for daemon in alive:
            daemon.assert_alive()
        if time.monotonic() > deadline:
            for daemon in alive:
                print(daemon.log_tail(30))
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.5)


async def test_three_workers_one_killed_publish_and_poll_everything_exactly_once(
    tmp_path: Path, daemons: Callable[..., Daemon]
) -> None:
    async with fresh_pg_database() as url:
        config = workers_config(tmp_path)
        env = {"DATABASE_URL": url}
        migrated = run_cli("migrate", "--config", config, cwd=tmp_path, env=cli_env(**env))
        assert migrated.returncode == 0, migrated.stderr

        victim, *survivors = [daemons(config, env=env, label=f"w{i}") for i in range(3)]
        for daemon in (victim, *survivors):
            daemon.wait_started()

        async def some_posts_out() -> bool:
            return len(world_posts(tmp_path)) >= 4 and bool(victim.events("post_published"))

        await wait_until(
            some_posts_out, within=DEADLINE, what="the first posts", alive=[victim, *survivors]
        )
        victim.kill()  # SIGKILL: its claims and leases are left to expire
        killed_at = datetime.now(UTC)

        async def everything_done() -> bool:
            posted = await fetch(url, "SELECT id FROM content WHERE status = 'posted'")
            snaps = await fetch(url, "SELECT taken_at FROM performance_snapshots")
            return (
                len(posted) == ACCOUNTS
                and len(snaps) == ACCOUNTS * len(HORIZONS_S)
                and all(s["taken_at"] is not None for s in snaps)
            )

        await wait_until(
            everything_done,
            within=DEADLINE,
            what=f"{ACCOUNTS} posts published and all their snapshots taken",
            alive=survivors,
        )
        for daemon in survivors:
            assert daemon.terminate(timeout=15) == 0

        content = await fetch(
            url,
            "SELECT c.id, c.status, c.platform_post_id, c.idempotency_key, c.scheduled_for,"
            " a.name AS account FROM content c JOIN accounts a ON a.id = c.account_id",
        )
        snapshots = await fetch(
            url, "SELECT id, content_id, taken_at, claimed_by FROM performance_snapshots"
        )
        learned = await fetch(url, "SELECT content_id FROM learning_updates")

    # every post on the platform exactly once, each the one posted row of its account
    world = world_posts(tmp_path)
    posted = [r for r in content if r["status"] == "posted"]
    assert len(world) == len(posted) == ACCOUNTS
    assert sorted(p["id"] for p in world) == sorted(r["platform_post_id"] for r in posted)
    assert sorted(p["idempotency_key"] for p in world) == sorted(
        r["idempotency_key"] for r in posted
    )
    assert sorted(r["account"] for r in posted) == [f"acct{i:02d}" for i in range(ACCOUNTS)]
    # nothing stuck: no publish left open, nothing failed, the next posts are not due yet
    statuses = Counter(r["status"] for r in content)
    assert set(statuses) <= {"posted", "planned"}, statuses
    assert all(r["scheduled_for"] > killed_at for r in content if r["status"] == "planned")

    # every snapshot taken, by one worker only
    assert len(snapshots) == ACCOUNTS * len(HORIZONS_S)
    assert all(s["taken_at"] is not None and s["claimed_by"] is None for s in snapshots)
    workers = [victim, *survivors]
    taken = Counter(e["snapshot_id"] for w in workers for e in w.events("snapshot_taken"))
    twice = {sid: n for sid, n in taken.items() if n > 1}
    assert not twice, f"snapshots taken by more than one worker: {twice}"
    # the victim may have died between recording a poll's batch (one account's due snapshots,
    # one transaction: Store.record_snapshots) and logging it: one post's horizons at most
    assert len({s["id"] for s in snapshots} - set(taken)) <= len(HORIZONS_S)

    published = Counter(e["content_id"] for w in workers for e in w.events("post_published"))
    assert max(published.values()) == 1, published
    # the victim may have died with its one publish committed but not yet logged
    assert len({r["id"] for r in posted} - set(published)) <= 1
    assert victim.events("post_published"), "the killed worker did no work before it died"
    assert {e["content_id"] for e in survivors[0].events("post_published")} | {
        e["content_id"] for e in survivors[1].events("post_published")
    }, "the survivors published nothing"

    learned_ids = [r["content_id"] for r in learned]
    assert len(learned_ids) == len(set(learned_ids)), "a post was learned from twice"
    for daemon in survivors:
        assert not daemon.events("cycle_crashed"), daemon.log_tail()
