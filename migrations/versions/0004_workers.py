"""Several workers on one database: snapshot claims and leases.

``performance_snapshots.claimed_by`` / ``claimed_until`` mark a due snapshot as being taken by one
worker (claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL); ``leases`` holds named
leases with expiry (planning and follower polling of one account, ...).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The column types of agent/store/schema.py as they were when this migration was written, frozen
# here (a migration never imports live code). Only their DDL matters to a migration: UTCDateTime
# is a timezone-aware DATETIME / TIMESTAMP WITH TIME ZONE.
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("acquired_at", UTCDateTime),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.add_column("performance_snapshots", sa.Column("claimed_by", sa.Text))
    op.add_column("performance_snapshots", sa.Column("claimed_until", UTCDateTime))


def downgrade() -> None:
    # plain ALTER TABLE (SQLite >= 3.35 drops columns in place): a batch table copy would
    # break the views of migration 0003 that read this table
    op.drop_column("performance_snapshots", "claimed_until")
    op.drop_column("performance_snapshots", "claimed_by")
    op.drop_table("leases")
