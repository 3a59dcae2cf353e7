"""Retire the Supabase API store: drop the ``growthloop_*`` functions it called through PostgREST.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Migration 0005 created sixteen ``growthloop_*`` PL/pgSQL/SQL functions, a copy of the store's
protocol for the Supabase API store (``agent/store/supabase.py``, removed with this migration).
growthloop now reaches Supabase through its PostgreSQL connection string, with the SQL store, so
nothing calls them: they are dropped. Everything else 0005 did stays: row-level security on every
table, the grants revoked from ``anon``/``authenticated``, the grants to ``service_role`` and the
views switched to ``security_invoker``.

``DROP FUNCTION IF EXISTS`` makes this safe on any PostgreSQL, with or without Supabase's roles;
nothing happens on SQLite (0005 did nothing there either). The downgrade runs 0005's upgrade
again, which recreates the functions (and re-applies its idempotent lock-down).

Frozen: the signatures are written out here, not read from 0005 or from live code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The functions 0005 created, by signature (what DROP FUNCTION needs).
FUNCTIONS = (
    "growthloop_begin_publish(integer, timestamptz)",
    "growthloop_finish_publish(integer, text, timestamptz, double precision[], timestamptz)",
    "growthloop_fail_publish(integer, text, timestamptz, text)",
    "growthloop_reschedule(integer, timestamptz, text, timestamptz, boolean)",
    "growthloop_approve_draft(integer, timestamptz, timestamptz)",
    "growthloop_apply_learning(integer, integer, jsonb, jsonb, jsonb, jsonb, timestamptz)",
    "growthloop_due_snapshots(timestamptz, integer)",
    "growthloop_claim_snapshots(timestamptz, text, double precision, integer)",
    "growthloop_acquire_lease(text, text, timestamptz, double precision)",
    "growthloop_release_lease(text, text)",
    "growthloop_posts_to_attribute(timestamptz, text, double precision, integer)",
    "growthloop_posts_to_learn(text, boolean, integer)",
    "growthloop_health_inputs(integer, timestamptz, timestamptz)",
    "growthloop_latest_health(integer)",
    "growthloop_pending_work(timestamptz)",
    "growthloop_counts()",
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    # 0005 is history too: running its upgrade again restores exactly what it made
    path = Path(__file__).with_name("0005_supabase.py")
    spec = importlib.util.spec_from_file_location("growthloop_migration_0005", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with this one
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
