"""Value objects for growthloop's domain state.

They are frozen and converted at the store boundary (``from_row`` / ``as_row`` live in the store),
so the cycles pass typed values around, never rows or dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from adapters.base import AccountInfo, PlatformLimits, PostMetrics, PublishedPost

__all__ = [
    "DIMENSIONS",
    "AccountInfo",
    "ArmChoice",
    "Draft",
    "Plan",
    "PlatformLimits",
    "PostMetrics",
    "PostStatus",
    "PublishedPost",
]

DIMENSIONS: tuple[str, ...] = ("content_type", "formula", "hook")  # what the policy chooses
SINGLE, THREAD = "single", "thread"  # the arms of the format dimension (docs/threads.md)
FORMATS: tuple[str, ...] = (SINGLE, THREAD)
THREAD_JOIN = "\n\n"  # a thread's content.text: its parts joined (the gate and drafts read it)


def joined(parts: tuple[str, ...] | list[str]) -> str:
    """A thread's parts as one text (``content.text``)."""
    return THREAD_JOIN.join(parts)


class PostStatus(StrEnum):
    PLANNED = "planned"  # written and checked, waiting for its scheduled time
    PUBLISHING = "publishing"  # intent recorded; the platform call may or may not have happened
    POSTED = "posted"  # the platform has it; snapshot rows exist
    FAILED = "failed"  # definitely not on the platform
    REJECTED = "rejected"  # refused by the quality gate; never sent
    DRY_RUN = "dry_run"  # went through the whole pipeline but was only logged
    DRAFT = "draft"  # approve mode: written and checked, waiting for a person's approval
    CANCELLED = "cancelled"  # dropped from the queue by a person (`growthloop posts cancel`)


# what a person may still change in the queue (`growthloop posts`, agent/posts.py)
CANCELLABLE = (PostStatus.PLANNED, PostStatus.DRAFT)  # -> cancelled, never sent
MOVABLE = (PostStatus.PLANNED,)  # its scheduled_for may be moved


class Mode(StrEnum):
    LIVE = "live"
    DRY_RUN = "dry_run"
    APPROVE = "approve"  # drafts wait for `growthloop drafts approve ID`


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmChoice:
    """What the policy picked for one post."""

    content_type: str
    formula: str
    hook: str
    topic: str
    format: str = "single"  # single | thread (docs/threads.md)

    def arm(self, dimension: str) -> str:
        return str(getattr(self, dimension))


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A post the planner decided to make, before it is written."""

    account: str
    platform: str
    arms: ArmChoice
    scheduled_for: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """Everything a generator needs to write one post."""

    arms: ArmChoice
    persona: str
    niche: str
    max_chars: int
    descriptions: dict[str, str] = field(default_factory=dict)  # dimension -> arm description
    recent_texts: tuple[str, ...] = ()  # the account's latest posts, newest first
    prompt: str = "default"  # the prompt version (config: generator.prompts)
    instructions: str = ""  # its extra instructions ("" for the built-in prompt alone)
    max_parts: int = 4  # a thread (arms.format == "thread"): at most this many parts, at least 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """A written post and how it was written."""

    text: str
    generator: str
    parts: tuple[str, ...] = ()  # a thread's parts, in order (``text`` is them joined)
    model: str | None = None
    prompt_version: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAccount:
    """A configured account as the store registers it (``Store.ensure_accounts``)."""

    name: str
    platform: str
    handle: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueState:
    """An account's queue as the planner checks it under its lease (``Store.queue_state``)."""

    queued: bool  # a post planned or a draft waiting (it counts as the queued post)
    new: bool  # no content row at all: nothing scheduled, no history, no recent text


@dataclass(frozen=True, slots=True, kw_only=True)
class NewContent:
    """A content row about to be stored (planned, rejected or failed at generation)."""

    account_id: int
    status: PostStatus
    text: str
    text_hash: str
    generation_metadata: dict[str, Any]
    scheduled_for: datetime
    idempotency_key: str
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Post:
    """A row of ``content``."""

    id: int
    account_id: int
    status: PostStatus
    text: str
    text_hash: str
    generation_metadata: dict[str, Any]
    scheduled_for: datetime
    idempotency_key: str
    platform_post_id: str | None
    publish_started_at: datetime | None
    publish_attempts: int
    posted_at: datetime | None
    learned_at: datetime | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def arms(self) -> ArmChoice:
        meta = self.generation_metadata
        return ArmChoice(
            content_type=meta.get("content_type", ""),
            formula=meta.get("formula", ""),
            hook=meta.get("hook", ""),
            topic=meta.get("topic", ""),
            format=meta.get("format", SINGLE),
        )

    @property
    def parts(self) -> tuple[str, ...]:
        """A thread's part texts in order (docs/threads.md); () for a single post."""
        parts = self.generation_metadata.get("parts")
        if self.generation_metadata.get("format") != THREAD or not isinstance(parts, list):
            return ()
        return tuple(str(p) for p in parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class DueSnapshot:
    """A performance snapshot that is due (or overdue) and not yet taken."""

    id: int
    content_id: int
    account_id: int
    platform_post_id: str
    posted_at: datetime
    horizon_hours: float
    due_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """A taken performance snapshot."""

    content_id: int
    horizon_hours: float
    due_at: datetime
    taken_at: datetime
    hours_since_post: float
    likes: int
    reposts: int
    replies: int
    quotes: int
    bookmarks: int
    impressions: int
    engagement_rate: float | None
    followers_at: int | None

    @property
    def engagements(self) -> int:
        return self.likes + self.reposts + self.replies + self.quotes + self.bookmarks


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSnapshot:
    account_id: int
    taken_at: datetime
    followers: int
    following: int
    posts: int


@dataclass(frozen=True, slots=True)
class AccountReading:
    """One follower reading to write (``Store.add_account_snapshots``: a cycle's in one go)."""

    account_id: int
    info: AccountInfo
    taken_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    content_id: int
    attribution_method: str
    window_hours: float
    followers_before: float | None
    followers_after: float | None
    followers_gained: float
    confidence_score: float
    inputs: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmStat:
    """What the deciding policy believes about one arm of one dimension for one account, as of
    the latest learning step (:class:`learning.estimates.ArmEstimate`): the posts learned from,
    the mean reward per post with its 90% interval, the probability of being the dimension's best
    arm, and the policy (``model``)."""

    account_id: int
    dimension: str
    arm: str
    posts: int
    mean: float
    interval_low: float
    interval_high: float
    p_best: float
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnItem:
    """A post whose outcome is complete and not yet learned from."""

    post: Post
    attribution: Attribution | None
    final: MetricsSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class PostCounts:
    """A post's counters in its latest taken snapshot (``Store.posted_between``): what follower
    attribution uses to tell overlapping posts apart. All 0 (and ``hours_observed`` None) before
    the first snapshot; ``profile_clicks`` and ``impressions`` stay 0 where the platform does not
    report them."""

    engagements: int = 0  # likes + reposts + replies + quotes + bookmarks
    impressions: int = 0
    profile_clicks: int = 0
    hours_observed: float | None = None  # the snapshot's age of the post


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What the learner knows about one published post (``Store.learning_history``).

    ``engagements``, ``profile_clicks`` and ``hours_observed`` come from the latest snapshot
    taken (None/0 before the first); ``followers`` is the attributed follower gain by the
    requested method (None until attributed); ``learned`` is whether the learn cycle has
    finalised the post.
    """

    content_id: int
    posted_at: datetime
    arms: ArmChoice
    engagements: int
    hours_observed: float | None
    followers: float | None
    learned: bool
    profile_clicks: int = 0  # of the same latest snapshot (0 where the platform has none)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspension:
    """An account the circuit breaker (agent/breaker.py) stopped: no planning, no publishing.

    ``reason`` is ``auth`` (the platform refused the credentials or a permission: until they
    change or an operator resumes it) or ``failures`` (a streak of one kind of publish failure:
    until ``until``, the end of the cool-down, or a resume). ``fingerprint`` is a SHA-256 of the
    account's credential values when it was suspended, never the values.
    """

    account_id: int
    account: str
    platform: str
    reason: str
    error_kind: str
    detail: str
    fingerprint: str | None
    suspended_at: datetime
    until: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Still in force at ``now`` (a cool-down that has ended is not)."""
        return self.until is None or now < self.until


def month_key(at: datetime) -> str:
    """The calendar month (UTC) of ``at`` as ``YYYY-MM``: the period of the platform budget."""
    return at.astimezone(UTC).strftime("%Y-%m")


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthSpend:
    """What an account's platform billed in one calendar month (UTC), and the posts published."""

    month: str  # YYYY-MM
    spend_usd: float
    posts: int
    account: str = ""  # the account's name and platform, in Store.platform_costs
    platform: str = ""

    @property
    def cost_per_post_usd(self) -> float | None:
        """All-in: every call billed this month over the posts published (None: no post)."""
        return self.spend_usd / self.posts if self.posts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInsight:
    """An insight or recommendation as computed (learning/insights.py), for ``Store.sync_insights``:
    ``key`` is stable (account, kind, subject), so computing it again updates the same row."""

    key: str
    account_id: int | None  # None: about several accounts (platform differences)
    kind: str
    subject: str
    severity: str  # info | warning | critical
    recommendation: bool
    statement: str
    value: float
    low: float  # the 90% interval of value
    high: float
    probability: float
    unit: str
    evidence: dict[str, Any] = field(default_factory=dict)


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}  # most severe first


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredInsight(NewInsight):
    """An insight as stored: when first seen and last computed, whether it no longer holds
    (``resolved_at``) and whether a person acknowledged it; ``account`` is the account's name."""

    id: int
    account: str | None
    first_seen_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None

    @property
    def open(self) -> bool:
        """Still holds and not acknowledged (what ``growthloop insights`` lists by default)."""
        return self.resolved_at is None and self.acknowledged_at is None


def insight_order(insight: StoredInsight) -> tuple[int, str, str, str]:
    """Most severe first, then by account, kind and subject: the order every store lists in."""
    return (
        SEVERITY_RANK.get(insight.severity, len(SEVERITY_RANK)),
        insight.account or "",
        insight.kind,
        insight.subject,
    )


class ExperimentStatus(StrEnum):
    """draft -> running -> stopped (a person, or every variant stopped) | completed (a stop
    rule decided)."""

    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewVariant:
    """One variant of an experiment: ``value`` is what the post gets (an arm, a voice, an hour
    window such as ``09-11``)."""

    name: str
    value: str
    control: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant(NewVariant):
    id: int
    stopped_at: datetime | None = None  # a poor performer's: no more posts assigned to it
    stopped_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.stopped_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewExperiment:
    """A planned experiment as created (agent/experiments.py validates and sizes it)."""

    account_id: int
    name: str
    hypothesis: str
    dimension: str  # content_type | formula | hook | topic | hour | voice
    metric: str  # followers_per_post | engagement_rate | retained_followers
    mde: float  # the minimum detectable effect, relative to baseline_mean (0.2: +20 %)
    alpha: float
    power: float
    baseline_mean: float  # the metric per post the account had: what the plan was sized on
    baseline_sd: float
    max_posts_per_variant: int
    max_days: float
    block_size: int  # posts per balanced block (a multiple of the variants)
    seed: int
    stop_rules: dict[str, Any] = field(default_factory=dict)
    variants: tuple[NewVariant, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """A stored experiment with its variants, status and decision."""

    id: int
    plan: NewExperiment  # as created (its variants as created; ``variants`` as they are now)
    variants: tuple[Variant, ...]
    status: ExperimentStatus
    winner: str | None  # a variant's name
    decision: str | None  # the rule that ended it (or "manual")
    reason: str | None
    evidence: dict[str, Any]
    state: dict[str, Any]  # the sequential test's running p-values between evaluations
    created_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    promoted_at: datetime | None = None
    promotion_undone_at: datetime | None = None

    @property
    def account_id(self) -> int:
        return self.plan.account_id

    @property
    def dimension(self) -> str:
        return self.plan.dimension

    @property
    def promoted(self) -> bool:
        return self.promoted_at is not None and self.promotion_undone_at is None

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """A post's variant, recorded before the post is written (``content_id`` None until it is
    stored)."""

    id: int
    experiment_id: int
    variant_id: int
    seq: int
    content_id: int | None
    created_at: datetime


class PartStatus(StrEnum):
    """Where one part of a thread is (``thread_parts.status``)."""

    PLANNED = "planned"  # not on the platform (a reconciliation did not find it): send it
    PUBLISHING = "publishing"  # intent recorded; the platform call may or may not have happened
    POSTED = "posted"  # the platform has it


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPart:
    """A row of ``thread_parts``: one part of a thread once its publish has begun."""

    content_id: int
    position: int  # 0: the root
    status: PartStatus
    text_hash: str
    idempotency_key: str
    reply_to: str | None
    platform_post_id: str | None
    publish_started_at: datetime | None
    publish_attempts: int
    posted_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartReading:
    """One part's counters at a taken snapshot of its thread (``thread_part_snapshots``)."""

    snapshot_id: int
    position: int
    metrics: PostMetrics
