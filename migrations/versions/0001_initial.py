"""Initial schema: accounts, content, snapshots, attributions, arm statistics, learning, health.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent.store.schema import JSONType, UTCDateTime, arm_view_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ARM_VIEWS = {
    "content_type_performance": "content_type",
    "formula_performance": "formula",
    "hook_performance": "hook",
}


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("handle", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "content",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("generation_metadata", JSONType, nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("platform_post_id", sa.String(128)),
        sa.Column("publish_started_at", UTCDateTime),
        sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("posted_at", UTCDateTime),
        sa.Column("learned_at", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_content"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_content_account_id_accounts"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_content_idempotency_key"),
    )
    op.create_index("ix_content_status_scheduled_for", "content", ["status", "scheduled_for"])
    op.create_index("ix_content_account_id_posted_at", "content", ["account_id", "posted_at"])
    op.create_index("ix_content_account_id_text_hash", "content", ["account_id", "text_hash"])
    op.create_table(
        "performance_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_performance_snapshots"),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_performance_snapshots_content_id_content"
        ),
        sa.UniqueConstraint(
            "content_id", "horizon_hours", name="uq_performance_snapshots_content_id_horizon_hours"
        ),
    )
    op.create_index(
        "ix_performance_snapshots_taken_at_due_at", "performance_snapshots", ["taken_at", "due_at"]
    )
    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("taken_at", UTCDateTime, nullable=False),
        sa.Column("followers", sa.Integer, nullable=False),
        sa.Column("following", sa.Integer, nullable=False),
        sa.Column("posts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_snapshots"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_account_snapshots_account_id_accounts"
        ),
    )
    op.create_index(
        "ix_account_snapshots_account_id_taken_at", "account_snapshots", ["account_id", "taken_at"]
    )
    op.create_table(
        "follower_attributions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, nullable=False),
        sa.Column("attribution_method", sa.String(32), nullable=False),
        sa.Column("window_hours", sa.Float, nullable=False),
        sa.Column("followers_before", sa.Float),
        sa.Column("followers_after", sa.Float),
        sa.Column("followers_gained", sa.Float, nullable=False),
        sa.Column("confidence_score", sa.Float, nullable=False),
        sa.Column("inputs", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_follower_attributions"),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_follower_attributions_content_id_content"
        ),
        sa.UniqueConstraint(
            "content_id",
            "attribution_method",
            "window_hours",
            name="uq_follower_attributions_once",
        ),
    )
    op.create_table(
        "arm_statistics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(100), nullable=False),
        sa.Column("posts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reward_sum", sa.Float, nullable=False, server_default="0"),
        sa.Column("reward_sq_sum", sa.Float, nullable=False, server_default="0"),
        sa.Column("followers_gained", sa.Float, nullable=False, server_default="0"),
        sa.Column("likes_sum", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reposts_sum", sa.Integer, nullable=False, server_default="0"),
        sa.Column("replies_sum", sa.Integer, nullable=False, server_default="0"),
        sa.Column("impressions_sum", sa.Integer, nullable=False, server_default="0"),
        sa.Column("engagement_rate_sum", sa.Float, nullable=False, server_default="0"),
        sa.Column("posterior_family", sa.String(32), nullable=False),
        sa.Column("thompson_alpha", sa.Float, nullable=False),
        sa.Column("thompson_beta", sa.Float, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_arm_statistics"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_arm_statistics_account_id_accounts"
        ),
        sa.UniqueConstraint(
            "account_id", "dimension", "arm", name="uq_arm_statistics_account_id_dimension_arm"
        ),
    )
    op.create_table(
        "learning_updates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("content_id", sa.Integer),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("update_type", sa.String(32), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("updates_applied", JSONType, nullable=False),
        sa.Column("insights_summary", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_learning_updates"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_learning_updates_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_learning_updates_content_id_content"
        ),
    )
    op.create_index(
        "ix_learning_updates_account_id_created_at",
        "learning_updates",
        ["account_id", "created_at"],
    )
    op.create_table(
        "system_health_metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hour_start", UTCDateTime, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_system_health_metrics"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_system_health_metrics_account_id_accounts"
        ),
        sa.UniqueConstraint(
            "hour_start", "account_id", name="uq_system_health_metrics_hour_start_account_id"
        ),
    )
    for view, dimension in ARM_VIEWS.items():
        op.execute(arm_view_sql(view, dimension))


def downgrade() -> None:
    for view in ARM_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in (
        "system_health_metrics",
        "learning_updates",
        "arm_statistics",
        "follower_attributions",
        "account_snapshots",
        "performance_snapshots",
        "content",
        "accounts",
    ):
        op.drop_table(table)
