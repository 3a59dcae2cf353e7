"""SQLite is single-process, and says so: a second daemon (or simulation) on the same file stops
with a paragraph naming the file, the pid holding it and DATABASE_URL; the read-only and admin
commands keep working while the daemon runs; a killed daemon leaves no stale lock behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    STORE,
    Daemon,
    free_port,
    query,
    realtime_overrides,
    run_cli,
    write_config,
    write_scenario,
)

pytestmark = pytest.mark.slow


def test_a_second_daemon_on_the_same_sqlite_file_exits_with_a_clear_message(
    tmp_path: Path, daemons: Callable[..., Daemon]
) -> None:
    scenario = write_scenario(tmp_path / "scenario.yaml")
    config = write_config(tmp_path / "c.yaml", **realtime_overrides(scenario, free_port()))
    first = daemons(config)
    first.wait_started()

    second = run_cli("run", "--config", config, cwd=tmp_path, env=None, timeout=60)

    assert second.returncode == 2, second.stderr
    message = " ".join(second.stderr.split())
    assert f"pid {first.proc.pid}" in message
    assert "growthloop.db.lock" in message and str(STORE) in message
    assert "DATABASE_URL" in message and "PostgreSQL" in message
    assert "Traceback" not in second.stderr
    first.assert_alive()

    # a simulation on the daemon's file is refused before it replaces the file
    simulation = run_cli(
        "simulate", "--days", "0.1", "--db", STORE, "--config", config, cwd=tmp_path
    )
    assert simulation.returncode == 2, simulation.stderr
    assert f"pid {first.proc.pid}" in " ".join(simulation.stderr.split())
    accounts = query(tmp_path / STORE, "SELECT COUNT(*) AS n FROM accounts")
    assert accounts == [{"n": 1}], "the daemon's database was touched"

    # the read-only and admin commands take no lock
    for command in (
        ("health",),
        ("pause", "--reason", "checking"),
        ("resume",),
        ("drafts", "list"),
        ("migrate",),
        ("config", "check"),
    ):
        done = run_cli(*command, "--config", config, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    first.assert_alive()


def test_the_lock_dies_with_the_daemon(tmp_path: Path, daemons: Callable[..., Daemon]) -> None:
    scenario = write_scenario(tmp_path / "scenario.yaml")
    config = write_config(tmp_path / "c.yaml", **realtime_overrides(scenario, free_port()))
    first = daemons(config)
    first.wait_started()
    first.kill()  # SIGKILL: no clean-up of any kind

    again = daemons(config, label="again")
    again.wait_started()
    assert again.terminate() == 0
