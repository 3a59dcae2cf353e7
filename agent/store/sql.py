"""The Store on SQLAlchemy 2 Core (async): SQLite via aiosqlite, PostgreSQL via asyncpg.

Each public method runs in one transaction. State transitions of a post are guarded in their
WHERE clause (``status = 'planned'`` to begin a publish, ``status = 'publishing'`` to finish it),
so a retried or concurrent call cannot apply twice; snapshot and attribution rows carry unique
keys for the same reason.

Row-to-value-object conversion lives in :mod:`agent.store.rows`; the read-only queries the
cycles use live in :mod:`agent.store.queries`, and the health and reporting ones in
:mod:`agent.store.reports`; both are delegated to from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from agent.errors import StoreError, StoreUnavailable
from agent.logs import log, redact_text
from agent.models import (
    AccountInfo,
    AccountSnapshot,
    ArmStat,
    Attribution,
    DueSnapshot,
    LearnItem,
    NewContent,
    Observation,
    Post,
    PostCounts,
    PostMetrics,
    PostStatus,
)
from agent.store import claims, queries, reports
from agent.store.retry import DATABASE_ERRORS, DEFAULT_RETRY, RetryPolicy, is_unavailable
from agent.store.rows import (
    ARM_FIELDS,
    aware_utc,
    post_from_row,
)
from agent.store.schema import (
    account_snapshots,
    accounts,
    arm_statistics,
    content,
    follower_attributions,
    learning_updates,
    performance_snapshots,
    runtime_state,
    system_health_metrics,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")

SCHEDULED_STATUSES = queries.SCHEDULED_STATUSES  # re-exported from agent.store.queries
PAUSED_KEY = queries.PAUSED_KEY  # re-exported from agent.store.queries


def _describe(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    return redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0]) if exc else ""


class SqlStore:
    """growthloop's store on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.engine = engine
        self.retry = retry

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    async def _run(
        self,
        fn: Callable[Concatenate[AsyncConnection, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run ``fn`` in one transaction; retried (see :mod:`agent.store.retry`) while the
        database is unreachable, then :class:`StoreUnavailable`. Other database errors are a
        :class:`StoreError`; an IntegrityError propagates, except on a retry, where it means the
        attempt that lost its connection had committed after all."""
        policy = self.retry
        retried = False
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_unavailable),
                wait=wait_random_exponential(multiplier=policy.first_wait, max=policy.max_wait),
                stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.give_up_after),
                before_sleep=lambda state: log.debug(
                    "store_retrying", attempt=state.attempt_number, error=_describe(state)
                ),
                reraise=True,
            ):
                with attempt:
                    retried = attempt.retry_state.attempt_number > 1
                    async with self.engine.begin() as conn:
                        return await fn(conn, *args, **kwargs)
        except DATABASE_ERRORS as exc:
            if isinstance(exc, IntegrityError) and not retried:
                raise
            detail = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
            if is_unavailable(exc):
                raise StoreUnavailable(f"database unavailable: {detail}") from exc
            if isinstance(exc, IntegrityError):
                raise StoreError(
                    f"a retried write was refused ({detail}); its first attempt, cut off by a "
                    "dropped connection, had probably been committed"
                ) from exc
            raise StoreError(f"database error: {detail}") from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    # -- accounts ---------------------------------------------------------------------------

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int:
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        # several workers start at once: whoever inserts first wins, the others find that row
        register = (
            insert(accounts)
            .values(name=name, platform=platform, handle=handle, created_at=now)
            .on_conflict_do_nothing(index_elements=[accounts.c.name])
        )

        async def go(conn: AsyncConnection) -> int:
            found = await conn.scalar(sa.select(accounts.c.id).where(accounts.c.name == name))
            if found is None:
                await conn.execute(register)
                found = await conn.scalar(sa.select(accounts.c.id).where(accounts.c.name == name))
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == found)
                .values(platform=platform, handle=handle)
            )
            assert found is not None  # inserted by us or, just now, by another worker
            return int(found)

        return int(await self._run(go))

    # -- content ----------------------------------------------------------------------------

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        async def go(conn: AsyncConnection) -> Post:
            result = await conn.execute(
                content.insert()
                .values(
                    account_id=new.account_id,
                    status=new.status.value,
                    text=new.text,
                    text_hash=new.text_hash,
                    generation_metadata=new.generation_metadata,
                    scheduled_for=new.scheduled_for,
                    idempotency_key=new.idempotency_key,
                    error=new.error,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*content.c)
            )
            return post_from_row(result.one())

        post: Post = await self._run(go)
        return post

    async def get_post(self, content_id: int) -> Post | None:
        return await self._run(queries.get_post, content_id)

    async def latest_scheduled(self, account_id: int) -> datetime | None:
        return await self._run(queries.latest_scheduled, account_id)

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int:
        return await self._run(queries.count_scheduled, account_id, start, end)

    async def pending_count(self, account_id: int) -> int:
        return await self._run(queries.pending_count, account_id)

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]:
        return await self._run(queries.due_posts, now, limit)

    async def begin_publish(self, content_id: int, *, now: datetime) -> bool:
        """planned -> publishing, committed before the platform is called (step 1)."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.PLANNED.value)
                .values(
                    status=PostStatus.PUBLISHING.value,
                    publish_started_at=now,
                    publish_attempts=content.c.publish_attempts + 1,
                    updated_at=now,
                )
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool:
        """publishing -> posted, with the due snapshot rows, in one transaction (step 3)."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status == PostStatus.PUBLISHING.value,
                )
                .values(
                    status=PostStatus.POSTED.value,
                    platform_post_id=platform_post_id,
                    posted_at=posted_at,
                    error=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                performance_snapshots.insert(),
                [
                    {
                        "content_id": content_id,
                        "horizon_hours": h.total_seconds() / 3600,
                        "due_at": posted_at + h,
                    }
                    for h in horizons
                ],
            )
            return True

        return bool(await self._run(go))

    async def fail_publish(
        self,
        content_id: int,
        *,
        error: str,
        now: datetime,
        status: PostStatus = PostStatus.FAILED,
    ) -> None:
        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status.in_([PostStatus.PLANNED.value, PostStatus.PUBLISHING.value]),
                )
                .values(status=status.value, error=error[:2000], updated_at=now)
            )

        await self._run(go)

    async def reschedule(
        self,
        content_id: int,
        *,
        scheduled_for: datetime,
        error: str,
        now: datetime,
        sent: bool = True,
    ) -> None:
        """Back to planned, at a later time.

        ``sent=False`` (a definite "no" such as a rate limit: nothing reached the platform) gives
        back the attempt ``begin_publish`` counted, so waiting out a 429 storm does not use up
        the post's publish attempts.
        """
        attempts: Any = content.c.publish_attempts
        if not sent:
            attempts = sa.case((attempts > 0, attempts - 1), else_=0)

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(
                content.update()
                .where(
                    content.c.id == content_id,
                    content.c.status.in_([PostStatus.PLANNED.value, PostStatus.PUBLISHING.value]),
                )
                .values(
                    status=PostStatus.PLANNED.value,
                    scheduled_for=scheduled_for,
                    publish_started_at=None,
                    publish_attempts=attempts,
                    error=error[:2000],
                    updated_at=now,
                )
            )

        await self._run(go)

    async def in_flight(self) -> list[Post]:
        return await self._run(queries.in_flight)

    async def recent_texts(self, account_id: int, limit: int) -> list[str]:
        return await self._run(queries.recent_texts, account_id, limit)

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
        st = arm_statistics

        async def go(conn: AsyncConnection) -> bool:
            claimed = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.learned_at.is_(None))
                .values(learned_at=now, updated_at=now)
            )
            if claimed.rowcount != 1:
                return False
            for stat in stats:
                values = {f: getattr(stat, f) for f in ARM_FIELDS} | {"updated_at": now}
                updated = await conn.execute(
                    st.update()
                    .where(
                        st.c.account_id == stat.account_id,
                        st.c.dimension == stat.dimension,
                        st.c.arm == stat.arm,
                    )
                    .values(**values)
                )
                if updated.rowcount == 0:
                    await conn.execute(
                        st.insert().values(
                            account_id=stat.account_id,
                            dimension=stat.dimension,
                            arm=stat.arm,
                            **values,
                        )
                    )
            await conn.execute(
                learning_updates.insert().values(
                    account_id=account_id,
                    content_id=content_id,
                    created_at=now,
                    update_type="post_outcome",
                    component="all",
                    evidence=evidence,
                    updates_applied=updates_applied,
                    insights_summary=insights_summary,
                )
            )
            return True

        return bool(await self._run(go))

    # -- several workers: leases (claims.py) ----------------------------------------------------

    async def acquire_lease(self, name: str, *, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Take, renew or take over an expired lease; False while another worker holds it."""
        return await self._run(claims.acquire_lease, name, worker=worker, now=now, ttl=ttl)

    async def release_lease(self, name: str, *, worker: str) -> None:
        await self._run(claims.release_lease, name, worker=worker)

    # -- runtime state (the kill switch) ----------------------------------------------------

    async def set_paused(self, paused: bool, *, reason: str, by: str, now: datetime) -> None:
        """Pause or resume publishing for every worker on this database (an upsert)."""
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        values = {
            "key": PAUSED_KEY,
            "value": {"paused": paused, "reason": reason},
            "updated_at": now,
            "updated_by": by,
        }
        statement = insert(runtime_state).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[runtime_state.c.key],
            set_={k: statement.excluded[k] for k in ("value", "updated_at", "updated_by")},
        )

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        await self._run(go)

    async def paused(self) -> tuple[bool, str | None]:
        """(paused, the reason given) - (False, None) when publishing runs."""
        return await self._run(queries.paused)

    # -- health -----------------------------------------------------------------------------

    async def health_inputs(
        self, account_id: int, start: datetime, end: datetime
    ) -> dict[str, Any]:
        """What happened to one account in [start, end), read back from the tables."""
        return await self._run(reports.health_inputs, account_id, start, end)

    async def write_health(self, row: dict[str, Any]) -> None:
        async def go(conn: AsyncConnection) -> None:
            try:
                async with conn.begin_nested():
                    await conn.execute(system_health_metrics.insert().values(**row))
            except IntegrityError:
                pass  # that hour was already written (another worker, or a retry)

        await self._run(go)

    async def last_health_hour(self) -> datetime | None:
        return await self._run(reports.last_health_hour)

    async def latest_health(self, limit: int = 24) -> list[dict[str, Any]]:
        return await self._run(reports.latest_health, limit)

    async def pending_work(self, now: datetime) -> dict[str, Any]:
        return await self._run(reports.pending_work, now)

    async def next_due(self) -> tuple[datetime | None, datetime | None]:
        """When the next queued post and the next snapshot fall due (None when nothing is)."""
        return await self._run(reports.next_due)

    async def counts(self) -> dict[str, int]:
        return await self._run(reports.counts)

    # -- approval queue (approve mode) ------------------------------------------------------

    async def drafts(self, account_id: int | None = None) -> list[Post]:
        """Drafts waiting for a person's approval, oldest first (of one account, or all)."""
        return await self._run(queries.drafts, account_id)

    async def approve_draft(
        self, content_id: int, *, now: datetime, scheduled_for: datetime | None = None
    ) -> bool:
        """draft -> planned, due at the later of ``now`` and ``scheduled_for`` (default: its own
        slot). False when the post is not (or no longer) a draft."""

        async def go(conn: AsyncConnection) -> bool:
            slot = aware_utc(
                await conn.scalar(
                    sa.select(content.c.scheduled_for).where(
                        content.c.id == content_id, content.c.status == PostStatus.DRAFT.value
                    )
                )
            )
            if slot is None:
                return False
            when = max(now, scheduled_for if scheduled_for is not None else slot)
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(status=PostStatus.PLANNED.value, scheduled_for=when, updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def reject_draft(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """draft -> rejected (never sent). False when the post is not a draft."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(status=PostStatus.REJECTED.value, error=reason[:2000], updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def edit_draft(
        self, content_id: int, *, text: str, text_hash: str, now: datetime
    ) -> bool:
        """Replace a draft's text (the caller has checked it). False when it is not a draft."""

        async def go(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                content.update()
                .where(content.c.id == content_id, content.c.status == PostStatus.DRAFT.value)
                .values(text=text, text_hash=text_hash, updated_at=now)
            )
            return result.rowcount == 1

        return bool(await self._run(go))

    async def expire_drafts(self, older_than: datetime, now: datetime) -> int:
        """Reject every draft created before ``older_than``; returns how many."""

        async def go(conn: AsyncConnection) -> int:
            result = await conn.execute(
                content.update()
                .where(
                    content.c.status == PostStatus.DRAFT.value,
                    content.c.created_at < older_than,
                )
                .values(status=PostStatus.REJECTED.value, error=EXPIRED_DRAFT_ERROR, updated_at=now)
            )
            return int(result.rowcount)

        return int(await self._run(go))

    async def account_names(self) -> dict[int, str]:
        """Every stored account's id and name."""
        return await self._run(queries.account_names)


EXPIRED_DRAFT_ERROR = "expired unapproved"  # the error of a draft nobody approved in time
