"""Planned experiments (issue 20): ``experiments``, ``experiment_variants``,
``experiment_assignments`` and the view ``experiment_results``.

An experiment varies one thing on one account (an arm of a dimension, a voice, an hour window)
between its variants; each post the planner assigns to a variant gets an assignment row before it
is written (``content_id`` set once stored). ``experiment_results`` counts, per variant, the
posts assigned, published and learned from (the statistics are computed in Python, by
learning/experiments.py). On PostgreSQL the new tables get the lock-down of migration 0005
(row-level security without a policy, nothing for Supabase's ``anon`` and ``authenticated``) and
the view ``security_invoker`` (as migration 0007 does for its views).

Frozen: literal SQL and SQLAlchemy only, nothing imported from growthloop.

Revision ID: 0013
Revises: 0011 (rechained onto 0012 when the audience migration is merged)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# agent/store/schema.py's UTCDateTime as DDL: a timezone-aware DATETIME / TIMESTAMPTZ
UTCDateTime = sa.DateTime(timezone=True)
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TABLES = ("experiments", "experiment_variants", "experiment_assignments")
VIEWS = ("experiment_results",)

RESULTS = """
CREATE VIEW experiment_results AS
SELECT e.id AS experiment_id, e.account_id, e.name AS experiment, e.status, e.dimension,
       e.metric, v.id AS variant_id, v.name AS variant, v.value, v.control,
       v.stopped_at AS variant_stopped_at,
       COUNT(x.id) AS assigned,
       COUNT(c.posted_at) AS posted,
       COUNT(c.learned_at) AS learned
FROM experiments e
JOIN experiment_variants v ON v.experiment_id = e.id
LEFT JOIN experiment_assignments x ON x.variant_id = v.id
LEFT JOIN content c ON c.id = x.content_id
GROUP BY e.id, e.account_id, e.name, e.status, e.dimension, e.metric, v.id, v.name, v.value,
         v.control, v.stopped_at
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
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("hypothesis", sa.Text, nullable=False),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("mde", sa.Float, nullable=False),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("power", sa.Float, nullable=False),
        sa.Column("baseline_mean", sa.Float, nullable=False),
        sa.Column("baseline_sd", sa.Float, nullable=False),
        sa.Column("max_posts_per_variant", sa.Integer, nullable=False),
        sa.Column("max_days", sa.Float, nullable=False),
        sa.Column("block_size", sa.Integer, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("stop_rules", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("winner", sa.String(100)),
        sa.Column("decision", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("stopped_at", UTCDateTime),
        sa.Column("promoted_at", UTCDateTime),
        sa.Column("promotion_undone_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_experiments_account_id_accounts"
        ),
    )
    op.create_index("ix_experiments_account_id", "experiments", ["account_id"])
    op.create_table(
        "experiment_variants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("control", sa.Boolean, nullable=False),
        sa.Column("stopped_at", UTCDateTime),
        sa.Column("stopped_reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_variants"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_experiment_variants_experiment_id_experiments",
        ),
        sa.UniqueConstraint(
            "experiment_id", "name", name="uq_experiment_variants_experiment_id_name"
        ),
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("variant_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("content_id", sa.Integer),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_assignments"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_experiment_assignments_experiment_id_experiments",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["experiment_variants.id"],
            name="fk_experiment_assignments_variant_id_experiment_variants",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_experiment_assignments_content_id_content"
        ),
        sa.UniqueConstraint(
            "experiment_id", "seq", name="uq_experiment_assignments_experiment_id_seq"
        ),
    )
    op.create_index(
        "ix_experiment_assignments_content_id", "experiment_assignments", ["content_id"]
    )
    op.execute(RESULTS)
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN.format(tables=_quoted(TABLES), views=_quoted(VIEWS)))


def downgrade() -> None:
    op.execute("DROP VIEW experiment_results")
    op.drop_index("ix_experiment_assignments_content_id", table_name="experiment_assignments")
    op.drop_table("experiment_assignments")
    op.drop_table("experiment_variants")
    op.drop_index("ix_experiments_account_id", table_name="experiments")
    op.drop_table("experiments")
