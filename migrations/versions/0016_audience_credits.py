"""Multi-touch attribution of follows (issue 19 item 5): ``audience_credits`` and the view
``post_touch_credit``.

``audience_credits``: per follow (a member and its time) and attribution model (``last_touch``,
``linear``, ``time_decay``, ``position_based``: learning/touch.py), the share of that follower
credited to each post the person touched before following. ``post_touch_credit``: per post and
model, the followers credited and the people who gave them.

On PostgreSQL the table gets the lock-down of migration 0005 (row-level security without a
policy, nothing for Supabase's ``anon`` and ``authenticated``), the view that of 0007
(``security_invoker``, nothing for those roles).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)

TABLES = ("audience_credits",)
VIEWS = ("post_touch_credit",)

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

LOCK_DOWN_VIEWS = """
DO $lockdown$
DECLARE
    v text;
    role_name text;
BEGIN
    FOREACH v IN ARRAY ARRAY[{views}] LOOP
        FOR role_name IN
            SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
        LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', v, role_name);
        END LOOP;
        IF current_setting('server_version_num')::int >= 150000 THEN
            EXECUTE format('ALTER VIEW %I SET (security_invoker = true)', v);
        END IF;
    END LOOP;
END
$lockdown$
"""


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


POST_TOUCH_CREDIT = """
CREATE VIEW post_touch_credit AS
SELECT account_id, content_id, model, sum(credit) AS followers,
    count(DISTINCT member_id) AS people
FROM audience_credits
GROUP BY account_id, content_id, model
"""


def upgrade() -> None:
    op.create_table(
        "audience_credits",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("member_id", sa.Integer, nullable=False),
        sa.Column("content_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(16), nullable=False),
        sa.Column("followed_at", UTCDateTime, nullable=False),
        sa.Column("credit", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audience_credits"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_audience_credits_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["audience_members.id"],
            name="fk_audience_credits_member_id_audience_members",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_audience_credits_content_id_content"
        ),
        sa.UniqueConstraint(
            "member_id",
            "followed_at",
            "model",
            "content_id",
            name="uq_audience_credits_member_id_followed_at_model_content_id",
        ),
    )
    op.create_index(
        "ix_audience_credits_account_id_followed_at",
        "audience_credits",
        ["account_id", "followed_at"],
    )
    op.create_index("ix_audience_credits_content_id", "audience_credits", ["content_id"])
    op.execute(POST_TOUCH_CREDIT)
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN_TABLES.format(tables=_names(TABLES)))
        op.execute(LOCK_DOWN_VIEWS.format(views=_names(VIEWS)))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS post_touch_credit")
    op.drop_table("audience_credits")
