"""The database schema, as SQLAlchemy Core tables.

This module is the code's expectation of the schema; ``migrations/`` creates it. A test applies
every migration to an empty SQLite and PostgreSQL database and compares the result with this
metadata, so drift fails CI instead of production.

All timestamps are stored in UTC (``UTCDateTime``); JSON columns are JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zone type)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: Any = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("handle", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

content = sa.Table(
    "content",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("generation_metadata", JSONType, nullable=False),
    sa.Column("scheduled_for", UTCDateTime, nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("platform_post_id", sa.String(128)),
    sa.Column("publish_started_at", UTCDateTime),
    sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("posted_at", UTCDateTime),
    sa.Column("learned_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "scheduled_for"),
    sa.Index(None, "account_id", "posted_at"),
    sa.Index(None, "account_id", "text_hash"),
    # one account's queue and day (planning): migration 0009
    sa.Index(None, "account_id", "status", "scheduled_for"),
)

performance_snapshots = sa.Table(
    "performance_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id"), nullable=False),
    sa.Column("horizon_hours", sa.Float, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("taken_at", UTCDateTime),
    sa.Column("hours_since_post", sa.Float),
    sa.Column("likes", sa.Integer),
    sa.Column("reposts", sa.Integer),
    sa.Column("replies", sa.Integer),
    sa.Column("quotes", sa.Integer),
    sa.Column("bookmarks", sa.Integer),
    sa.Column("impressions", sa.Integer),
    sa.Column("profile_clicks", sa.Integer),
    sa.Column("url_clicks", sa.Integer),
    sa.Column("engagement_rate", sa.Float),
    sa.Column("followers_at", sa.Integer),
    sa.Column("error", sa.Text),
    # which worker is taking the snapshot, until when (several workers: see agent/store/claims.py)
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_until", UTCDateTime),
    sa.UniqueConstraint("content_id", "horizon_hours"),
    sa.Index(None, "taken_at", "due_at"),
)

account_snapshots = sa.Table(
    "account_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=False),
    sa.Column("followers", sa.Integer, nullable=False),
    sa.Column("following", sa.Integer, nullable=False),
    sa.Column("posts", sa.Integer, nullable=False),
    sa.Index(None, "account_id", "taken_at"),
)

follower_attributions = sa.Table(
    "follower_attributions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id"), nullable=False),
    sa.Column("attribution_method", sa.String(32), nullable=False),
    sa.Column("window_hours", sa.Float, nullable=False),
    sa.Column("followers_before", sa.Float),
    sa.Column("followers_after", sa.Float),
    sa.Column("followers_gained", sa.Float, nullable=False),
    sa.Column("confidence_score", sa.Float, nullable=False),
    sa.Column("inputs", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "content_id", "attribution_method", "window_hours", name="uq_follower_attributions_once"
    ),
)

arm_statistics = sa.Table(
    "arm_statistics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("dimension", sa.String(32), nullable=False),
    sa.Column("arm", sa.String(100), nullable=False),
    # what the deciding policy believes after the latest learning step (learning.estimates):
    # posts learned from, mean reward per post, its 90% interval, the probability of being the
    # dimension's best arm, and the policy's name (migration 0007)
    sa.Column("posts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("model", sa.String(32), nullable=False),
    sa.Column("mean", sa.Float, nullable=False, server_default="0"),
    sa.Column("interval_low", sa.Float, nullable=False, server_default="0"),
    sa.Column("interval_high", sa.Float, nullable=False, server_default="0"),
    sa.Column("p_best", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "dimension", "arm"),
)

learning_updates = sa.Table(
    "learning_updates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("update_type", sa.String(32), nullable=False),
    sa.Column("component", sa.String(32), nullable=False),
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("updates_applied", JSONType, nullable=False),
    sa.Column("insights_summary", JSONType, nullable=False),
    sa.Index(None, "account_id", "created_at"),
)

system_health_metrics = sa.Table(
    "system_health_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hour_start", UTCDateTime, nullable=False),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("posts_attempted", sa.Integer, nullable=False),
    sa.Column("posts_succeeded", sa.Integer, nullable=False),
    sa.Column("posts_failed", sa.Integer, nullable=False),
    sa.Column("posts_rejected", sa.Integer, nullable=False),
    sa.Column("polls_due", sa.Integer, nullable=False),
    sa.Column("polls_done", sa.Integer, nullable=False),
    sa.Column("polls_late", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False),
    sa.Column("api_errors", sa.Integer, nullable=False),
    sa.Column("rate_limit_waits", sa.Integer, nullable=False),
    sa.Column("errors_by_kind", JSONType, nullable=False),
    sa.Column("engagement_rate", sa.Float),
    sa.Column("followers_total", sa.Integer),
    sa.Column("followers_gained", sa.Float, nullable=False),
    sa.Column("llm_spend_usd", sa.Float, nullable=False),
    sa.Column("platform_spend_usd", sa.Float, nullable=False),
    sa.Column("cost_per_follower_usd", sa.Float),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("hour_start", "account_id"),
)

# Operator switches that every worker reads from the database (one row per key), e.g. the kill
# switch: key "paused", value {"paused": bool, "reason": str}.
runtime_state = sa.Table(
    "runtime_state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", JSONType, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)

# Accounts the circuit breaker suspended (agent/breaker.py): no planning and no publishing for
# them until ``until`` passes (a cool-down; NULL: until the credentials change or an operator
# resumes it). ``fingerprint`` is a SHA-256 of the account's credential values at suspension,
# never the values: a start with other credentials lifts an authentication suspension.
account_suspensions = sa.Table(
    "account_suspensions",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("error_kind", sa.String(100), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("suspended_at", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime),
)

# What each account's platform billed per calendar month (UTC, "YYYY-MM"), and the posts it
# published that month: the monthly platform budget (agent/budget.py) survives restarts and is
# shared by every worker. Added to by each worker as it spends.
platform_spend = sa.Table(
    "platform_spend",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("spend_usd", sa.Float, nullable=False),
    sa.Column("posts", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The audience (issue 19, docs/audience.md): one row per person and account, public identifiers
# only (the platform's user id and the public handle, stored without a leading "@"). followed_at
# is the first follow (cohort: the Monday of its UTC week, YYYY-MM-DD), unfollowed_at is set
# while they do not follow, follow_changed_at is the latest follow/unfollow applied (an older
# event read late changes nothing). Score and tier: the daily upkeep's (agent/cycles/audience.py).
audience_members = sa.Table(
    "audience_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("platform_user_id", sa.String(128), nullable=False),
    sa.Column("handle", sa.String(200)),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("followed_at", UTCDateTime),
    sa.Column("unfollowed_at", UTCDateTime),
    sa.Column("follow_changed_at", UTCDateTime),
    sa.Column("cohort", sa.String(10)),
    sa.Column("engagement_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("tier", sa.String(16), nullable=False, server_default="inactive"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "platform_user_id"),
    sa.Index(None, "handle"),
)

# One row per event an adapter read (follow, unfollow, like, repost, reply, quote, bookmark,
# profile_visit, link_click); source_id is the platform's id for it, unique per account, so a
# notification read twice is stored once. content_id: our post, when the event names one.
audience_interactions = sa.Table(
    "audience_interactions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("audience_members.id"), nullable=False),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id")),
    sa.Column("platform_post_id", sa.String(128)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.UniqueConstraint("account_id", "source_id"),
    sa.Index(None, "member_id", "at"),
    sa.Index(None, "account_id", "at"),
    sa.Index(None, "content_id"),
)

# Multi-touch attribution of follows (learning/touch.py; migration 0016): per follow (member and
# time) and model, the share of the follower credited to each post the person touched before
# following; recomputed daily for recent follows (agent/audience.py update_credits).
audience_credits = sa.Table(
    "audience_credits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("audience_members.id"), nullable=False),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id"), nullable=False),
    sa.Column("model", sa.String(16), nullable=False),
    sa.Column("followed_at", UTCDateTime, nullable=False),
    sa.Column("credit", sa.Float, nullable=False),
    sa.UniqueConstraint("member_id", "followed_at", "model", "content_id"),
    sa.Index(None, "account_id", "followed_at"),
    sa.Index(None, "content_id"),
)

# Planned experiments (A/B tests, agent/experiments.py; migration 0013): what varies (an arm of
# a dimension, a voice, an hour window), the metric, the plan it was sized with (mde relative to
# the baseline, alpha, power, posts per variant from learning.experiments.sequential_sample_size,
# days), the stop rules, the status draft -> running -> stopped | completed, and the decision.
experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("hypothesis", sa.Text, nullable=False),
    sa.Column("dimension", sa.String(32), nullable=False),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("mde", sa.Float, nullable=False),
    sa.Column("alpha", sa.Float, nullable=False),
    sa.Column("power", sa.Float, nullable=False),
    sa.Column("baseline_mean", sa.Float, nullable=False),
    sa.Column("baseline_sd", sa.Float, nullable=False),
    sa.Column("max_posts_per_variant", sa.Integer, nullable=False),
    sa.Column("max_days", sa.Float, nullable=False),
    sa.Column("block_size", sa.Integer, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("stop_rules", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("winner", sa.String(100)),
    sa.Column("decision", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("state", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("stopped_at", UTCDateTime),
    sa.Column("promoted_at", UTCDateTime),
    sa.Column("promotion_undone_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

experiment_variants = sa.Table(
    "experiment_variants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("control", sa.Boolean, nullable=False),
    sa.Column("stopped_at", UTCDateTime),
    sa.Column("stopped_reason", sa.Text),
    sa.UniqueConstraint("experiment_id", "name"),
)

# Which variant each post of a running experiment was given, recorded before the post is
# written (``content_id`` is set once the post is stored; NULL while it is being written).
# ``seq``: the assignment's place in the experiment's sequence (balanced blocks of
# ``block_size``).
experiment_assignments = sa.Table(
    "experiment_assignments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("variant_id", sa.Integer, sa.ForeignKey("experiment_variants.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("experiment_id", "seq"),
)

# Insights and recommendations (agent/insights.py, migration 0011): one row per stable key
# (account, kind, subject), updated in place; resolved when it no longer holds.
insights = sa.Table(
    "insights",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("recommendation", sa.Boolean, nullable=False),
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("low", sa.Float, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("unit", sa.String(64), nullable=False),
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("acknowledged_at", UTCDateTime),
)

# Threads (issue 21, docs/threads.md). A thread is one content row (its arms, its status, its
# snapshots) whose parts are published as a reply chain, each part its own publish intent: a row
# here is written ``publishing`` (with the part's own idempotency key and the parent it replies
# to) before that part is sent, ``posted`` with its platform id once sent, and put back to
# ``planned`` when reconciliation finds it is not on the platform. Position 0 is the root.
thread_parts = sa.Table(
    "thread_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("reply_to", sa.String(128)),  # the parent part's platform id (none for the root)
    sa.Column("platform_post_id", sa.String(128)),
    sa.Column("publish_started_at", UTCDateTime),
    sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("posted_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("content_id", "position"),
)

# Each part's counters at each taken snapshot of its thread: the snapshot row itself holds the
# sum over the parts (what the learner reads), position 0 here is the first part's own.
thread_part_snapshots = sa.Table(
    "thread_part_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("performance_snapshots.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("platform_post_id", sa.String(128), nullable=False),
    sa.Column("likes", sa.Integer, nullable=False),
    sa.Column("reposts", sa.Integer, nullable=False),
    sa.Column("replies", sa.Integer, nullable=False),
    sa.Column("quotes", sa.Integer, nullable=False),
    sa.Column("bookmarks", sa.Integer, nullable=False),
    sa.Column("impressions", sa.Integer, nullable=False),
    sa.UniqueConstraint("snapshot_id", "position"),
)

# Named leases with expiry ("plan:<account_id>", "followers:<account_id>", ...): the work one
# worker does at a time when several share the database. A lease whose holder stopped renewing
# it (a dead worker) is taken over once expires_at has passed.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("acquired_at", UTCDateTime),
)

# the per-dimension views over arm_statistics (seed names; migration 0007 made them show the
# deciding model's estimates and added topic and hour)
ARM_VIEWS = {
    "content_type_performance": "content_type",
    "formula_performance": "formula",
    "hook_performance": "hook",
    "topic_performance": "topic",
    "hour_performance": "hour",
}

# The replies inbox (issue 21, migration 0015, docs/conversations.md): one row per reply to the
# account's posts or mention of it, unique per account by the platform's id of the reply (read
# twice, stored once); public identifiers and public text only. content_id: our post it answers.
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("platform_post_id", sa.String(128), nullable=False),
    sa.Column("parent_post_id", sa.String(128)),
    sa.Column("content_id", sa.Integer, sa.ForeignKey("content.id")),
    sa.Column("author_id", sa.String(128), nullable=False),
    sa.Column("author_handle", sa.String(200)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "platform_post_id"),
    sa.Index(None, "account_id", "at"),
    sa.Index(None, "author_id"),
    sa.Index(None, "author_handle"),
    sa.Index(None, "content_id"),
)

# Where each audience source of an account is read from next (migration 0015): written after the
# page before it is stored, so a crash re-reads one page at most (agent/cycles/audience.py).
read_cursors = sa.Table(
    "read_cursors",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The reporting views of migration 0003 (daily health, leaderboards, ...; docs/operations.md).
REPORT_VIEWS = (
    "daily_health",
    "arm_leaderboard",
    "post_performance",
    "attribution_summary",
    "pending_work",
)

# The audience views of migration 0012 (docs/audience.md).
AUDIENCE_VIEWS = (
    "audience_tiers",
    "top_engaged_followers",
    "cohort_retention",
    "post_audience",
    "post_touch_credit",  # migration 0016: followers credited per post and touch model
)

# The experiments' view (migration 0013): each variant's posts assigned, published and learned.
EXPERIMENT_VIEWS = ("experiment_results",)

# The threads' view (migration 0014): each thread snapshot's sum over parts and first part's.
THREAD_VIEWS = ("thread_performance",)
