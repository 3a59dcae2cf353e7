"""Supabase: row-level security and the PostgreSQL functions the Supabase backend calls via rpc.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21

On PostgreSQL this migration

* creates the ``growthloop_*`` functions that :class:`agent.store.supabase.SupabaseStore` calls
  through PostgREST's ``/rpc`` endpoint: every operation that must be atomic (the publish
  compare-and-sets, recording a publish with its due snapshots, a learning update, claiming due
  snapshots, leases) and the reads too complex for PostgREST's filters (joins, aggregates). Each
  is one call, hence one transaction; all are ``SECURITY INVOKER`` (they run with the caller's
  rights, so they cannot be used to get round RLS) with ``search_path`` pinned to ``public``;
* enables row-level security, with no policy, on every growthloop table: Supabase's ``anon`` and
  ``authenticated`` roles (whatever their grants) see and change nothing. The ``service_role``
  (used by the Supabase backend) bypasses RLS, and growthloop's own SQL connection owns the
  tables, which RLS does not restrict (no ``FORCE``);
* revokes every privilege on the tables, views and functions from ``anon`` and
  ``authenticated`` (when those roles exist, i.e. on Supabase) and on the functions from
  ``PUBLIC``, granting them to ``service_role`` where it exists; views over the tables are
  switched to ``security_invoker`` (PostgreSQL 15+) so they apply the caller's RLS too.

A later migration that adds a table must enable RLS on it the same way. Nothing happens on
SQLite. The downgrade drops the functions and disables RLS; it does not restore grants to
``anon``/``authenticated``.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Every table growthloop creates (those of later migrations only when they exist yet).
TABLES = (
    "accounts",
    "content",
    "performance_snapshots",
    "account_snapshots",
    "follower_attributions",
    "arm_statistics",
    "learning_updates",
    "system_health_metrics",
    "runtime_state",
    "leases",
    "alembic_version",
)

_SETTINGS = "SECURITY INVOKER SET search_path = public, pg_temp"

# (name, argument list, returns, language, volatility, body)
FUNCTIONS: list[tuple[str, str, str, str, str, str]] = [
    (
        "growthloop_begin_publish",
        "p_content_id integer, p_now timestamptz",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH claimed AS (
    UPDATE content
    SET status = 'publishing', publish_started_at = p_now,
        publish_attempts = publish_attempts + 1, updated_at = p_now
    WHERE id = p_content_id AND status = 'planned'
    RETURNING 1
)
SELECT count(*) = 1 FROM claimed
""",
    ),
    (
        "growthloop_finish_publish",
        "p_content_id integer, p_platform_post_id text, p_posted_at timestamptz, "
        "p_horizon_seconds double precision[], p_now timestamptz",
        "boolean",
        "plpgsql",
        "VOLATILE",
        """
BEGIN
    UPDATE content
    SET status = 'posted', platform_post_id = p_platform_post_id, posted_at = p_posted_at,
        error = NULL, updated_at = p_now
    WHERE id = p_content_id AND status = 'publishing';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO performance_snapshots (content_id, horizon_hours, due_at)
    SELECT p_content_id, s / 3600, p_posted_at + make_interval(secs => s)
    FROM unnest(p_horizon_seconds) AS s;
    RETURN true;
END
""",
    ),
    (
        "growthloop_fail_publish",
        "p_content_id integer, p_error text, p_now timestamptz, p_status text",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH failed AS (
    UPDATE content SET status = p_status, error = left(p_error, 2000), updated_at = p_now
    WHERE id = p_content_id AND status IN ('planned', 'publishing')
    RETURNING 1
)
SELECT count(*) = 1 FROM failed
""",
    ),
    (
        "growthloop_reschedule",
        "p_content_id integer, p_scheduled_for timestamptz, p_error text, p_now timestamptz, "
        "p_sent boolean",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH back AS (
    UPDATE content
    SET status = 'planned', scheduled_for = p_scheduled_for, publish_started_at = NULL,
        publish_attempts = CASE
            WHEN p_sent THEN publish_attempts
            WHEN publish_attempts > 0 THEN publish_attempts - 1
            ELSE 0
        END,
        error = left(p_error, 2000), updated_at = p_now
    WHERE id = p_content_id AND status IN ('planned', 'publishing')
    RETURNING 1
)
SELECT count(*) = 1 FROM back
""",
    ),
    (
        "growthloop_approve_draft",
        "p_content_id integer, p_now timestamptz, p_scheduled_for timestamptz",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH approved AS (
    UPDATE content
    SET status = 'planned', scheduled_for = greatest(p_now, coalesce(p_scheduled_for,
        scheduled_for)), updated_at = p_now
    WHERE id = p_content_id AND status = 'draft'
    RETURNING 1
)
SELECT count(*) = 1 FROM approved
""",
    ),
    (
        "growthloop_apply_learning",
        "p_account_id integer, p_content_id integer, p_stats jsonb, p_evidence jsonb, "
        "p_updates_applied jsonb, p_insights_summary jsonb, p_now timestamptz",
        "boolean",
        "plpgsql",
        "VOLATILE",
        """
BEGIN
    UPDATE content SET learned_at = p_now, updated_at = p_now
    WHERE id = p_content_id AND learned_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO arm_statistics AS st (
        account_id, dimension, arm, posts, reward_sum, reward_sq_sum, followers_gained,
        likes_sum, reposts_sum, replies_sum, impressions_sum, engagement_rate_sum,
        posterior_family, thompson_alpha, thompson_beta, updated_at)
    SELECT s.account_id, s.dimension, s.arm, s.posts, s.reward_sum, s.reward_sq_sum,
           s.followers_gained, s.likes_sum, s.reposts_sum, s.replies_sum, s.impressions_sum,
           s.engagement_rate_sum, s.posterior_family, s.thompson_alpha, s.thompson_beta, p_now
    FROM jsonb_to_recordset(p_stats) AS s(
        account_id integer, dimension text, arm text, posts integer,
        reward_sum double precision, reward_sq_sum double precision,
        followers_gained double precision, likes_sum integer, reposts_sum integer,
        replies_sum integer, impressions_sum integer, engagement_rate_sum double precision,
        posterior_family text, thompson_alpha double precision, thompson_beta double precision)
    ON CONFLICT (account_id, dimension, arm) DO UPDATE SET
        posts = EXCLUDED.posts, reward_sum = EXCLUDED.reward_sum,
        reward_sq_sum = EXCLUDED.reward_sq_sum, followers_gained = EXCLUDED.followers_gained,
        likes_sum = EXCLUDED.likes_sum, reposts_sum = EXCLUDED.reposts_sum,
        replies_sum = EXCLUDED.replies_sum, impressions_sum = EXCLUDED.impressions_sum,
        engagement_rate_sum = EXCLUDED.engagement_rate_sum,
        posterior_family = EXCLUDED.posterior_family,
        thompson_alpha = EXCLUDED.thompson_alpha, thompson_beta = EXCLUDED.thompson_beta,
        updated_at = EXCLUDED.updated_at;
    INSERT INTO learning_updates (
        account_id, content_id, created_at, update_type, component, evidence,
        updates_applied, insights_summary)
    VALUES (p_account_id, p_content_id, p_now, 'post_outcome', 'all', p_evidence,
            p_updates_applied, p_insights_summary);
    RETURN true;
END
""",
    ),
    (
        "growthloop_due_snapshots",
        "p_now timestamptz, p_limit integer",
        "TABLE (id integer, content_id integer, account_id integer, platform_post_id text, "
        "posted_at timestamptz, horizon_hours double precision, due_at timestamptz)",
        "sql",
        "STABLE",
        """
SELECT ps.id, ps.content_id, c.account_id, c.platform_post_id::text, c.posted_at,
       ps.horizon_hours, ps.due_at
FROM performance_snapshots ps JOIN content c ON c.id = ps.content_id
WHERE ps.taken_at IS NULL AND ps.due_at <= p_now
ORDER BY ps.due_at, ps.id
LIMIT p_limit
""",
    ),
    (
        # the rows are picked FOR UPDATE SKIP LOCKED and marked by the same statement, so
        # concurrent claimers get disjoint sets (agent/store/claims.py, the SQL store's twin)
        "growthloop_claim_snapshots",
        "p_now timestamptz, p_worker text, p_lease_seconds double precision, p_limit integer",
        "TABLE (id integer, content_id integer, account_id integer, platform_post_id text, "
        "posted_at timestamptz, horizon_hours double precision, due_at timestamptz)",
        "sql",
        "VOLATILE",
        """
WITH picked AS (
    SELECT ps.id FROM performance_snapshots ps
    WHERE ps.taken_at IS NULL AND ps.due_at <= p_now
      AND (ps.claimed_until IS NULL OR ps.claimed_until < p_now OR ps.claimed_by = p_worker)
    ORDER BY ps.due_at, ps.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE performance_snapshots ps
    SET claimed_by = p_worker, claimed_until = p_now + make_interval(secs => p_lease_seconds)
    FROM picked WHERE ps.id = picked.id
    RETURNING ps.id, ps.content_id, ps.horizon_hours, ps.due_at
)
SELECT cl.id, cl.content_id, c.account_id, c.platform_post_id::text, c.posted_at,
       cl.horizon_hours, cl.due_at
FROM claimed cl JOIN content c ON c.id = cl.content_id
ORDER BY cl.due_at, cl.id
""",
    ),
    (
        "growthloop_acquire_lease",
        "p_name text, p_worker text, p_now timestamptz, p_ttl_seconds double precision",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH taken AS (
    INSERT INTO leases AS l (name, holder, expires_at, acquired_at)
    VALUES (p_name, p_worker, p_now + make_interval(secs => p_ttl_seconds), p_now)
    ON CONFLICT (name) DO UPDATE SET
        holder = EXCLUDED.holder,
        expires_at = EXCLUDED.expires_at,
        acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at
                           ELSE EXCLUDED.acquired_at END
    WHERE l.holder = EXCLUDED.holder OR l.expires_at < p_now
    RETURNING 1
)
SELECT count(*) = 1 FROM taken
""",
    ),
    (
        "growthloop_release_lease",
        "p_name text, p_worker text",
        "boolean",
        "sql",
        "VOLATILE",
        """
WITH released AS (
    DELETE FROM leases WHERE name = p_name AND holder = p_worker RETURNING 1
)
SELECT count(*) = 1 FROM released
""",
    ),
    (
        "growthloop_posts_to_attribute",
        "p_closed_before timestamptz, p_method text, p_window_hours double precision, "
        "p_limit integer",
        "SETOF content",
        "sql",
        "STABLE",
        """
SELECT c.* FROM content c
WHERE c.status = 'posted'
  AND c.posted_at <= p_closed_before - make_interval(secs => p_window_hours * 3600)
  AND NOT EXISTS (
      SELECT 1 FROM follower_attributions fa
      WHERE fa.content_id = c.id AND fa.attribution_method = p_method
        AND fa.window_hours = p_window_hours)
ORDER BY c.posted_at
LIMIT p_limit
""",
    ),
    (
        "growthloop_posts_to_learn",
        "p_method text, p_need_attribution boolean, p_limit integer",
        "TABLE (post jsonb, final jsonb, attribution jsonb)",
        "sql",
        "STABLE",
        """
SELECT to_jsonb(c), to_jsonb(ps), CASE WHEN fa.id IS NULL THEN NULL ELSE to_jsonb(fa) END
FROM content c
JOIN performance_snapshots ps ON ps.content_id = c.id AND ps.horizon_hours = (
    SELECT max(f.horizon_hours) FROM performance_snapshots f WHERE f.content_id = c.id)
LEFT JOIN follower_attributions fa ON fa.content_id = c.id AND fa.attribution_method = p_method
WHERE c.status = 'posted' AND c.learned_at IS NULL AND ps.taken_at IS NOT NULL
  AND (NOT p_need_attribution OR fa.id IS NOT NULL)
ORDER BY c.posted_at
LIMIT p_limit
""",
    ),
    (
        "growthloop_health_inputs",
        "p_account_id integer, p_start timestamptz, p_end timestamptz",
        "jsonb",
        "sql",
        "STABLE",
        """
SELECT jsonb_build_object(
    'status_counts', (
        SELECT coalesce(jsonb_object_agg(s.status, s.n), '{}'::jsonb) FROM (
            SELECT status, count(*) AS n FROM content
            WHERE account_id = p_account_id AND updated_at >= p_start AND updated_at < p_end
            GROUP BY status) s),
    'posts_succeeded', (
        SELECT count(*) FROM content
        WHERE account_id = p_account_id AND posted_at >= p_start AND posted_at < p_end),
    'posts_attempted', (
        SELECT count(*) FROM content WHERE account_id = p_account_id
          AND publish_started_at >= p_start AND publish_started_at < p_end),
    'polls', (
        SELECT jsonb_build_array(count(*), count(ps.taken_at), avg(ps.engagement_rate))
        FROM performance_snapshots ps JOIN content c ON c.id = ps.content_id
        WHERE c.account_id = p_account_id AND ps.due_at >= p_start AND ps.due_at < p_end),
    'polls_done', (
        SELECT coalesce(jsonb_agg(jsonb_build_array(ps.due_at, ps.taken_at)), '[]'::jsonb)
        FROM performance_snapshots ps JOIN content c ON c.id = ps.content_id
        WHERE c.account_id = p_account_id AND ps.taken_at >= p_start AND ps.taken_at < p_end),
    'costs', (
        SELECT coalesce(jsonb_agg(generation_metadata -> 'cost_usd'), '[]'::jsonb)
        FROM content
        WHERE account_id = p_account_id AND created_at >= p_start AND created_at < p_end),
    'followers_end', (
        SELECT followers FROM account_snapshots
        WHERE account_id = p_account_id AND taken_at < p_end
        ORDER BY taken_at DESC LIMIT 1),
    'followers_start', (
        SELECT followers FROM account_snapshots
        WHERE account_id = p_account_id AND taken_at < p_start
        ORDER BY taken_at DESC LIMIT 1))
""",
    ),
    (
        "growthloop_latest_health",
        "p_limit integer",
        "SETOF jsonb",
        "sql",
        "STABLE",
        """
SELECT to_jsonb(h) || jsonb_build_object('account', a.name)
FROM system_health_metrics h JOIN accounts a ON a.id = h.account_id
ORDER BY h.hour_start DESC, a.name
LIMIT p_limit
""",
    ),
    (
        "growthloop_pending_work",
        "p_now timestamptz",
        "jsonb",
        "sql",
        "STABLE",
        """
SELECT jsonb_build_object(
    'polls_due', (SELECT count(*) FROM performance_snapshots
                  WHERE taken_at IS NULL AND due_at <= p_now),
    'polls_upcoming', (SELECT count(*) FROM performance_snapshots
                       WHERE taken_at IS NULL AND due_at > p_now),
    'next_poll_at', (SELECT min(due_at) FROM performance_snapshots WHERE taken_at IS NULL),
    'posts_queued', (SELECT count(*) FROM content WHERE status = 'planned'),
    'next_post_at', (SELECT min(scheduled_for) FROM content WHERE status = 'planned'),
    'posts_in_flight', (SELECT count(*) FROM content WHERE status = 'publishing'))
""",
    ),
    (
        "growthloop_counts",
        "",
        "jsonb",
        "sql",
        "STABLE",
        """
SELECT coalesce((SELECT jsonb_object_agg(s.status, s.n) FROM (
           SELECT status, count(*) AS n FROM content GROUP BY status) s), '{}'::jsonb)
    || jsonb_build_object(
        'snapshots_taken', (SELECT count(*) FROM performance_snapshots
                            WHERE taken_at IS NOT NULL),
        'learning_updates', (SELECT count(*) FROM learning_updates))
""",
    ),
]


def _signature(name: str, args: str) -> str:
    types = ", ".join(arg.split(" ", 1)[1] for arg in args.split(", ")) if args else ""
    return f"{name}({types})"


def _create(name: str, args: str, returns: str, language: str, volatility: str, body: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}({args}) RETURNS {returns}\n"
        f"LANGUAGE {language} {volatility} {_SETTINGS}\n"
        f"AS $function${body}$function$"
    )


def _table_list() -> str:
    return "ARRAY[" + ", ".join(f"'{t}'" for t in TABLES) + "]"


def _views_query() -> str:
    """The views (and materialised views) that read any growthloop table."""
    return f"""SELECT DISTINCT rw.ev_class::regclass FROM pg_rewrite rw
        JOIN pg_depend d ON d.objid = rw.oid AND d.classid = 'pg_rewrite'::regclass
        JOIN pg_class c ON c.oid = rw.ev_class AND c.relkind IN ('v', 'm')
        WHERE d.refobjid IN (SELECT to_regclass(quote_ident(x)) FROM unnest({_table_list()}) x)
          AND rw.ev_class <> d.refobjid"""


def _lock_down_sql() -> str:
    """RLS on, anon/authenticated out, service_role in; tables of later migrations are skipped."""
    functions = ", ".join(f"'{_signature(f[0], f[1])}'" for f in FUNCTIONS)
    return f"""
DO $lockdown$
DECLARE
    t text;
    f text;
    v regclass;
    supabase_roles text[] := ARRAY(
        SELECT rolname::text FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
    role_name text;
BEGIN
    FOREACH t IN ARRAY {_table_list()} LOOP
        CONTINUE WHEN to_regclass(quote_ident(t)) IS NULL;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        FOREACH role_name IN ARRAY supabase_roles LOOP
            EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t, role_name);
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT ALL ON TABLE %I TO service_role', t);
        END IF;
    END LOOP;
    -- views over growthloop's tables run with their owner's rights unless security_invoker
    FOR v IN
        {_views_query()}
    LOOP
        FOREACH role_name IN ARRAY supabase_roles LOOP
            EXECUTE format('REVOKE ALL ON TABLE %s FROM %I', v, role_name);
        END LOOP;
        IF current_setting('server_version_num')::int >= 150000
           AND (SELECT relkind FROM pg_class WHERE oid = v) = 'v' THEN
            EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[{functions}] LOOP
        CONTINUE WHEN to_regprocedure(f) IS NULL;
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        FOREACH role_name IN ARRAY supabase_roles LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', f, role_name);
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f);
        END IF;
    END LOOP;
END
$lockdown$
"""


def _unlock_sql() -> str:
    return f"""
DO $unlock$
DECLARE
    t text;
    v regclass;
BEGIN
    FOREACH t IN ARRAY {_table_list()} LOOP
        CONTINUE WHEN to_regclass(quote_ident(t)) IS NULL;
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
    IF current_setting('server_version_num')::int >= 150000 THEN
        FOR v IN {_views_query()} LOOP
            IF (SELECT relkind FROM pg_class WHERE oid = v) = 'v' THEN
                EXECUTE format('ALTER VIEW %s RESET (security_invoker)', v);
            END IF;
        END LOOP;
    END IF;
END
$unlock$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(_create(*function))
    op.execute(_lock_down_sql())


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_unlock_sql())
    for name, args, *_ in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {_signature(name, args)}")
