"""The deciding model's estimates in ``arm_statistics`` and the views over it.

``arm_statistics`` held per-arm Gamma-Poisson posteriors that a second learner updated beside the
one that decides. It now holds what the deciding policy believes after each learning step: per
(account, dimension, arm) the posts learned from, the mean reward per post, its 90% interval, the
probability of being the best arm (``p_best``) and the policy's name (``model``, renamed from
``posterior_family``). The old rows describe the other model, so they are deleted; the next
learning step writes the deciding model's.

The seed-named views (``content_type_performance``, ``formula_performance``,
``hook_performance``, and the new ``topic_performance`` and ``hour_performance``) and
``arm_leaderboard`` show these estimates, ranked and ordered by the model's mean. On PostgreSQL
the recreated views get the lock-down of migration 0005 again (``security_invoker``, nothing for
Supabase's ``anon`` and ``authenticated``).

Frozen: literal SQL only, nothing imported from growthloop.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEED_VIEWS = {
    "content_type_performance": "content_type",
    "formula_performance": "formula",
    "hook_performance": "hook",
}
NEW_VIEWS = {"topic_performance": "topic", "hour_performance": "hour"}
OLD_COLUMNS = (  # dropped: sums and Gamma parameters of the learner that did not decide
    ("reward_sum", "FLOAT"),
    ("reward_sq_sum", "FLOAT"),
    ("followers_gained", "FLOAT"),
    ("likes_sum", "INTEGER"),
    ("reposts_sum", "INTEGER"),
    ("replies_sum", "INTEGER"),
    ("impressions_sum", "INTEGER"),
    ("engagement_rate_sum", "FLOAT"),
    ("thompson_alpha", "FLOAT"),
    ("thompson_beta", "FLOAT"),
)
NEW_COLUMNS = ("mean", "interval_low", "interval_high", "p_best")


def _arm_view(view: str, dimension: str) -> str:
    return f"""
CREATE VIEW {view} AS
SELECT s.account_id, a.name AS account, s.arm AS {dimension},
       ROW_NUMBER() OVER (PARTITION BY s.account_id ORDER BY s.mean DESC, s.arm) AS rank,
       s.posts AS posts_count, s.mean, s.interval_low, s.interval_high, s.p_best,
       s.model, s.updated_at
FROM arm_statistics s JOIN accounts a ON a.id = s.account_id
WHERE s.dimension = '{dimension}'
ORDER BY s.account_id, s.mean DESC, s.arm
"""


LEADERBOARD = """
CREATE VIEW arm_leaderboard AS
SELECT s.account_id, a.name AS account, s.dimension, s.arm,
       ROW_NUMBER() OVER (
           PARTITION BY s.account_id, s.dimension ORDER BY s.mean DESC, s.arm
       ) AS rank,
       s.posts, s.mean, s.interval_low, s.interval_high, s.p_best, s.model, s.updated_at
FROM arm_statistics s JOIN accounts a ON a.id = s.account_id
ORDER BY s.account_id, s.dimension, s.mean DESC, s.arm
"""

# the lock-down of migration 0005, for views created after it (PostgreSQL only)
LOCK_DOWN = """
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


def _lock_down(views: list[str]) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(LOCK_DOWN.format(views=", ".join(f"'{v}'" for v in views)))


def upgrade() -> None:
    op.execute("DROP VIEW arm_leaderboard")
    for view in SEED_VIEWS:
        op.execute(f"DROP VIEW {view}")
    op.execute("DELETE FROM arm_statistics")
    for column, _type in OLD_COLUMNS:
        op.execute(f"ALTER TABLE arm_statistics DROP COLUMN {column}")
    op.execute("ALTER TABLE arm_statistics RENAME COLUMN posterior_family TO model")
    for column in NEW_COLUMNS:
        op.execute(f"ALTER TABLE arm_statistics ADD COLUMN {column} FLOAT DEFAULT '0' NOT NULL")
    views = {**SEED_VIEWS, **NEW_VIEWS}
    for view, dimension in views.items():
        op.execute(_arm_view(view, dimension))
    op.execute(LEADERBOARD)
    _lock_down([*views, "arm_leaderboard"])


# the views as migrations 0001 and 0003 made them (downgrade)
OLD_ARM_VIEW = """
CREATE VIEW {view} AS
SELECT s.account_id, a.name AS account, s.arm AS {dimension}, s.posts AS posts_count,
       s.reward_sum, s.followers_gained AS total_followers_gained,
       CASE WHEN s.posts > 0 THEN s.followers_gained / s.posts END AS avg_followers_per_post,
       CASE WHEN s.posts > 0 THEN 1.0 * s.likes_sum / s.posts END AS avg_likes,
       CASE WHEN s.posts > 0 THEN 1.0 * s.reposts_sum / s.posts END AS avg_reposts,
       CASE WHEN s.posts > 0 THEN s.engagement_rate_sum / s.posts END AS avg_engagement_rate,
       s.thompson_alpha, s.thompson_beta,
       s.thompson_alpha / s.thompson_beta AS posterior_mean, s.updated_at
FROM arm_statistics s JOIN accounts a ON a.id = s.account_id
WHERE s.dimension = '{dimension}'
"""
# Wilson-Hilferty 95% interval of a Gamma(a, b): a/b * (1 - 1/(9a) -+ 1.959964/(3 sqrt(a)))^3
_K = "(1 - 1 / (9 * s.thompson_alpha))"
_H = "(1.959964 / (3 * sqrt(s.thompson_alpha)))"
_LOW, _HIGH = f"({_K} - {_H})", f"({_K} + {_H})"
_MEAN = "s.thompson_alpha / s.thompson_beta"
OLD_LEADERBOARD = f"""
CREATE VIEW arm_leaderboard AS
SELECT s.account_id, a.name AS account, s.dimension, s.arm,
       RANK() OVER (PARTITION BY s.account_id, s.dimension ORDER BY {_MEAN} DESC) AS rank,
       s.posts, s.reward_sum,
       CASE WHEN s.posts > 0 THEN s.reward_sum / s.posts END AS mean_reward,
       s.followers_gained, s.posterior_family,
       s.thompson_alpha AS posterior_shape, s.thompson_beta AS posterior_rate,
       {_MEAN} AS posterior_mean,
       sqrt(s.thompson_alpha) / s.thompson_beta AS posterior_sd,
       CASE WHEN {_LOW} > 0 THEN {_MEAN} * {_LOW} * {_LOW} * {_LOW} ELSE 0 END AS interval_low,
       CASE WHEN {_HIGH} > 0 THEN {_MEAN} * {_HIGH} * {_HIGH} * {_HIGH} END AS interval_high,
       s.updated_at
FROM arm_statistics s JOIN accounts a ON a.id = s.account_id
"""


def downgrade() -> None:
    op.execute("DROP VIEW arm_leaderboard")
    for view in [*SEED_VIEWS, *NEW_VIEWS]:
        op.execute(f"DROP VIEW {view}")
    op.execute("DELETE FROM arm_statistics")
    for column in NEW_COLUMNS:
        op.execute(f"ALTER TABLE arm_statistics DROP COLUMN {column}")
    op.execute("ALTER TABLE arm_statistics RENAME COLUMN model TO posterior_family")
    for column, sql_type in OLD_COLUMNS:
        default = "1" if column.startswith("thompson") else "0"
        op.execute(
            f"ALTER TABLE arm_statistics ADD COLUMN {column} {sql_type} DEFAULT '{default}' "
            "NOT NULL"
        )
    for view, dimension in SEED_VIEWS.items():
        op.execute(OLD_ARM_VIEW.format(view=view, dimension=dimension))
    op.execute(OLD_LEADERBOARD)
    _lock_down([*SEED_VIEWS, "arm_leaderboard"])
