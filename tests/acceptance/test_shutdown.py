"""``growthloop run`` stopped by SIGTERM (every deploy and restart on Railway and Heroku) while
work is in flight: the work finishes and is recorded before the process exits 0, with no
Traceback in its output; a second SIGTERM stops it at once.

The work is held open by slow local platforms: the sandbox's ``publish_delay_before_s`` (the
platform has not got the post yet when SIGTERM arrives), a local X API server whose metrics
read answers after 3 s, and, for the learning step, an SQLite write lock held by the test (as
another writer would) so the step's write waits while SIGTERM arrives.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.acceptance.conftest import (
    STORE,
    WORLD,
    Daemon,
    free_port,
    must_query,
    query,
    realtime_overrides,
    wait_for,
    write_config,
    write_scenario,
)
from tests.adapters.x_server import XServer

pytestmark = pytest.mark.slow

Start = Callable[..., Daemon]
TIMEOUT = 45  # s: bounded waits, generous for a loaded 2-core machine
FAST = {"tick": "1s", "shutdown_grace": "10s"}


def _config(tmp_path: Path, *, runtime: dict[str, str] | None = None, **platform: float) -> Path:
    extra = {"platform": platform} if platform else {}
    scenario = write_scenario(tmp_path / "scenario.yaml", **extra)
    overrides = realtime_overrides(scenario, free_port())
    overrides["runtime"] = {**FAST, **(runtime or {})}
    return write_config(tmp_path / "growthloop.yaml", **overrides)


def _content(cwd: Path) -> list[dict[str, Any]]:
    sql = "SELECT id, status, text, platform_post_id FROM content ORDER BY id"
    return query(cwd / STORE, sql) or []


def _publishing(daemon: Daemon, cwd: Path) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = [r for r in _content(cwd) if r["status"] == "publishing"]
        return found[0] if found else None

    return daemon.wait(probe, timeout=TIMEOUT, what="a post in flight (publishing)")


def _world_texts(cwd: Path) -> list[str]:
    return [r["text"] for r in query(cwd / WORLD, "SELECT text FROM posts") or []]


def _stopped(daemon: Daemon, *, timeout: float) -> int:
    """The exit code of a daemon already signalled (fails if it does not exit in time)."""
    try:
        code = daemon.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        daemon.kill()
        pytest.fail(f"the daemon did not exit within {timeout:g} s:\n{daemon.log_tail()}")
    return code


def _events_after_stopping(daemon: Daemon) -> list[str]:
    names = [e["event"] for e in daemon.events()]
    return names[names.index("daemon_stopping") :]


def _assert_clean_exit(daemon: Daemon, code: int) -> None:
    text = daemon.log_path.read_text(encoding="utf-8")
    assert code == 0, daemon.log_tail()
    assert "Traceback" not in text, text
    assert "raised an exception" not in text, text
    for line in text.splitlines():  # every line is a JSON event: nothing printed plain text
        assert line.startswith("{"), line
    names = [e["event"] for e in daemon.events()]
    assert names[-1] == "daemon_stopped"
    assert "cycles_cancelled" not in names and "cycle_cancelled" not in names


def test_sigterm_during_a_publish_lets_it_finish_and_records_it_posted(
    tmp_path: Path, daemons: Start
) -> None:
    config = _config(tmp_path, publish_delay_before_s=2.5)
    daemon = daemons(config)
    daemon.wait_started()
    caught = _publishing(daemon, tmp_path)
    assert caught["text"] not in _world_texts(tmp_path)  # the platform has not got it yet

    daemon.proc.send_signal(signal.SIGTERM)
    code = _stopped(daemon, timeout=20)

    _assert_clean_exit(daemon, code)
    [done] = [r for r in _content(tmp_path) if r["id"] == caught["id"]]
    assert done["status"] == "posted", done
    assert _world_texts(tmp_path).count(caught["text"]) == 1
    requested = daemon.events("shutdown_requested")
    assert requested[0]["signal"] == "SIGTERM" and "publish" in requested[0]["in_flight"]
    assert "post_published" in _events_after_stopping(daemon)


@pytest.mark.parametrize("stop", ["second_sigterm", "grace_expired"])
def test_second_sigterm_or_the_end_of_the_grace_period_stops_at_once_and_stays_safe(
    tmp_path: Path, daemons: Start, stop: str
) -> None:
    grace = "30s" if stop == "second_sigterm" else "1s"
    config = _config(tmp_path, runtime={"shutdown_grace": grace}, publish_delay_before_s=30)
    daemon = daemons(config, label="stopped")
    daemon.wait_started()
    caught = _publishing(daemon, tmp_path)

    daemon.proc.send_signal(signal.SIGTERM)
    daemon.wait(lambda: daemon.events("shutdown_requested"), timeout=10, what="shutdown_requested")
    if stop == "second_sigterm":
        daemon.proc.send_signal(signal.SIGTERM)
    code = _stopped(daemon, timeout=8)  # far less than the 30 s publish or grace

    text = daemon.log_path.read_text(encoding="utf-8")
    assert code == 0, daemon.log_tail()
    assert "Traceback" not in text and "raised an exception" not in text, text
    [cancelled] = daemon.events("cycles_cancelled")
    assert "publish" in cancelled["cycles"]
    assert cancelled["reason"] == ("shutdown_forced" if stop == "second_sigterm" else stop)
    if stop == "second_sigterm":
        [forced] = daemon.events("shutdown_forced")
        assert "publish" in forced["cancelling"]
    assert daemon.events()[-1]["event"] == "daemon_stopped"
    [left] = [r for r in _content(tmp_path) if r["id"] == caught["id"]]
    assert left["status"] == "publishing"  # ambiguous: never re-sent blindly

    restarted = daemons(config, label="restarted")
    assert restarted.wait_started()["reconciled"] == 1  # the next start looks for it
    assert restarted.terminate(timeout=15) == 0


# ---------------------------------------------------------------------------------- a poll


@dataclass
class SlowMetricsXServer(XServer):
    """The local X API whose metrics read (``GET /2/tweets``) answers after ``delay`` seconds."""

    delay: float = 3.0
    lookups: threading.Event = field(default_factory=threading.Event)

    async def _lookup(self, request: web.Request) -> web.Response:
        self.lookups.set()
        await asyncio.sleep(self.delay)
        return await super()._lookup(request)


@contextmanager
def serving(server: XServer) -> Iterator[str]:
    """Run ``server`` on its own event loop in a thread (the daemon is another process)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="x-server", daemon=True)
    thread.start()
    assert ready.wait(10), "the X server did not start"
    try:
        yield server.base_url
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


X_ACCOUNT = {
    "name": "xdemo",
    "platform": "x",
    "persona": "A pragmatic indie developer who ships small tools and writes about what works",
    "niche": "indie software and developer productivity",
    "topics": ["shipping side projects", "automated testing"],
}
X_SECRETS = {
    f"XDEMO_{name}": "local-test-value"
    for name in ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
}


def test_sigterm_during_a_slow_metrics_read_lets_the_poll_finish(
    tmp_path: Path, daemons: Start
) -> None:
    server = SlowMetricsXServer()
    with serving(server) as base_url:
        scenario = write_scenario(tmp_path / "scenario.yaml")
        overrides = realtime_overrides(scenario, free_port())
        overrides["runtime"] = FAST
        overrides["accounts"] = [{**X_ACCOUNT, "api_base_url": base_url}]
        config = write_config(tmp_path / "growthloop.yaml", **overrides)
        daemon = daemons(config, env=X_SECRETS)
        daemon.wait_started()
        daemon.wait(server.lookups.is_set, timeout=TIMEOUT, what="a metrics read in flight")

        daemon.proc.send_signal(signal.SIGTERM)
        code = _stopped(daemon, timeout=20)

    _assert_clean_exit(daemon, code)
    requested = daemon.events("shutdown_requested")
    assert "poll" in requested[0]["in_flight"]
    assert "snapshot_taken" in _events_after_stopping(daemon)
    taken = must_query(
        tmp_path / STORE,
        "SELECT horizon_hours, taken_at FROM performance_snapshots WHERE taken_at IS NOT NULL",
    )
    assert taken, "the snapshot read when SIGTERM arrived was not recorded"


# ------------------------------------------------------------------------- a learning step


def test_sigterm_during_a_learning_step_lets_it_finish(tmp_path: Path, daemons: Start) -> None:
    daemon = daemons(_config(tmp_path))
    daemon.wait_started()

    def learned() -> bool:
        rows = query(tmp_path / STORE, "SELECT COUNT(*) AS n FROM learning_updates")
        return bool(rows and rows[0]["n"] >= 1)

    daemon.wait(learned, timeout=TIMEOUT, what="a first learning step")
    # Undo that step (the post is finished but not learned from) and, in the same breath, hold
    # the database as another writer would: the next learning step computes its estimates,
    # then waits to write them while SIGTERM arrives.
    lock = sqlite3.connect(tmp_path / STORE, isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN IMMEDIATE")
        lock.execute("UPDATE content SET learned_at = NULL")
        lock.execute("DELETE FROM learning_updates")
        lock.execute("COMMIT")
        lock.execute("BEGIN IMMEDIATE")

        def learning() -> bool:
            body = daemon.healthz()
            return bool(body and "learn" in body["in_flight"])

        daemon.wait(learning, timeout=TIMEOUT, what="a learning step in flight (/healthz)")
        daemon.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: daemon.events("shutdown_requested"), timeout=10, what="shutdown_requested")
        time.sleep(0.5)
        assert daemon.proc.poll() is None, "exited while the learning step was in flight"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    code = _stopped(daemon, timeout=20)

    _assert_clean_exit(daemon, code)
    assert "learn" in daemon.events("shutdown_requested")[0]["in_flight"]
    assert "posterior_updated" in _events_after_stopping(daemon)
    assert learned(), "the learning step in flight was not written"
