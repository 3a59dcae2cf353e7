"""Account suspensions: the circuit breaker's state, shared by every worker and the CLI.

One row per suspended account (agent/breaker.py): why (``reason``: ``auth`` or ``failures``, the
error's class in ``error_kind`` and its message in ``detail``), since when, until when (NULL:
until the credentials change or ``growthloop resume --account``) and a SHA-256 fingerprint of
the account's credential values at the time (never the values). On PostgreSQL the new table gets
the lock-down of migration 0005 (row-level security without a policy, nothing for Supabase's
``anon`` and ``authenticated``).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)

LOCK_DOWN = """
DO $lockdown$
DECLARE
    role_name text;
BEGIN
    ALTER TABLE account_suspensions ENABLE ROW LEVEL SECURITY;
    FOR role_name IN
        SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE account_suspensions FROM %I', role_name);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT ALL ON TABLE account_suspensions TO service_role;
    END IF;
END
$lockdown$
"""


def upgrade() -> None:
    op.create_table(
        "account_suspensions",
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("error_kind", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("suspended_at", UTCDateTime, nullable=False),
        sa.Column("until", UTCDateTime),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_suspensions"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_account_suspensions_account_id_accounts",
        ),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN)


def downgrade() -> None:
    op.drop_table("account_suspensions")
