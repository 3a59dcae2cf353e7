"""Insights: statements with numbers, an interval and a probability, computed from the deciding
model and the account's series (learning/insights.py, agent/insights.py).

One row per insight ``key`` (the account, the kind and its subject), updated in place each time
the insights are computed again; ``resolved_at`` is set when it no longer holds, and
``acknowledged_at`` when a person acknowledged it (``growthloop insights ack N``). On PostgreSQL
the new table gets the lock-down of migration 0005 (row-level security without a policy,
nothing for Supabase's ``anon`` and ``authenticated``).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

LOCK_DOWN = """
DO $lockdown$
DECLARE
    role_name text;
BEGIN
    ALTER TABLE insights ENABLE ROW LEVEL SECURITY;
    FOR role_name IN
        SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE insights FROM %I', role_name);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT ALL ON TABLE insights TO service_role;
    END IF;
END
$lockdown$
"""


def upgrade() -> None:
    op.create_table(
        "insights",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("account_id", sa.Integer),
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
        sa.PrimaryKeyConstraint("id", name="pk_insights"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_insights_account_id_accounts"
        ),
        sa.UniqueConstraint("key", name="uq_insights_key"),
    )
    op.create_index("ix_insights_account_id", "insights", ["account_id"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN)


def downgrade() -> None:
    op.drop_index("ix_insights_account_id", table_name="insights")
    op.drop_table("insights")
