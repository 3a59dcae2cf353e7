"""An index on content (account_id, status, scheduled_for): planning one account reads its
latest scheduled post and counts its posts in a day by status; without this index SQLite took
the (status, scheduled_for) index and scanned every account's queued and posted rows, so a plan
pass over N accounts cost N x N (10,000 accounts: minutes). Issue 16.

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME = "ix_content_account_id_status_scheduled_for"


def upgrade() -> None:
    op.create_index(NAME, "content", ["account_id", "status", "scheduled_for"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="content")
