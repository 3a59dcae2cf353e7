"""Every operator error, as an operator meets it: one paragraph naming what to fix, the right exit
code (2: fix the config, the environment or the machine; 1: a database that cannot be reached),
no Traceback.

One table (:data:`TABLE`) of command lines, each run in a subprocess (a few at a time, by the
module fixture ``results``) in its own data directory, with ``{placeholders}`` filled in at run
time: a PostgreSQL role and a database that do not exist on the local server
(GROWTHLOOP_TEST_PG_URL's), a closed local port (bound, then closed), a port held open by this
test, a data path below a regular file (tests may run as root, which ignores permission bits: a
file where a directory should be stops everyone), and an SQLite file whose lock this test holds,
as another daemon on it would.

Not in the table: a wrong PostgreSQL password. The local test server authenticates every
connection with ``trust`` (pg_hba.conf), so it never asks for a password and any password is
accepted; the refusal (SQLSTATE 28P01, asyncpg's InvalidPasswordError) is translated by the same
code as the unknown role (``agent.store.retry.refusal``), checked on the vendor's exception in
tests/unit/test_store_refusals.py.

Two more tests watch ``growthloop run`` while it waits for a database that cannot be reached (a
closed port) or that accepts connections but never answers: it says so (``store_waiting``,
naming how long it retries) while it is still retrying, not only when it gives up.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.acceptance.conftest import (
    cli_env,
    example_config,
    growthloop_command,
    merge,
    write_config,
)
from tests.conftest import PG_URL, require_postgres

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pw-never-shown"  # in the refused role's URL: must never be printed
MISSING_ROLE = "growthloop_no_such_role"
MISSING_DB = "growthloop_no_such_db"
RUN_STORE_WAIT = 3  # seconds (GROWTHLOOP_STORE_WAIT) the table's `run` waits for the database
STORE_COMMANDS = {  # every command that opens the store
    "health": ("health",),
    "migrate": ("migrate",),
    "pause": ("pause",),
    "resume": ("resume",),
    "drafts list": ("drafts", "list"),
    "run": ("run",),
}


@dataclass(frozen=True)
class Row:
    """One command line: ``command`` + ``--config FILE`` (the example config merged with
    ``config``), with ``env`` added; it must exit ``code`` naming every one of ``needles``."""

    command: tuple[str, ...]
    code: int
    needles: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None  # instead of a generated config ("{tmp}/..." allowed)
    postgres: bool = False


def _table() -> dict[str, Row]:
    """Every store command meets the refused role; a few the other database errors (the same
    code path: ``agent.bootstrap.open_store``, or ``store_error`` for migrate)."""
    table: dict[str, Row] = {}
    for label, command in STORE_COMMANDS.items():
        table[f"unknown role/{label}"] = Row(
            command,
            2,
            (f"role (user) '{MISSING_ROLE}'", "does not exist", "DATABASE_URL", "***"),
            env={"DATABASE_URL": "{role_url}", "GROWTHLOOP_STORE_WAIT": "30"},
            postgres=True,
        )
    for label in ("health", "migrate", "pause", "run"):
        table[f"unknown database/{label}"] = Row(
            STORE_COMMANDS[label],
            2,
            (f"no database '{MISSING_DB}'", "DATABASE_URL", "createdb"),
            env={"DATABASE_URL": "{db_url}", "GROWTHLOOP_STORE_WAIT": "30"},
            postgres=True,
        )
    for label in ("health", "migrate", "pause", "drafts list"):
        table[f"unreachable/{label}"] = Row(
            STORE_COMMANDS[label],
            1,
            ("cannot reach the database at 127.0.0.1:{closed_port}/", "DATABASE_URL"),
            env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:{closed_port}/test"},
        )
    table["unreachable/run"] = Row(
        ("run",),
        1,
        (
            "cannot reach the database at 127.0.0.1:{closed_port}/",
            f"after retrying for {RUN_STORE_WAIT} s",
            "GROWTHLOOP_STORE_WAIT",
        ),
        env={
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:{closed_port}/test",
            "GROWTHLOOP_STORE_WAIT": str(RUN_STORE_WAIT),
        },
    )
    table["port in use/run"] = Row(
        ("run",),
        2,
        ("Port {busy_port}", "already in use", "server.port", "PORT"),
        config={"server": {"host": "127.0.0.1", "port": "{busy_port}"}},
    )
    table["zero tick/run"] = Row(
        ("run",), 2, ("runtime.tick", "positive", "got 0 s"), config={"runtime": {"tick": "0s"}}
    )
    table["zero tick/config check"] = Row(
        ("config", "check"), 2, ("runtime.tick", "positive"), config={"runtime": {"tick": 0}}
    )
    table["negative grace/run"] = Row(
        ("run",),
        2,
        ("runtime.shutdown_grace", "got -5 s"),
        config={"runtime": {"shutdown_grace": -5}},
    )
    table["zero follower polls/run"] = Row(
        ("run",), 2, ("polling.account_every",), config={"polling": {"account_every": "0m"}}
    )
    table["negative jitter in an account/run"] = Row(
        ("run",),
        2,
        ("accounts[0].cadence.jitter", "negative"),
        config={"accounts": [{**example_config()["accounts"][0], "cadence": {"jitter": -60}}]},
    )
    table["journal unwritable/run"] = Row(
        ("run",),
        2,
        ("runtime.journal_path", "{tmp}/file.txt/journal"),
        config={"runtime": {"journal_path": "{tmp}/file.txt/journal/publish-journal.jsonl"}},
    )
    table["sqlite directory unwritable/run"] = Row(
        ("run",),
        2,
        ("store.sqlite_path", "{tmp}/file.txt/data", "DATABASE_URL"),
        config={"store": {"sqlite_path": "{tmp}/file.txt/data/growthloop.db"}},
    )
    table["sqlite path is a directory/run"] = Row(
        ("run",),
        2,
        ("store.sqlite_path", "{tmp}/a-directory", "is a directory"),
        config={"store": {"sqlite_path": "{tmp}/a-directory"}},
    )
    table["sandbox world unwritable/run"] = Row(
        ("run",),
        2,
        ("sandbox.world_path", "{tmp}/file.txt/world"),
        config={"sandbox": {"world_path": "{tmp}/file.txt/world/sandbox-world.db"}},
    )
    table["sqlite locked by another daemon/run"] = Row(
        ("run",),
        2,
        ("Another growthloop process", "pid {holder_pid}", "{tmp}/locked/growthloop.db"),
        config={"store": {"sqlite_path": "{tmp}/locked/growthloop.db"}},
    )
    table["missing config file/run"] = Row(
        ("run",), 2, ("{tmp}/nowhere.yaml", "does not exist"), config_file="{tmp}/nowhere.yaml"
    )
    table["invalid YAML/run"] = Row(
        ("run",), 2, ("broken.yaml", "not valid YAML", "line "), config_file="{tmp}/broken.yaml"
    )
    table["missing secret/run"] = Row(
        ("run",),
        2,
        ("Missing secrets", "'demo'", "DEMO_X_API_KEY"),
        config={"accounts": [{**example_config()["accounts"][0], "platform": "x"}]},
    )
    return table


TABLE = _table()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _fill(value: Any, places: dict[str, str]) -> Any:
    """``value`` with every ``{placeholder}`` filled in (strings in dicts and lists too)."""
    if isinstance(value, str):
        filled = value.format(**places)
        return int(filled) if value == "{busy_port}" else filled
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_fill(v, places) for v in value)
    return value


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed now: connections to it are refused


def _pg_url(**parts: str) -> str:
    return make_url(PG_URL).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The placeholders' values; holds the busy port and the SQLite lock while the table runs."""
    tmp = tmp_path_factory.mktemp("operator_errors")
    (tmp / "file.txt").write_text("not a directory\n", encoding="utf-8")
    (tmp / "a-directory").mkdir()
    (tmp / "broken.yaml").write_text("mode: live\naccounts: [\n  - name: x\n", encoding="utf-8")
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    # what `growthloop run` on that file would hold (agent/store/lockfile.py: <db>.lock, pid)
    (tmp / "locked").mkdir()
    lock = os.open(tmp / "locked" / "growthloop.db.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
    try:
        yield {
            "tmp": str(tmp),
            "busy_port": str(busy.getsockname()[1]),
            "closed_port": str(_closed_port()),
            "holder_pid": str(os.getpid()),
            "role_url": _pg_url(username=MISSING_ROLE, password=PASSWORD),
            "db_url": _pg_url(database=MISSING_DB),
        }
    finally:
        busy.close()
        os.close(lock)


def _run_row(name: str, row: Row, places: dict[str, str]) -> Result:
    tmp = Path(places["tmp"])
    home = tmp / name.replace("/", "_").replace(" ", "_")
    home.mkdir()
    if row.config_file is not None:
        config = Path(_fill(row.config_file, places))
    else:
        own = {  # each row its own data: the SQLite lock is per file
            "store": {"sqlite_path": str(home / "data" / "growthloop.db")},
            "sandbox": {"world_path": str(home / "data" / "sandbox-world.db")},
            "runtime": {"journal_path": str(home / "data" / "publish-journal.jsonl")},
            "server": {"host": "127.0.0.1", "port": 0},
        }
        config = write_config(home / "config.yaml", **merge(own, _fill(row.config, places)))
    env = cli_env(**_fill(row.env, places))
    done = subprocess.run(
        [*growthloop_command(), *row.command, "--config", str(config)],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def results(places: dict[str, str]) -> dict[str, Result]:
    # a few at a time: each is mostly interpreter start-up, and the machine is shared
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run_row, name, row, places) for name, row in TABLE.items()}
        return {name: future.result() for name, future in futures.items()}


def message_of(stderr: str) -> str:
    """stderr without the JSON log lines (``run`` logs to stderr), stripped."""
    kept = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if not isinstance(event, dict):
            kept.append(line)
    return "\n".join(kept).strip()


def assert_one_paragraph(result: Result, code: int, needles: tuple[str, ...]) -> str:
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything, everything
    assert result.returncode == code, (result.returncode, everything)
    message = message_of(result.stderr)
    assert message.startswith("growthloop:"), f"not one message on stderr:\n{result.stderr}"
    assert message.count("growthloop:") == 1, f"more than one message:\n{message}"
    assert "\n\n" not in message, f"more than one paragraph:\n{message}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in:\n{message}"
    return message


@pytest.mark.timeout(300)  # the first one waits for the whole table (the module fixture)
@pytest.mark.parametrize("name", list(TABLE))
async def test_operator_error(
    name: str, results: dict[str, Result], places: dict[str, str]
) -> None:
    row = TABLE[name]
    if row.postgres:
        await require_postgres()
    message = assert_one_paragraph(results[name], row.code, _fill(row.needles, places))
    assert PASSWORD not in results[name].stdout + results[name].stderr
    if row.postgres:  # refused at once: not waited for (run would say store_waiting)
        assert "Nothing was retried" in message
        assert "store_waiting" not in results[name].stderr


# --------------------------------------------------------- `run` says early that it is waiting


def _lines(stream: Any) -> queue.Queue[str | None]:
    """The lines of ``stream`` as they come (None at the end), read by a thread."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _run_waiting(tmp: Path, url: str, wait: int) -> tuple[dict[str, Any], bool, Result]:
    """Start ``run`` against ``url``; the ``store_waiting`` event, whether the process was still
    running when it came, and the final result."""
    config = write_config(
        tmp / "config.yaml",
        store={"sqlite_path": str(tmp / "data" / "growthloop.db")},
        server={"host": "127.0.0.1", "port": 0},
    )
    with subprocess.Popen(
        [*growthloop_command(), "run", "--config", str(config)],
        cwd=tmp,
        env=cli_env(DATABASE_URL=url, GROWTHLOOP_STORE_WAIT=str(wait)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        return _watch(proc)


def _watch(proc: subprocess.Popen[str]) -> tuple[dict[str, Any], bool, Result]:
    try:
        lines = _lines(proc.stderr)
        seen: list[str] = []
        waiting: dict[str, Any] | None = None
        while waiting is None:
            line = lines.get(timeout=60)
            if line is None:
                pytest.fail("run ended without saying it waits:\n" + "".join(seen))
            seen.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "store_waiting":
                waiting = event
        still_retrying = proc.poll() is None
        stdout = proc.stdout.read() if proc.stdout else ""
        code = proc.wait(timeout=60)
        while (line := lines.get(timeout=10)) is not None:
            seen.append(line)
        return waiting, still_retrying, Result(code, stdout, "".join(seen))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_says_while_retrying_that_it_waits_for_a_closed_port(
    tmp_path: Path, places: dict[str, str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{places['closed_port']}/test"
    waiting, still_retrying, result = _run_waiting(tmp_path, url, wait=5)
    assert still_retrying, "store_waiting came only when run gave up"
    assert waiting["retry_for_s"] == 5
    assert waiting["database"] == f"127.0.0.1:{places['closed_port']}/test"
    assert "ConnectionRefusedError" in waiting["error"]
    assert "GROWTHLOOP_STORE_WAIT" in waiting["message"]
    assert_one_paragraph(result, 1, ("cannot reach the database", "after retrying for 5 s"))


def test_run_says_within_two_seconds_that_a_silent_server_does_not_answer(
    tmp_path: Path,
) -> None:
    """A server that accepts the TCP connection and never answers (a hung database, a firewall
    that drops): each connection attempt lasts connect_timeout; `run` must not be silent."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever reads or writes
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=4"
        waiting, still_retrying, result = _run_waiting(tmp_path, url, wait=5)
    assert still_retrying
    # said by the 2 s timer, not by a failed attempt: the first attempt lasts 4 s
    assert waiting["error"] == "no answer within 2 s"
    assert waiting["retry_for_s"] == 5
    assert_one_paragraph(result, 1, ("cannot reach the database", "TimeoutError"))


def test_sigterm_while_run_waits_for_the_database_stops_it_cleanly(
    tmp_path: Path, places: dict[str, str]
) -> None:
    """Regression: SIGTERM during the start-up wait for the database (a deploy replacing a
    worker whose database is down) killed the process the default way: exit 143, no log."""
    url = f"postgresql://postgres@127.0.0.1:{places['closed_port']}/test"
    config = write_config(
        tmp_path / "config.yaml",
        store={"sqlite_path": str(tmp_path / "data" / "growthloop.db")},
        server={"host": "127.0.0.1", "port": 0},
    )
    with subprocess.Popen(
        [*growthloop_command(), "run", "--config", str(config)],
        cwd=tmp_path,
        env=cli_env(DATABASE_URL=url, GROWTHLOOP_STORE_WAIT="60"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            lines = _lines(proc.stderr)
            seen: list[str] = []
            while not any('"store_waiting"' in line for line in seen):
                line = lines.get(timeout=60)
                assert line is not None, "run ended before waiting:\n" + "".join(seen)
                seen.append(line)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)  # not the 60 s wait
            while (line := lines.get(timeout=10)) is not None:
                seen.append(line)
            stdout = proc.stdout.read() if proc.stdout else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = "".join(seen)
    assert code == 0, log
    assert "Traceback" not in log + stdout
    events = [json.loads(line) for line in seen if line.startswith("{")]
    stopped = [e for e in events if e.get("event") == "daemon_stopped"]
    assert len(stopped) == 1 and stopped[0]["during"] == "start-up", log
    assert stopped[0]["signal"] == "SIGTERM"
