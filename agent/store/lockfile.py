"""SQLite is single-process: the one daemon (or simulation) on a file holds a lock beside it.

Several workers need claims and leases that SQLite cannot arbitrate between processes (and
the cycles skip them on an exclusive store, see ``Agent.exclusive``), so ``growthloop run`` and
``growthloop simulate`` take an exclusive, non-blocking ``flock`` on ``<database>.lock`` (which
holds the owner's pid) before opening an SQLite store. A second one on the same file stops with
a paragraph naming the file, the pid and DATABASE_URL. The kernel drops the lock when the
process ends, however it ends, so a crashed daemon never leaves a stale lock behind. Commands
that only read or flip a switch (``health``, ``pause``, ``drafts``, ``posts``, ``migrate``, ...)
take no lock.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from agent.errors import ConfigError
from agent.store.engine import ensure_writable_dir


@dataclass
class SqliteLock:
    """A held lock; ``release()`` gives it up (ending the process does too)."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def hold_sqlite_lock(database: Path) -> SqliteLock:
    """Lock ``database`` for this process, or raise a ConfigError naming who holds it."""
    path = lock_path(database)
    ensure_writable_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"The lock file {path} cannot be created ({exc.strerror}).") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"Another growthloop process (pid {holder}) is already running on the SQLite "
            f"database {database} (it holds {path}). SQLite serves one worker process at a "
            "time: stop that process first, or, to run several workers on one database, set "
            "DATABASE_URL to a PostgreSQL database. Commands such as health, pause, resume, "
            "drafts, posts and migrate work while it runs."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return SqliteLock(path=path, fd=fd)


def lock_store(url: str) -> SqliteLock | None:
    """Lock the store at ``url`` if it is an SQLite file (None on PostgreSQL)."""
    database = sqlite_file(url)
    return hold_sqlite_lock(database) if database is not None else None
