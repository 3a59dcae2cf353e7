"""Supabase: row-level security and the PostgreSQL functions the Supabase backend calls through rpc (filled in by the Supabase work).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
