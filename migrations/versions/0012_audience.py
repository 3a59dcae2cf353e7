"""The audience (issue 19): members and their interactions, and four reporting views.

``audience_members``: one row per person and account (public identifiers only: the platform's
user id and public handle), with their first follow (and its week: the cohort), whether they
unfollowed, their engagement score and tier. ``audience_interactions``: one row per event an
adapter read (follow, unfollow, like, repost, reply, quote, bookmark, profile visit, link click),
unique per account by the platform's id for it, so a notification read twice is stored once.

Views (docs/audience.md): ``audience_tiers`` (members per tier per account),
``top_engaged_followers`` (current followers ranked by score), ``cohort_retention`` (per weekly
follow cohort, the share still following 1, 2, 4, 8 and 12 weeks after their follow, among those
followed at least that long ago), ``post_audience`` (interactions and follows per post).

On PostgreSQL the tables get the lock-down of migration 0005 (row-level security without a
policy, nothing for Supabase's ``anon`` and ``authenticated``), the views that of 0007
(``security_invoker``, nothing for those roles).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0012
Revises: 0010 (rechain to 0011 when 0011_insights is merged)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)

TABLES = ("audience_members", "audience_interactions")
VIEWS = ("audience_tiers", "top_engaged_followers", "cohort_retention", "post_audience")
RETENTION_WEEKS = (1, 2, 4, 8, 12)  # the retention checkpoints
# post_audience column -> interaction kind
KIND_COLUMNS = {
    "likes": "like",
    "reposts": "repost",
    "replies": "reply",
    "quotes": "quote",
    "bookmarks": "bookmark",
    "profile_visits": "profile_visit",
    "link_clicks": "link_click",
    "follows": "follow",
    "unfollows": "unfollow",
}

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


def _older_than(dialect: str, column: str, weeks: int) -> str:
    """``column`` lies at least ``weeks`` weeks before now."""
    if dialect == "sqlite":
        return f"julianday('now') - julianday({column}) >= {7 * weeks}"
    return f"{column} <= now() - interval '{weeks} weeks'"


def _lasted(dialect: str, weeks: int) -> str:
    """The member unfollowed at least ``weeks`` weeks after their follow."""
    if dialect == "sqlite":
        return f"julianday(unfollowed_at) - julianday(followed_at) >= {7 * weeks}"
    return f"unfollowed_at >= followed_at + interval '{weeks} weeks'"


def views(dialect: str) -> dict[str, str]:
    """The CREATE VIEW statements, by view name."""
    retained = ",\n    ".join(
        f"CAST(sum(CASE WHEN {_older_than(dialect, 'followed_at', n)} "
        f"AND (unfollowed_at IS NULL OR {_lasted(dialect, n)}) THEN 1 ELSE 0 END) "
        "AS DOUBLE PRECISION) / "
        f"NULLIF(sum(CASE WHEN {_older_than(dialect, 'followed_at', n)} THEN 1 ELSE 0 END), 0) "
        f"AS retained_{n}w"
        for n in RETENTION_WEEKS
    )
    kinds = ",\n    ".join(
        f"sum(CASE WHEN i.kind = '{kind}' THEN 1 ELSE 0 END) AS {column}"
        for column, kind in KIND_COLUMNS.items()
    )
    following = "followed_at IS NOT NULL AND unfollowed_at IS NULL"
    return {
        "audience_tiers": f"""
CREATE VIEW audience_tiers AS
SELECT account_id, tier, count(*) AS members,
    sum(CASE WHEN {following} THEN 1 ELSE 0 END) AS followers,
    avg(engagement_score) AS mean_score
FROM audience_members
GROUP BY account_id, tier
""",
        "top_engaged_followers": f"""
CREATE VIEW top_engaged_followers AS
SELECT account_id, id AS member_id, handle, platform_user_id, engagement_score, tier,
    followed_at, cohort,
    row_number() OVER (PARTITION BY account_id ORDER BY engagement_score DESC, id) AS rank
FROM audience_members
WHERE {following}
""",
        "cohort_retention": f"""
CREATE VIEW cohort_retention AS
SELECT account_id, cohort, count(*) AS followers,
    sum(CASE WHEN unfollowed_at IS NULL THEN 1 ELSE 0 END) AS still_following,
    {retained}
FROM audience_members
WHERE followed_at IS NOT NULL
GROUP BY account_id, cohort
""",
        "post_audience": f"""
CREATE VIEW post_audience AS
SELECT i.account_id, i.content_id, count(DISTINCT i.member_id) AS people,
    {kinds},
    sum(CASE WHEN i.kind = 'follow' AND m.unfollowed_at IS NULL THEN 1 ELSE 0 END)
        AS followers_kept
FROM audience_interactions i
JOIN audience_members m ON m.id = i.member_id
WHERE i.content_id IS NOT NULL
GROUP BY i.account_id, i.content_id
""",
    }


def upgrade() -> None:
    op.create_table(
        "audience_members",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("platform_user_id", sa.String(128), nullable=False),
        sa.Column("handle", sa.String(200)),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("followed_at", UTCDateTime),
        sa.Column("unfollowed_at", UTCDateTime),
        sa.Column("follow_changed_at", UTCDateTime),
        sa.Column("cohort", sa.String(10)),
        sa.Column("engagement_score", sa.Float, nullable=False, server_default="0"),
        sa.Column("tier", sa.String(16), nullable=False, server_default="inactive"),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audience_members"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_audience_members_account_id_accounts"
        ),
        sa.UniqueConstraint(
            "account_id",
            "platform_user_id",
            name="uq_audience_members_account_id_platform_user_id",
        ),
    )
    op.create_index("ix_audience_members_handle", "audience_members", ["handle"])
    op.create_table(
        "audience_interactions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("member_id", sa.Integer, nullable=False),
        sa.Column("content_id", sa.Integer),
        sa.Column("platform_post_id", sa.String(128)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audience_interactions"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_audience_interactions_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["audience_members.id"],
            name="fk_audience_interactions_member_id_audience_members",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_audience_interactions_content_id_content"
        ),
        sa.UniqueConstraint(
            "account_id", "source_id", name="uq_audience_interactions_account_id_source_id"
        ),
    )
    op.create_index(
        "ix_audience_interactions_member_id_at", "audience_interactions", ["member_id", "at"]
    )
    op.create_index(
        "ix_audience_interactions_account_id_at", "audience_interactions", ["account_id", "at"]
    )
    op.create_index("ix_audience_interactions_content_id", "audience_interactions", ["content_id"])
    dialect = op.get_context().dialect.name
    for statement in views(dialect).values():
        op.execute(statement)
    if dialect == "postgresql":
        op.execute(LOCK_DOWN_TABLES.format(tables=_names(TABLES)))
        op.execute(LOCK_DOWN_VIEWS.format(views=_names(VIEWS)))


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_table("audience_interactions")
    op.drop_table("audience_members")
