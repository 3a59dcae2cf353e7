"""The Store in Python data structures, for simulations, benchmarks and tests.

:class:`MemoryStore` answers every method of :class:`agent.store.base.Store` exactly as
:class:`agent.store.sql.SqlStore` does (same filters, orderings, compare-and-set transitions,
return values, and the same ``IntegrityError`` for a violated unique or foreign key), without a
database: a simulated day takes milliseconds instead of thousands of SQLite round trips. Nothing
survives the process; :meth:`MemoryStore.export` copies everything into a migrated SQLite or
PostgreSQL database for reading with SQL afterwards (``growthloop simulate`` does this).

Every method runs without awaiting in the middle of a change, so each is atomic with respect to
other coroutines, as a transaction is; a method that would violate a constraint checks
everything before it changes anything. Values handed out are frozen or fresh copies.

Rows are dicts shaped by :mod:`agent.store.schema` (see :mod:`agent.store.memory_tables`), with
indexes for the cycles' hot paths: posts by status, due snapshots by due time, follower readings
per account by time, attributions by (post, method), arm statistics by (account, dimension, arm).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.models import (
    AccountInfo,
    AccountSnapshot,
    ArmChoice,
    ArmStat,
    Attribution,
    DueSnapshot,
    LearnItem,
    MetricsSnapshot,
    NewContent,
    Observation,
    Post,
    PostCounts,
    PostMetrics,
    PostStatus,
)
from agent.store.memory_tables import (
    TABLES,
    SortedKeys,
    TimeIndex,
    copy_rows,
    exported,
    loads,
    refused,
    utc,
)
from agent.store.queries import PAUSED_KEY, SCHEDULED_STATUSES
from agent.store.rows import ARM_FIELDS

_SCHEDULED = frozenset(s.value for s in SCHEDULED_STATUSES)
_PLANNED, _PUBLISHING, _POSTED, _DRAFT = (
    PostStatus.PLANNED.value,
    PostStatus.PUBLISHING.value,
    PostStatus.POSTED.value,
    PostStatus.DRAFT.value,
)
_SENDABLE = frozenset({_PLANNED, _PUBLISHING})  # fail_publish / reschedule apply to these
EXPIRED_DRAFT_ERROR = "expired unapproved"  # as agent.store.sql
# indexed per account
_CONTENT_TIMES = ("updated_at", "publish_started_at", "created_at", "scheduled_for")


def _post(row: dict[str, Any]) -> Post:
    return Post(
        id=row["id"],
        account_id=row["account_id"],
        status=PostStatus(row["status"]),
        text=row["text"],
        text_hash=row["text_hash"],
        generation_metadata=dict(loads(row["generation_metadata"]) or {}),
        scheduled_for=row["scheduled_for"],
        idempotency_key=row["idempotency_key"],
        platform_post_id=row["platform_post_id"],
        publish_started_at=row["publish_started_at"],
        publish_attempts=row["publish_attempts"],
        posted_at=row["posted_at"],
        learned_at=row["learned_at"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _arms(meta: dict[str, Any]) -> ArmChoice:
    """What :attr:`Post.arms` gives, from the metadata alone."""
    return ArmChoice(
        content_type=meta.get("content_type", ""),
        formula=meta.get("formula", ""),
        hook=meta.get("hook", ""),
        topic=meta.get("topic", ""),
    )


def _engagement(snap: dict[str, Any]) -> int:
    return (
        (snap["likes"] or 0)
        + (snap["reposts"] or 0)
        + (snap["replies"] or 0)
        + (snap["quotes"] or 0)
        + (snap["bookmarks"] or 0)
    )


def _metrics_snapshot(snap: dict[str, Any]) -> MetricsSnapshot:
    return MetricsSnapshot(
        content_id=snap["content_id"],
        horizon_hours=snap["horizon_hours"],
        due_at=snap["due_at"],
        taken_at=snap["taken_at"],
        hours_since_post=snap["hours_since_post"],
        likes=snap["likes"] or 0,
        reposts=snap["reposts"] or 0,
        replies=snap["replies"] or 0,
        quotes=snap["quotes"] or 0,
        bookmarks=snap["bookmarks"] or 0,
        impressions=snap["impressions"] or 0,
        engagement_rate=snap["engagement_rate"],
        followers_at=snap["followers_at"],
    )


def _attribution(row: dict[str, Any]) -> Attribution:
    return Attribution(
        content_id=row["content_id"],
        attribution_method=row["attribution_method"],
        window_hours=row["window_hours"],
        followers_before=row["followers_before"],
        followers_after=row["followers_after"],
        followers_gained=row["followers_gained"],
        confidence_score=row["confidence_score"],
        inputs=dict(loads(row["inputs"]) or {}),
    )


class _Account:
    """Per-account indexes."""

    __slots__ = ("arm_list", "arms", "content", "due", "posted", "readings", "taken", "times")

    def __init__(self) -> None:
        self.content: list[int] = []  # content ids, ascending
        self.posted = SortedKeys()  # (posted_at, content id) of posted posts
        self.due = SortedKeys()  # (due_at, performance snapshot id) of its posts' snapshots
        self.taken = SortedKeys()  # (taken_at, performance snapshot id) once taken
        self.readings = SortedKeys()  # (taken_at, account snapshot id)
        self.arms: dict[tuple[str, str], ArmStat] = {}
        self.arm_list: list[ArmStat] | None = None  # arms sorted by (dimension, arm), cached
        self.times: dict[str, TimeIndex] = {name: TimeIndex() for name in _CONTENT_TIMES}


class MemoryStore:
    """growthloop's store held in memory (one process, nothing persisted)."""

    backend = "memory"

    def __init__(self) -> None:
        self._rows: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in TABLES}
        self._last_id: Counter[str] = Counter()
        self._account_ids: dict[str, int] = {}
        self._accounts: dict[int, _Account] = {}
        self._idempotency: set[str] = set()
        self._status: defaultdict[str, set[int]] = defaultdict(set)  # content ids by status
        self._posted = SortedKeys()  # (posted_at, id) of every posted post
        self._unlearned: set[int] = set()  # posted, not learned
        self._snaps: dict[int, dict[float, int]] = {}  # content id -> horizon -> snapshot id
        self._untaken = SortedKeys()  # (due_at, snapshot id) of snapshots not taken
        self._snaps_taken = 0
        self._attributions: defaultdict[tuple[int, str], list[int]] = defaultdict(list)
        self._attribution_keys: set[tuple[int, str, float]] = set()
        # (method, window) -> posted posts not attributed yet, built on first use
        self._unattributed: dict[tuple[str, float], SortedKeys] = {}
        self._arm_ids: dict[tuple[int, str, str], int] = {}  # -> arm_statistics id
        self._readings: dict[int, AccountSnapshot] = {}  # account snapshots by id
        self._health_keys: set[tuple[datetime, int]] = set()
        self._last_health: datetime | None = None
        # learning_history's rows, rebuilt only for posts whose version moved since (a post's
        # version moves with every change to its content row, its snapshots or attributions)
        self._version: Counter[int] = Counter()
        self._observed: dict[str, dict[int, tuple[int, Observation]]] = defaultdict(dict)

    async def close(self) -> None:
        return None

    # -- rows -------------------------------------------------------------------------------

    def _insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Store a normalised row, giving it the next id."""
        self._last_id[table] += 1
        row["id"] = self._last_id[table]
        self._rows[table][row["id"]] = row
        return row

    def _account(self, account_id: int, table: str) -> _Account:
        found = self._accounts.get(account_id)
        if found is None:
            raise refused(f"FOREIGN KEY constraint failed: {table}.account_id = {account_id}")
        return found

    def _content_row(self, content_id: int) -> dict[str, Any] | None:
        return self._rows["content"].get(content_id)

    def _update(self, row: dict[str, Any], **values: Any) -> None:
        """Change a content row, keeping the status and time indexes right."""
        status = values.get("status")
        if status is not None and status != row["status"]:
            self._status[row["status"]].discard(row["id"])
            self._status[status].add(row["id"])
        row.update(values)
        self._version[row["id"]] += 1
        times = self._accounts[row["account_id"]].times
        for name in _CONTENT_TIMES:
            if name in values:
                times[name].add(values[name], row["id"])

    # -- accounts ---------------------------------------------------------------------------

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int:
        found = self._account_ids.get(name)
        if found is not None:
            self._rows["accounts"][found].update(platform=platform, handle=handle)
            return found
        row = TABLES["accounts"].row(
            {"name": name, "platform": platform, "handle": handle, "created_at": now}
        )
        account_id = int(self._insert("accounts", row)["id"])
        self._account_ids[name] = account_id
        self._accounts[account_id] = _Account()
        return account_id

    async def account_names(self) -> dict[int, str]:
        """Every stored account's id and name."""
        return {int(r["id"]): str(r["name"]) for r in self._rows["accounts"].values()}

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
        for name in _CONTENT_TIMES:
            account.times[name].add(row[name], row["id"])
        return _post(row)

    async def get_post(self, content_id: int) -> Post | None:
        row = self._content_row(content_id)
        return _post(row) if row is not None else None

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
            if row["scheduled_for"] == at and row["status"] in _SCHEDULED:
                return at  # (a stale entry's row was rescheduled: its current entry counts)
        return None

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        start, end = utc(start), utc(end)
        account = self._accounts.get(account_id)
        if account is None:
            return 0
        content = self._rows["content"]
        found = (content[i] for i in account.times["scheduled_for"].ids(start, end))
        return sum(
            1 for r in found if r["status"] in _SCHEDULED and start <= r["scheduled_for"] < end
        )

    async def pending_count(self, account_id: int) -> int:
        content = self._rows["content"]
        return sum(1 for i in self._status[_PLANNED] if content[i]["account_id"] == account_id)

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        now = utc(now)
        content = self._rows["content"]
        due = [content[i] for i in self._status[_PLANNED] if content[i]["scheduled_for"] <= now]
        due.sort(key=lambda r: (r["scheduled_for"], r["id"]))
        return [_post(r) for r in due[: max(limit, 0)]]

    async def begin_publish(self, content_id: int, *, now: datetime) -> bool:
        """planned -> publishing, before the platform is called (step 1)."""
        now = utc(now)
        row = self._content_row(content_id)
        if row is None or row["status"] != _PLANNED:
            return False
        self._update(
            row,
            status=_PUBLISHING,
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
        if row is None or row["status"] != _PUBLISHING:
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
            status=_POSTED,
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
        if row is not None and row["status"] in _SENDABLE:
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
        if row is None or row["status"] not in _SENDABLE:
            return
        attempts = row["publish_attempts"]
        if not sent:
            attempts = attempts - 1 if attempts > 0 else 0
        self._update(
            row,
            status=_PLANNED,
            scheduled_for=scheduled_for,
            publish_started_at=None,
            publish_attempts=attempts,
            error=error[:2000],
            updated_at=now,
        )

    async def in_flight(self) -> list[Post]:
        content = self._rows["content"]
        return [_post(content[i]) for i in sorted(self._status[_PUBLISHING])]

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        out: list[str] = []
        for row in reversed(self._account_content(account_id)):
            if len(out) >= limit:
                break
            if row["status"] in _SCHEDULED:
                out.append(row["text"])
        return out

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
        taken_at = utc(taken_at)
        snap = self._rows["performance_snapshots"].get(snapshot_id)
        if snap is None or snap["taken_at"] is not None:
            return
        self._version[snap["content_id"]] += 1
        snap.update(
            taken_at=taken_at,
            hours_since_post=float(hours_since_post),
            followers_at=followers_at,
            error=error,
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
        return [_post(content[i]) for _at, i in pending.upto(cutoff)[: max(limit, 0)]]

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
                        engagements=_engagement(snap),
                        impressions=int(snap["impressions"] or 0),
                        profile_clicks=int(snap["profile_clicks"] or 0),
                        hours_observed=None if hours is None else float(hours),
                    )
            out.append((_post(content[content_id]), counts))
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
            post, snap = _post(row), _metrics_snapshot(final)
            if not found:
                items.append(LearnItem(post=post, attribution=None, final=snap))
            for attribution_id in found:
                attribution = _attribution(attributions[attribution_id])
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
                engagements, hours = _engagement(snap), float(snap["hours_since_post"])
                clicks = int(snap["profile_clicks"] or 0)
        found = self._attributions.get((content_id, method))
        attributions = self._rows["follower_attributions"]
        return Observation(
            content_id=content_id,
            posted_at=posted_at,
            arms=_arms(loads(row["generation_metadata"]) or {}),
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
        content_id: int,
        stats: Sequence[ArmStat],
        evidence: dict[str, Any],
        updates_applied: dict[str, Any],
        insights_summary: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Write new arm statistics, the learning_updates row and mark the post learned, at once.

        Returns False (and writes nothing) when the post was already learned from.
        """
        now = utc(now)
        row = self._content_row(content_id)
        if row is None or row["learned_at"] is not None:
            return False
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
                "content_id": content_id,
                "created_at": now,
                "update_type": "post_outcome",
                "component": "all",
                "evidence": evidence,
                "updates_applied": updates_applied,
                "insights_summary": insights_summary,
            }
        )
        self._account(account_id, "learning_updates")

        self._update(row, learned_at=now, updated_at=now)
        self._unlearned.discard(content_id)
        arms_table = self._rows["arm_statistics"]
        for stat, arm_row in arm_rows:
            account = self._accounts[stat.account_id]
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
        return True

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
        account = self._accounts.get(account_id) or _Account()
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
        except IntegrityError:
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
            "posts_queued": len(self._status[_PLANNED]),
            "next_post_at": next_post,
            "posts_in_flight": len(self._status[_PUBLISHING]),
        }

    async def next_due(self) -> tuple[datetime | None, datetime | None]:
        """When the next queued post and the next snapshot fall due (None when nothing is)."""
        content = self._rows["content"]
        post = min((content[i]["scheduled_for"] for i in self._status[_PLANNED]), default=None)
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
            for i in self._status[_DRAFT]
            if account_id is None or content[i]["account_id"] == account_id
        ]
        found.sort(key=lambda r: (r["created_at"], r["id"]))
        return [_post(r) for r in found]

    def _draft(self, content_id: int) -> dict[str, Any] | None:
        row = self._content_row(content_id)
        return row if row is not None and row["status"] == _DRAFT else None

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
        self._update(row, status=_PLANNED, scheduled_for=when, updated_at=now)
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
        old = [i for i in self._status[_DRAFT] if content[i]["created_at"] < older_than]
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
