"""The Supabase store's reads: the queue, polling, learning, health and drafts (see
:mod:`agent.store.supabase`; :mod:`agent.store.queries` and :mod:`agent.store.reports` are the
SQL store's twins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postgrest import CountMethod

from agent.models import (
    AccountSnapshot,
    ArmStat,
    Attribution,
    DueSnapshot,
    LearnItem,
    Observation,
    Post,
    PostCounts,
    PostStatus,
)
from agent.store.rows import ARM_FIELDS, snapshot_from_row
from agent.store.schema import (
    follower_attributions,
    performance_snapshots,
    system_health_metrics,
)
from agent.store.supabase_api import (
    PAUSED_KEY,
    SCHEDULED,
    SupabaseApi,
    arm_value,
    batches,
    engagement,
    int_or_none,
)
from agent.store.supabase_rows import (
    account_snapshot,
    decode,
    due_snapshot,
    iso,
    parse_datetime,
    post,
)


class SupabaseReads(SupabaseApi):
    """Every read-only Store method, on the API."""

    async def account_names(self) -> dict[int, str]:
        rows = await self._rows(self._table("accounts").select("id,name"))
        return {int(r["id"]): str(r["name"]) for r in rows}

    async def get_post(self, content_id: int) -> Post | None:
        rows = await self._rows(self._table("content").select("*").eq("id", content_id))
        return post(rows[0]) if rows else None

    async def latest_scheduled(self, account_id: int) -> datetime | None:
        rows = await self._rows(
            self._table("content")
            .select("scheduled_for")
            .eq("account_id", account_id)
            .in_("status", SCHEDULED)
            .order("scheduled_for", desc=True)
            .limit(1)
        )
        return parse_datetime(rows[0]["scheduled_for"]) if rows else None

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        return await self._count(
            self._table("content")
            .select("id", count=CountMethod.exact, head=True)
            .eq("account_id", account_id)
            .in_("status", SCHEDULED)
            .gte("scheduled_for", iso(start))
            .lt("scheduled_for", iso(end))
        )

    async def pending_count(self, account_id: int) -> int:
        return await self._count(
            self._table("content")
            .select("id", count=CountMethod.exact, head=True)
            .eq("account_id", account_id)
            .eq("status", PostStatus.PLANNED.value)
        )

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        rows = await self._rows(
            self._table("content")
            .select("*")
            .eq("status", PostStatus.PLANNED.value)
            .lte("scheduled_for", iso(now))
            .order("scheduled_for")
            .order("id")
            .limit(limit)
        )
        return [post(r) for r in rows]

    async def in_flight(self) -> list[Post]:
        rows = await self._rows(
            self._table("content").select("*").eq("status", PostStatus.PUBLISHING.value).order("id")
        )
        return [post(r) for r in rows]

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        rows = await self._rows(
            self._table("content")
            .select("text")
            .eq("account_id", account_id)
            .in_("status", SCHEDULED)
            .order("id", desc=True)
            .limit(limit)
        )
        return [str(r["text"]) for r in rows]

    async def due_snapshots(self, now: datetime, limit: int = 500) -> list[DueSnapshot]:
        rows = await self._rpc("growthloop_due_snapshots", p_now=iso(now), p_limit=limit)
        return [due_snapshot(r) for r in rows]

    async def last_account_snapshot(self, account_id: int) -> AccountSnapshot | None:
        rows = await self._rows(
            self._table("account_snapshots")
            .select("*")
            .eq("account_id", account_id)
            .order("taken_at", desc=True)
            .order("id", desc=True)
            .limit(1)
        )
        return account_snapshot(rows[0]) if rows else None

    async def account_series(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[AccountSnapshot]:
        rows = await self._rows(
            self._table("account_snapshots")
            .select("*")
            .eq("account_id", account_id)
            .gte("taken_at", iso(start))
            .lte("taken_at", iso(end))
            .order("taken_at")
            .order("id")
        )
        return [account_snapshot(r) for r in rows]

    async def posts_to_attribute(
        self, *, closed_before: datetime, method: str, window_hours: float, limit: int = 200
    ) -> list[Post]:
        """Posted posts whose attribution window closed before ``closed_before``."""
        rows = await self._rpc(
            "growthloop_posts_to_attribute",
            p_closed_before=iso(closed_before),
            p_method=method,
            p_window_hours=window_hours,
            p_limit=limit,
        )
        return [post(r) for r in rows]

    async def posted_between(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[tuple[Post, PostCounts]]:
        """Posts of an account posted in [start, end], with their latest snapshot's counts."""
        rows = await self._rows(
            self._table("content")
            .select("*")
            .eq("account_id", account_id)
            .eq("status", PostStatus.POSTED.value)
            .gte("posted_at", iso(start))
            .lte("posted_at", iso(end))
            .order("posted_at")
        )
        posts = [post(r) for r in rows]
        if not posts:
            return []
        latest: dict[int, PostCounts] = {}
        for ids in batches([p.id for p in posts]):
            for snap in await self._rows(
                self._table("performance_snapshots")
                .select(
                    "content_id,likes,reposts,replies,quotes,bookmarks,impressions,"
                    "profile_clicks,hours_since_post"
                )
                .in_("content_id", ids)
                .not_.is_("taken_at", None)
                .order("content_id")
                .order("horizon_hours")
            ):
                hours = snap.get("hours_since_post")
                latest[int(snap["content_id"])] = PostCounts(  # the last (longest) horizon wins
                    engagements=engagement(snap),
                    impressions=int(snap.get("impressions") or 0),
                    profile_clicks=int(snap.get("profile_clicks") or 0),
                    hours_observed=None if hours is None else float(hours),
                )
        return [(p, latest.get(p.id, PostCounts())) for p in posts]

    async def posts_to_learn(
        self, *, method: str, need_attribution: bool, limit: int = 200
    ) -> list[LearnItem]:
        """Posted, not learned, final snapshot taken (and attributed, when needed)."""
        rows = await self._rpc(
            "growthloop_posts_to_learn",
            p_method=method,
            p_need_attribution=need_attribution,
            p_limit=limit,
        )
        items = []
        for row in rows:
            found = row["attribution"]
            attribution = None
            if found is not None:
                fa = decode(follower_attributions, found)
                attribution = Attribution(
                    content_id=int(fa["content_id"]),
                    attribution_method=fa["attribution_method"],
                    window_hours=fa["window_hours"],
                    followers_before=fa["followers_before"],
                    followers_after=fa["followers_after"],
                    followers_gained=fa["followers_gained"],
                    confidence_score=fa["confidence_score"],
                    inputs=dict(fa["inputs"] or {}),
                )
            final = snapshot_from_row(decode(performance_snapshots, row["final"]))
            items.append(LearnItem(post=post(row["post"]), attribution=attribution, final=final))
        return items

    async def arm_stats(self, account_id: int) -> list[ArmStat]:
        rows = await self._rows(
            self._table("arm_statistics")
            .select("*")
            .eq("account_id", account_id)
            .order("dimension")
            .order("arm")
        )
        return [
            ArmStat(
                account_id=int(r["account_id"]),
                dimension=r["dimension"],
                arm=r["arm"],
                **{f: arm_value(f, r[f]) for f in ARM_FIELDS},
            )
            for r in rows
        ]

    async def learning_history(
        self, account_id: int, *, method: str, since: datetime | None = None
    ) -> list[Observation]:
        """Every posted post of the account (since ``since``), with what is known of its outcome."""
        query = (
            self._table("content")
            .select("*")
            .eq("account_id", account_id)
            .eq("status", PostStatus.POSTED.value)
        )
        if since is not None:
            query = query.gte("posted_at", iso(since))
        posts = [post(r) for r in await self._rows(query.order("posted_at"))]
        latest: dict[int, tuple[int, float, int]] = {}
        gained: dict[int, float] = {}
        for ids in batches([p.id for p in posts]):
            for snap in await self._rows(
                self._table("performance_snapshots")
                .select(
                    "content_id,likes,reposts,replies,quotes,bookmarks,hours_since_post,"
                    "profile_clicks"
                )
                .in_("content_id", ids)
                .not_.is_("taken_at", None)
                .not_.is_("hours_since_post", None)
                .order("content_id")
                .order("horizon_hours")
            ):
                # the last (longest) horizon wins
                latest[int(snap["content_id"])] = (
                    engagement(snap),
                    float(snap["hours_since_post"]),
                    int(snap.get("profile_clicks") or 0),
                )
            for found in await self._rows(
                self._table("follower_attributions")
                .select("content_id,followers_gained")
                .in_("content_id", ids)
                .eq("attribution_method", method)
                .order("id")
            ):
                gained[int(found["content_id"])] = float(found["followers_gained"])
        out = []
        for p in posts:
            assert p.posted_at is not None
            value, hours, clicks = latest.get(p.id, (0, -1.0, 0))
            out.append(
                Observation(
                    content_id=p.id,
                    posted_at=p.posted_at,
                    arms=p.arms,
                    engagements=value,
                    hours_observed=None if hours < 0 else hours,
                    followers=gained.get(p.id),
                    learned=p.learned_at is not None,
                    profile_clicks=clicks,
                )
            )
        return out

    async def paused(self) -> tuple[bool, str | None]:
        """(paused, the reason given) - (False, None) when publishing runs."""
        rows = await self._rows(self._table("runtime_state").select("value").eq("key", PAUSED_KEY))
        value = rows[0]["value"] if rows else None
        if not isinstance(value, dict) or not value.get("paused"):
            return False, None
        reason = value.get("reason")
        return True, str(reason) if reason is not None else None

    async def health_inputs(
        self, account_id: int, start: datetime, end: datetime
    ) -> dict[str, Any]:
        """What happened to one account in [start, end), read back from the tables."""
        data = await self._rpc(
            "growthloop_health_inputs", p_account_id=account_id, p_start=iso(start), p_end=iso(end)
        )
        due, done_of_due, engagement = data["polls"]
        return {
            "status_counts": {str(k): int(v) for k, v in data["status_counts"].items()},
            "posts_succeeded": int(data["posts_succeeded"] or 0),
            "posts_attempted": int(data["posts_attempted"] or 0),
            "polls_due": int(due or 0),
            "polls_done_of_due": int(done_of_due or 0),
            "engagement_rate": float(engagement) if engagement is not None else None,
            "polls_done": [(parse_datetime(d), parse_datetime(t)) for d, t in data["polls_done"]],
            "llm_spend_usd": sum(float(cost or 0.0) for cost in data["costs"]),
            "followers_end": int_or_none(data["followers_end"]),
            "followers_start": int_or_none(data["followers_start"]),
        }

    async def last_health_hour(self) -> datetime | None:
        rows = await self._rows(
            self._table("system_health_metrics")
            .select("hour_start")
            .order("hour_start", desc=True)
            .limit(1)
        )
        return parse_datetime(rows[0]["hour_start"]) if rows else None

    async def latest_health(self, limit: int = 24) -> list[dict[str, Any]]:
        """The newest health rows, newest hour first, each with its account's name."""
        rows = await self._rpc("growthloop_latest_health", p_limit=limit)
        return [decode(system_health_metrics, r) for r in rows]

    async def pending_work(self, now: datetime) -> dict[str, Any]:
        """Polls due and upcoming, posts queued and in flight, and when the next falls due."""
        data = await self._rpc("growthloop_pending_work", p_now=iso(now))
        return {
            "polls_due": int(data["polls_due"]),
            "polls_upcoming": int(data["polls_upcoming"]),
            "next_poll_at": parse_datetime(data["next_poll_at"]),
            "posts_queued": int(data["posts_queued"]),
            "next_post_at": parse_datetime(data["next_post_at"]),
            "posts_in_flight": int(data["posts_in_flight"]),
        }

    async def next_due(self) -> tuple[datetime | None, datetime | None]:
        """When the next queued post and the next snapshot fall due (None when nothing is)."""
        posts = await self._rows(
            self._table("content")
            .select("scheduled_for")
            .eq("status", PostStatus.PLANNED.value)
            .order("scheduled_for")
            .limit(1)
        )
        polls = await self._rows(
            self._table("performance_snapshots")
            .select("due_at")
            .is_("taken_at", None)
            .order("due_at")
            .limit(1)
        )
        return (
            parse_datetime(posts[0]["scheduled_for"]) if posts else None,
            parse_datetime(polls[0]["due_at"]) if polls else None,
        )

    async def counts(self) -> dict[str, int]:
        """Posts by status, plus snapshots taken and learning updates written."""
        data = await self._rpc("growthloop_counts")
        return {str(k): int(v) for k, v in data.items()}

    async def drafts(self, account_id: int | None = None) -> list[Post]:
        """Drafts waiting for a person's approval, oldest first (of one account, or all)."""
        query = self._table("content").select("*").eq("status", PostStatus.DRAFT.value)
        if account_id is not None:
            query = query.eq("account_id", account_id)
        rows = await self._rows(query.order("created_at").order("id"))
        return [post(r) for r in rows]
