"""Polling and learning, a part of :class:`agent.store.sql.SqlStore`.

Snapshots of a post are claimed and recorded once due, each account's follower counts are read
into ``account_snapshots``, follower changes are attributed to the posts around them, and what a
post taught is written in one transaction (``apply_learning``: arm statistics, the
``learning_updates`` row, the post marked learned).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agent.models import (
    AccountInfo,
    AccountReading,
    AccountSnapshot,
    ArmStat,
    Attribution,
    DueSnapshot,
    LearnItem,
    Observation,
    Post,
    PostCounts,
    PostMetrics,
)
from agent.store import claims, queries
from agent.store.base import SnapshotReading
from agent.store.rows import ARM_FIELDS
from agent.store.schema import (
    account_snapshots,
    arm_statistics,
    content,
    follower_attributions,
    learning_updates,
    performance_snapshots,
)
from agent.store.sql_state import SqlState


class SqlMetrics(SqlState):
    """Polling, follower readings, attribution and learning, in SQL."""

    # -- polling ----------------------------------------------------------------------------

    async def due_snapshots(self, now: datetime, limit: int = 500) -> list[DueSnapshot]:
        return await self._once_plain(queries.due_snapshots, now, limit)

    async def claim_snapshots(
        self, now: datetime, *, worker: str, lease: timedelta, limit: int = 500
    ) -> list[DueSnapshot]:
        """Claim due, untaken snapshots for ``worker`` until ``now + lease`` (claims.py)."""
        return await self._run(claims.claim_snapshots, now, worker=worker, lease=lease, limit=limit)

    async def record_snapshot(
        self,
        snapshot_id: int,
        metrics: PostMetrics | None,
        *,
        taken_at: datetime,
        hours_since_post: float,
        followers_at: int | None,
        error: str | None = None,
    ) -> None:
        reading = SnapshotReading(
            snapshot_id=snapshot_id,
            metrics=metrics,
            taken_at=taken_at,
            hours_since_post=hours_since_post,
            followers_at=followers_at,
            error=error,
        )
        await self.record_snapshots([reading])

    async def record_snapshots(self, readings: Sequence[SnapshotReading]) -> None:
        """One UPDATE for the batch (an executemany), guarded by ``taken_at IS NULL``."""
        rows = [_reading_row(r) for r in readings]
        if not rows:
            return

        def go(conn: Connection) -> None:
            conn.execute(_RECORD_SNAPSHOT, rows)

        # one row: one statement, atomic by itself; a batch: one transaction
        await (self._once_plain(go) if len(rows) == 1 else self._run_plain(go))

    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None:
        values = {
            "account_id": account_id,
            "taken_at": taken_at,
            "followers": info.followers,
            "following": info.following,
            "posts": info.posts,
        }

        def go(conn: Connection) -> None:
            conn.execute(_ADD_ACCOUNT_SNAPSHOT, values)

        await self._once_plain(go)

    async def last_account_snapshot(self, account_id: int) -> AccountSnapshot | None:
        return await self._once(queries.last_account_snapshot, account_id)

    async def add_account_snapshots(self, readings: Sequence[AccountReading]) -> None:
        rows = [
            {
                "account_id": r.account_id,
                "taken_at": r.taken_at,
                "followers": r.info.followers,
                "following": r.info.following,
                "posts": r.info.posts,
            }
            for r in readings
        ]
        if not rows:
            return

        def go(conn: Connection) -> None:
            conn.execute(_ADD_ACCOUNT_SNAPSHOT, rows)  # one multi-row INSERT (executemany)

        await self._once_plain(go)

    async def last_account_snapshots(
        self, account_ids: Collection[int] | None = None
    ) -> dict[int, AccountSnapshot]:
        if account_ids is not None and not account_ids:
            return {}
        ids = None if account_ids is None else sorted(set(account_ids))
        return await self._once(queries.last_account_snapshots, ids)

    async def account_series(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[AccountSnapshot]:
        return await self._once(queries.account_series, account_id, start, end)

    # -- attribution and learning -----------------------------------------------------------

    async def posts_to_attribute(
        self, *, closed_before: datetime, method: str, window_hours: float, limit: int = 200
    ) -> list[Post]:
        """Posted posts whose attribution window closed before ``closed_before``."""
        return await self._run(
            queries.posts_to_attribute,
            closed_before=closed_before,
            method=method,
            window_hours=window_hours,
            limit=limit,
        )

    async def posted_between(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[tuple[Post, PostCounts]]:
        """Posts of an account posted in [start, end], with their latest snapshot's counts."""
        return await self._once(queries.posted_between, account_id, start, end)

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        values = {
            "content_id": attribution.content_id,
            "attribution_method": attribution.attribution_method,
            "window_hours": attribution.window_hours,
            "followers_before": attribution.followers_before,
            "followers_after": attribution.followers_after,
            "followers_gained": attribution.followers_gained,
            "confidence_score": attribution.confidence_score,
            "inputs": attribution.inputs,
            "created_at": now,
        }

        def go(conn: Connection) -> None:
            conn.execute(_ADD_ATTRIBUTION, values)

        await self._once_plain(go)

    async def posts_to_learn(
        self, *, method: str, need_attribution: bool, limit: int = 200
    ) -> list[LearnItem]:
        """Posted, not learned, final snapshot taken (and attributed, when needed)."""
        return await self._run(
            queries.posts_to_learn, method=method, need_attribution=need_attribution, limit=limit
        )

    async def arm_stats(self, account_id: int) -> list[ArmStat]:
        return await self._once_plain(queries.arm_stats, account_id)

    async def learning_history(
        self, account_id: int, *, method: str, since: datetime | None = None
    ) -> list[Observation]:
        return await self._once(queries.learning_history, account_id, method, since)

    async def apply_learning(
        self,
        *,
        account_id: int,
        content_ids: Sequence[int],
        stats: Sequence[ArmStat],
        evidence: dict[str, Any],
        updates_applied: dict[str, Any],
        insights_summary: dict[str, Any],
        now: datetime,
    ) -> int:
        """Mark the posts learned, replace the account's arm statistics by ``stats`` (the
        deciding model's estimates) and add the learning_updates row, in one transaction.

        Returns how many of the posts were newly learned from; 0 (and nothing written) when every
        one already was.
        """
        learned = {"ids": list(content_ids), "now": now}
        arms = [
            {f: getattr(stat, f) for f in ARM_FIELDS}
            | {
                "b_account_id": stat.account_id,
                "b_dimension": stat.dimension,
                "b_arm": stat.arm,
                "updated_at": now,
            }
            for stat in stats
        ]
        kept = {"account_id": account_id, "kept": [(s.dimension, s.arm) for s in stats]}
        update = {
            "account_id": account_id,
            "content_id": content_ids[-1],
            "created_at": now,
            "update_type": "model_estimates",
            "component": "all",
            "evidence": evidence,
            "updates_applied": updates_applied,
            "insights_summary": insights_summary,
        }

        def go(conn: Connection) -> int:
            claimed = conn.execute(_MARK_LEARNED, learned).rowcount
            if claimed < 1:
                return 0
            for arm in arms:
                if conn.execute(_UPDATE_ARM, arm).rowcount == 0:
                    conn.execute(_INSERT_ARM, {k.removeprefix("b_"): v for k, v in arm.items()})
            # arms the model no longer has (a catalogue changed) are not left behind
            conn.execute(_DROP_OTHER_ARMS, kept)
            conn.execute(_ADD_LEARNING_UPDATE, update)
            return int(claimed)

        return int(await self._run_plain(go))


# The statements of every post's polling, attribution and learning, built once (see
# agent/store/queries.py's docstring); an UPDATE's SET columns are the keys of its parameters.
_RECORD_SNAPSHOT = performance_snapshots.update().where(
    performance_snapshots.c.id == sa.bindparam("b_id"),
    performance_snapshots.c.taken_at.is_(None),
)
_ADD_ACCOUNT_SNAPSHOT = account_snapshots.insert()
_ADD_ATTRIBUTION = follower_attributions.insert()
_MARK_LEARNED = (
    content.update()
    .where(
        content.c.id.in_(sa.bindparam("ids", expanding=True)),
        content.c.learned_at.is_(None),
    )
    .values(learned_at=sa.bindparam("now"), updated_at=sa.bindparam("now"))
)
_UPDATE_ARM = arm_statistics.update().where(
    arm_statistics.c.account_id == sa.bindparam("b_account_id"),
    arm_statistics.c.dimension == sa.bindparam("b_dimension"),
    arm_statistics.c.arm == sa.bindparam("b_arm"),
)
_INSERT_ARM = arm_statistics.insert()
_DROP_OTHER_ARMS = arm_statistics.delete().where(
    arm_statistics.c.account_id == sa.bindparam("account_id"),
    sa.tuple_(arm_statistics.c.dimension, arm_statistics.c.arm).not_in(
        sa.bindparam("kept", expanding=True)
    ),
)
_ADD_LEARNING_UPDATE = learning_updates.insert()


def _reading_row(reading: SnapshotReading) -> dict[str, Any]:
    """The parameters of ``_RECORD_SNAPSHOT`` for one reading (no metrics: the counts stay
    NULL, as they are on an untaken row)."""
    m = reading.metrics
    return {
        "b_id": reading.snapshot_id,
        "taken_at": reading.taken_at,
        "hours_since_post": reading.hours_since_post,
        "followers_at": reading.followers_at,
        "error": reading.error,
        "claimed_by": None,  # taken: the claim has done its job
        "claimed_until": None,
        "likes": m.likes if m else None,
        "reposts": m.reposts if m else None,
        "replies": m.replies if m else None,
        "quotes": m.quotes if m else None,
        "bookmarks": m.bookmarks if m else None,
        "impressions": m.impressions if m else None,
        "profile_clicks": m.profile_clicks if m else None,
        "url_clicks": m.url_clicks if m else None,
        "engagement_rate": m.engagements / m.impressions if m and m.impressions else None,
    }
