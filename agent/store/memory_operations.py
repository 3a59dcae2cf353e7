"""The memory store's operations: leases between workers, the kill switch, health rows and
counters, the approval queue of drafts, and exporting everything into a real database. A part of
:class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from agent.errors import ConstraintViolation
from agent.models import Post, PostStatus
from agent.store.memory_state import (
    DRAFT,
    EXPIRED_DRAFT_ERROR,
    PLANNED,
    PUBLISHING,
    AccountIndexes,
    MemoryState,
    post_of,
)
from agent.store.memory_tables import TABLES, copy_rows, exported, loads, utc
from agent.store.queries import PAUSED_KEY


class MemoryOperations(MemoryState):
    """Leases, pausing, health, counts, drafts and export, in memory."""

    # -- several workers: leases (as agent.store.claims) ---------------------------------------

    async def acquire_lease(self, name: str, *, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Take, renew or take over an expired lease; False while another worker holds it."""
        now = utc(now)
        held = self._rows["leases"].get(name)
        if held is not None and held["holder"] != worker and not held["expires_at"] < now:
            return False
        renewal = held is not None and held["holder"] == worker
        self._rows["leases"][name] = TABLES["leases"].row(
            {
                "name": name,
                "holder": worker,
                "expires_at": now + ttl,
                "acquired_at": held["acquired_at"] if renewal and held else now,
            }
        )
        return True

    async def release_lease(self, name: str, *, worker: str) -> None:
        """Give the lease up, if ``worker`` holds it (anyone else's lease is left alone)."""
        held = self._rows["leases"].get(name)
        if held is not None and held["holder"] == worker:
            del self._rows["leases"][name]

    async def acquire_leases(
        self, names: Collection[str], *, worker: str, now: datetime, ttl: timedelta
    ) -> set[str]:
        return {
            name
            for name in sorted(set(names))
            if await self.acquire_lease(name, worker=worker, now=now, ttl=ttl)
        }

    async def release_leases(self, names: Collection[str], *, worker: str) -> None:
        for name in set(names):
            await self.release_lease(name, worker=worker)

    # -- runtime state (the kill switch) ----------------------------------------------------

    async def set_paused(self, paused: bool, *, reason: str, by: str, now: datetime) -> None:
        """Pause or resume publishing (one row, replaced)."""
        row = TABLES["runtime_state"].row(
            {
                "key": PAUSED_KEY,
                "value": {"paused": paused, "reason": reason},
                "updated_at": now,
                "updated_by": by,
            }
        )
        self._rows["runtime_state"][PAUSED_KEY] = row

    async def paused(self) -> tuple[bool, str | None]:
        """(paused, the reason given) - (False, None) when publishing runs."""
        row = self._rows["runtime_state"].get(PAUSED_KEY)
        value = loads(row["value"]) if row is not None else None
        if not isinstance(value, dict) or not value.get("paused"):
            return False, None
        reason = value.get("reason")
        return True, str(reason) if reason is not None else None

    # -- health -----------------------------------------------------------------------------

    async def health_inputs(
        self, account_id: int, start: datetime, end: datetime
    ) -> dict[str, Any]:
        """What happened to one account in [start, end), read back from the rows."""
        start, end = utc(start), utc(end)
        account = self._accounts.get(account_id) or AccountIndexes()
        content, snaps = self._rows["content"], self._rows["performance_snapshots"]

        def rows_in(column: str) -> list[dict[str, Any]]:
            found = (content[i] for i in account.times[column].ids(start, end))
            return [r for r in found if r[column] is not None and start <= r[column] < end]

        status_counts = Counter(r["status"] for r in rows_in("updated_at"))
        due = [snaps[i] for _at, i in account.due.within(start, end)]
        rates = [s["engagement_rate"] for s in due if s["engagement_rate"] is not None]
        done = [snaps[i] for _at, i in account.taken.within(start, end)]
        spend = sum(
            float((loads(r["generation_metadata"]) or {}).get("cost_usd", 0.0) or 0.0)
            for r in rows_in("created_at")
        )
        last = account.readings.before(end)
        first = account.readings.before(start)
        readings = self._rows["account_snapshots"]
        return {
            "status_counts": {str(k): int(v) for k, v in status_counts.items()},
            "posts_succeeded": len(account.posted.within(start, end)),
            "posts_attempted": len(rows_in("publish_started_at")),
            "polls_due": len(due),
            "polls_done_of_due": sum(1 for s in due if s["taken_at"] is not None),
            "engagement_rate": sum(rates) / len(rates) if rates else None,
            "polls_done": [(s["due_at"], s["taken_at"]) for s in done],
            "llm_spend_usd": spend,
            "followers_end": int(readings[last[1]]["followers"]) if last else None,
            "followers_start": int(readings[first[1]]["followers"]) if first else None,
        }

    async def write_health(self, row: dict[str, Any]) -> None:
        """Store one (hour, account) row; a second one for the same key is ignored."""
        try:
            normalised = TABLES["system_health_metrics"].row(row)
        except ConstraintViolation:
            return  # the SQL store ignores a refused health row, whatever the constraint
        key = (normalised["hour_start"], normalised["account_id"])
        if key in self._health_keys or normalised["account_id"] not in self._accounts:
            return
        self._insert("system_health_metrics", normalised)
        self._health_keys.add(key)
        if self._last_health is None or key[0] > self._last_health:
            self._last_health = key[0]

    async def last_health_hour(self) -> datetime | None:
        return self._last_health

    async def latest_health(self, limit: int = 24) -> list[dict[str, Any]]:
        """The newest health rows, newest hour first, each with its account's name."""
        names = await self.account_names()
        found = [
            exported("system_health_metrics", r) | {"account": names[r["account_id"]]}
            for r in self._rows["system_health_metrics"].values()
        ]
        found.sort(key=lambda r: r["account"])
        found.sort(key=lambda r: r["hour_start"], reverse=True)
        return found[: max(limit, 0)]

    async def pending_work(self, now: datetime) -> dict[str, Any]:
        """Polls due and upcoming, posts queued and in flight, and when the next of each falls
        due."""
        due = len(self._untaken.upto(utc(now)))
        untaken = self._untaken.keys
        next_post, _next_poll = await self.next_due()
        return {
            "polls_due": due,
            "polls_upcoming": len(untaken) - due,
            "next_poll_at": untaken[0][0] if untaken else None,
            "posts_queued": len(self._status[PLANNED]),
            "next_post_at": next_post,
            "posts_in_flight": len(self._status[PUBLISHING]),
        }

    async def next_due(self) -> tuple[datetime | None, datetime | None]:
        """When the next queued post and the next snapshot fall due (None when nothing is)."""
        content = self._rows["content"]
        post = min((content[i]["scheduled_for"] for i in self._status[PLANNED]), default=None)
        untaken = self._untaken.keys
        return post, untaken[0][0] if untaken else None

    async def counts(self) -> dict[str, int]:
        """Posts by status, plus snapshots taken and learning updates written."""
        out = {status: len(ids) for status, ids in self._status.items() if ids}
        out["snapshots_taken"] = self._snaps_taken
        out["learning_updates"] = len(self._rows["learning_updates"])
        return out

    # -- approval queue (approve mode) ------------------------------------------------------

    async def drafts(self, account_id: int | None = None) -> list[Post]:
        """Drafts waiting for a person's approval, oldest first (of one account, or all)."""
        content = self._rows["content"]
        found = [
            content[i]
            for i in self._status[DRAFT]
            if account_id is None or content[i]["account_id"] == account_id
        ]
        found.sort(key=lambda r: (r["created_at"], r["id"]))
        return [post_of(r) for r in found]

    def _draft(self, content_id: int) -> dict[str, Any] | None:
        row = self._content_row(content_id)
        return row if row is not None and row["status"] == DRAFT else None

    async def approve_draft(
        self, content_id: int, *, now: datetime, scheduled_for: datetime | None = None
    ) -> bool:
        """draft -> planned, due at the later of ``now`` and ``scheduled_for`` (default: its own
        slot). False when the post is not (or no longer) a draft."""
        now = utc(now)
        slot = utc(scheduled_for) if scheduled_for is not None else None
        row = self._draft(content_id)
        if row is None:
            return False
        when = max(now, slot if slot is not None else row["scheduled_for"])
        self._update(row, status=PLANNED, scheduled_for=when, updated_at=now)
        return True

    async def reject_draft(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """draft -> rejected (never sent). False when the post is not a draft."""
        now = utc(now)
        row = self._draft(content_id)
        if row is None:
            return False
        self._update(row, status=PostStatus.REJECTED.value, error=reason[:2000], updated_at=now)
        return True

    async def edit_draft(
        self, content_id: int, *, text: str, text_hash: str, now: datetime
    ) -> bool:
        """Replace a draft's text (the caller has checked it). False when it is not a draft."""
        now = utc(now)
        row = self._draft(content_id)
        if row is None:
            return False
        self._update(row, text=text, text_hash=text_hash, updated_at=now)
        return True

    async def expire_drafts(self, older_than: datetime, now: datetime) -> int:
        """Reject every draft created before ``older_than``; returns how many."""
        older_than, now = utc(older_than), utc(now)
        content = self._rows["content"]
        old = [i for i in self._status[DRAFT] if content[i]["created_at"] < older_than]
        for content_id in old:
            self._update(
                content[content_id],
                status=PostStatus.REJECTED.value,
                error=EXPIRED_DRAFT_ERROR,
                updated_at=now,
            )
        return len(old)

    # -- export -----------------------------------------------------------------------------

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row, by table name, as an INSERT takes it (copies)."""
        return {
            table: [exported(table, r) for r in rows.values()] for table, rows in self._rows.items()
        }

    async def export(self, engine: AsyncEngine) -> None:
        """Copy everything into the migrated, empty database behind ``engine``."""
        await copy_rows(self.dump(), engine)
