"""Polling and learning, a part of :class:`agent.store.sql.SqlStore`.

Snapshots of a post are claimed and recorded once due, each account's follower counts are read
into ``account_snapshots``, follower changes are attributed to the posts around them, and what a
post taught is written in one transaction (``apply_learning``: arm statistics, the
``learning_updates`` row, the post marked learned).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import (
    AccountInfo,
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
        return await self._run(queries.due_snapshots, now, limit)

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
        values: dict[str, Any] = {
            "taken_at": taken_at,
            "hours_since_post": hours_since_post,
            "followers_at": followers_at,
            "error": error,
            "claimed_by": None,  # taken: the claim has done its job
            "claimed_until": None,
        }
        if metrics is not None:
            values.update(
                likes=metrics.likes,
                reposts=metrics.reposts,
                replies=metrics.replies,
                quotes=metrics.quotes,
                bookmarks=metrics.bookmarks,
                impressions=metrics.impressions,
                profile_clicks=metrics.profile_clicks,
                url_clicks=metrics.url_clicks,
                engagement_rate=(
                    metrics.engagements / metrics.impressions if metrics.impressions else None
                ),
            )

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                performance_snapshots.update()
                .where(
                    performance_snapshots.c.id == snapshot_id,
                    performance_snapshots.c.taken_at.is_(None),
                )
                .values(**values)
            )

        await self._run(go)

    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None:
        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                account_snapshots.insert().values(
                    account_id=account_id,
                    taken_at=taken_at,
                    followers=info.followers,
                    following=info.following,
                    posts=info.posts,
                )
            )

        await self._run(go)

    async def last_account_snapshot(self, account_id: int) -> AccountSnapshot | None:
        return await self._run(queries.last_account_snapshot, account_id)

    async def account_series(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[AccountSnapshot]:
        return await self._run(queries.account_series, account_id, start, end)

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
        return await self._run(queries.posted_between, account_id, start, end)

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                follower_attributions.insert().values(
                    content_id=attribution.content_id,
                    attribution_method=attribution.attribution_method,
                    window_hours=attribution.window_hours,
                    followers_before=attribution.followers_before,
                    followers_after=attribution.followers_after,
                    followers_gained=attribution.followers_gained,
                    confidence_score=attribution.confidence_score,
                    inputs=attribution.inputs,
                    created_at=now,
                )
            )

        await self._run(go)

    async def posts_to_learn(
        self, *, method: str, need_attribution: bool, limit: int = 200
    ) -> list[LearnItem]:
        """Posted, not learned, final snapshot taken (and attributed, when needed)."""
        return await self._run(
            queries.posts_to_learn, method=method, need_attribution=need_attribution, limit=limit
        )

    async def arm_stats(self, account_id: int) -> list[ArmStat]:
        return await self._run(queries.arm_stats, account_id)

    async def learning_history(
        self, account_id: int, *, method: str, since: datetime | None = None
    ) -> list[Observation]:
        return await self._run(queries.learning_history, account_id, method, since)

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
        st = arm_statistics

        async def go(conn: AsyncConnection) -> int:
            claimed = await conn.execute(
                content.update()
                .where(content.c.id.in_(list(content_ids)), content.c.learned_at.is_(None))
                .values(learned_at=now, updated_at=now)
            )
            if claimed.rowcount < 1:
                return 0
            kept = []
            for stat in stats:
                values = {f: getattr(stat, f) for f in ARM_FIELDS} | {"updated_at": now}
                where = (
                    st.c.account_id == stat.account_id,
                    st.c.dimension == stat.dimension,
                    st.c.arm == stat.arm,
                )
                updated = await conn.execute(st.update().where(*where).values(**values))
                if updated.rowcount == 0:
                    await conn.execute(
                        st.insert().values(
                            account_id=stat.account_id,
                            dimension=stat.dimension,
                            arm=stat.arm,
                            **values,
                        )
                    )
                kept.append((stat.dimension, stat.arm))
            # arms the model no longer has (a catalogue changed) are not left behind
            await conn.execute(
                st.delete().where(
                    st.c.account_id == account_id,
                    sa.tuple_(st.c.dimension, st.c.arm).not_in(kept),
                )
            )
            await conn.execute(
                learning_updates.insert().values(
                    account_id=account_id,
                    content_id=content_ids[-1],
                    created_at=now,
                    update_type="model_estimates",
                    component="all",
                    evidence=evidence,
                    updates_applied=updates_applied,
                    insights_summary=insights_summary,
                )
            )
            return int(claimed.rowcount)

        return int(await self._run(go))
