"""Threads (issue 21, docs/threads.md): ``thread_parts``, ``thread_part_snapshots`` and the view
``thread_performance``.

A thread is one content row published as a reply chain; each part is its own publish intent, a
row of ``thread_parts`` written ``publishing`` before the part is sent and ``posted`` with its
platform id after. ``thread_part_snapshots`` keeps each part's counters at every taken snapshot
of its thread (the snapshot row itself holds the sum over the parts); ``thread_performance``
shows both, the sum and the first part's. On PostgreSQL the new tables get the lock-down of
migration 0005 (row-level security without a policy, nothing for Supabase's ``anon`` and
``authenticated``) and the view ``security_invoker`` (as migrations 0007 and 0013 do).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)
TABLES = ("thread_parts", "thread_part_snapshots")
VIEWS = ("thread_performance",)

PERFORMANCE = """
CREATE VIEW thread_performance AS
SELECT s.content_id, s.horizon_hours, s.taken_at, COUNT(p.id) AS parts,
       s.likes, s.reposts, s.replies, s.quotes, s.impressions,
       MAX(CASE WHEN p.position = 0 THEN p.likes END) AS first_likes,
       MAX(CASE WHEN p.position = 0 THEN p.reposts END) AS first_reposts,
       MAX(CASE WHEN p.position = 0 THEN p.replies END) AS first_replies,
       MAX(CASE WHEN p.position = 0 THEN p.quotes END) AS first_quotes,
       MAX(CASE WHEN p.position = 0 THEN p.impressions END) AS first_impressions
FROM performance_snapshots s
JOIN thread_part_snapshots p ON p.snapshot_id = s.id
GROUP BY s.id, s.content_id, s.horizon_hours, s.taken_at, s.likes, s.reposts, s.replies,
         s.quotes, s.impressions
"""

LOCK_DOWN = """
DO $lockdown$
DECLARE
    t text;
    role_name text;
BEGIN
    FOREACH t IN ARRAY ARRAY[{tables}] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT ALL ON TABLE %I TO service_role', t);
        END IF;
    END LOOP;
    FOREACH t IN ARRAY ARRAY[{tables}, {views}] LOOP
        FOR role_name IN
            SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
        LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t, role_name);
        END LOOP;
    END LOOP;
    FOREACH t IN ARRAY ARRAY[{views}] LOOP
        IF current_setting('server_version_num')::int >= 150000 THEN
            EXECUTE format('ALTER VIEW %I SET (security_invoker = true)', t);
        END IF;
    END LOOP;
END
$lockdown$
"""


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def upgrade() -> None:
    op.create_table(
        "thread_parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(80), nullable=False),
        sa.Column("reply_to", sa.String(128)),
        sa.Column("platform_post_id", sa.String(128)),
        sa.Column("publish_started_at", UTCDateTime),
        sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("posted_at", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_thread_parts"),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_thread_parts_content_id_content"
        ),
        sa.UniqueConstraint("content_id", "position", name="uq_thread_parts_content_id_position"),
        sa.UniqueConstraint("idempotency_key", name="uq_thread_parts_idempotency_key"),
    )
    op.create_table(
        "thread_part_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("snapshot_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("platform_post_id", sa.String(128), nullable=False),
        sa.Column("likes", sa.Integer, nullable=False),
        sa.Column("reposts", sa.Integer, nullable=False),
        sa.Column("replies", sa.Integer, nullable=False),
        sa.Column("quotes", sa.Integer, nullable=False),
        sa.Column("bookmarks", sa.Integer, nullable=False),
        sa.Column("impressions", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_thread_part_snapshots"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["performance_snapshots.id"],
            name="fk_thread_part_snapshots_snapshot_id_performance_snapshots",
        ),
        sa.UniqueConstraint(
            "snapshot_id", "position", name="uq_thread_part_snapshots_snapshot_id_position"
        ),
    )
    op.execute(PERFORMANCE)
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN.format(tables=_quoted(TABLES), views=_quoted(VIEWS)))


def downgrade() -> None:
    op.execute("DROP VIEW thread_performance")
    op.drop_table("thread_part_snapshots")
    op.drop_table("thread_parts")
