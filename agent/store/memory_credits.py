"""The memory store's multi-touch credits, as :mod:`agent.store.sql_credits` keeps them. A part
of :class:`agent.store.memory.MemoryStore`; rows live in ``_rows["audience_credits"]``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, refused, utc
from learning.touch import Credit


class MemoryCredits(MemoryState):
    async def replace_audience_credits(
        self, account_id: int, credits: Sequence[Credit], *, since: datetime
    ) -> int:
        since = utc(since)
        early = [c for c in credits if utc(c.followed_at) < since]
        if early:
            raise ValueError(
                f"a credit of a follow at {early[0].followed_at.isoformat()} is before "
                f"since={since.isoformat()}"
            )
        self._account(account_id, "audience_credits")
        for c in credits:
            if c.member_id not in self._rows["audience_members"]:
                raise refused(
                    f"FOREIGN KEY constraint failed: audience_credits.member_id = {c.member_id}"
                )
            if c.content_id not in self._rows["content"]:
                raise refused(
                    f"FOREIGN KEY constraint failed: audience_credits.content_id = {c.content_id}"
                )
        keys = [(c.member_id, utc(c.followed_at), c.model, c.content_id) for c in credits]
        if len(set(keys)) != len(keys):
            raise refused(
                "UNIQUE constraint failed: audience_credits (member, follow, model, post)"
            )
        self._drop_credits(lambda r: r["account_id"] == account_id and r["followed_at"] >= since)
        for c in credits:
            self._insert(
                "audience_credits",
                TABLES["audience_credits"].row(
                    {
                        "account_id": account_id,
                        "member_id": c.member_id,
                        "content_id": c.content_id,
                        "model": c.model,
                        "followed_at": utc(c.followed_at),
                        "credit": float(c.credit),
                    }
                ),
            )
        return len(credits)

    async def audience_credits(self, account_id: int, *, model: str | None = None) -> list[Credit]:
        rows = sorted(
            (
                r
                for r in self._rows["audience_credits"].values()
                if r["account_id"] == account_id and (model is None or r["model"] == model)
            ),
            key=lambda r: (r["followed_at"], r["id"]),
        )
        return [
            Credit(
                model=r["model"],
                member_id=r["member_id"],
                followed_at=r["followed_at"],
                content_id=r["content_id"],
                credit=r["credit"],
            )
            for r in rows
        ]

    async def audience_activity(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[tuple[int, str, float]]:
        cut = utc(since) if since is not None else None
        rows = sorted(
            (
                r
                for r in self._rows["audience_interactions"].values()
                if r["account_id"] == account_id and (cut is None or r["at"] >= cut)
            ),
            key=lambda r: (r["at"], r["id"]),
        )
        return [(int(r["member_id"]), str(r["kind"]), r["at"].timestamp()) for r in rows]

    async def audience_member_ids(self, account_id: int) -> list[int]:
        return sorted(
            i for i, r in self._rows["audience_members"].items() if r["account_id"] == account_id
        )
