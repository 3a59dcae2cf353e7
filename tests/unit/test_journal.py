"""The publish journal: append, replay, idempotence, torn tails, rotation; and the publish cycle
writing to it while a real SQLite database is locked, then catching up from it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from structlog.testing import capture_logs

from adapters.base import PublishedPost, text_hash
from agent.errors import StoreUnavailable
from agent.journal import JournalEntry, PublishJournal, apply_entry
from agent.models import NewContent, Post, PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.retry import RetryPolicy
from agent.store.schema import performance_snapshots
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.unit.vt_harness import make_harness

HORIZONS = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
FAST = RetryPolicy(attempts=3, first_wait=0.01, max_wait=0.05, give_up_after=1.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    s = SqlStore(engine)
    try:
        yield s
    finally:
        await s.close()


async def publishing_post(store: SqlStore, n: int = 1) -> Post:
    account = await store.ensure_account(name="demo", platform="sandbox", handle=None, now=T0)
    text = f"post number {n}"
    post = await store.add_content(
        NewContent(
            account_id=account,
            status=PostStatus.PLANNED,
            text=text,
            text_hash=text_hash(text),
            generation_metadata={},
            scheduled_for=T0,
            idempotency_key=f"key-{n}",
        ),
        now=T0,
    )
    assert await store.begin_publish(post.id, now=T0)
    return post


def entry_for(post: Post, **overrides: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "content_id": post.id,
        "account": "demo",
        "platform": "sandbox",
        "platform_post_id": f"p{post.id}",
        "posted_at": T0 + timedelta(seconds=5),
        "horizons_s": tuple(h.total_seconds() for h in HORIZONS),
        "idempotency_key": post.idempotency_key,
        "text_hash": post.text_hash,
        "written_at": T0 + timedelta(seconds=6),
    }
    return JournalEntry(**(values | overrides))


async def snapshot_count(store: SqlStore, content_id: int) -> int:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            performance_snapshots.select().where(performance_snapshots.c.content_id == content_id)
        )
        return len(rows.all())


def test_append_writes_one_json_line_per_entry_without_the_text(tmp_path: Path) -> None:
    journal = PublishJournal(tmp_path / "data" / "journal.jsonl")  # the directory is created
    secret_text = "secret launch plans"
    entry = JournalEntry(
        content_id=7,
        account="demo",
        platform="sandbox",
        platform_post_id="p7",
        posted_at=T0,
        horizons_s=(3600.0, 14400.0, 86400.0),
        idempotency_key="key-7",
        text_hash=text_hash(secret_text),
        written_at=T0 + timedelta(seconds=1),
    )
    journal.append(entry)
    journal.append(entry)
    lines = journal.path.read_bytes().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["content_id"] == 7 and first["platform_post_id"] == "p7"
    assert first["horizons_s"] == [3600.0, 14400.0, 86400.0]
    assert first["posted_at"] == T0.isoformat()
    assert secret_text not in journal.path.read_text()
    assert JournalEntry.from_line(lines[0]) == entry


async def test_replay_records_the_post_with_its_snapshots_then_empties_the_file(
    store: SqlStore, tmp_path: Path
) -> None:
    post = await publishing_post(store)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(post))
    replayed = await journal.replay(store, now=T0 + timedelta(minutes=1))
    assert (replayed.applied, replayed.rejected, replayed.torn) == (1, 0, False)
    again = await store.get_post(post.id)
    assert again is not None and again.status == PostStatus.POSTED
    assert again.platform_post_id == f"p{post.id}"
    assert again.posted_at == T0 + timedelta(seconds=5)
    assert await snapshot_count(store, post.id) == len(HORIZONS)
    assert journal.path.read_bytes() == b""  # rotated
    assert not journal.rejected_path.exists()


async def test_replaying_an_applied_entry_changes_nothing(store: SqlStore, tmp_path: Path) -> None:
    post = await publishing_post(store)
    assert await apply_entry(store, entry_for(post), now=T0)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(post))  # e.g. a crash between applying and rotating
    journal.append(entry_for(post))
    replayed = await journal.replay(store, now=T0)
    assert replayed.applied == 2 and replayed.rejected == 0
    assert await snapshot_count(store, post.id) == len(HORIZONS)
    assert journal.path.read_bytes() == b""


async def test_a_torn_last_line_is_skipped_with_a_warning_and_complete_lines_are_kept(
    store: SqlStore, tmp_path: Path
) -> None:
    one, two = await publishing_post(store, 1), await publishing_post(store, 2)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(one))
    torn = entry_for(two).to_line()[:40]
    with journal.path.open("ab") as file:
        file.write(torn)  # the process died in the middle of this write
    with capture_logs() as logs:
        replayed = await journal.replay(store, now=T0)
    assert (replayed.applied, replayed.torn) == (1, True)
    assert any(e["event"] == "journal_torn_tail" for e in logs)
    assert journal.path.read_bytes() == b""
    assert journal.rejected_path.read_bytes() == torn + b"\n"  # kept for a person to look at
    post = await store.get_post(two.id)
    assert post is not None and post.status == PostStatus.PUBLISHING  # reconciliation's job


async def test_an_append_after_a_torn_line_is_not_swallowed_by_it(
    store: SqlStore, tmp_path: Path
) -> None:
    one, two = await publishing_post(store, 1), await publishing_post(store, 2)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    with journal.path.open("wb") as file:
        file.write(entry_for(one).to_line()[:30])
    journal.append(entry_for(two))
    replayed = await journal.replay(store, now=T0)
    assert replayed.applied == 1 and replayed.rejected == 1  # the torn line, now complete
    post = await store.get_post(two.id)
    assert post is not None and post.status == PostStatus.POSTED


async def test_entries_for_unknown_or_other_posts_are_moved_aside_not_applied(
    store: SqlStore, tmp_path: Path
) -> None:
    post = await publishing_post(store)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(post, idempotency_key="from-another-database"))
    journal.append(entry_for(post, content_id=999))
    with capture_logs() as logs:
        replayed = await journal.replay(store, now=T0)
    assert (replayed.applied, replayed.rejected) == (0, 2)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["journal_entry_unknown"] * 2
    unchanged = await store.get_post(post.id)
    assert unchanged is not None and unchanged.status == PostStatus.PUBLISHING
    assert len(journal.rejected_path.read_bytes().splitlines()) == 2
    assert journal.path.read_bytes() == b""


async def test_a_post_requeued_meanwhile_is_recorded_not_sent_again(
    store: SqlStore, tmp_path: Path
) -> None:
    post = await publishing_post(store)
    await store.reschedule(post.id, scheduled_for=T0 + timedelta(hours=1), error="x", now=T0)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(post))
    assert (await journal.replay(store, now=T0)).applied == 1
    again = await store.get_post(post.id)
    assert again is not None and again.status == PostStatus.POSTED
    assert await store.due_posts(T0 + timedelta(days=1)) == []


class AppendingStore:
    """The real store, plus one journal append while the replay is in progress."""

    def __init__(self, store: SqlStore, journal: PublishJournal, late: JournalEntry) -> None:
        self.store, self.journal, self.late = store, journal, late

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def get_post(self, content_id: int) -> Post | None:
        if self.late is not None:
            self.journal.append(self.late)
            self.late = None  # type: ignore[assignment]
        return await self.store.get_post(content_id)


async def test_rotation_keeps_what_was_appended_during_the_replay(
    store: SqlStore, tmp_path: Path
) -> None:
    one, two = await publishing_post(store, 1), await publishing_post(store, 2)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(one))
    await journal.replay(AppendingStore(store, journal, entry_for(two)), now=T0)  # type: ignore[arg-type]
    kept = journal.path.read_bytes().splitlines()
    assert [JournalEntry.from_line(line) for line in kept] == [entry_for(two)]
    assert (await journal.replay(store, now=T0)).applied == 1
    assert journal.path.read_bytes() == b""


async def test_replay_while_the_database_is_locked_leaves_the_journal_as_it_was(
    store: SqlStore, tmp_path: Path
) -> None:
    await short_waits(store)
    post = await publishing_post(store)
    journal = PublishJournal(tmp_path / "journal.jsonl")
    journal.append(entry_for(post))
    before = journal.path.read_bytes()
    with Locked(tmp_path / "g.db"), pytest.raises(StoreUnavailable):
        await journal.replay(store, now=T0)
    assert journal.path.read_bytes() == before
    assert (await journal.replay(store, now=T0)).applied == 1


# -- the publish cycle, with a database that locks up right after the platform accepted -----


async def short_waits(store: SqlStore) -> None:
    """SQLite waits 30 s for a lock by default; here 50 ms, and the store retries quickly."""

    @event.listens_for(store.engine.sync_engine, "connect")
    def _busy(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=50")
        cursor.close()

    await store.engine.dispose()
    store.retry = FAST


class Locked:
    """An exclusive lock on the SQLite file, held by another connection: writers must wait."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, timeout=5, isolation_level=None)

    def __enter__(self) -> Locked:
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


class LockingPlatform:
    """The sandbox platform; its database neighbour locks the store as soon as it publishes."""

    def __init__(self, inner: Any, db: Path) -> None:
        self.inner, self.db = inner, db
        self.lock: Locked | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, text: str, **kwargs: Any) -> PublishedPost:
        published: PublishedPost = await self.inner.publish(text, **kwargs)
        self.lock = Locked(self.db).__enter__()
        return published


async def test_a_publish_the_store_cannot_record_is_journaled_then_recorded_and_polled(
    tmp_path: Path,
) -> None:
    async with make_harness(tmp_path) as h:
        await short_waits(h.store)
        h.agent.journal = PublishJournal(tmp_path / "journal.jsonl")
        platform = LockingPlatform(h.agent.platforms["demo"], tmp_path / "g.db")
        h.agent.platforms = {"demo": platform}  # type: ignore[dict-item]
        await h.run_cycles("plan")
        (planned,) = await h.posts()
        h.clock.advance_to(planned.scheduled_for)
        with capture_logs() as logs, pytest.raises(StoreUnavailable):
            await h.run_cycles("publish")
        assert [e["event"] for e in logs].count("post_journaled") == 1
        assert len(h.world_posts()) == 1  # on the platform...
        assert platform.lock is not None
        platform.lock.__exit__(None, None, None)  # ...and the database is back
        (still,) = await h.posts()
        assert still.status == PostStatus.PUBLISHING  # not recorded yet
        h.clock.advance_to(h.clock.now() + timedelta(hours=25))  # every snapshot fell due
        with capture_logs() as logs:
            await h.run_cycles("publish", "poll")
        events = [e["event"] for e in logs]
        assert "journal_entry_applied" in events and "post_reconciled" not in events
        (post,) = await h.posts()
        assert post.status == PostStatus.POSTED
        assert post.platform_post_id == str(h.world_posts()[0][0])
        snaps = await h.rows(performance_snapshots)
        assert len(snaps) == len(HORIZONS) and all(s.taken_at is not None for s in snaps)
        assert len(h.world_posts()) == 1  # never sent twice
        assert h.agent.journal.path.read_bytes() == b""
