"""The replies inbox (issue 21 item 2) and the audience reads' cursors (issue 19 item 2).

``conversations``: one row per reply to the account's posts or mention of the account that an
adapter read (public identifiers and public text only), unique per account by the platform's id
of the reply, so a reply read twice is stored once. ``content_id`` is our post it answers, when
it is ours. ``read_cursors``: per account and audience source (``notifications``, ``followers``,
``mentions`` ...), where the next read starts; written after the page it follows is stored, so a
crash re-reads one page at most (docs/conversations.md).

On PostgreSQL both tables get the lock-down of migration 0005 (row-level security without a
policy, nothing for Supabase's ``anon`` and ``authenticated``).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)

TABLES = ("conversations", "read_cursors")

LOCK_DOWN_TABLES = """
DO $lockdown$
DECLARE
    t text;
    role_name text;
BEGIN
    FOREACH t IN ARRAY ARRAY[{tables}] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        FOR role_name IN
            SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
        LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t, role_name);
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT ALL ON TABLE %I TO service_role', t);
        END IF;
    END LOOP;
END
$lockdown$
"""


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("platform_post_id", sa.String(128), nullable=False),
        sa.Column("parent_post_id", sa.String(128)),
        sa.Column("content_id", sa.Integer),
        sa.Column("author_id", sa.String(128), nullable=False),
        sa.Column("author_handle", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("read_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_conversations_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_conversations_content_id_content"
        ),
        sa.UniqueConstraint(
            "account_id", "platform_post_id", name="uq_conversations_account_id_platform_post_id"
        ),
    )
    op.create_index("ix_conversations_account_id_at", "conversations", ["account_id", "at"])
    op.create_index("ix_conversations_author_id", "conversations", ["author_id"])
    op.create_index("ix_conversations_author_handle", "conversations", ["author_handle"])
    op.create_index("ix_conversations_content_id", "conversations", ["content_id"])
    op.create_table(
        "read_cursors",
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "source", name="pk_read_cursors"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_read_cursors_account_id_accounts"
        ),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN_TABLES.format(tables=", ".join(f"'{t}'" for t in TABLES)))


def downgrade() -> None:
    op.drop_table("read_cursors")
    op.drop_table("conversations")
