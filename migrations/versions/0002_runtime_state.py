"""Runtime state: operator switches shared by every worker (the kill switch).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The column types of agent/store/schema.py as they were when this migration was written, frozen
# here (a migration never imports live code). Only their DDL matters to a migration: UTCDateTime
# is a timezone-aware DATETIME / TIMESTAMP WITH TIME ZONE, JSONType is JSON (JSONB on PostgreSQL).
UTCDateTime = sa.DateTime(timezone=True)
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "runtime_state",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_runtime_state"),
    )


def downgrade() -> None:
    op.drop_table("runtime_state")
