"""The Store Protocol, split by concept: everything the cycles read and write.

Two implementations answer all of it: :class:`agent.store.sql.SqlStore` (SQLAlchemy Core over
SQLite or PostgreSQL, Supabase's included) and :class:`agent.store.memory.MemoryStore` (the
simulator's, in Python data structures); one contract suite (tests/integration/contract/, a file
per part) runs on both. Every method is one transaction; methods that change a post's state are
written so that they can be retried after a crash without doing the work twice (state checks in
the WHERE clause, unique keys on snapshot and attribution rows). A write that breaks a constraint
raises :class:`agent.errors.ConstraintViolation`; no error of SQLAlchemy's leaves the store.

:class:`Store` is the union of the parts; code that needs one part only can type against it:

- :class:`AccountStore`: the configured accounts;
- :class:`ContentStore`: content, the exactly-once publish protocol, the approval queue and the
  queue of planned posts a person lists, cancels and moves;
- :class:`SnapshotStore`: due performance snapshots, claims on them, the follower series;
- :class:`LearningStore`: attribution and learning;
- :class:`ReportStore`: health rows and the reports read from the tables;
- :class:`LeaseStore`: named leases between workers and the kill switch;
- :class:`SuspensionStore`: accounts the circuit breaker suspended (agent/breaker.py);
- :class:`SpendStore`: what each account's platform billed per month (agent/budget.py);
- :class:`InsightStore`: insights and recommendations (agent/insights.py) and the health rows
  they are computed from;
- :class:`AudienceStore`: who follows and engages (docs/audience.md);
- :class:`ConversationStore`: replies and mentions read, and where each audience source is read
  from next (docs/conversations.md);
- :class:`ExperimentStore`: planned experiments, their variants, the posts assigned to them and
  promotions of their winners (agent/experiments.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from agent.audience_models import (
    AudienceEvent,
    AudienceInteraction,
    AudienceMember,
    AudienceRecorded,
    Forgotten,
    MemberScore,
    Purged,
)
from agent.conversation_models import (
    Conversation,
    ConversationsRecorded,
    ReadCursor,
    StoredConversation,
)
from agent.models import (
    AccountInfo,
    AccountReading,
    AccountSnapshot,
    ArmStat,
    Assignment,
    Attribution,
    DueSnapshot,
    Experiment,
    ExperimentStatus,
    LearnItem,
    MonthSpend,
    NewAccount,
    NewContent,
    NewExperiment,
    NewInsight,
    Observation,
    PartReading,
    Post,
    PostCounts,
    PostMetrics,
    PostStatus,
    QueueState,
    StoredInsight,
    Suspension,
    ThreadPart,
)
from learning.touch import Credit


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotReading:
    """One performance snapshot as a poll took it: what ``record_snapshots`` writes (the
    arguments of ``record_snapshot``, one reading of a batch)."""

    snapshot_id: int
    metrics: PostMetrics | None  # None: the platform did not return the post (see ``error``)
    taken_at: datetime
    hours_since_post: float
    followers_at: int | None
    error: str | None = None


class AccountStore(Protocol):
    """One row per configured account."""

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int: ...
    async def ensure_accounts(
        self, wanted: Sequence[NewAccount], *, now: datetime
    ) -> dict[str, int]:
        """``ensure_account`` for every account at once (name -> id): the missing ones are
        inserted in the order given, so a new database numbers them as one call each would;
        an account another worker registers at the same time keeps that worker's row."""
        ...

    async def account_names(self) -> dict[int, str]: ...


class ContentStore(Protocol):
    """Planned posts, the exactly-once publish protocol (docs/architecture.md) and the approval
    queue of approve mode."""

    async def add_content(self, new: NewContent, *, now: datetime) -> Post: ...
    async def get_post(self, content_id: int) -> Post | None: ...
    async def latest_scheduled(self, account_id: int) -> datetime | None: ...
    async def latest_slot(self, account_id: int) -> tuple[datetime, datetime] | None:
        """The account's latest scheduled post: its time and the cadence's time it was moved
        from (``generation_metadata["cadence_at"]``; its own time when absent): where the next
        post's spacing counts from, so that moving posts to better hours does not drift the
        cadence (None: no scheduled post)."""
        ...

    async def count_scheduled(self, account_id: int, start: datetime, end: datetime) -> int: ...
    async def pending_count(self, account_id: int) -> int: ...
    async def queued_accounts(self) -> set[int]:
        """The accounts with a post queued (``planned``) or a draft waiting: one query for
        every account, so an idle plan cycle does not ask per account."""
        ...

    async def queue_state(self, account_id: int) -> QueueState:
        """Whether the account has a post planned or a draft waiting, and whether it has no
        content row at all: one query (the planner asks under its lease, before and after
        writing, when other workers share the store)."""
        ...

    async def accounts_without_content(self) -> set[int]:
        """The accounts with no content row at all (new accounts: nothing scheduled, no
        history, no recent text): one query, so the first plan of 10,000 new accounts does not
        ask each three questions whose answer is "nothing"."""
        ...

    async def due_posts(self, now: datetime, limit: int = 50) -> list[Post]: ...
    async def begin_publish(
        self, content_id: int, *, now: datetime, due_by: datetime | None = None
    ) -> bool: ...
    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool: ...
    async def fail_publish(
        self, content_id: int, *, error: str, now: datetime, status: PostStatus = ...
    ) -> None: ...
    async def reschedule(
        self,
        content_id: int,
        *,
        scheduled_for: datetime,
        error: str,
        now: datetime,
        sent: bool = True,
    ) -> None: ...
    async def in_flight(self) -> list[Post]: ...
    async def recent_texts(self, account_id: int, limit: int) -> list[str]: ...

    # approval queue (approve mode)
    async def drafts(self, account_id: int | None = None) -> list[Post]: ...
    async def approve_draft(
        self, content_id: int, *, now: datetime, scheduled_for: datetime | None = None
    ) -> bool: ...
    async def reject_draft(self, content_id: int, *, reason: str, now: datetime) -> bool: ...
    async def edit_draft(
        self, content_id: int, *, text: str, text_hash: str, now: datetime
    ) -> bool: ...
    async def expire_drafts(self, older_than: datetime, now: datetime) -> int: ...

    # the queue (`growthloop posts`, agent/posts.py): conditional updates, False when the post
    # is not (or no longer) in a state they apply to
    async def list_posts(
        self,
        *,
        account_id: int | None = None,
        statuses: Sequence[PostStatus] = (),
        newest_first: bool = False,
        limit: int = 50,
    ) -> list[Post]: ...
    async def cancel_post(self, content_id: int, *, reason: str, now: datetime) -> bool: ...
    async def move_post(
        self, content_id: int, *, scheduled_for: datetime, now: datetime
    ) -> bool: ...
    async def llm_spend(self, start: datetime, end: datetime) -> dict[int, float]:
        """Per account, the generators' ``cost_usd`` of the content rows created in [start,
        end) (accounts that spent nothing are left out): every account's spend in one read,
        for the LLM budget."""
        ...

    async def next_post_after(self, after: datetime) -> datetime | None:
        """The soonest time a ``planned`` post is scheduled for strictly after ``after`` (one
        indexed query): when the daemon wakes its publish cycle next. A post held past its time
        (its account suspended, publishing paused) is not returned, so it never hides the
        next one."""
        ...


class SnapshotStore(Protocol):
    """The performance snapshots a publish makes due, claims on them so that several workers
    never poll the same one (see agent/store/claims.py), and the account (follower) series."""

    async def due_snapshots(self, now: datetime, limit: int = 500) -> list[DueSnapshot]: ...
    async def record_snapshot(
        self,
        snapshot_id: int,
        metrics: PostMetrics | None,
        *,
        taken_at: datetime,
        hours_since_post: float,
        followers_at: int | None,
        error: str | None = None,
    ) -> None: ...
    async def record_snapshots(self, readings: Sequence[SnapshotReading]) -> None:
        """Every reading of one poll in one transaction (one statement per batch, not one
        transaction per snapshot), each as ``record_snapshot`` writes it: a snapshot already
        taken, or unknown, is left as it is."""
        ...

    async def claim_snapshots(
        self, now: datetime, *, worker: str, lease: timedelta, limit: int = 500
    ) -> list[DueSnapshot]: ...
    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None: ...
    async def add_account_snapshots(self, readings: Sequence[AccountReading]) -> None:
        """Each reading as ``add_account_snapshot`` writes it, all in one statement (a followers
        cycle's readings: one round trip, not one transaction per account)."""
        ...

    async def last_account_snapshot(self, account_id: int) -> AccountSnapshot | None: ...
    async def last_account_snapshots(
        self, account_ids: Collection[int] | None = None
    ) -> dict[int, AccountSnapshot]:
        """Every account's ``last_account_snapshot`` at once, or only ``account_ids``' (accounts
        with none are absent)."""
        ...

    async def account_series(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[AccountSnapshot]: ...


class LearningStore(Protocol):
    """Follower attribution and learning: which posts are ready, what was learned, and one
    learning step written at once."""

    async def posts_to_attribute(
        self, *, closed_before: datetime, method: str, window_hours: float, limit: int = 200
    ) -> list[Post]: ...
    async def posted_between(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[tuple[Post, PostCounts]]: ...
    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None: ...
    async def posts_to_learn(
        self, *, method: str, need_attribution: bool, limit: int = 200
    ) -> list[LearnItem]: ...
    async def arm_stats(self, account_id: int) -> list[ArmStat]: ...
    async def learning_history(
        self, account_id: int, *, method: str, since: datetime | None = None
    ) -> list[Observation]: ...
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
    ) -> int: ...


class ReportStore(Protocol):
    """The hourly health rows and what the reports (`growthloop health`, /healthz) read."""

    async def health_inputs(
        self, account_id: int, start: datetime, end: datetime
    ) -> dict[str, Any]: ...
    async def write_health(self, row: dict[str, Any]) -> None: ...
    async def last_health_hour(self) -> datetime | None: ...
    async def latest_health(self, limit: int = 24) -> list[dict[str, Any]]: ...
    async def pending_work(self, now: datetime) -> dict[str, Any]: ...
    async def next_due(self) -> tuple[datetime | None, datetime | None]: ...
    async def counts(self) -> dict[str, int]: ...


class LeaseStore(Protocol):
    """Coordination between workers: named leases with expiry (see agent/store/claims.py) and
    the kill switch every worker reads at the start of a publish cycle."""

    async def acquire_lease(
        self, name: str, *, worker: str, now: datetime, ttl: timedelta
    ) -> bool: ...
    async def release_lease(self, name: str, *, worker: str) -> None: ...
    async def acquire_leases(
        self, names: Collection[str], *, worker: str, now: datetime, ttl: timedelta
    ) -> set[str]:
        """``acquire_lease`` for each name, in one statement: the names now held by ``worker``."""
        ...

    async def release_leases(self, names: Collection[str], *, worker: str) -> None:
        """``release_lease`` for each name, in one statement."""
        ...

    async def set_paused(self, paused: bool, *, reason: str, by: str, now: datetime) -> None: ...
    async def paused(self) -> tuple[bool, str | None]: ...


class SuspensionStore(Protocol):
    """Accounts the circuit breaker suspended, seen by every worker and the CLI (one row per
    account). ``suspend_account`` returns True when it suspended the account now and False when
    a suspension was already in force (so one worker of several logs and alerts); a suspension
    whose cool-down has passed is replaced. ``suspensions(now=...)`` gives only those in force
    at ``now``; without ``now``, every stored row."""

    async def suspend_account(
        self,
        *,
        account_id: int,
        reason: str,
        error_kind: str,
        detail: str,
        fingerprint: str | None,
        now: datetime,
        until: datetime | None = None,
    ) -> bool: ...
    async def lift_suspension(self, account_id: int) -> bool: ...
    async def suspensions(self, *, now: datetime | None = None) -> list[Suspension]: ...


class SpendStore(Protocol):
    """What each account's platform billed per calendar month (UTC) and the posts published:
    the monthly platform budget's ledger, added to by every worker as it spends."""

    async def add_platform_spend(
        self, account_id: int, *, usd: float, posts: int = 0, at: datetime
    ) -> None: ...
    async def platform_spend(self, account_id: int, *, at: datetime) -> MonthSpend: ...
    async def platform_costs(self, *, at: datetime) -> list[MonthSpend]:
        """Every account with spend or posts booked in the month of ``at``, by account name,
        with its name and platform (``growthloop health``, ``/metrics``)."""
        ...


class InsightStore(Protocol):
    """Insights and recommendations (learning/insights.py), one row per stable key, and the
    hourly health rows of one account they are read from.

    ``sync_insights`` writes one scope's set at once (an account's, or with ``account_id`` None
    the insights about several accounts): new keys inserted, found ones updated in place,
    missing ones resolved (agent/store/insight_rows.py); it returns the rows inserted or
    changed. ``insights`` lists them most severe first, the open ones only unless
    ``include_closed``; ``acknowledge_insight`` is False for an unknown id."""

    async def sync_insights(
        self, account_id: int | None, found: Sequence[NewInsight], *, now: datetime
    ) -> int: ...
    async def insights(
        self, *, account_id: int | None = None, include_closed: bool = False
    ) -> list[StoredInsight]: ...
    async def acknowledge_insight(self, insight_id: int, *, now: datetime) -> bool: ...
    async def health_hours(
        self, account_id: int, start: datetime, end: datetime
    ) -> list[dict[str, Any]]: ...


class AudienceStore(Protocol):
    """The audience (docs/audience.md): members and their interactions, recorded in batches of
    the events an adapter read (idempotent by source id), scored daily, forgotten on request and
    purged past the retention period. Public identifiers only."""

    async def record_audience(
        self, account_id: int, events: Sequence[AudienceEvent], *, now: datetime
    ) -> AudienceRecorded:
        """Store each event not stored yet (by the account and its ``source_id``) as an
        interaction, in one transaction, creating or updating its person's member row (handle,
        first seen, follow state: see agent/store/audience_rows.py). An event naming a post by
        its platform id gets our content id when the account has that post."""
        ...

    async def audience_accounts(self) -> set[int]:
        """The accounts with at least one member."""
        ...

    async def audience_members(self, account_id: int) -> list[AudienceMember]: ...
    async def audience_interactions(
        self, account_id: int, *, since: datetime | None = None, member_id: int | None = None
    ) -> list[AudienceInteraction]:
        """The account's interactions by time (``at >= since``; of one member)."""
        ...

    async def set_audience_scores(
        self, account_id: int, scores: Sequence[MemberScore], *, now: datetime
    ) -> int:
        """Write scores and tiers of the account's members; the number of members written."""
        ...

    async def forget_person(self, handle: str, *, account_id: int | None = None) -> Forgotten:
        """Remove every row naming the person (by handle, any case, ``@`` optional, or by
        platform user id), in every account or one: members, interactions and the replies and
        mentions they wrote (``conversations``)."""
        ...

    async def purge_audience(self, *, before: datetime) -> Purged:
        """Remove interactions older than ``before``, then members left with none who do not
        follow now and were last seen (follow change or first sighting) before it."""
        ...

    async def replace_audience_credits(
        self, account_id: int, credits: Sequence[Credit], *, since: datetime
    ) -> int:
        """In one transaction, the account's multi-touch credits of follows at or after
        ``since`` become ``credits`` (learning/touch.py; each of a follow at or after
        ``since``); the rows stored. Forgetting a person removes theirs, the purge those of
        follows before its cut-off."""
        ...

    async def audience_credits(self, account_id: int, *, model: str | None = None) -> list[Credit]:
        """The account's stored credits (of one model), by follow time."""
        ...

    async def audience_member_ids(self, account_id: int) -> list[int]:
        """The ids of the account's members, ascending."""
        ...

    async def audience_activity(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[tuple[int, str, float]]:
        """The account's interactions (at or after ``since``) as ``(member id, kind, seconds
        since the epoch)``, by time: the daily scoring's read, lean enough for a year of a
        large audience."""
        ...


class ConversationStore(Protocol):
    """Replies to the account's posts and mentions of it (docs/conversations.md), each stored
    once by its platform id; and each audience source's read cursor, written after the page it
    follows is stored (agent/cycles/audience.py)."""

    async def record_conversations(
        self, account_id: int, items: Sequence[Conversation], *, now: datetime
    ) -> ConversationsRecorded:
        """Store each item not stored yet (by the account and its ``platform_post_id``), in one
        transaction; ``content_id`` is set when ``parent_post_id`` is one of our posts."""
        ...

    async def conversations(
        self, account_id: int, *, since: datetime | None = None
    ) -> list[StoredConversation]:
        """The account's replies and mentions (``at >= since``), by time."""
        ...

    async def read_cursor(self, account_id: int, source: str) -> ReadCursor | None:
        """Where ``source`` is read from next and when that was written (None: never)."""
        ...

    async def set_read_cursor(
        self, account_id: int, source: str, cursor: str | None, *, now: datetime
    ) -> None: ...


class ExperimentStore(Protocol):
    """Planned experiments (agent/experiments.py). ``create_experiment`` stores a draft with its
    variants (two or more, distinct names); ``set_experiment_status`` is compare-and-set (False
    unless the status was one of ``expected``); ``assign_variant`` records a post's variant
    before it is written (a ``seq`` taken already is refused) and ``link_assignment`` the stored
    post; ``record_promotion`` marks the winner promoted (or the promotion undone) with its
    ``learning_updates`` row at once, False when the experiment cannot be (no winner, not
    ended, promoted already / not promoted); ``experiment_accounts`` are the accounts with a
    running experiment or a promotion in force."""

    async def create_experiment(self, new: NewExperiment, *, now: datetime) -> Experiment: ...
    async def experiments(
        self, *, account_id: int | None = None, statuses: Collection[ExperimentStatus] = ()
    ) -> list[Experiment]: ...
    async def get_experiment(self, experiment_id: int) -> Experiment | None: ...
    async def set_experiment_status(
        self,
        experiment_id: int,
        *,
        expected: Collection[ExperimentStatus],
        status: ExperimentStatus,
        now: datetime,
        winner: str | None = None,
        decision: str | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> bool: ...
    async def save_experiment_state(
        self, experiment_id: int, state: Mapping[str, Any], *, now: datetime
    ) -> None: ...
    async def stop_variant(
        self, experiment_id: int, name: str, *, reason: str, now: datetime
    ) -> bool: ...
    async def assign_variant(
        self, experiment_id: int, variant_id: int, *, seq: int, now: datetime
    ) -> Assignment: ...
    async def link_assignment(self, assignment_id: int, content_id: int) -> None: ...
    async def assignments(self, experiment_id: int) -> list[Assignment]: ...
    async def experiment_accounts(self) -> set[int]: ...
    async def record_promotion(
        self,
        experiment_id: int,
        *,
        undo: bool,
        evidence: Mapping[str, Any],
        updates_applied: Mapping[str, Any],
        now: datetime,
    ) -> bool: ...


class ThreadStore(Protocol):
    """Thread parts, each its own publish intent (docs/threads.md, agent/threads.py)."""

    async def thread_parts(self, content_id: int) -> list[ThreadPart]: ...
    async def begin_part(
        self,
        content_id: int,
        position: int,
        *,
        text_hash: str,
        idempotency_key: str,
        reply_to: str | None,
        now: datetime,
    ) -> bool: ...
    async def finish_part(
        self,
        content_id: int,
        position: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        now: datetime,
    ) -> bool: ...
    async def reset_part(
        self, content_id: int, position: int, *, error: str, now: datetime
    ) -> bool: ...
    async def thread_post_ids(self, content_ids: Sequence[int]) -> dict[int, list[str]]: ...
    async def record_part_readings(self, readings: Sequence[PartReading]) -> None: ...
    async def part_readings(self, snapshot_id: int) -> list[dict[str, Any]]: ...


class Store(
    AccountStore,
    ContentStore,
    SnapshotStore,
    LearningStore,
    ReportStore,
    LeaseStore,
    SuspensionStore,
    SpendStore,
    InsightStore,
    AudienceStore,
    ConversationStore,
    ExperimentStore,
    ThreadStore,
    Protocol,
):
    """Everything the cycles read and write: the union of the parts."""

    async def close(self) -> None: ...
