"""The state under :class:`agent.store.memory.MemoryStore`: tables, indexes and shared helpers.

:class:`MemoryState` holds every table's rows (see :mod:`agent.store.memory_tables`) and the
indexes kept beside them, the row helpers every part of the store writes through (ids, foreign
keys, content rows whose status and times are indexed), and the accounts. The converters from
stored rows to the value objects handed out live here too, with the status values the parts of
the store filter on. :mod:`agent.store.memory_metrics`, :mod:`agent.store.memory_operations` and
:class:`~agent.store.memory.MemoryStore` build on it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from agent.models import (
    SINGLE,
    AccountSnapshot,
    ArmChoice,
    ArmStat,
    Attribution,
    NewAccount,
    Observation,
    Post,
    PostStatus,
)
from agent.store.memory_tables import TABLES, SortedKeys, TimeIndex, loads, refused
from agent.store.queries import SCHEDULED_STATUSES

SCHEDULED = frozenset(s.value for s in SCHEDULED_STATUSES)
PLANNED, PUBLISHING, POSTED, DRAFT = (
    PostStatus.PLANNED.value,
    PostStatus.PUBLISHING.value,
    PostStatus.POSTED.value,
    PostStatus.DRAFT.value,
)
SENDABLE = frozenset({PLANNED, PUBLISHING})  # fail_publish / reschedule apply to these
EXPIRED_DRAFT_ERROR = "expired unapproved"  # as agent.store.sql
# indexed per account
CONTENT_TIMES = ("updated_at", "publish_started_at", "created_at", "scheduled_for")


def post_of(row: dict[str, Any]) -> Post:
    """A :class:`Post` from a stored ``content`` row."""
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


def arms_of(meta: dict[str, Any]) -> ArmChoice:
    """What :attr:`Post.arms` gives, from the metadata alone."""
    return ArmChoice(
        content_type=meta.get("content_type", ""),
        formula=meta.get("formula", ""),
        hook=meta.get("hook", ""),
        topic=meta.get("topic", ""),
        format=meta.get("format", SINGLE),
    )


def engagement_of(snap: dict[str, Any]) -> int:
    """A ``performance_snapshots`` row's engagements (counts not read yet count as 0)."""
    return (
        (snap["likes"] or 0)
        + (snap["reposts"] or 0)
        + (snap["replies"] or 0)
        + (snap["quotes"] or 0)
        + (snap["bookmarks"] or 0)
    )


def attribution_of(row: dict[str, Any]) -> Attribution:
    """An :class:`Attribution` from a stored ``follower_attributions`` row."""
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


class AccountIndexes:
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
        self.times: dict[str, TimeIndex] = {name: TimeIndex() for name in CONTENT_TIMES}


class MemoryState:
    """The rows and indexes of a :class:`~agent.store.memory.MemoryStore`, and its row helpers."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in TABLES}
        self._last_id: Counter[str] = Counter()
        self._account_ids: dict[str, int] = {}
        self._accounts: dict[int, AccountIndexes] = {}
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
        # the audience (agent/store/memory_audience.py): (account, platform user id) -> member
        # id; account -> source id -> interaction id
        self._audience_members: dict[tuple[int, str], int] = {}
        self._audience_sources: dict[int, dict[str, int]] = {}

    async def close(self) -> None:
        return None

    # -- rows -------------------------------------------------------------------------------

    def _insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Store a normalised row, giving it the next id."""
        self._last_id[table] += 1
        row["id"] = self._last_id[table]
        self._rows[table][row["id"]] = row
        return row

    def _drop_credits(self, doomed: Callable[[dict[str, Any]], bool]) -> int:
        """Remove the multi-touch credits ``doomed`` picks (forget, purge, replace)."""
        rows = self._rows["audience_credits"]
        ids = [i for i, r in rows.items() if doomed(r)]
        for i in ids:
            del rows[i]
        return len(ids)

    def _account(self, account_id: int, table: str) -> AccountIndexes:
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
        for name in CONTENT_TIMES:
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
        self._accounts[account_id] = AccountIndexes()
        return account_id

    async def ensure_accounts(
        self, wanted: Sequence[NewAccount], *, now: datetime
    ) -> dict[str, int]:
        """``ensure_account`` for each, in the order given."""
        return {
            a.name: await self.ensure_account(
                name=a.name, platform=a.platform, handle=a.handle, now=now
            )
            for a in wanted
        }

    async def account_names(self) -> dict[int, str]:
        """Every stored account's id and name."""
        return {int(r["id"]): str(r["name"]) for r in self._rows["accounts"].values()}
