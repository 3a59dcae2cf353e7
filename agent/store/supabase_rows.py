"""Values crossing Supabase's REST API, both ways, for :mod:`agent.store.supabase`.

PostgREST speaks JSON: timestamps travel as ISO 8601 strings, ``double precision`` values that
happen to be whole come back as JSON integers, JSONB columns as JSON. :func:`decode` turns a JSON
row back into the Python values the SQL store returns, by the column types of
:mod:`agent.store.schema`, so both backends hand the cycles identical value objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from agent.models import AccountSnapshot, DueSnapshot, Post
from agent.store.rows import account_snapshot_from_row, post_from_row
from agent.store.schema import UTCDateTime, account_snapshots, content


def iso(value: datetime) -> str:
    """An aware datetime as the ISO 8601 UTC string PostgREST reads; naive ones are refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
    return value.astimezone(UTC).isoformat()


def parse_datetime(value: str | datetime | None) -> datetime | None:
    """An aware UTC datetime from PostgreSQL's JSON rendering of a timestamptz."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def decode(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON row of ``table`` with its values in the Python types the SQL store returns."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        column = table.c.get(key)
        if value is None or column is None:
            out[key] = value
        elif isinstance(column.type, UTCDateTime):
            out[key] = parse_datetime(value)
        elif isinstance(column.type, sa.Float):
            out[key] = float(value)
        elif isinstance(column.type, sa.Integer):
            out[key] = int(value)
        else:
            out[key] = value
    return out


class JsonRow:
    """A decoded row where the :mod:`agent.store.rows` converters expect a database row."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._mapping = mapping


def post(row: Mapping[str, Any]) -> Post:
    return post_from_row(JsonRow(decode(content, row)))


def account_snapshot(row: Mapping[str, Any]) -> AccountSnapshot:
    return account_snapshot_from_row(JsonRow(decode(account_snapshots, row)))  # type: ignore[arg-type]


def due_snapshot(row: Mapping[str, Any]) -> DueSnapshot:
    """A :class:`DueSnapshot` from a row of ``growthloop_due_snapshots`` / ``_claim_snapshots``."""
    posted_at = parse_datetime(row["posted_at"])
    due_at = parse_datetime(row["due_at"])
    assert posted_at is not None and due_at is not None  # a due snapshot's post was posted
    return DueSnapshot(
        id=int(row["id"]),
        content_id=int(row["content_id"]),
        account_id=int(row["account_id"]),
        platform_post_id=row["platform_post_id"],
        posted_at=posted_at,
        horizon_hours=float(row["horizon_hours"]),
        due_at=due_at,
    )
