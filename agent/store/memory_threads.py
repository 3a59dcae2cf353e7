"""The memory store's thread parts, as :mod:`agent.store.sql_threads` keeps them (transitions
decided by :mod:`agent.store.thread_rows` for both). A part of
:class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.models import PartReading, PartStatus, ThreadPart
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, exported, refused
from agent.store.thread_rows import CLAIMABLE, FINISHABLE, part_of, reading_values


class MemoryThreads(MemoryState):
    """Begin, finish and reset thread parts, and keep each part's counters, in memory."""

    def _part_row(self, content_id: int, position: int) -> dict[str, Any] | None:
        for row in self._rows["thread_parts"].values():
            if row["content_id"] == content_id and row["position"] == position:
                return row
        return None

    async def thread_parts(self, content_id: int) -> list[ThreadPart]:
        """The thread's parts whose publish has begun, by position."""
        found = [r for r in self._rows["thread_parts"].values() if r["content_id"] == content_id]
        return [part_of(exported("thread_parts", r)) for r in sorted(found, key=_position)]

    async def begin_part(
        self,
        content_id: int,
        position: int,
        *,
        text_hash: str,
        idempotency_key: str,
        reply_to: str | None,
        now: datetime,
    ) -> bool:
        """Record the intent to send one part (``publishing``), committed before it is sent.
        False when the part is already publishing or posted (nothing changes)."""
        if self._content_row(content_id) is None:
            raise refused(f"FOREIGN KEY constraint failed: thread_parts.content_id = {content_id}")
        row = self._part_row(content_id, position)
        if row is None:
            if any(
                r["idempotency_key"] == idempotency_key for r in self._rows["thread_parts"].values()
            ):
                raise refused("UNIQUE constraint failed: thread_parts.idempotency_key")
            values = {
                "content_id": content_id,
                "position": position,
                "status": PartStatus.PUBLISHING.value,
                "text_hash": text_hash,
                "idempotency_key": idempotency_key,
                "reply_to": reply_to,
                "publish_started_at": now,
                "publish_attempts": 1,
                "updated_at": now,
            }
            self._insert("thread_parts", TABLES["thread_parts"].row(values))
            return True
        if row["status"] not in CLAIMABLE:
            return False
        self._set(
            row,
            status=PartStatus.PUBLISHING.value,
            reply_to=reply_to,
            publish_started_at=now,
            publish_attempts=row["publish_attempts"] + 1,
            updated_at=now,
        )
        return True

    async def finish_part(
        self,
        content_id: int,
        position: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        now: datetime,
    ) -> bool:
        """Record the part as ``posted`` with its platform id; False when it already was."""
        row = self._part_row(content_id, position)
        if row is None or row["status"] not in FINISHABLE:
            return False
        self._set(
            row,
            status=PartStatus.POSTED.value,
            platform_post_id=platform_post_id,
            posted_at=posted_at,
            error=None,
            updated_at=now,
        )
        return True

    async def reset_part(
        self, content_id: int, position: int, *, error: str, now: datetime
    ) -> bool:
        """A ``publishing`` part the platform does not have: back to ``planned``."""
        row = self._part_row(content_id, position)
        if row is None or row["status"] != PartStatus.PUBLISHING.value:
            return False
        self._set(row, status=PartStatus.PLANNED.value, error=error, updated_at=now)
        return True

    async def thread_post_ids(self, content_ids: Sequence[int]) -> dict[int, list[str]]:
        """The posted parts' platform ids of each thread among ``content_ids``, by position."""
        wanted = set(content_ids)
        out: dict[int, list[str]] = {}
        rows = sorted(
            (r for r in self._rows["thread_parts"].values() if r["content_id"] in wanted),
            key=lambda r: (r["content_id"], r["position"]),
        )
        for row in rows:
            if row["status"] == PartStatus.POSTED.value:
                out.setdefault(row["content_id"], []).append(str(row["platform_post_id"]))
        return out

    async def record_part_readings(self, readings: Sequence[PartReading]) -> None:
        """Each part's counters at a taken snapshot (a reading written twice is kept once)."""
        table = self._rows["thread_part_snapshots"]
        kept = {(r["snapshot_id"], r["position"]) for r in table.values()}
        for reading in readings:
            if reading.snapshot_id not in self._rows["performance_snapshots"]:
                raise refused(
                    "FOREIGN KEY constraint failed: thread_part_snapshots.snapshot_id = "
                    f"{reading.snapshot_id}"
                )
            if (reading.snapshot_id, reading.position) in kept:
                continue
            kept.add((reading.snapshot_id, reading.position))
            row = TABLES["thread_part_snapshots"].row(reading_values(reading))
            self._insert("thread_part_snapshots", row)

    async def part_readings(self, snapshot_id: int) -> list[dict[str, Any]]:
        """The parts' counters at one snapshot, by position (reports and tests)."""
        rows = [
            exported("thread_part_snapshots", r)
            for r in self._rows["thread_part_snapshots"].values()
            if r["snapshot_id"] == snapshot_id
        ]
        return [{k: v for k, v in r.items() if k != "id"} for r in sorted(rows, key=_position)]

    def _set(self, row: dict[str, Any], **values: Any) -> None:
        row.update(TABLES["thread_parts"].row({**row, **values}))


def _position(row: dict[str, Any]) -> int:
    return int(row["position"])
