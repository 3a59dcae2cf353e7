"""The SQL store's audience (issue 19, docs/audience.md): members and their interactions, recorded
in batches from what the adapters read, scored daily, forgotten on request and purged past the
retention period. A part of :class:`agent.store.sql.SqlStore`; the member arithmetic shared with
the memory store is in :mod:`agent.store.audience_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.audience_models import (
    AudienceEvent,
    AudienceInteraction,
    AudienceMember,
    AudienceRecorded,
    Forgotten,
    MemberScore,
    Purged,
)
from agent.store.audience_rows import (
    MEMBER_STATE,
    by_user,
    check_events,
    chunks,
    handle_key,
    interaction_of,
    member_of,
    merged_member,
    new_events,
)
from agent.store.schema import (
    audience_credits,
    audience_interactions,
    audience_members,
    content,
    conversations,
)
from agent.store.sql_state import SqlState

_members, _interactions = audience_members, audience_interactions
_UPDATE_MEMBER = (
    _members.update()
    .where(_members.c.id == sa.bindparam("member_id"))
    .values({k: sa.bindparam(f"new_{k}") for k in (*MEMBER_STATE, "updated_at")})
)


def _state(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in MEMBER_STATE}


class SqlAudience(SqlState):
    """Record, read, score, forget and purge the audience, in SQL."""

    async def record_audience(
        self, account_id: int, events: Sequence[AudienceEvent], *, now: datetime
    ) -> AudienceRecorded:
        """Store a batch of events in one transaction: each new one (by source id) as an
        interaction, its person as a member (created, or their handle and follow state
        updated); events already stored are skipped and counted."""
        check_events(events)
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert

        async def go(conn: AsyncConnection) -> AudienceRecorded:
            stored: set[str] = set()
            for part in chunks(sorted({e.source_id for e in events})):
                stored.update(
                    await conn.scalars(
                        sa.select(_interactions.c.source_id).where(
                            _interactions.c.account_id == account_id,
                            _interactions.c.source_id.in_(part),
                        )
                    )
                )
            fresh, duplicates = new_events(events, stored)
            if not fresh:
                return AudienceRecorded(stored=0, duplicates=duplicates, new_members=0)
            posts = await self._content_ids(conn, account_id, fresh)
            people = by_user(fresh)
            rows = await self._member_rows(conn, account_id, list(people))
            missing = [u for u in people if u not in rows]
            created = {u: merged_member(None, people[u]) for u in missing}
            if missing:
                await conn.execute(
                    insert(_members).on_conflict_do_nothing(
                        index_elements=[_members.c.account_id, _members.c.platform_user_id]
                    ),
                    [
                        {
                            "account_id": account_id,
                            "platform_user_id": user,
                            **created[user],
                            "updated_at": now,
                        }
                        for user in missing
                    ],
                )
                added = await self._member_rows(conn, account_id, missing)
                # a row another worker inserted first (its insert won): fold ours into it
                raced = {u: r for u, r in added.items() if _state(r) != created[u]}
                rows = {**rows, **added}
            else:
                raced = {}
            changed = [
                {
                    "member_id": rows[user]["id"],
                    **{f"new_{k}": v for k, v in merged_member(rows[user], found).items()},
                    "new_updated_at": now,
                }
                for user, found in people.items()
                if user not in created or user in raced
            ]
            if changed:
                await conn.execute(_UPDATE_MEMBER, changed)
            ids = {u: r["id"] for u, r in rows.items()}
            result = await conn.execute(
                insert(_interactions)
                .on_conflict_do_nothing(
                    index_elements=[_interactions.c.account_id, _interactions.c.source_id]
                )
                .returning(_interactions.c.id),
                [
                    {
                        "account_id": account_id,
                        "member_id": ids[e.user_id],
                        "content_id": e.content_id
                        if e.content_id is not None
                        else posts.get(e.platform_post_id or ""),
                        "platform_post_id": e.platform_post_id,
                        "kind": str(e.kind),
                        "at": e.at,
                        "source_id": e.source_id,
                    }
                    for e in fresh
                ],
            )
            written = len(result.all())
            return AudienceRecorded(
                stored=written,
                duplicates=duplicates + len(fresh) - written,
                new_members=len(missing) - len(raced),
            )

        return await self._run(go)

    async def _content_ids(
        self, conn: AsyncConnection, account_id: int, events: Sequence[AudienceEvent]
    ) -> dict[str, int]:
        """Our content id of each platform post id the events name without one."""
        wanted = sorted(
            {e.platform_post_id for e in events if e.content_id is None and e.platform_post_id}
        )
        found: dict[str, int] = {}
        for part in chunks(wanted):
            result = await conn.execute(
                sa.select(content.c.platform_post_id, content.c.id).where(
                    content.c.account_id == account_id, content.c.platform_post_id.in_(part)
                )
            )
            found.update({str(r.platform_post_id): int(r.id) for r in result})
        return found

    async def _member_rows(
        self, conn: AsyncConnection, account_id: int, users: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for part in chunks(sorted(users)):
            result = await conn.execute(
                sa.select(_members).where(
                    _members.c.account_id == account_id,
                    _members.c.platform_user_id.in_(part),
                )
            )
            found.update({r.platform_user_id: dict(r._mapping) for r in result})
        return found

    async def audience_accounts(self) -> set[int]:
        """The accounts with at least one member (one query: the daily upkeep asks it instead
        of reading every account's empty audience)."""
        query = sa.select(_members.c.account_id).distinct()

        async def go(conn: AsyncConnection) -> set[int]:
            return {int(a) for a in await conn.scalars(query)}

        return await self._once(go)

    async def audience_members(self, account_id: int) -> list[AudienceMember]:
        """Every member of the account's audience, by id."""
        query = sa.select(_members).where(_members.c.account_id == account_id)

        async def go(conn: AsyncConnection) -> list[AudienceMember]:
            rows = await conn.execute(query.order_by(_members.c.id))
            return [member_of(dict(r._mapping)) for r in rows]

        return await self._once(go)

    async def audience_interactions(
        self, account_id: int, *, since: datetime | None = None, member_id: int | None = None
    ) -> list[AudienceInteraction]:
        """The account's interactions (at or after ``since``; of one member), by time."""
        query = sa.select(_interactions).where(_interactions.c.account_id == account_id)
        if since is not None:
            query = query.where(_interactions.c.at >= since)
        if member_id is not None:
            query = query.where(_interactions.c.member_id == member_id)

        async def go(conn: AsyncConnection) -> list[AudienceInteraction]:
            rows = await conn.execute(query.order_by(_interactions.c.at, _interactions.c.id))
            return [interaction_of(dict(r._mapping)) for r in rows]

        return await self._once(go)

    async def set_audience_scores(
        self, account_id: int, scores: Sequence[MemberScore], *, now: datetime
    ) -> int:
        """Write each member's engagement score and tier; members of other accounts (or gone)
        are left alone. Returns the rows written."""
        ids = sorted({s.member_id for s in scores})

        async def go(conn: AsyncConnection) -> int:
            if not scores:
                return 0
            mine = 0
            for part in chunks(ids):  # (an executemany's rowcount is not reliable on asyncpg)
                mine += int(
                    await conn.scalar(
                        sa.select(sa.func.count())
                        .select_from(_members)
                        .where(_members.c.account_id == account_id, _members.c.id.in_(part))
                    )
                    or 0
                )
            await _write_scores(conn, self.backend, account_id, scores, now)
            return mine

        return await self._run(go)

    async def forget_person(self, handle: str, *, account_id: int | None = None) -> Forgotten:
        """Remove every row naming the person with this handle (any case, with or without a
        leading ``@``) or this platform user id, in every account or in ``account_id``'s: their
        member rows and all their interactions."""
        key = handle_key(handle)
        named = sa.or_(
            sa.func.lower(_members.c.handle) == key,
            _members.c.platform_user_id == handle.strip(),
        )
        if account_id is not None:
            named = sa.and_(named, _members.c.account_id == account_id)
        who = sa.select(_members.c.id).where(named)
        # a reply names them by its handle, or by the user id of a member row naming them
        their_ids = (
            sa.select(sa.literal(1))
            .select_from(_members)
            .where(
                named,
                _members.c.account_id == conversations.c.account_id,
                _members.c.platform_user_id == conversations.c.author_id,
            )
            .exists()
        )
        wrote = sa.or_(
            sa.func.lower(conversations.c.author_handle) == key,
            conversations.c.author_id == handle.strip(),
            their_ids,
        )
        if account_id is not None:
            wrote = sa.and_(wrote, conversations.c.account_id == account_id)

        async def go(conn: AsyncConnection) -> Forgotten:
            await conn.execute(
                audience_credits.delete().where(audience_credits.c.member_id.in_(who))
            )
            said = await conn.execute(conversations.delete().where(wrote))
            removed = await conn.execute(
                _interactions.delete().where(_interactions.c.member_id.in_(who))
            )
            members = await conn.execute(_members.delete().where(named))
            return Forgotten(
                members=int(members.rowcount),
                interactions=int(removed.rowcount),
                conversations=int(said.rowcount),
            )

        return await self._run(go)

    async def purge_audience(self, *, before: datetime) -> Purged:
        """Remove interactions older than ``before`` (the retention period's start), then the
        members left with none who do not follow now and whose last follow change (or first
        sighting) is older too. Current followers are kept."""
        left = (
            sa.select(sa.literal(1))
            .select_from(_interactions)
            .where(_interactions.c.member_id == _members.c.id)
            .exists()
        )
        following = sa.and_(_members.c.followed_at.is_not(None), _members.c.unfollowed_at.is_(None))
        last_seen = sa.func.coalesce(_members.c.follow_changed_at, _members.c.first_seen_at)

        async def go(conn: AsyncConnection) -> Purged:
            await conn.execute(
                audience_credits.delete().where(audience_credits.c.followed_at < before)
            )
            old = await conn.execute(_interactions.delete().where(_interactions.c.at < before))
            gone = await conn.execute(
                _members.delete().where(~following, last_seen < before, ~left)
            )
            return Purged(interactions=int(old.rowcount), members=int(gone.rowcount))

        return await self._run(go)


async def _write_scores(
    conn: AsyncConnection,
    backend: str,
    account_id: int,
    scores: Sequence[MemberScore],
    now: datetime,
) -> None:
    """One UPDATE per member, sent as a single executemany at the driver: a daily upkeep
    rewrites every member of an audience of hundreds of thousands, where SQLAlchemy's per-row
    parameter processing cost more than the database's work (the timestamp in each dialect's
    stored form: UTCDateTime's)."""
    if backend == "sqlite":  # UTCDateTime's SQLite form: naive UTC text
        at: Any = now.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        sql = (
            "UPDATE audience_members SET engagement_score = ?, tier = ?, updated_at = ? "
            "WHERE id = ? AND account_id = ?"
        )
    else:
        at = now.astimezone(UTC)
        sql = (
            "UPDATE audience_members SET engagement_score = $1, tier = $2, updated_at = $3 "
            "WHERE id = $4 AND account_id = $5"
        )
    rows = [(float(s.score), str(s.tier), at, int(s.member_id), account_id) for s in scores]
    for part in chunks(rows, 20_000):
        await conn.exec_driver_sql(sql, list(part))
