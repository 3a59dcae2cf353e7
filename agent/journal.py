"""The publish journal: posts the platform accepted while the database could not record them.

Step 3 of the exactly-once protocol (``finish_publish``) needs the database. When the platform
has accepted a post but that write fails (the database is unreachable), the facts the write
needs are appended to a local append-only file, one JSON line per post, flushed and fsync'ed
before the publish cycle moves on::

    {"content_id": 42, "account": "demo", "platform": "sandbox", "platform_post_id": "17",
     "posted_at": "...", "horizons_s": [3600, 14400, 86400], "idempotency_key": "...",
     "text_hash": "...", "written_at": "..."}

At the start of every publish cycle (and before the start-up reconciliation) the journal is
replayed: each entry is written with ``finish_publish``, which is guarded by the post's status,
so replaying an entry twice changes nothing. Once every entry is applied the file is replaced,
atomically (write a new file, fsync, rename), by whatever was appended meanwhile, usually
nothing, so it does not grow. An entry that names a post this database does not have (another
database, a reused id) or cannot take (the post failed meanwhile) is moved to
``<journal>.rejected`` with an error in the log: never dropped silently.

A crash can leave a half-written last line. It is skipped with a warning (the next append first
ends it with a newline, so it can never swallow a later entry) and moved to the rejected file at
the next rotation; complete lines are never lost. Several processes may share one journal file:
appends and rotations hold an exclusive ``flock`` on ``<journal>.lock``.

Entries hold ids, times and hashes only: no post text, no credentials.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.logs import log
from agent.models import PostStatus
from agent.store.base import Store

DEFAULT_JOURNAL_PATH = Path("data/publish-journal.jsonl")  # beside the default SQLite file


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One publish the platform accepted, with what ``finish_publish`` needs to record it."""

    content_id: int
    account: str
    platform: str
    platform_post_id: str
    posted_at: datetime
    horizons_s: tuple[float, ...]  # the polling horizons, in seconds
    idempotency_key: str
    text_hash: str
    written_at: datetime

    @property
    def horizons(self) -> list[timedelta]:
        return [timedelta(seconds=s) for s in self.horizons_s]

    def to_line(self) -> bytes:
        data = asdict(self)
        data["posted_at"] = self.posted_at.isoformat()
        data["written_at"] = self.written_at.isoformat()
        data["horizons_s"] = list(self.horizons_s)
        return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> JournalEntry:
        """Parse one line; ValueError (with the reason) when it is not a valid entry."""
        try:
            data: dict[str, Any] = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls(
                content_id=int(data["content_id"]),
                account=str(data["account"]),
                platform=str(data["platform"]),
                platform_post_id=str(data["platform_post_id"]),
                posted_at=_aware(data["posted_at"]),
                horizons_s=tuple(float(s) for s in data["horizons_s"]),
                idempotency_key=str(data["idempotency_key"]),
                text_hash=str(data["text_hash"]),
                written_at=_aware(data["written_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a journal entry ({type(exc).__name__}: {exc})") from None


def _aware(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay did."""

    applied: int = 0  # entries now recorded in the database (by this replay or before it)
    # the account name of each applied entry (for the per-account counters)
    accounts: tuple[str, ...] = ()
    rejected: int = 0  # entries moved to the rejected file
    torn: bool = False  # a half-written last line was skipped


class PublishJournal:
    """The append-only journal file at ``path`` (created on the first append)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._lock_path = path.with_name(path.name + ".lock")

    # -- writing --------------------------------------------------------------------------

    def append(self, entry: JournalEntry) -> None:
        """Append ``entry`` durably (flush + fsync) before returning. OSError if it cannot."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            created = not self.path.exists()
            with self.path.open("ab") as file:
                if file.tell() > 0 and not _ends_with_newline(self.path):
                    file.write(b"\n")  # end a torn line so it cannot swallow this entry
                file.write(entry.to_line())
                file.flush()
                os.fsync(file.fileno())
            if created:
                _fsync_dir(self.path.parent)

    # -- reading and replaying --------------------------------------------------------------

    def read(self) -> tuple[list[JournalEntry], list[bytes], bool, int]:
        """(valid entries, invalid complete lines, torn tail?, bytes read) of the file now."""
        try:
            if self.path.stat().st_size == 0:
                return [], [], False, 0
        except FileNotFoundError:
            return [], [], False, 0
        with self._locked():
            data = self.path.read_bytes()
        entries, invalid, torn = _parse(data)
        return entries, invalid, torn, len(data)

    async def replay(self, store: Store, *, now: datetime) -> Replayed:
        """Record every entry with ``finish_publish``; rotate the file once all are applied.

        A StoreError (the database is still down) propagates and leaves the file as it was:
        the entries applied so far are applied again, harmlessly, next time.
        """
        entries, invalid, torn, size = self.read()
        if size == 0:
            return Replayed()
        if torn:
            log.warning("journal_torn_tail", path=str(self.path))
        for line in invalid:
            log.warning("journal_line_invalid", path=str(self.path), line=line[:200].decode())
        accounts: list[str] = []
        rejected = list(invalid)
        for entry in entries:
            if await apply_entry(store, entry, now=now):
                accounts.append(entry.account)
            else:
                rejected.append(entry.to_line().rstrip(b"\n"))
        self._rotate(consumed=size, rejected=rejected, torn=torn)
        return Replayed(
            applied=len(accounts), rejected=len(rejected), torn=torn, accounts=tuple(accounts)
        )

    def _rotate(self, *, consumed: int, rejected: Sequence[bytes], torn: bool) -> None:
        """Replace the journal by what was appended after the first ``consumed`` bytes."""
        with self._locked():
            data = self.path.read_bytes() if self.path.exists() else b""
            rest = data[consumed:]
            torn_tail = b""
            if torn:
                # the torn tail is the part of the consumed bytes after their last newline;
                # an append after it ended it with a newline (now part of ``rest``)
                torn_tail = data[:consumed].rsplit(b"\n", 1)[-1]
                if rest.startswith(b"\n"):
                    rest = rest[1:]
            if rejected or torn_tail:
                with self.rejected_path.open("ab") as file:
                    for line in [*rejected, *([torn_tail] if torn_tail else [])]:
                        file.write(line + b"\n")
                    file.flush()
                    os.fsync(file.fileno())
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("wb") as file:
                file.write(rest)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


async def apply_entry(store: Store, entry: JournalEntry, *, now: datetime) -> bool:
    """Record one entry; True once the post is ``posted`` in the store, False to reject it.

    A post the database still has as ``planned`` (a reconciliation that did not find it put it
    back in the queue) is claimed first, so it is recorded rather than sent again.
    """
    post = await store.get_post(entry.content_id)
    if post is None or post.idempotency_key != entry.idempotency_key:
        log.error(
            "journal_entry_unknown",
            content_id=entry.content_id,
            post_id=entry.platform_post_id,
            reason="no such post" if post is None else "another post has this id",
        )
        return False
    if post.status == PostStatus.PLANNED:
        await store.begin_publish(post.id, now=now)
    done = await store.finish_publish(
        post.id,
        platform_post_id=entry.platform_post_id,
        posted_at=entry.posted_at,
        horizons=entry.horizons,
        now=now,
    )
    if done:
        log.info(
            "journal_entry_applied",
            account=entry.account,
            content_id=entry.content_id,
            post_id=entry.platform_post_id,
        )
        return True
    post = await store.get_post(entry.content_id)
    if post is not None and post.status == PostStatus.POSTED:
        return True  # recorded already (an earlier replay, or reconciliation found it)
    log.error(
        "journal_entry_refused",
        content_id=entry.content_id,
        post_id=entry.platform_post_id,
        status=post.status.value if post else None,
    )
    return False


def _parse(data: bytes) -> tuple[list[JournalEntry], list[bytes], bool]:
    lines = data.split(b"\n")
    torn = lines[-1] != b""  # the last line has no newline: a write cut short
    entries: list[JournalEntry] = []
    invalid: list[bytes] = []
    for line in lines[:-1]:
        if not line.strip():
            continue
        try:
            entries.append(JournalEntry.from_line(line))
        except ValueError:
            invalid.append(line)
    return entries, invalid, torn


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DEFAULT_JOURNAL_PATH",
    "JournalEntry",
    "PublishJournal",
    "Replayed",
    "apply_entry",
]
