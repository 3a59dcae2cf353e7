"""The memory store's audience, as :mod:`agent.store.sql_audience` keeps it (the member arithmetic
is shared: :mod:`agent.store.audience_rows`). A part of :class:`agent.store.memory.MemoryStore`.

Rows live in ``_rows["audience_members"]`` and ``_rows["audience_interactions"]`` by id (so
``export`` copies them like every other table), with two indexes: members by (account, platform
user id) and stored source ids by account.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
    by_user,
    check_events,
    handle_key,
    interaction_of,
    member_of,
    merged_member,
    new_events,
)
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, refused, utc


class MemoryAudience(MemoryState):
    """Record, read, score, forget and purge the audience, in memory."""

    async def record_audience(
        self, account_id: int, events: Sequence[AudienceEvent], *, now: datetime
    ) -> AudienceRecorded:
        check_events(events)
        now = utc(now)
        for event in events:
            utc(event.at)
        if account_id not in self._accounts:
            raise refused(
                f"FOREIGN KEY constraint failed: audience_members.account_id = {account_id}"
            )
        members, sources = self._audience_members, self._audience_sources
        stored = sources.setdefault(account_id, {})
        fresh, duplicates = new_events(events, set(stored) & {e.source_id for e in events})
        if not fresh:
            return AudienceRecorded(stored=0, duplicates=duplicates, new_members=0)
        for e in fresh:
            if e.content_id is not None and e.content_id not in self._rows["content"]:
                raise refused(
                    f"FOREIGN KEY constraint failed: audience_interactions.content_id = "
                    f"{e.content_id}"
                )
        posts = {
            row["platform_post_id"]: row["id"]
            for row in (self._rows["content"][i] for i in self._accounts[account_id].content)
            if row["platform_post_id"] is not None
        }
        rows = self._rows["audience_members"]
        new_members = 0
        for user, found in by_user(fresh).items():
            member_id = members.get((account_id, user))
            held = rows.get(member_id) if member_id is not None else None
            state = merged_member(held, found)
            if held is None:
                row = TABLES["audience_members"].row(
                    {"account_id": account_id, "platform_user_id": user, **state, "updated_at": now}
                )
                members[(account_id, user)] = int(self._insert("audience_members", row)["id"])
                new_members += 1
            else:
                held.update(TABLES["audience_members"].row({**held, **state, "updated_at": now}))
        for e in fresh:
            row = TABLES["audience_interactions"].row(
                {
                    "account_id": account_id,
                    "member_id": members[(account_id, e.user_id)],
                    "content_id": e.content_id
                    if e.content_id is not None
                    else posts.get(e.platform_post_id),
                    "platform_post_id": e.platform_post_id,
                    "kind": str(e.kind),
                    "at": e.at,
                    "source_id": e.source_id,
                }
            )
            stored[e.source_id] = int(self._insert("audience_interactions", row)["id"])
        return AudienceRecorded(stored=len(fresh), duplicates=duplicates, new_members=new_members)

    async def audience_accounts(self) -> set[int]:
        return {account_id for account_id, _ in self._audience_members}

    async def audience_members(self, account_id: int) -> list[AudienceMember]:
        rows = self._rows["audience_members"]
        return [member_of(rows[i]) for i in sorted(rows) if rows[i]["account_id"] == account_id]

    async def audience_interactions(
        self, account_id: int, *, since: datetime | None = None, member_id: int | None = None
    ) -> list[AudienceInteraction]:
        start = utc(since) if since is not None else None
        found = [
            r
            for r in self._rows["audience_interactions"].values()
            if r["account_id"] == account_id
            and (start is None or r["at"] >= start)
            and (member_id is None or r["member_id"] == member_id)
        ]
        found.sort(key=lambda r: (r["at"], r["id"]))
        return [interaction_of(r) for r in found]

    async def set_audience_scores(
        self, account_id: int, scores: Sequence[MemberScore], *, now: datetime
    ) -> int:
        now = utc(now)
        rows = self._rows["audience_members"]
        written: set[int] = set()
        for s in scores:
            row = rows.get(s.member_id)
            if row is None or row["account_id"] != account_id:
                continue
            row.update(engagement_score=float(s.score), tier=str(s.tier), updated_at=now)
            written.add(s.member_id)
        return len(written)

    async def forget_person(self, handle: str, *, account_id: int | None = None) -> Forgotten:
        key, raw = handle_key(handle), handle.strip()
        rows = self._rows["audience_members"]
        gone = {
            i
            for i, r in rows.items()
            if (account_id is None or r["account_id"] == account_id)
            and ((r["handle"] or "").lower() == key or r["platform_user_id"] == raw)
        }
        their_ids = {(rows[i]["account_id"], rows[i]["platform_user_id"]) for i in gone}
        removed = self._drop_interactions(lambda r: r["member_id"] in gone)
        self._drop_credits(lambda r: r["member_id"] in gone)
        self._drop_members(gone)
        said = self._rows["conversations"]
        wrote = [
            i
            for i, r in said.items()
            if (account_id is None or r["account_id"] == account_id)
            and (
                (r["author_handle"] or "").lower() == key
                or r["author_id"] == raw
                or (r["account_id"], r["author_id"]) in their_ids
            )
        ]
        for i in wrote:
            del said[i]
        return Forgotten(members=len(gone), interactions=removed, conversations=len(wrote))

    async def purge_audience(self, *, before: datetime) -> Purged:
        before = utc(before)
        self._drop_credits(lambda r: r["followed_at"] < before)
        removed = self._drop_interactions(lambda r: r["at"] < before)
        left = {r["member_id"] for r in self._rows["audience_interactions"].values()}
        gone = {
            i
            for i, r in self._rows["audience_members"].items()
            if not (r["followed_at"] is not None and r["unfollowed_at"] is None)
            and (r["follow_changed_at"] or r["first_seen_at"]) < before
            and i not in left
        }
        self._drop_members(gone)
        return Purged(interactions=removed, members=len(gone))

    def _drop_interactions(self, doomed: Any) -> int:
        sources = self._audience_sources
        rows = self._rows["audience_interactions"]
        ids = [i for i, r in rows.items() if doomed(r)]
        for i in ids:
            row = rows.pop(i)
            sources.get(row["account_id"], {}).pop(row["source_id"], None)
        return len(ids)

    def _drop_members(self, ids: set[int]) -> None:
        members = self._audience_members
        rows = self._rows["audience_members"]
        for i in ids:
            row = rows.pop(i)
            members.pop((row["account_id"], row["platform_user_id"]), None)
