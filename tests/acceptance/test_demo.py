"""``growthloop run --demo``: a first run that shows the whole loop within a minute, on the
sandbox and in its own files, whatever the config and DATABASE_URL say."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Daemon, cli_env, free_port, growthloop_command, write_config

pytestmark = pytest.mark.slow

LOOP = ("post_planned", "post_published", "snapshot_taken", "posterior_updated")
UNREACHABLE = "postgresql://growthloop:pw@127.0.0.1:1/production"  # must never be used


class DemoDaemon(Daemon):
    """``growthloop run --demo`` (the fixture's Daemon runs ``run --config``)."""

    def __init__(self, cwd: Path, config: Path, port: int) -> None:
        self.cwd, self.config, self.port = cwd, config, port
        self.log_path = cwd / "daemon-demo.log"
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [*growthloop_command(), "run", "--demo", "--config", str(config)],
            cwd=cwd,
            env=cli_env(PORT=str(port), DATABASE_URL=UNREACHABLE),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_run_demo_shows_plan_publish_poll_and_learn_on_the_sandbox_only(tmp_path: Path) -> None:
    # The user's config: a real X account (no credentials here) and their own database file.
    account = {
        "name": "mine",
        "platform": "x",
        "api_base_url": "http://127.0.0.1:1",
        "persona": "A pragmatic indie developer who ships small tools",
        "niche": "indie software",
        "topics": ["automated testing", "pricing developer tools"],
    }
    config = write_config(
        tmp_path / "growthloop.yaml",
        accounts=[account],
        mode="approve",
        store={"sqlite_path": "data/real.db"},
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo.db").write_text("a previous demo's file, replaced\n")
    daemon = DemoDaemon(tmp_path, config, free_port())
    try:
        started = daemon.wait_started()

        def shown() -> list[dict[str, Any]] | None:
            events = daemon.events()
            names = {e["event"] for e in events}
            return events if set(LOOP) <= names else None

        events = daemon.wait(shown, timeout=90, what=f"{', '.join(LOOP)} in the log")
        assert daemon.terminate(timeout=20) == 0
    finally:
        daemon.kill()

    assert started["demo"] is True and started["mode"] == "live"
    assert started["platforms"] == ["sandbox"] and started["accounts"] == ["mine"]
    assert started["store"] == "sqlite"
    names = [e["event"] for e in events]
    assert names.index("post_planned") < names.index("post_published")
    assert names.index("post_published") < names.index("snapshot_taken")
    assert names.index("snapshot_taken") < names.index("posterior_updated")
    assert "status" in names and "health_endpoint" in names
    [demo] = [e for e in events if e["event"] == "demo_running"]
    assert demo["database"].endswith("demo.db")
    [hint] = [e for e in events if e["event"] == "health_endpoint"]
    assert hint["command"].startswith("sqlite3 ") and hint["command"].endswith("demo.db")
    text = daemon.log_path.read_text(encoding="utf-8")
    assert "Traceback" not in text
    assert not (tmp_path / "data" / "real.db").exists()  # the user's database: never touched
    assert (tmp_path / "data" / "demo.db").stat().st_size > 4096  # a database now
