"""The pieces under :class:`agent.store.memory.MemoryStore`: rows shaped by the schema, a time
index, and copying the rows into a real database.

Rows are plain dicts keyed by the column names of :mod:`agent.store.schema`, normalised the way
the SQL store's column types normalise them (aware UTC datetimes, naive ones refused; JSON
stored as its text, so what comes back is a fresh copy with JSON's types; floats as floats), and
checked for the NOT NULL constraints. A constraint the database would refuse is raised as the
same :class:`~agent.errors.ConstraintViolation` the SQL store raises.
"""

from __future__ import annotations

import bisect
import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.errors import ConstraintViolation, StoreError
from agent.store.schema import UTCDateTime, metadata

NAIVE = "naive datetime given to the store; pass an aware UTC datetime"  # as UTCDateTime says
_DT, _JSON, _FLOAT, _OTHER = range(4)


def refused(message: str) -> ConstraintViolation:
    """The error for a violated constraint, worded as the database would have said it."""
    return ConstraintViolation(f"the database refused the write: {message} (memory store)")


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is refused, as the SQL store refuses it."""
    if value.tzinfo is None:
        raise ValueError(NAIVE)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class Table:
    """One schema table's columns: how to normalise a row for it."""

    def __init__(self, table: sa.Table) -> None:
        self.name = table.name
        self.columns: list[tuple[str, int, bool, Any]] = []
        for column in table.columns:
            if isinstance(column.type, UTCDateTime):
                kind = _DT
            elif isinstance(column.type, sa.JSON):
                kind = _JSON
            elif isinstance(column.type, sa.Float):
                kind = _FLOAT
            else:
                kind = _OTHER
            default: Any = None
            server_default = getattr(column.server_default, "arg", None)
            if server_default is not None:
                if kind == _FLOAT:
                    default = float(server_default)
                elif str(server_default).lstrip("-").isdigit():
                    default = int(server_default)
                else:  # a text default ('inactive')
                    default = str(server_default)
            autoincrement = column.primary_key and isinstance(column.type, sa.Integer)
            nullable = bool(column.nullable) or autoincrement
            self.columns.append((column.name, kind, nullable, default))
        self.names = frozenset(name for name, *_ in self.columns)

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A normalised row from ``values`` (missing columns take their default or NULL)."""
        unknown = set(values) - self.names
        if unknown:
            raise StoreError(f"{self.name} has no column(s) {', '.join(sorted(unknown))}")
        row: dict[str, Any] = {}
        for name, kind, nullable, default in self.columns:
            value = values.get(name, default)
            if value is None:
                if not nullable:
                    raise refused(f"NOT NULL constraint failed: {self.name}.{name}")
            elif kind == _DT:
                value = utc(value)
            elif kind == _JSON:
                value = dumps(value, f"{self.name}.{name}")
            elif kind == _FLOAT:
                value = float(value)
            row[name] = value
        return row

    def kind(self, name: str) -> int:
        return next(kind for column, kind, *_ in self.columns if column == name)


def dumps(value: Any, where: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{where}: the value cannot be stored as JSON ({exc})") from None


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


TABLES = {t.name: Table(t) for t in metadata.sorted_tables}


class TimeIndex:
    """Row ids by a datetime that may change: (time, id) entries kept sorted.

    A row whose time changes gets a new entry and keeps its old one; readers check each id they
    get against the row's current value, so a stale entry is simply skipped.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[tuple[datetime, int]] = []

    def add(self, at: datetime | None, row_id: int) -> None:
        if at is None:
            return
        key = (at, row_id)
        keys = self._keys
        if not keys or keys[-1] <= key:
            keys.append(key)
        else:
            bisect.insort(keys, key)

    def newest_first(self) -> Iterator[tuple[datetime, int]]:
        """Every entry, latest time first (stale ones included: check them)."""
        return reversed(self._keys)

    def ids(self, start: datetime, end: datetime) -> Iterator[int]:
        """Ids with an entry in [start, end), each once, in time order."""
        keys = self._keys
        seen: set[int] = set()
        for i in range(bisect.bisect_left(keys, (start, 0)), len(keys)):
            at, row_id = keys[i]
            if at >= end:
                break
            if row_id not in seen:
                seen.add(row_id)
                yield row_id


class SortedKeys:
    """(time, id) keys of rows whose time never changes, sorted, for range and latest queries."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[datetime, int]] = []

    def add(self, at: datetime, row_id: int) -> None:
        key = (at, row_id)
        if not self.keys or self.keys[-1] <= key:
            self.keys.append(key)
        else:
            bisect.insort(self.keys, key)

    def remove(self, at: datetime, row_id: int) -> None:
        i = bisect.bisect_left(self.keys, (at, row_id))
        if i < len(self.keys) and self.keys[i] == (at, row_id):
            del self.keys[i]

    def between(self, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """Keys with start <= time <= end (both ends included)."""
        lo = bisect.bisect_left(self.keys, (start, 0))
        hi = bisect.bisect_right(self.keys, (end, sys.maxsize))
        return self.keys[lo:hi]

    def within(self, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """Keys with start <= time < end."""
        lo = bisect.bisect_left(self.keys, (start, 0))
        return self.keys[lo : bisect.bisect_left(self.keys, (end, 0))]

    def upto(self, end: datetime) -> list[tuple[datetime, int]]:
        """Keys with time <= end."""
        return self.keys[: bisect.bisect_right(self.keys, (end, sys.maxsize))]

    def before(self, end: datetime) -> tuple[datetime, int] | None:
        """The latest key with time < end, or None."""
        i = bisect.bisect_left(self.keys, (end, 0))
        return self.keys[i - 1] if i else None


def exported(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored row, JSON columns decoded (what an INSERT takes)."""
    spec = TABLES[table]
    out = dict(row)
    for name, kind, *_ in spec.columns:
        if kind == _JSON and name in out:
            out[name] = loads(out[name])
    return out


async def copy_rows(tables: Mapping[str, list[dict[str, Any]]], engine: AsyncEngine) -> None:
    """Insert ``tables`` (rows by table name, ids included) into a migrated, empty database.

    On PostgreSQL the id sequences are moved past the copied ids, so the database can be used
    (by a daemon or ``growthloop``) after the copy.
    """
    async with engine.begin() as conn:
        for table in metadata.sorted_tables:
            rows = tables.get(table.name) or []
            if rows:
                await conn.execute(table.insert(), rows)
            if conn.dialect.name == "postgresql" and rows and "id" in table.c:
                await conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT MAX(id) FROM {table.name}))"
                    )
                )
