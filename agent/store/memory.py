"""The Store in Python data structures, for simulations, benchmarks and tests.

:class:`MemoryStore` answers every method of :class:`agent.store.base.Store` exactly as
:class:`agent.store.sql.SqlStore` does (same filters, orderings, compare-and-set transitions,
return values, and the same ``ConstraintViolation`` for a violated unique or foreign key), without a
database: a simulated day takes milliseconds instead of thousands of SQLite round trips. Nothing
survives the process; :meth:`MemoryStore.export` copies everything into a migrated SQLite or
PostgreSQL database for reading with SQL afterwards (``growthloop simulate`` does this).

Every method runs without awaiting in the middle of a change, so each is atomic with respect to
other coroutines, as a transaction is; a method that would violate a constraint checks
everything before it changes anything. Values handed out are frozen or fresh copies.

Rows are dicts shaped by :mod:`agent.store.schema` (see :mod:`agent.store.memory_tables`), with
indexes for the cycles' hot paths: posts by status, due snapshots by due time, follower readings
per account by time, attributions by (post, method), arm statistics by (account, dimension, arm).

The store is put together from parts that share one state (:mod:`agent.store.memory_state`:
the rows, the indexes, the row helpers and the accounts): this module holds the content and the
exactly-once publish protocol, :mod:`agent.store.memory_metrics` the polling, attribution and
learning, :mod:`agent.store.memory_operations` leases, the kill switch, health, drafts and export,
:mod:`agent.store.memory_queue` the queue a person lists, cancels and moves,
:mod:`agent.store.memory_insights` the insights.
:mod:`agent.store.memory_audience` the audience (members, interactions; docs/audience.md).
:mod:`agent.store.memory_conversations` replies, mentions and read cursors (docs/conversations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.models import NewContent, Post, PostStatus, QueueState
from agent.store.memory_audience import MemoryAudience
from agent.store.memory_conversations import MemoryConversations
from agent.store.memory_credits import MemoryCredits
from agent.store.memory_experiments import MemoryExperiments
from agent.store.memory_insights import MemoryInsights
from agent.store.memory_metrics import MemoryMetrics
from agent.store.memory_operations import MemoryOperations
from agent.store.memory_queue import MemoryQueue
from agent.store.memory_spend import MemorySpend
from agent.store.memory_state import (
    CONTENT_TIMES,
    DRAFT,
    EXPIRED_DRAFT_ERROR,
    PLANNED,
    POSTED,
    PUBLISHING,
    SCHEDULED,
    SENDABLE,
    post_of,
)
from agent.store.memory_suspensions import MemorySuspensions
from agent.store.memory_tables import TABLES, refused, utc
from agent.store.memory_threads import MemoryThreads
from agent.store.rows import cadence_at

__all__ = ["EXPIRED_DRAFT_ERROR", "MemoryStore"]


class MemoryStore(
    MemoryMetrics,
    MemoryOperations,
    MemorySuspensions,
    MemorySpend,
    MemoryQueue,
    MemoryInsights,
    MemoryAudience,
    MemoryCredits,
    MemoryConversations,
    MemoryExperiments,
    MemoryThreads,
):
    """growthloop's store held in memory (one process, nothing persisted)."""

    backend = "memory"

    # -- content ----------------------------------------------------------------------------

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        row = TABLES["content"].row(
            {
                "account_id": new.account_id,
                "status": new.status.value,
                "text": new.text,
                "text_hash": new.text_hash,
                "generation_metadata": new.generation_metadata,
                "scheduled_for": new.scheduled_for,
                "idempotency_key": new.idempotency_key,
                "error": new.error,
                "created_at": now,
                "updated_at": now,
            }
        )
        account = self._account(new.account_id, "content")
        if new.idempotency_key in self._idempotency:
            raise refused("UNIQUE constraint failed: content.idempotency_key")
        self._insert("content", row)
        self._idempotency.add(new.idempotency_key)
        self._status[row["status"]].add(row["id"])
        account.content.append(row["id"])
        for name in CONTENT_TIMES:
            account.times[name].add(row[name], row["id"])
        return post_of(row)

    async def get_post(self, content_id: int) -> Post | None:
        row = self._content_row(content_id)
        return post_of(row) if row is not None else None

    def _account_content(self, account_id: int) -> list[dict[str, Any]]:
        account = self._accounts.get(account_id)
        content = self._rows["content"]
        return [content[i] for i in account.content] if account is not None else []

    async def latest_scheduled(self, account_id: int) -> datetime | None:
        account = self._accounts.get(account_id)
        if account is None:
            return None
        content = self._rows["content"]
        for at, content_id in account.times["scheduled_for"].newest_first():
            row = content[content_id]
            if row["scheduled_for"] == at and row["status"] in SCHEDULED:
                return at  # (a stale entry's row was rescheduled: its current entry counts)
        return None

    async def latest_slot(self, account_id: int) -> tuple[datetime, datetime] | None:
        account = self._accounts.get(account_id)
        if account is None:
            return None
        content = self._rows["content"]
        latest = None
        for at, content_id in account.times["scheduled_for"].newest_first():
            row = content[content_id]
            if row["scheduled_for"] != at or row["status"] not in SCHEDULED:
                continue  # a stale entry (the row was rescheduled) or not scheduled
            if latest is not None and at < latest[0]:
                break
            if latest is None or content_id > latest[1]:  # as SQL: the later id of a tie
                latest = (at, content_id)
        if latest is None:
            return None
        at, content_id = latest
        return at, cadence_at(content[content_id]["generation_metadata"], at)

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        start, end = utc(start), utc(end)
        account = self._accounts.get(account_id)
        if account is None:
            return 0
        content = self._rows["content"]
        found = (content[i] for i in account.times["scheduled_for"].ids(start, end))
        return sum(
            1 for r in found if r["status"] in SCHEDULED and start <= r["scheduled_for"] < end
        )

    async def pending_count(self, account_id: int) -> int:
        content = self._rows["content"]
        return sum(1 for i in self._status[PLANNED] if content[i]["account_id"] == account_id)

    async def queued_accounts(self) -> set[int]:
        content = self._rows["content"]
        return {content[i]["account_id"] for i in self._status[PLANNED] | self._status[DRAFT]}

    async def queue_state(self, account_id: int) -> QueueState:
        content = self._rows["content"]
        waiting = self._status[PLANNED] | self._status[DRAFT]
        kept = self._accounts.get(account_id)
        return QueueState(
            queued=any(content[i]["account_id"] == account_id for i in waiting),
            new=kept is None or not kept.content,
        )

    async def accounts_without_content(self) -> set[int]:
        return {account_id for account_id, kept in self._accounts.items() if not kept.content}

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        now = utc(now)
        content = self._rows["content"]
        due = [content[i] for i in self._status[PLANNED] if content[i]["scheduled_for"] <= now]
        due.sort(key=lambda r: (r["scheduled_for"], r["id"]))
        return [post_of(r) for r in due[: max(limit, 0)]]

    async def begin_publish(
        self, content_id: int, *, now: datetime, due_by: datetime | None = None
    ) -> bool:
        """planned -> publishing, before the platform is called (step 1). With ``due_by``,
        only while the post is still due by then (not moved later meanwhile)."""
        now = utc(now)
        row = self._content_row(content_id)
        if row is None or row["status"] != PLANNED:
            return False
        if due_by is not None and row["scheduled_for"] > utc(due_by):
            return False
        self._update(
            row,
            status=PUBLISHING,
            publish_started_at=now,
            publish_attempts=row["publish_attempts"] + 1,
            updated_at=now,
        )
        return True

    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool:
        """publishing -> posted, with the due snapshot rows, at once (step 3)."""
        posted_at, now = utc(posted_at), utc(now)
        row = self._content_row(content_id)
        if row is None or row["status"] != PUBLISHING:
            return False
        snapshots = [
            TABLES["performance_snapshots"].row(
                {
                    "content_id": content_id,
                    "horizon_hours": h.total_seconds() / 3600,
                    "due_at": posted_at + h,
                }
            )
            for h in horizons
        ]
        existing = self._snaps.setdefault(content_id, {})
        hours = [s["horizon_hours"] for s in snapshots]
        if len(set(hours)) != len(hours) or any(h in existing for h in hours):
            raise refused(
                "UNIQUE constraint failed: performance_snapshots.content_id, "
                "performance_snapshots.horizon_hours"
            )
        self._update(
            row,
            status=POSTED,
            platform_post_id=platform_post_id,
            posted_at=posted_at,
            error=None,
            updated_at=now,
        )
        account = self._accounts[row["account_id"]]
        for snap in snapshots:
            self._insert("performance_snapshots", snap)
            existing[snap["horizon_hours"]] = snap["id"]
            self._untaken.add(snap["due_at"], snap["id"])
            account.due.add(snap["due_at"], snap["id"])
        account.posted.add(posted_at, content_id)
        self._posted.add(posted_at, content_id)
        for (method, window), pending in self._unattributed.items():
            if (content_id, method, window) not in self._attribution_keys:
                pending.add(posted_at, content_id)
        if row["learned_at"] is None:
            self._unlearned.add(content_id)
        return True

    async def fail_publish(
        self,
        content_id: int,
        *,
        error: str,
        now: datetime,
        status: PostStatus = PostStatus.FAILED,
    ) -> None:
        now = utc(now)
        row = self._content_row(content_id)
        if row is not None and row["status"] in SENDABLE:
            self._update(row, status=status.value, error=error[:2000], updated_at=now)

    async def reschedule(
        self,
        content_id: int,
        *,
        scheduled_for: datetime,
        error: str,
        now: datetime,
        sent: bool = True,
    ) -> None:
        """Back to planned, at a later time (``sent=False`` gives back the attempt)."""
        scheduled_for, now = utc(scheduled_for), utc(now)
        row = self._content_row(content_id)
        if row is None or row["status"] not in SENDABLE:
            return
        attempts = row["publish_attempts"]
        if not sent:
            attempts = attempts - 1 if attempts > 0 else 0
        self._update(
            row,
            status=PLANNED,
            scheduled_for=scheduled_for,
            publish_started_at=None,
            publish_attempts=attempts,
            error=error[:2000],
            updated_at=now,
        )

    async def in_flight(self) -> list[Post]:
        content = self._rows["content"]
        return [post_of(content[i]) for i in sorted(self._status[PUBLISHING])]

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        out: list[str] = []
        for row in reversed(self._account_content(account_id)):
            if len(out) >= limit:
                break
            if row["status"] in SCHEDULED:
                out.append(row["text"])
        return out
