"""``growthloop run`` in compressed real time: a user's daemon, crashed and restarted.

The scenario extends ``demo_realtime`` (10 real seconds = 1 sandbox hour); the polling horizons
are 2, 4 and 6 real seconds and every cycle ticks every 0.5 s. The cadence stays the product's
(at most 10 posts an hour per account), so each account posts once as soon as the daemon starts
and not again within a test. The crash tests use the sandbox's crash-test aids
``platform.publish_delay_before_s`` / ``publish_delay_after_s`` to hold a publish open long
enough to SIGKILL the daemon inside the exactly-once protocol.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.config import Runtime
from agent.cycles import CYCLES
from tests.acceptance.conftest import (
    HORIZONS_S,
    STORE,
    WORLD,
    Daemon,
    free_port,
    must_query,
    query,
    realtime_overrides,
    store_time,
    write_config,
    write_scenario,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Daemon]
POST_TIMEOUT = 45  # s: bounded waits, generous for a loaded 2-core machine
CONTENT = (
    "SELECT id, status, text, idempotency_key, platform_post_id, publish_attempts, error,"
    " scheduled_for, posted_at FROM content ORDER BY id"
)


def daemon_config(tmp_path: Path, *, two_accounts: bool = False, **platform: float) -> Path:
    """The compressed real-time config; ``platform`` adds scenario keys (the crash-test aids)."""
    extra = {"platform": platform} if platform else {}
    scenario = write_scenario(tmp_path / "scenario.yaml", **extra)
    overrides = realtime_overrides(scenario, free_port(), two_accounts=two_accounts)
    return write_config(tmp_path / "growthloop.yaml", **overrides)


def content(cwd: Path) -> list[dict[str, Any]]:
    return query(cwd / STORE, CONTENT) or []


def world_posts(cwd: Path, text: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, account, text, idempotency_key, posted_us FROM posts"
    rows = query(cwd / WORLD, sql + (" WHERE text = ?" if text else ""), (text,) if text else ())
    return rows or []


def snapshots(cwd: Path, content_id: int) -> list[dict[str, Any]]:
    sql = (
        "SELECT horizon_hours, due_at, taken_at, hours_since_post FROM performance_snapshots"
        " WHERE content_id = ? ORDER BY horizon_hours"
    )
    return query(cwd / STORE, sql, (content_id,)) or []


def row(cwd: Path, content_id: int) -> dict[str, Any]:
    found = [r for r in must_query(cwd / STORE, CONTENT) if r["id"] == content_id]
    assert len(found) == 1
    return found[0]


def assert_world_and_store_agree(cwd: Path) -> None:
    """Every post on the platform is exactly one ``posted`` row, and the other way round."""
    posted = [r for r in must_query(cwd / STORE, CONTENT) if r["status"] == "posted"]
    world = world_posts(cwd)
    by_id = {p["id"]: p for p in world}
    assert sorted(r["platform_post_id"] for r in posted) == sorted(by_id), (posted, world)
    for r in posted:
        assert by_id[r["platform_post_id"]]["text"] == r["text"]
        assert by_id[r["platform_post_id"]]["idempotency_key"] == r["idempotency_key"]
    texts = [p["text"] for p in world]
    assert len(texts) == len(set(texts)), f"a text was posted twice: {world}"


def test_run_posts_polls_learns_and_serves_healthz(tmp_path: Path, daemons: Start) -> None:
    config = daemon_config(tmp_path, two_accounts=True)
    daemon = daemons(config)
    started = daemon.wait_started()
    assert started["port"] == daemon.port

    def healthy() -> dict[str, Any] | None:
        body = daemon.healthz()
        return body if body and set(CYCLES) <= set(body["last_run"]) else None

    body = daemon.wait(healthy, timeout=30, what="/healthz with a last_run for every cycle")
    assert body["status"] == "ok"
    assert body["accounts"] == ["demo", "demo2"]
    assert body["mode"] == "live"

    def learned() -> bool:
        posted = [r for r in content(tmp_path) if r["status"] == "posted"]
        if len(posted) < 2:
            return False
        snaps = [s for r in posted for s in snapshots(tmp_path, r["id"])]
        if len(snaps) != len(HORIZONS_S) * len(posted) or any(s["taken_at"] is None for s in snaps):
            return False
        updates = query(tmp_path / STORE, "SELECT COUNT(*) AS n FROM learning_updates")
        return bool(updates and updates[0]["n"] >= 1)

    daemon.wait(
        learned,
        timeout=POST_TIMEOUT,
        what=">= 2 posted posts, all their snapshots taken and a learning update",
    )
    body = daemon.wait(healthy, timeout=10, what="/healthz after learning")
    assert body["totals"]["posts_published"] >= 2
    assert body["totals"]["learning_updates"] >= 1
    assert body["counts"]["posted"] >= 2
    assert_world_and_store_agree(tmp_path)

    assert daemon.terminate(timeout=10) == 0
    events = [e["event"] for e in daemon.events()]
    for name in ("post_planned", "post_published", "snapshot_taken", "posterior_updated"):
        assert name in events
    assert "daemon_stopping" in events and events[-1] == "daemon_stopped"
    assert daemon.events("daemon_stopped")[0]["exit_code"] == 0
    assert "cycle_crashed" not in events


def _wait_for_publishing(daemon: Daemon, cwd: Path, *, on_platform: bool) -> dict[str, Any]:
    """The row that is ``publishing`` while the platform has (or has not yet) got the post."""

    def probe() -> dict[str, Any] | None:
        for r in content(cwd):
            if r["status"] == "publishing" and bool(world_posts(cwd, r["text"])) == on_platform:
                return r
        return None

    state = "on the platform" if on_platform else "not yet on the platform"
    return daemon.wait(probe, timeout=POST_TIMEOUT, what=f"a publishing post {state}")


def _wait_status(daemon: Daemon, cwd: Path, content_id: int, status: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = [r for r in content(cwd) if r["id"] == content_id and r["status"] == status]
        return found[0] if found else None

    return daemon.wait(probe, timeout=POST_TIMEOUT, what=f"content {content_id} to be {status}")


def test_restart_after_sigkill_mid_publish_does_not_post_twice_or_lose_the_post(
    tmp_path: Path, daemons: Start
) -> None:
    # Killed after the platform committed the post, before publish returned to the daemon.
    config = daemon_config(tmp_path, publish_delay_after_s=5.0)
    first = daemons(config, label="killed")
    first.wait_started()
    caught = _wait_for_publishing(first, tmp_path, on_platform=True)
    first.kill()

    assert row(tmp_path, caught["id"])["status"] == "publishing"
    [on_platform] = world_posts(tmp_path, caught["text"])
    assert on_platform["idempotency_key"] == caught["idempotency_key"]

    second = daemons(config, label="restarted")
    assert second.wait_started()["reconciled"] == 1
    posted = _wait_status(second, tmp_path, caught["id"], "posted")
    assert posted["platform_post_id"] == on_platform["id"]
    assert posted["publish_attempts"] == 1
    assert [p["id"] for p in world_posts(tmp_path, caught["text"])] == [on_platform["id"]]
    reconciled = second.events("post_reconciled")
    assert [(e["content_id"], e["outcome"]) for e in reconciled] == [(caught["id"], "found")]
    assert len(snapshots(tmp_path, caught["id"])) == len(HORIZONS_S)
    assert_world_and_store_agree(tmp_path)
    assert second.terminate() == 0


def _fast_forward_requeue(cwd: Path, content_id: int) -> None:
    """Let the requeued post's retry wait pass, as the clock would while the daemon is down."""
    db = sqlite3.connect(cwd / STORE)
    try:
        (value,) = db.execute(
            "SELECT scheduled_for FROM content WHERE id = ?", (content_id,)
        ).fetchone()
        earlier = (store_time(value) - Runtime().publish_retry_after).replace(tzinfo=None)
        with db:
            db.execute(
                "UPDATE content SET scheduled_for = ? WHERE id = ?",
                (earlier.isoformat(sep=" ", timespec="microseconds"), content_id),
            )
    finally:
        db.close()


def test_restart_after_sigkill_before_the_platform_got_the_post_publishes_it_once(
    tmp_path: Path, daemons: Start
) -> None:
    # Killed after `publishing` was committed, before the request reached the platform.
    config = daemon_config(tmp_path, publish_delay_before_s=5.0)
    first = daemons(config, label="killed")
    first.wait_started()
    caught = _wait_for_publishing(first, tmp_path, on_platform=False)
    first.kill()

    assert row(tmp_path, caught["id"])["status"] == "publishing"
    assert world_posts(tmp_path, caught["text"]) == []

    # On start the post is looked for, not found, and queued again under the same key.
    second = daemons(config, label="reconciling")
    assert second.wait_started()["reconciled"] == 1
    requeued = _wait_status(second, tmp_path, caught["id"], "planned")
    assert requeued["idempotency_key"] == caught["idempotency_key"]
    assert requeued["publish_attempts"] == 1
    assert "queued again" in requeued["error"]
    assert store_time(requeued["scheduled_for"]) > datetime.now(UTC)
    outcomes = [(e["content_id"], e["outcome"]) for e in second.events("post_reconciled")]
    assert outcomes == [(caught["id"], "requeued")]
    assert second.terminate() == 0
    assert world_posts(tmp_path, caught["text"]) == []

    _fast_forward_requeue(tmp_path, caught["id"])
    third = daemons(config, label="republishing")
    assert third.wait_started()["reconciled"] == 0
    posted = _wait_status(third, tmp_path, caught["id"], "posted")
    [on_platform] = world_posts(tmp_path, caught["text"])
    assert posted["platform_post_id"] == on_platform["id"]
    assert on_platform["idempotency_key"] == caught["idempotency_key"]
    assert posted["publish_attempts"] == 2
    assert_world_and_store_agree(tmp_path)
    assert third.terminate() == 0


def test_snapshots_missed_while_down_are_taken_late_with_their_real_age(
    tmp_path: Path, daemons: Start
) -> None:
    config = daemon_config(tmp_path)
    first = daemons(config, label="before")
    first.wait_started()

    def posted() -> dict[str, Any] | None:
        found = [r for r in content(tmp_path) if r["status"] == "posted"]
        return found[0] if found else None

    post = first.wait(posted, timeout=POST_TIMEOUT, what="a posted post")
    assert first.terminate() == 0
    stopped_at = time.time()
    posted_at = store_time(post["posted_at"])
    left = [s["horizon_hours"] for s in snapshots(tmp_path, post["id"]) if s["taken_at"] is None]
    assert max(HORIZONS_S) / 3600 in left, "the last horizon passed before the daemon stopped"

    # Stay down until every horizon has passed, and then some.
    down_until = posted_at.timestamp() + max(HORIZONS_S) + 2
    time.sleep(max(0.0, down_until - time.time()))
    second = daemons(config, label="after")
    second.wait_started()

    def all_taken() -> list[dict[str, Any]] | None:
        snaps = snapshots(tmp_path, post["id"])
        return snaps if snaps and all(s["taken_at"] for s in snaps) else None

    snaps = second.wait(all_taken, timeout=POST_TIMEOUT, what="every snapshot to be taken")
    assert [round(s["horizon_hours"] * 3600) for s in snaps] == list(HORIZONS_S)
    for snap in snaps:
        horizon_s = snap["horizon_hours"] * 3600
        age_s = snap["hours_since_post"] * 3600
        taken = store_time(snap["taken_at"])
        assert age_s >= horizon_s - 1e-6, snap
        assert abs(age_s - (taken - posted_at).total_seconds()) < 1.0, snap
        if snap["horizon_hours"] in left:
            assert taken.timestamp() > stopped_at
            assert age_s > max(HORIZONS_S) + 1, f"a late poll must record its real age: {snap}"
            assert taken > store_time(snap["due_at"])
    assert second.terminate() == 0
