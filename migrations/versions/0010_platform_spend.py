"""Platform spend per account and calendar month: the monthly platform budget's ledger.

One row per (account, month "YYYY-MM" in UTC): US dollars the platform billed (X pay-per-use) and
the posts published, added to by every worker as it spends (agent/budget.py), so the budget
survives restarts. On PostgreSQL the new table gets the lock-down of migration 0005 (row-level
security without a policy, nothing for Supabase's ``anon`` and ``authenticated``).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)

LOCK_DOWN = """
DO $lockdown$
DECLARE
    role_name text;
BEGIN
    ALTER TABLE platform_spend ENABLE ROW LEVEL SECURITY;
    FOR role_name IN
        SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE platform_spend FROM %I', role_name);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT ALL ON TABLE platform_spend TO service_role;
    END IF;
END
$lockdown$
"""


def upgrade() -> None:
    op.create_table(
        "platform_spend",
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("spend_usd", sa.Float, nullable=False),
        sa.Column("posts", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "month", name="pk_platform_spend"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_platform_spend_account_id_accounts",
        ),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN)


def downgrade() -> None:
    op.drop_table("platform_spend")
