"""SQLAlchemy's aiosqlite adapter, crossing to aiosqlite's thread once per statement.

aiosqlite runs every ``sqlite3`` call on a thread of its own; each call is a crossing (a queue
put, the thread woken, the result handed back through the event loop's self-pipe), and a
crossing costs tens of times what SQLite spends on one of the store's statements. SQLAlchemy's
adapter makes four of them per statement (open a cursor, execute, fetch, close) and one per
commit and rollback even when nothing was written. The adapter here runs the whole statement in
one crossing, and skips the commit or rollback when ``sqlite3`` has no transaction open (reads
run outside one: ``sqlite3`` begins a transaction only before a write). What runs on the thread
and in what order is unchanged, so are the errors (the same ``_handle_exception``).

It relies on two attributes SQLAlchemy's own adapter uses too: aiosqlite's ``_execute`` (queue a
function for its thread) and ``_conn`` (the ``sqlite3`` connection, only touched there).
:func:`dbapi` is what :func:`agent.store.engine.create_engine` hands SQLAlchemy as the module.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, list[Any], int | None, int]  # description, rows, lastrowid, rowcount


def _execute(conn: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """One statement, on aiosqlite's thread."""
    cursor = conn.cursor()
    try:
        cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _executemany(conn: sqlite3.Connection, operation: str, rows: Any) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, rows)
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneCrossingCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose ``execute`` and ``executemany`` cross to the thread once."""

    __slots__ = ()

    def _run(self, fn: Any, operation: Any, parameters: Any) -> None:
        try:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            outcome = self.await_(connection._execute(fn, connection._conn, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description, rows, self.lastrowid, self.rowcount = outcome
        self._rows = deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._run(_execute, operation, () if parameters is None else parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._run(_executemany, operation, seq_of_parameters)


class OneCrossingConnection(AsyncAdapt_aiosqlite_connection):
    """Statements in one crossing; no crossing to commit or roll back nothing."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            return super().cursor(server_side=True)
        return OneCrossingCursor(self)

    def _in_transaction(self) -> bool:
        try:
            return bool(self._connection._conn.in_transaction)
        except ValueError:  # closed: let commit/rollback report it as before
            return True

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()


class OneCrossingDbapi(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite's DBAPI module for SQLAlchemy, with :class:`OneCrossingConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        if type(adapted) is not AsyncAdapt_aiosqlite_connection:  # the sync fallback
            return adapted
        return OneCrossingConnection(self, adapted._connection)


def dbapi() -> OneCrossingDbapi:
    return OneCrossingDbapi(aiosqlite, sqlite3)
