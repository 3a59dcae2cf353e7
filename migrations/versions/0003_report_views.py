"""SQL views for health and learning queries: daily health, arm leaderboards, post performance,
attribution summary and pending work (documented in docs/operations.md).

The views are plain SQL over the tables (not part of ``agent.store.schema.metadata``); a few
expressions differ between SQLite and PostgreSQL (UTC day, JSON fields), chosen by dialect, so
``growthloop migrate --sql`` prints the PostgreSQL form.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The views this revision creates, in creation order (dropped in reverse).
VIEWS = (
    "daily_health",
    "arm_leaderboard",
    "post_performance",
    "attribution_summary",
    "pending_work",
)
HORIZONS = (1, 4, 24)  # the default polling horizons, in hours, shown side by side
METRICS = {  # post_performance column prefix -> performance_snapshots column
    "likes": "likes",
    "reposts": "reposts",
    "replies": "replies",
    "impressions": "impressions",
    "followers": "followers_at",
}
METHODS = ("time_window", "deconvolution")  # attribution methods, side by side
Z_95 = 1.959964  # standard normal quantile of 0.975: a two-sided 95% interval


class Sql:
    """The few expressions that differ between SQLite and PostgreSQL."""

    # (not a dataclass: Alembic loads this file without registering it in sys.modules)
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def day(self, column: str) -> str:
        """The UTC calendar day of a timestamp (SQLite: 'YYYY-MM-DD' text; PostgreSQL: date)."""
        if self.dialect == "sqlite":
            return f"date({column})"
        return f"CAST({column} AT TIME ZONE 'UTC' AS date)"

    def day_start(self, day: str) -> str:
        # SQLite stores naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'), which sorts after its day
        if self.dialect == "sqlite":
            return day
        return f"(CAST({day} AS timestamp) AT TIME ZONE 'UTC')"

    def day_end(self, day: str) -> str:
        if self.dialect == "sqlite":
            return f"date({day}, '+1 day')"
        return f"(CAST({day} + 1 AS timestamp) AT TIME ZONE 'UTC')"

    def text(self, column: str, key: str) -> str:
        """A text field of a JSON column."""
        if self.dialect == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column} ->> '{key}')"

    def number(self, column: str, key: str) -> str:
        """A numeric field of a JSON column (NULL when absent)."""
        if self.dialect == "sqlite":
            return f"CAST(json_extract({column}, '$.{key}') AS DOUBLE PRECISION)"
        return f"CAST({column} ->> '{key}' AS DOUBLE PRECISION)"


def real(expression: str) -> str:
    return f"CAST({expression} AS DOUBLE PRECISION)"


def daily_health(sql: Sql) -> str:
    """Per account and UTC day: publishing, snapshots, followers, spend, cost per follower.

    Counts come from the tables themselves (so a day the health cycle did not cover is still
    right); platform spend and API call counts exist only in ``system_health_metrics``.
    """

    def last_followers(where: str, order: str = "DESC") -> str:
        return (
            "(SELECT x.followers FROM account_snapshots x "
            f"WHERE x.account_id = d.account_id AND {where} "
            f"ORDER BY x.taken_at {order}, x.id {order} LIMIT 1)"
        )

    start, end = sql.day_start("d.day"), sql.day_end("d.day")
    return f"""
CREATE VIEW daily_health AS
WITH days AS (
    SELECT account_id, {sql.day("created_at")} AS day FROM content
    UNION SELECT account_id, {sql.day("updated_at")} FROM content
    UNION SELECT account_id, {sql.day("posted_at")} FROM content WHERE posted_at IS NOT NULL
    UNION SELECT c.account_id, {sql.day("s.due_at")}
        FROM performance_snapshots s JOIN content c ON c.id = s.content_id
    UNION SELECT account_id, {sql.day("taken_at")} FROM account_snapshots
    UNION SELECT account_id, {sql.day("hour_start")} FROM system_health_metrics
),
published AS (
    SELECT account_id, {sql.day("posted_at")} AS day, count(*) AS n
    FROM content WHERE posted_at IS NOT NULL GROUP BY account_id, {sql.day("posted_at")}
),
ended AS (
    SELECT account_id, {sql.day("updated_at")} AS day,
           sum(CASE WHEN status = 'failed' AND publish_attempts > 0 THEN 1 ELSE 0 END) AS failed,
           sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) AS rejected
    FROM content GROUP BY account_id, {sql.day("updated_at")}
),
snapshots AS (
    SELECT c.account_id, {sql.day("s.due_at")} AS day, count(*) AS due,
           sum(CASE WHEN s.taken_at IS NOT NULL AND s.error IS NULL THEN 1 ELSE 0 END) AS ok
    FROM performance_snapshots s JOIN content c ON c.id = s.content_id
    GROUP BY c.account_id, {sql.day("s.due_at")}
),
llm AS (
    SELECT account_id, {sql.day("created_at")} AS day,
           sum(COALESCE({sql.number("generation_metadata", "cost_usd")}, 0)) AS usd
    FROM content GROUP BY account_id, {sql.day("created_at")}
),
health AS (
    SELECT account_id, {sql.day("hour_start")} AS day, count(*) AS hours,
           sum(platform_spend_usd) AS platform_usd, sum(api_calls) AS api_calls,
           sum(api_errors) AS api_errors, sum(rate_limit_waits) AS rate_limit_waits
    FROM system_health_metrics GROUP BY account_id, {sql.day("hour_start")}
),
followers AS (
    SELECT d.account_id, d.day,
           COALESCE(
               {last_followers(f"x.taken_at < {start}")},
               {last_followers(f"x.taken_at >= {start} AND x.taken_at < {end}", "ASC")}
           ) AS followers_start,
           {last_followers(f"x.taken_at < {end}")} AS followers_end
    FROM days d
),
totals AS (
    SELECT d.account_id, d.day,
           COALESCE(p.n, 0) AS posts_published,
           COALESCE(e.failed, 0) AS posts_failed,
           COALESCE(e.rejected, 0) AS posts_rejected,
           COALESCE(s.due, 0) AS snapshots_due,
           COALESCE(s.ok, 0) AS snapshots_taken,
           f.followers_start, f.followers_end,
           f.followers_end - f.followers_start AS followers_gained,
           COALESCE(l.usd, 0) AS llm_spend_usd,
           COALESCE(h.platform_usd, 0) AS platform_spend_usd,
           COALESCE(h.api_calls, 0) AS api_calls,
           COALESCE(h.api_errors, 0) AS api_errors,
           COALESCE(h.rate_limit_waits, 0) AS rate_limit_waits,
           COALESCE(h.hours, 0) AS health_hours
    FROM days d
    JOIN followers f ON f.account_id = d.account_id AND f.day = d.day
    LEFT JOIN published p ON p.account_id = d.account_id AND p.day = d.day
    LEFT JOIN ended e ON e.account_id = d.account_id AND e.day = d.day
    LEFT JOIN snapshots s ON s.account_id = d.account_id AND s.day = d.day
    LEFT JOIN llm l ON l.account_id = d.account_id AND l.day = d.day
    LEFT JOIN health h ON h.account_id = d.account_id AND h.day = d.day
)
SELECT t.account_id, a.name AS account, t.day,
       t.posts_published, t.posts_failed, t.posts_rejected,
       CASE WHEN t.posts_published + t.posts_failed > 0
            THEN {real("t.posts_published")} / (t.posts_published + t.posts_failed)
       END AS publish_success_rate,
       t.snapshots_due, t.snapshots_taken,
       CASE WHEN t.snapshots_due > 0
            THEN {real("t.snapshots_taken")} / t.snapshots_due
       END AS snapshot_success_rate,
       t.followers_start, t.followers_end, t.followers_gained,
       t.llm_spend_usd, t.platform_spend_usd,
       t.llm_spend_usd + t.platform_spend_usd AS spend_usd,
       CASE WHEN t.followers_gained > 0
            THEN (t.llm_spend_usd + t.platform_spend_usd) / t.followers_gained
       END AS cost_per_follower_usd,
       t.api_calls, t.api_errors, t.rate_limit_waits, t.health_hours
FROM totals t JOIN accounts a ON a.id = t.account_id
"""


def arm_leaderboard(sql: Sql) -> str:
    """Per account, dimension and arm: evidence, the Gamma posterior's mean and an approximate
    95% interval (Wilson-Hilferty: a Gamma(a, b) variable's cube root is nearly normal, so its
    quantile q is about (a/b) * (1 - 1/(9a) + z_q / (3 sqrt(a)))^3)."""
    a, b = "s.thompson_alpha", "s.thompson_beta"
    k, h = f"(1 - 1 / (9 * {a}))", f"({Z_95} / (3 * sqrt({a})))"
    low, high = f"({k} - {h})", f"({k} + {h})"
    return f"""
CREATE VIEW arm_leaderboard AS
SELECT s.account_id, a.name AS account, s.dimension, s.arm,
       RANK() OVER (PARTITION BY s.account_id, s.dimension ORDER BY {a} / {b} DESC) AS rank,
       s.posts, s.reward_sum,
       CASE WHEN s.posts > 0 THEN s.reward_sum / s.posts END AS mean_reward,
       s.followers_gained, s.posterior_family,
       {a} AS posterior_shape, {b} AS posterior_rate,
       {a} / {b} AS posterior_mean,
       sqrt({a}) / {b} AS posterior_sd,
       CASE WHEN {low} > 0 THEN {a} / {b} * {low} * {low} * {low} ELSE 0 END AS interval_low,
       CASE WHEN {high} > 0 THEN {a} / {b} * {high} * {high} * {high} END AS interval_high,
       s.updated_at
FROM arm_statistics s JOIN accounts a ON a.id = s.account_id
"""


def post_performance(sql: Sql) -> str:
    """One row per published post: its arms, text, and the snapshots and attributions side by
    side (the latest attribution of each method)."""
    pivots = ",\n           ".join(
        f"max(CASE WHEN horizon_hours = {hours} THEN {column} END) AS {name}_{hours}h"
        for hours in HORIZONS
        for name, column in METRICS.items()
    )
    columns = ", ".join(f"p.{name}_{hours}h" for hours in HORIZONS for name in METRICS)

    def latest(method: str, column: str) -> str:
        return (
            f"(SELECT f.{column} FROM follower_attributions f "
            f"WHERE f.content_id = c.id AND f.attribution_method = '{method}' "
            "ORDER BY f.created_at DESC, f.id DESC LIMIT 1)"
        )

    attributions = ",\n       ".join(
        f"{latest(method, 'followers_gained')} AS followers_{method}, "
        f"{latest(method, 'confidence_score')} AS confidence_{method}"
        for method in METHODS
    )
    meta = "c.generation_metadata"
    return f"""
CREATE VIEW post_performance AS
WITH pivot AS (
    SELECT content_id,
           {pivots}
    FROM performance_snapshots GROUP BY content_id
)
SELECT c.id AS content_id, c.account_id, a.name AS account, c.status,
       {sql.text(meta, "content_type")} AS content_type, {sql.text(meta, "formula")} AS formula,
       {sql.text(meta, "hook")} AS hook, {sql.text(meta, "topic")} AS topic,
       c.text, c.platform_post_id, c.posted_at,
       {columns},
       {attributions}
FROM content c
JOIN accounts a ON a.id = c.account_id
LEFT JOIN pivot p ON p.content_id = c.id
WHERE c.posted_at IS NOT NULL
"""


def attribution_summary(sql: Sql) -> str:
    return """
CREATE VIEW attribution_summary AS
SELECT c.account_id, a.name AS account, f.attribution_method,
       count(DISTINCT f.content_id) AS posts_attributed,
       count(*) AS attributions,
       sum(f.followers_gained) AS total_followers_gained,
       avg(f.followers_gained) AS mean_followers_gained,
       avg(f.confidence_score) AS mean_confidence,
       min(f.created_at) AS first_attributed_at,
       max(f.created_at) AS last_attributed_at
FROM follower_attributions f
JOIN content c ON c.id = f.content_id
JOIN accounts a ON a.id = c.account_id
GROUP BY c.account_id, a.name, f.attribution_method
"""


def pending_work(sql: Sql) -> str:
    """Per account, what is waiting right now (CURRENT_TIMESTAMP, UTC on both backends)."""
    return """
CREATE VIEW pending_work AS
WITH snapshots AS (
    SELECT c.account_id,
           sum(CASE WHEN s.due_at <= CURRENT_TIMESTAMP THEN 1 ELSE 0 END) AS due,
           min(CASE WHEN s.due_at <= CURRENT_TIMESTAMP THEN s.due_at END) AS oldest_due,
           sum(CASE WHEN s.due_at > CURRENT_TIMESTAMP THEN 1 ELSE 0 END) AS upcoming,
           min(CASE WHEN s.due_at > CURRENT_TIMESTAMP THEN s.due_at END) AS next_due
    FROM performance_snapshots s JOIN content c ON c.id = s.content_id
    WHERE s.taken_at IS NULL
    GROUP BY c.account_id
),
posts AS (
    SELECT account_id,
           sum(CASE WHEN status = 'planned' THEN 1 ELSE 0 END) AS queued,
           sum(CASE WHEN status = 'planned' AND scheduled_for <= CURRENT_TIMESTAMP
                    THEN 1 ELSE 0 END) AS queued_due,
           min(CASE WHEN status = 'planned' THEN scheduled_for END) AS next_post,
           sum(CASE WHEN status = 'publishing' THEN 1 ELSE 0 END) AS in_flight,
           min(CASE WHEN status = 'publishing' THEN publish_started_at END) AS in_flight_since,
           sum(CASE WHEN status = 'draft' THEN 1 ELSE 0 END) AS drafts,
           min(CASE WHEN status = 'draft' THEN created_at END) AS oldest_draft
    FROM content
    WHERE status IN ('planned', 'publishing', 'draft')
    GROUP BY account_id
)
SELECT a.id AS account_id, a.name AS account,
       COALESCE(s.due, 0) AS snapshots_due, s.oldest_due AS oldest_due_snapshot_at,
       COALESCE(s.upcoming, 0) AS snapshots_upcoming, s.next_due AS next_snapshot_at,
       COALESCE(p.queued, 0) AS posts_queued, COALESCE(p.queued_due, 0) AS posts_queued_due,
       p.next_post AS next_post_at,
       COALESCE(p.in_flight, 0) AS posts_in_flight, p.in_flight_since AS oldest_in_flight_since,
       COALESCE(p.drafts, 0) AS drafts_waiting, p.oldest_draft AS oldest_draft_at
FROM accounts a
LEFT JOIN snapshots s ON s.account_id = a.id
LEFT JOIN posts p ON p.account_id = a.id
"""


BUILDERS = {
    "daily_health": daily_health,
    "arm_leaderboard": arm_leaderboard,
    "post_performance": post_performance,
    "attribution_summary": attribution_summary,
    "pending_work": pending_work,
}


def upgrade() -> None:
    sql = Sql(op.get_context().dialect.name)
    for view in VIEWS:
        op.execute(BUILDERS[view](sql))


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
