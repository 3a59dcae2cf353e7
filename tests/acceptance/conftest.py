"""Acceptance helpers: run the real ``growthloop`` CLI in a subprocess, as a user would.

Every test works in its own temporary directory (the subprocess's cwd), with a config file built
from the built-in ``config/growthloop.example.yaml`` plus overrides, scenarios by name, JSON
logs (``GROWTHLOOP_LOG_FORMAT=json``) and no ``DATABASE_URL``. Daemons started through the
``daemons`` fixture are always killed at the end of the test, whatever happened.

The databases are inspected with the stdlib ``sqlite3`` module, read-only, exactly as an operator
with the ``sqlite3`` shell would: the store (``data/growthloop.db``) and the sandbox world file
(``data/sandbox-world.db``, tables ``posts``/``accounts``/``faults``, see ``adapters/sandbox.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "config" / "growthloop.example.yaml"  # the built-in config
STORE = Path("data/growthloop.db")  # relative to the test's working directory
WORLD = Path("data/sandbox-world.db")

T = TypeVar("T")


def growthloop_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m agent``."""
    script = Path(sys.executable).with_name("growthloop")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "agent"]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("SUPABASE_URL", None)
    env.pop("SUPABASE_SERVICE_ROLE_KEY", None)
    env.pop("GROWTHLOOP_CONFIG", None)
    env.pop("PORT", None)
    env["GROWTHLOOP_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def run_cli(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    module: bool = False,
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agent"] if module else growthloop_command()
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        env=cli_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out


def example_config() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return raw


def write_config(path: Path, **overrides: Any) -> Path:
    """The example config merged (nested) with ``overrides``."""
    raw = merge(example_config(), overrides)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def write_scenario(path: Path, **overrides: Any) -> Path:
    """A scenario file extending ``demo_realtime`` (10 real seconds = 1 sandbox hour)."""
    data = {"extends": "demo_realtime", "name": f"acceptance_{path.stem}", **overrides}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


ALWAYS_ACTIVE = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
SECOND_ACCOUNT = {
    "name": "demo2",
    "platform": "sandbox",
    "handle": "@growthloop_demo2",
    "persona": "A product designer who writes short, honest notes about building in public",
    "niche": "product design for small teams",
    "topics": ["user interviews", "design reviews", "shipping small"],
}
HORIZONS_S = (2, 4, 6)  # the compressed polling horizons, in seconds


def realtime_overrides(scenario: Path, port: int, *, two_accounts: bool = False) -> dict[str, Any]:
    """Compressed real time: a post as soon as the daemon starts, polls at 2/4/6 s, 0.5 s ticks.

    The cadence is still the product's: at most 10 posts per hour per account (so the next post
    of an account comes six real minutes later). Two accounts give two posts straight away.
    """
    overrides: dict[str, Any] = {
        "cadence": {
            "posts_per_day": 48,
            "max_posts_per_hour": 10,
            "min_gap": "1s",
            "jitter": "0s",
            "active_hours": ALWAYS_ACTIVE,
        },
        "polling": {"horizons": [f"{s}s" for s in HORIZONS_S], "account_every": "1s"},
        "runtime": {"tick": "0.5s", "shutdown_grace": "5s"},
        "sandbox": {"scenario": str(scenario), "seed": 11, "world_path": str(WORLD)},
        "store": {"sqlite_path": str(STORE)},
        "server": {"host": "127.0.0.1", "port": port},
    }
    if two_accounts:
        overrides["accounts"] = [*example_config()["accounts"], SECOND_ACCOUNT]
    return overrides


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]] | None:
    """Rows (as dicts) of a read-only query; None while the file is missing, locked or empty."""
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params).fetchall()]
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def must_query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    rows = query(db, sql, params)
    assert rows is not None, f"could not read {db} ({sql})"
    return rows


def store_time(value: str) -> datetime:
    """A timestamp as the store keeps it in SQLite (naive UTC text), made aware."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Daemon:
    """One ``growthloop run`` subprocess; stderr (the JSON log) goes to a file in ``cwd``."""

    def __init__(
        self, cwd: Path, config: Path, port: int, label: str, env: dict[str, str] | None = None
    ) -> None:
        self.cwd, self.config, self.port = cwd, config, port
        self.log_path = cwd / f"daemon-{label}.log"
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [*growthloop_command(), "run", "--config", str(config)],
            cwd=cwd,
            env=cli_env(PORT=str(port), **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    # ------------------------------------------------------------------------------- inspection
    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                out.append(event)
        return out

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8").splitlines()[-lines:])

    def assert_alive(self) -> None:
        code = self.proc.poll()
        assert code is None, f"the daemon exited early with {code}:\n{self.log_tail()}"

    def healthz(self) -> dict[str, Any] | None:
        """The /healthz body when it answers 200, else None."""
        self.assert_alive()
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/healthz", timeout=3
            ) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_started(self, timeout: float = 30) -> dict[str, Any]:
        def started() -> dict[str, Any] | None:
            self.assert_alive()
            found = self.events("daemon_started")
            return found[0] if found else None

        return wait_for(started, timeout=timeout, what="daemon_started in the log")

    def wait(self, probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """``wait_for`` that also fails at once (with the log) if the daemon dies meanwhile."""

        def checked() -> T | None:
            self.assert_alive()
            return probe()

        try:
            return wait_for(checked, timeout=timeout, what=what)
        except pytest.fail.Exception:
            print(self.log_tail(60))
            raise

    # --------------------------------------------------------------------------------- stopping
    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM; the exit code (fails if the daemon does not exit within ``timeout``)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the daemon did not exit within {timeout:g} s of SIGTERM")
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group (no cleanup of any kind), and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons with ``daemons(config, port=None, label="", env=None)`` (None: a free port,
    given as PORT; ``env``: extra environment, e.g. DATABASE_URL); all are killed after the test,
    whatever happened."""
    started: list[Daemon] = []

    def start(
        config: Path, port: int | None = None, label: str = "", env: dict[str, str] | None = None
    ) -> Daemon:
        port = free_port() if port is None else port
        daemon = Daemon(tmp_path, config, port, label or str(len(started) + 1), env)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.kill()
