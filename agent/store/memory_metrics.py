"""The memory store's measuring and learning: the snapshots polled after a post, the account's
follower readings, attribution of follower changes to posts, and the learning writes (arm
statistics, learning updates). A part of :class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

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
from agent.store.base import SnapshotReading
from agent.store.memory_state import (
    MemoryState,
    arms_of,
    attribution_of,
    engagement_of,
    post_of,
)
from agent.store.memory_tables import TABLES, SortedKeys, loads, refused, utc
from agent.store.rows import ARM_FIELDS, snapshot_from_row


class MemoryMetrics(MemoryState):
    """Polling, follower readings, attribution and learning, in memory."""

    # -- polling ----------------------------------------------------------------------------

    async def due_snapshots(self, now: datetime, limit: int = 500) -> list[DueSnapshot]:
        return [self._due(i) for _due, i in self._untaken.upto(utc(now))[: max(limit, 0)]]

    def _due(self, snap_id: int) -> DueSnapshot:
        snap = self._rows["performance_snapshots"][snap_id]
        post = self._rows["content"][snap["content_id"]]
        return DueSnapshot(
            id=snap_id,
            content_id=post["id"],
            account_id=post["account_id"],
            platform_post_id=post["platform_post_id"],
            posted_at=post["posted_at"],
            horizon_hours=snap["horizon_hours"],
            due_at=snap["due_at"],
        )

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
        self._record(
            SnapshotReading(
                snapshot_id=snapshot_id,
                metrics=metrics,
                taken_at=taken_at,
                hours_since_post=hours_since_post,
                followers_at=followers_at,
                error=error,
            )
        )

    async def record_snapshots(self, readings: Sequence[SnapshotReading]) -> None:
        for reading in readings:  # no await in between: one transaction
            self._record(reading)

    def _record(self, reading: SnapshotReading) -> None:
        taken_at, metrics, snapshot_id = utc(reading.taken_at), reading.metrics, reading.snapshot_id
        snap = self._rows["performance_snapshots"].get(snapshot_id)
        if snap is None or snap["taken_at"] is not None:
            return
        self._version[snap["content_id"]] += 1
        snap.update(
            taken_at=taken_at,
            hours_since_post=float(reading.hours_since_post),
            followers_at=reading.followers_at,
            error=reading.error,
            claimed_by=None,  # taken: the claim has done its job
            claimed_until=None,
        )
        if metrics is not None:
            snap.update(
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
        self._untaken.remove(snap["due_at"], snapshot_id)
        self._snaps_taken += 1
        account_id = self._rows["content"][snap["content_id"]]["account_id"]
        self._accounts[account_id].taken.add(taken_at, snapshot_id)

    async def claim_snapshots(
        self, now: datetime, *, worker: str, lease: timedelta, limit: int = 500
    ) -> list[DueSnapshot]:
        """Claim due, untaken snapshots for ``worker`` until ``now + lease`` (see
        :mod:`agent.store.claims`: unclaimed, expired or already ``worker``'s)."""
        now = utc(now)
        until = now + lease
        snaps = self._rows["performance_snapshots"]
        picked: list[int] = []
        for _due, snap_id in self._untaken.upto(now):
            if len(picked) >= limit:
                break
            snap = snaps[snap_id]
            held = snap["claimed_until"]
            if held is None or held < now or snap["claimed_by"] == worker:
                picked.append(snap_id)
        for snap_id in picked:
            snaps[snap_id].update(claimed_by=worker, claimed_until=until)
        return [self._due(snap_id) for snap_id in picked]

    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None:
        row = TABLES["account_snapshots"].row(
            {
                "account_id": account_id,
                "taken_at": taken_at,
                "followers": info.followers,
                "following": info.following,
                "posts": info.posts,
            }
        )
        account = self._account(account_id, "account_snapshots")
        self._insert("account_snapshots", row)
        account.readings.add(row["taken_at"], row["id"])
        self._readings[row["id"]] = AccountSnapshot(  # frozen: handed out as it is
            account_id=account_id,
            taken_at=row["taken_at"],
            followers=row["followers"],
            following=row["following"],
            posts=row["posts"],
        )

    async def last_account_snapshot(self, account_id: int) -> AccountSnapshot | None:
        account = self._accounts.get(account_id)
        if account is None or not account.readings.keys:
            return None
        return self._readings[account.readings.keys[-1][1]]

    async def add_account_snapshots(self, readings: Sequence[AccountReading]) -> None:
        for reading in readings:
            await self.add_account_snapshot(
                reading.account_id, reading.info, taken_at=reading.taken_at
            )

    async def last_account_snapshots(
        self, account_ids: Collection[int] | None = None
    ) -> dict[int, AccountSnapshot]:
        found = {}
        wanted = self._accounts if account_ids is None else set(account_ids)
        for account_id in wanted:
            last = await self.last_account_snapshot(account_id)
            if last is not None:
                found[account_id] = last
        return found

    async def account_series(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[AccountSnapshot]:
        account = self._accounts.get(account_id)
        if account is None:
            return []
        readings = self._readings
        return [readings[i] for _at, i in account.readings.between(utc(start), utc(end))]

    # -- attribution and learning -----------------------------------------------------------

    async def posts_to_attribute(
        self, *, closed_before: datetime, method: str, window_hours: float, limit: int = 200
    ) -> list[Post]:
        """Posted posts whose attribution window closed before ``closed_before``."""
        key = (method, float(window_hours))
        pending = self._unattributed.get(key)
        if pending is None:
            pending = self._unattributed[key] = SortedKeys()
            for posted_at, content_id in self._posted.keys:
                if (content_id, *key) not in self._attribution_keys:
                    pending.add(posted_at, content_id)
        cutoff = utc(closed_before) - timedelta(hours=window_hours)
        content = self._rows["content"]
        return [post_of(content[i]) for _at, i in pending.upto(cutoff)[: max(limit, 0)]]

    async def posted_between(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[tuple[Post, PostCounts]]:
        """Posts of an account posted in [start, end], with their latest snapshot's counts."""
        account = self._accounts.get(account_id)
        if account is None:
            return []
        content, snaps = self._rows["content"], self._rows["performance_snapshots"]
        out = []
        for _at, content_id in account.posted.between(utc(start), utc(end)):
            counts = PostCounts()
            horizons = self._snaps.get(content_id, {})
            for horizon in sorted(horizons):  # the last (longest) horizon taken wins
                snap = snaps[horizons[horizon]]
                if snap["taken_at"] is not None:
                    hours = snap["hours_since_post"]
                    counts = PostCounts(
                        engagements=engagement_of(snap),
                        impressions=int(snap["impressions"] or 0),
                        profile_clicks=int(snap["profile_clicks"] or 0),
                        hours_observed=None if hours is None else float(hours),
                    )
            out.append((post_of(content[content_id]), counts))
        return out

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        a = attribution
        row = TABLES["follower_attributions"].row(
            {
                "content_id": a.content_id,
                "attribution_method": a.attribution_method,
                "window_hours": a.window_hours,
                "followers_before": a.followers_before,
                "followers_after": a.followers_after,
                "followers_gained": a.followers_gained,
                "confidence_score": a.confidence_score,
                "inputs": a.inputs,
                "created_at": now,
            }
        )
        if a.content_id not in self._rows["content"]:
            raise refused("FOREIGN KEY constraint failed: follower_attributions.content_id")
        key = (a.content_id, a.attribution_method, row["window_hours"])
        if key in self._attribution_keys:
            raise refused("UNIQUE constraint failed: uq_follower_attributions_once")
        self._insert("follower_attributions", row)
        self._version[a.content_id] += 1
        self._attribution_keys.add(key)
        self._attributions[(a.content_id, a.attribution_method)].append(row["id"])
        pending = self._unattributed.get(key[1:])
        posted_at = self._rows["content"][a.content_id]["posted_at"]
        if pending is not None and posted_at is not None:
            pending.remove(posted_at, a.content_id)

    def _final_snapshot(self, content_id: int) -> dict[str, Any] | None:
        horizons = self._snaps.get(content_id)
        if not horizons:
            return None
        return self._rows["performance_snapshots"][horizons[max(horizons)]]

    async def posts_to_learn(
        self, *, method: str, need_attribution: bool, limit: int = 200
    ) -> list[LearnItem]:
        """Posted, not learned, final snapshot taken (and attributed, when needed)."""
        content, attributions = self._rows["content"], self._rows["follower_attributions"]
        ready = []
        for content_id in self._unlearned:
            final = self._final_snapshot(content_id)
            if final is not None and final["taken_at"] is not None:
                ready.append((content[content_id], final))
        ready.sort(key=lambda pair: (pair[0]["posted_at"], pair[0]["id"]))
        items: list[LearnItem] = []
        for row, final in ready:
            found = self._attributions.get((row["id"], method), [])
            if not found and need_attribution:
                continue
            post, snap = post_of(row), snapshot_from_row(final)
            if not found:
                items.append(LearnItem(post=post, attribution=None, final=snap))
            for attribution_id in found:
                attribution = attribution_of(attributions[attribution_id])
                items.append(LearnItem(post=post, attribution=attribution, final=snap))
        return items[: max(limit, 0)]

    async def learning_history(
        self, account_id: int, *, method: str, since: datetime | None = None
    ) -> list[Observation]:
        """Every posted post of the account (since ``since``), with what is known of its outcome."""
        account = self._accounts.get(account_id)
        if account is None:
            return []
        keys = account.posted.keys
        if since is not None:
            keys = keys[bisect.bisect_left(keys, (utc(since), 0)) :]
        cache, version = self._observed[method], self._version
        out = []
        for posted_at, content_id in keys:
            known = cache.get(content_id)
            if known is None or known[0] != version[content_id]:
                known = (version[content_id], self._observation(content_id, posted_at, method))
                cache[content_id] = known
            out.append(known[1])
        return out

    def _observation(self, content_id: int, posted_at: datetime, method: str) -> Observation:
        """One post's row of :meth:`learning_history`, from its rows."""
        snaps = self._rows["performance_snapshots"]
        row = self._rows["content"][content_id]
        engagements, hours, clicks = 0, None, 0
        horizons = self._snaps.get(content_id, {})
        for horizon in sorted(horizons):
            snap = snaps[horizons[horizon]]
            if snap["taken_at"] is not None and snap["hours_since_post"] is not None:
                engagements, hours = engagement_of(snap), float(snap["hours_since_post"])
                clicks = int(snap["profile_clicks"] or 0)
        found = self._attributions.get((content_id, method))
        attributions = self._rows["follower_attributions"]
        return Observation(
            content_id=content_id,
            posted_at=posted_at,
            arms=arms_of(loads(row["generation_metadata"]) or {}),
            engagements=engagements,
            hours_observed=hours,
            followers=float(attributions[found[-1]]["followers_gained"]) if found else None,
            learned=row["learned_at"] is not None,
            profile_clicks=clicks,
        )

    async def arm_stats(self, account_id: int) -> list[ArmStat]:
        account = self._accounts.get(account_id)
        if account is None:
            return []
        if account.arm_list is None:
            account.arm_list = [account.arms[k] for k in sorted(account.arms)]
        return list(account.arm_list)

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
        deciding model's estimates) and add the learning_updates row, at once.

        Returns how many of the posts were newly learned from; 0 (and nothing written) when every
        one already was.
        """
        now = utc(now)
        rows = [self._content_row(c) for c in content_ids]
        fresh = [(c, r) for c, r in zip(content_ids, rows, strict=True) if r is not None]
        fresh = [(c, r) for c, r in fresh if r["learned_at"] is None]
        if not fresh:
            return 0
        # everything is checked before anything changes (the transaction's rollback)
        arm_rows = []
        for stat in stats:
            self._account(stat.account_id, "arm_statistics")
            values = {f: getattr(stat, f) for f in ARM_FIELDS}
            key = {"account_id": stat.account_id, "dimension": stat.dimension, "arm": stat.arm}
            arm_rows.append(
                (stat, TABLES["arm_statistics"].row(key | values | {"updated_at": now}))
            )
        update = TABLES["learning_updates"].row(
            {
                "account_id": account_id,
                "content_id": content_ids[-1],
                "created_at": now,
                "update_type": "model_estimates",
                "component": "all",
                "evidence": evidence,
                "updates_applied": updates_applied,
                "insights_summary": insights_summary,
            }
        )
        self._account(account_id, "learning_updates")

        for content_id, row in fresh:
            self._update(row, learned_at=now, updated_at=now)
            self._unlearned.discard(content_id)
        arms_table = self._rows["arm_statistics"]
        account = self._accounts[account_id]
        kept = {(stat.dimension, stat.arm) for stat in stats}
        for dimension, arm in [k for k in account.arms if k not in kept]:
            del arms_table[self._arm_ids.pop((account_id, dimension, arm))]
            del account.arms[(dimension, arm)]
        for stat, arm_row in arm_rows:
            known = account.arms.get((stat.dimension, stat.arm))
            if known is None:
                self._insert("arm_statistics", arm_row)
                self._arm_ids[(stat.account_id, stat.dimension, stat.arm)] = arm_row["id"]
            else:
                arm_row["id"] = self._arm_ids[(stat.account_id, stat.dimension, stat.arm)]
                arms_table[arm_row["id"]] = arm_row
            account.arms[(stat.dimension, stat.arm)] = ArmStat(
                account_id=arm_row["account_id"],
                dimension=arm_row["dimension"],
                arm=arm_row["arm"],
                **{f: arm_row[f] for f in ARM_FIELDS},
            )
        account.arm_list = None
        self._insert("learning_updates", update)
        return len(fresh)
