"""Read-only queries behind the cycles: the queue, polling, attribution, learning, drafts.

Each function takes an open :class:`~sqlalchemy.ext.asyncio.AsyncConnection` and only reads;
:class:`agent.store.sql.SqlStore` runs them on a connection of their own (``SqlStore._once``:
no transaction block on PostgreSQL) and exposes them as the Store's methods of the same name.
Datetimes come back aware, in UTC.

The queries every post's lifecycle runs (``arm_stats``, ``recent_texts``, ``due_snapshots``)
are built once, at import, with ``bindparam`` placeholders: SQLAlchemy keeps a statement's cache
key on the statement object, so a statement built once is neither rebuilt nor re-keyed per call
and goes straight to its compiled form (building and keying it cost more client CPU than the
driver's work). They are plain functions on SQLAlchemy's synchronous ``Connection``, which the
store runs whole in one greenlet (``SqlStore._once_plain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

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
    QueueState,
)
from agent.store.rows import (
    ARM_FIELDS,
    TableSlice,
    account_snapshot_from_row,
    aware_utc,
    cadence_at,
    post_from_row,
    snapshot_from_row,
)
from agent.store.schema import (
    account_snapshots,
    accounts,
    arm_statistics,
    content,
    follower_attributions,
    performance_snapshots,
    runtime_state,
)

SCHEDULED_STATUSES = (
    PostStatus.PLANNED,
    PostStatus.PUBLISHING,
    PostStatus.POSTED,
    PostStatus.DRY_RUN,
)  # statuses that occupy a slot in the account's cadence
PAUSED_KEY = "paused"  # the runtime_state row of the kill switch


async def get_post(conn: AsyncConnection, content_id: int) -> Post | None:
    row = (await conn.execute(sa.select(content).where(content.c.id == content_id))).first()
    return post_from_row(row) if row else None


async def latest_scheduled(conn: AsyncConnection, account_id: int) -> datetime | None:
    value = await conn.scalar(
        sa.select(sa.func.max(content.c.scheduled_for)).where(
            content.c.account_id == account_id,
            content.c.status.in_([s.value for s in SCHEDULED_STATUSES]),
        )
    )
    return aware_utc(value)


async def latest_slot(conn: AsyncConnection, account_id: int) -> tuple[datetime, datetime] | None:
    row = (
        await conn.execute(
            sa.select(content.c.scheduled_for, content.c.generation_metadata)
            .where(
                content.c.account_id == account_id,
                content.c.status.in_([s.value for s in SCHEDULED_STATUSES]),
            )
            .order_by(content.c.scheduled_for.desc(), content.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    when = aware_utc(row.scheduled_for)
    assert when is not None
    return when, cadence_at(row.generation_metadata, when)


async def count_scheduled(
    conn: AsyncConnection, account_id: int, start: datetime, end: datetime
) -> int:
    return int(
        await conn.scalar(
            sa.select(sa.func.count()).where(
                content.c.account_id == account_id,
                content.c.status.in_([s.value for s in SCHEDULED_STATUSES]),
                content.c.scheduled_for >= start,
                content.c.scheduled_for < end,
            )
        )
        or 0
    )


async def queued_accounts(conn: AsyncConnection) -> set[int]:
    """The accounts with a ``planned`` post or a ``draft`` (the (status, scheduled_for) index)."""
    rows = await conn.execute(
        sa.select(content.c.account_id)
        .where(content.c.status.in_((PostStatus.PLANNED.value, PostStatus.DRAFT.value)))
        .distinct()
    )
    return {int(r[0]) for r in rows}


_MINE = content.c.account_id == sa.bindparam("account_id")
_QUEUE_STATE = sa.select(
    sa.exists().where(
        _MINE,
        content.c.status.in_(
            [sa.literal_column(f"'{s.value}'") for s in (PostStatus.PLANNED, PostStatus.DRAFT)]
        ),
    ),
    sa.exists().where(_MINE),
)


def queue_state(conn: Connection, account_id: int) -> QueueState:
    """Two index probes in one statement: a planned post or a draft, any content row."""
    queued, used = conn.execute(_QUEUE_STATE, {"account_id": account_id}).one()
    return QueueState(queued=bool(queued), new=not used)


async def accounts_without_content(conn: AsyncConnection) -> set[int]:
    """The accounts without a content row (one probe of the (account_id, ...) index each)."""
    rows = await conn.execute(
        sa.select(accounts.c.id).where(
            ~sa.exists().where(content.c.account_id == accounts.c.id).correlate(accounts)
        )
    )
    return {int(r[0]) for r in rows}


async def pending_count(conn: AsyncConnection, account_id: int) -> int:
    return int(
        await conn.scalar(
            sa.select(sa.func.count()).where(
                content.c.account_id == account_id,
                content.c.status == PostStatus.PLANNED.value,
            )
        )
        or 0
    )


async def due_posts(conn: AsyncConnection, now: datetime, limit: int) -> list[Post]:
    rows = await conn.execute(
        sa.select(content)
        .where(
            content.c.status == PostStatus.PLANNED.value,
            content.c.scheduled_for <= now,
        )
        .order_by(content.c.scheduled_for, content.c.id)
        .limit(limit)
    )
    return [post_from_row(r) for r in rows]


async def in_flight(conn: AsyncConnection) -> list[Post]:
    rows = await conn.execute(
        sa.select(content)
        .where(content.c.status == PostStatus.PUBLISHING.value)
        .order_by(content.c.id)
    )
    return [post_from_row(r) for r in rows]


# the statuses as SQL literals: a list of values would be an "expanding" parameter, rendered
# into the statement again on every execution
_SCHEDULED_SQL: list[sa.ColumnElement[str]] = [
    sa.literal_column(f"'{s.value}'") for s in SCHEDULED_STATUSES
]
_RECENT_TEXTS = (
    sa.select(content.c.text)
    .where(
        content.c.account_id == sa.bindparam("account_id"),
        content.c.status.in_(_SCHEDULED_SQL),
    )
    .order_by(content.c.id.desc())
    .limit(sa.bindparam("limit"))
)


def recent_texts(conn: Connection, account_id: int, limit: int) -> list[str]:
    rows = conn.execute(_RECENT_TEXTS, {"account_id": account_id, "limit": limit})
    return [r[0] for r in rows]


_DUE_SNAPSHOTS = (
    sa.select(
        performance_snapshots.c.id,
        performance_snapshots.c.content_id,
        performance_snapshots.c.horizon_hours,
        performance_snapshots.c.due_at,
        content.c.account_id,
        content.c.platform_post_id,
        content.c.posted_at,
    )
    .join(content, content.c.id == performance_snapshots.c.content_id)
    .where(
        performance_snapshots.c.taken_at.is_(None),
        performance_snapshots.c.due_at <= sa.bindparam("now"),
    )
    .order_by(performance_snapshots.c.due_at, performance_snapshots.c.id)
    .limit(sa.bindparam("limit"))
)


def due_snapshot_from_row(r: Sequence[Any]) -> DueSnapshot:
    """A :class:`DueSnapshot` from a row of the columns of ``_DUE_SNAPSHOTS``, in that order."""
    return DueSnapshot(
        id=r[0],
        content_id=r[1],
        horizon_hours=r[2],
        due_at=r[3],
        account_id=r[4],
        platform_post_id=r[5],
        posted_at=r[6],
    )


def due_snapshots(conn: Connection, now: datetime, limit: int) -> list[DueSnapshot]:
    rows = conn.execute(_DUE_SNAPSHOTS, {"now": now, "limit": limit})
    return [due_snapshot_from_row(r) for r in rows]


async def last_account_snapshot(conn: AsyncConnection, account_id: int) -> AccountSnapshot | None:
    row = (
        await conn.execute(
            sa.select(account_snapshots)
            .where(account_snapshots.c.account_id == account_id)
            .order_by(account_snapshots.c.taken_at.desc(), account_snapshots.c.id.desc())
            .limit(1)
        )
    ).first()
    return account_snapshot_from_row(row) if row else None


# account ids per statement when a subset is asked for (PostgreSQL binds at most 32,767)
IDS_CHUNK = 5000


async def last_account_snapshots(
    conn: AsyncConnection, account_ids: Sequence[int] | None = None
) -> dict[int, AccountSnapshot]:
    """Every account's latest follower reading, or only ``account_ids``': one index probe per
    account (``accounts`` drives the join), not a scan of the whole series."""
    if account_ids is None:
        return await _last_account_snapshots(conn, None)
    found: dict[int, AccountSnapshot] = {}
    for start in range(0, len(account_ids), IDS_CHUNK):
        found.update(await _last_account_snapshots(conn, account_ids[start : start + IDS_CHUNK]))
    return found


async def _last_account_snapshots(
    conn: AsyncConnection, account_ids: Sequence[int] | None
) -> dict[int, AccountSnapshot]:
    reading = account_snapshots.alias("reading")
    latest = (
        sa.select(reading.c.id)
        .where(reading.c.account_id == accounts.c.id)
        .order_by(reading.c.taken_at.desc(), reading.c.id.desc())
        .limit(1)
        .correlate(accounts)
        .scalar_subquery()
    )
    query = sa.select(account_snapshots).select_from(
        accounts.join(account_snapshots, account_snapshots.c.id == latest)
    )
    if account_ids is not None:
        query = query.where(accounts.c.id.in_(account_ids))
    rows = await conn.execute(query)
    return {int(r.account_id): account_snapshot_from_row(r) for r in rows}


async def account_series(
    conn: AsyncConnection, account_id: int, start: datetime, end: datetime
) -> list[AccountSnapshot]:
    rows = await conn.execute(
        sa.select(account_snapshots)
        .where(
            account_snapshots.c.account_id == account_id,
            account_snapshots.c.taken_at >= start,
            account_snapshots.c.taken_at <= end,
        )
        .order_by(account_snapshots.c.taken_at, account_snapshots.c.id)
    )
    return [account_snapshot_from_row(r) for r in rows]


async def posts_to_attribute(
    conn: AsyncConnection, *, closed_before: datetime, method: str, window_hours: float, limit: int
) -> list[Post]:
    """Posted posts whose attribution window closed before ``closed_before``."""
    fa = follower_attributions
    window = timedelta(hours=window_hours)

    done = sa.exists().where(
        fa.c.content_id == content.c.id,
        fa.c.attribution_method == method,
        fa.c.window_hours == window_hours,
    )
    rows = await conn.execute(
        sa.select(content)
        .where(
            content.c.status == PostStatus.POSTED.value,
            content.c.posted_at <= closed_before - window,
            ~done,
        )
        .order_by(content.c.posted_at)
        .limit(limit)
    )
    return [post_from_row(r) for r in rows]


async def posted_between(
    conn: AsyncConnection, account_id: int, start: datetime, end: datetime
) -> list[tuple[Post, PostCounts]]:
    """Posts of an account posted in [start, end], with their latest snapshot's counts."""
    ps = performance_snapshots

    rows = (
        await conn.execute(
            sa.select(content)
            .where(
                content.c.account_id == account_id,
                content.c.status == PostStatus.POSTED.value,
                content.c.posted_at >= start,
                content.c.posted_at <= end,
            )
            .order_by(content.c.posted_at)
        )
    ).all()
    posts = [post_from_row(r) for r in rows]
    if not posts:
        return []
    engagement = (
        sa.func.coalesce(ps.c.likes, 0)
        + sa.func.coalesce(ps.c.reposts, 0)
        + sa.func.coalesce(ps.c.replies, 0)
        + sa.func.coalesce(ps.c.quotes, 0)
        + sa.func.coalesce(ps.c.bookmarks, 0)
    )
    snaps = await conn.execute(
        sa.select(
            ps.c.content_id,
            engagement,
            ps.c.impressions,
            ps.c.profile_clicks,
            ps.c.hours_since_post,
        )
        .where(ps.c.content_id.in_([p.id for p in posts]), ps.c.taken_at.is_not(None))
        .order_by(ps.c.content_id, ps.c.horizon_hours)
    )
    by_id = {  # the last (longest) horizon wins
        cid: PostCounts(
            engagements=int(value or 0),
            impressions=int(impressions or 0),
            profile_clicks=int(clicks or 0),
            hours_observed=None if hours is None else float(hours),
        )
        for cid, value, impressions, clicks, hours in snaps
    }
    return [(p, by_id.get(p.id, PostCounts())) for p in posts]


async def posts_to_learn(
    conn: AsyncConnection, *, method: str, need_attribution: bool, limit: int
) -> list[LearnItem]:
    """Posted, not learned, final snapshot taken (and attributed, when needed)."""
    ps = performance_snapshots
    fa = follower_attributions

    inner = ps.alias("final_horizon")
    final_h = (
        sa.select(sa.func.max(inner.c.horizon_hours))
        .where(inner.c.content_id == content.c.id)
        .correlate(content)
        .scalar_subquery()
    )
    query = (
        sa.select(content, ps, fa)
        .select_from(content)
        .join(ps, sa.and_(ps.c.content_id == content.c.id, ps.c.horizon_hours == final_h))
        .outerjoin(fa, sa.and_(fa.c.content_id == content.c.id, fa.c.attribution_method == method))
        .where(
            content.c.status == PostStatus.POSTED.value,
            content.c.learned_at.is_(None),
            ps.c.taken_at.is_not(None),
        )
        .order_by(content.c.posted_at)
        .limit(limit)
    )
    if need_attribution:
        query = query.where(fa.c.id.is_not(None))
    rows = (await conn.execute(query)).all()
    items = []
    for row in rows:
        m = row._mapping
        post = post_from_row(TableSlice(row, content))
        snap = snapshot_from_row(TableSlice(row, ps))
        attribution = None
        if m[fa.c.id] is not None:
            attribution = Attribution(
                content_id=post.id,
                attribution_method=m[fa.c.attribution_method],
                window_hours=m[fa.c.window_hours],
                followers_before=m[fa.c.followers_before],
                followers_after=m[fa.c.followers_after],
                followers_gained=m[fa.c.followers_gained],
                confidence_score=m[fa.c.confidence_score],
                inputs=dict(m[fa.c.inputs] or {}),
            )
        items.append(LearnItem(post=post, attribution=attribution, final=snap))
    return items


async def learning_history(
    conn: AsyncConnection, account_id: int, method: str, since: datetime | None
) -> list[Observation]:
    """Every posted post of the account (since ``since``), with what is known of its outcome."""
    ps = performance_snapshots
    fa = follower_attributions
    query = sa.select(content).where(
        content.c.account_id == account_id, content.c.status == PostStatus.POSTED.value
    )
    if since is not None:
        query = query.where(content.c.posted_at >= since)
    posts = [post_from_row(r) for r in (await conn.execute(query.order_by(content.c.posted_at)))]
    if not posts:
        return []
    ids = [p.id for p in posts]
    engagement = (
        sa.func.coalesce(ps.c.likes, 0)
        + sa.func.coalesce(ps.c.reposts, 0)
        + sa.func.coalesce(ps.c.replies, 0)
        + sa.func.coalesce(ps.c.quotes, 0)
        + sa.func.coalesce(ps.c.bookmarks, 0)
    )
    latest: dict[int, tuple[int, float, int]] = {}
    snaps = await conn.execute(
        sa.select(ps.c.content_id, engagement, ps.c.hours_since_post, ps.c.profile_clicks)
        .where(
            ps.c.content_id.in_(ids),
            ps.c.taken_at.is_not(None),
            ps.c.hours_since_post.is_not(None),
        )
        .order_by(ps.c.content_id, ps.c.horizon_hours)
    )
    for content_id, value, hours, clicks in snaps:
        # the last (longest) horizon wins
        latest[content_id] = (int(value or 0), float(hours), int(clicks or 0))
    gained: dict[int, float] = {
        int(cid): float(value)
        for cid, value in await conn.execute(
            sa.select(fa.c.content_id, fa.c.followers_gained).where(
                fa.c.content_id.in_(ids), fa.c.attribution_method == method
            )
        )
    }
    out = []
    for post in posts:
        assert post.posted_at is not None
        value, hours, clicks = latest.get(post.id, (0, -1.0, 0))
        out.append(
            Observation(
                content_id=post.id,
                posted_at=post.posted_at,
                arms=post.arms,
                engagements=value,
                hours_observed=None if hours < 0 else hours,
                followers=gained.get(post.id),
                learned=post.learned_at is not None,
                profile_clicks=clicks,
            )
        )
    return out


_ARM_STATS = (
    sa.select(
        arm_statistics.c.account_id,
        arm_statistics.c.dimension,
        arm_statistics.c.arm,
        *(arm_statistics.c[f] for f in ARM_FIELDS),
    )
    .where(arm_statistics.c.account_id == sa.bindparam("account_id"))
    .order_by(arm_statistics.c.dimension, arm_statistics.c.arm)
)


def arm_stats(conn: Connection, account_id: int) -> list[ArmStat]:
    rows = conn.execute(_ARM_STATS, {"account_id": account_id})
    return [
        ArmStat(
            account_id=r[0],
            dimension=r[1],
            arm=r[2],
            posts=r[3],
            mean=r[4],
            interval_low=r[5],
            interval_high=r[6],
            p_best=r[7],
            model=r[8],
        )
        for r in rows
    ]


async def drafts(conn: AsyncConnection, account_id: int | None) -> list[Post]:
    """Drafts waiting for a person's approval, oldest first (of one account, or all)."""
    query = sa.select(content).where(content.c.status == PostStatus.DRAFT.value)
    if account_id is not None:
        query = query.where(content.c.account_id == account_id)
    rows = await conn.execute(query.order_by(content.c.created_at, content.c.id))
    return [post_from_row(r) for r in rows]


async def account_names(conn: AsyncConnection) -> dict[int, str]:
    """Every stored account's id and name."""
    rows = await conn.execute(sa.select(accounts.c.id, accounts.c.name))
    return {int(r.id): str(r.name) for r in rows}


async def paused(conn: AsyncConnection) -> tuple[bool, str | None]:
    """(paused, the reason given) - (False, None) when publishing runs."""
    value = await conn.scalar(
        sa.select(runtime_state.c.value).where(runtime_state.c.key == PAUSED_KEY)
    )
    if not isinstance(value, dict) or not value.get("paused"):
        return False, None
    reason = value.get("reason")
    return True, str(reason) if reason is not None else None
