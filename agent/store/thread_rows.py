"""Thread parts as both stores keep them (``thread_parts``, ``thread_part_snapshots``): the row
conversions and the transitions, decided once for the SQL and the memory store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.models import PartReading, PartStatus, ThreadPart

# a part may be (re)claimed for sending only from these (never while publishing or once posted)
CLAIMABLE = (PartStatus.PLANNED.value,)
# a part may be recorded posted from these (a reconciliation may find a part it had put back)
FINISHABLE = (PartStatus.PUBLISHING.value, PartStatus.PLANNED.value)


def part_of(row: Mapping[str, Any]) -> ThreadPart:
    return ThreadPart(
        content_id=int(row["content_id"]),
        position=int(row["position"]),
        status=PartStatus(row["status"]),
        text_hash=str(row["text_hash"]),
        idempotency_key=str(row["idempotency_key"]),
        reply_to=row["reply_to"],
        platform_post_id=row["platform_post_id"],
        publish_started_at=row["publish_started_at"],
        publish_attempts=int(row["publish_attempts"]),
        posted_at=row["posted_at"],
        error=row["error"],
    )


def reading_values(reading: PartReading) -> dict[str, Any]:
    m = reading.metrics
    return {
        "snapshot_id": reading.snapshot_id,
        "position": reading.position,
        "platform_post_id": m.platform_post_id,
        "likes": m.likes,
        "reposts": m.reposts,
        "replies": m.replies,
        "quotes": m.quotes,
        "bookmarks": m.bookmarks,
        "impressions": m.impressions,
    }
