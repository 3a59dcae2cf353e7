"""The state under :class:`agent.store.sql.SqlStore`: the engine, transactions and the accounts.

:class:`SqlState` holds the engine and the retry policy, and runs every method's work in one
transaction (``_run``: retried while the database is unreachable, database errors translated to
:class:`~agent.errors.StoreError`), or as one statement in autocommit on PostgreSQL (``_once``). The
``_plain`` variants take a plain function on SQLAlchemy's synchronous ``Connection`` and run the
whole call in one greenlet: the calls every post makes use them (issue 16: a store call cost 5-6x
the client CPU of the same statements through the bare driver, most of it in per-step greenlets and
tasks, statements rebuilt and re-keyed on every call, and a ping per checkout). The accounts live
here too, as every part of the store writes rows that belong to one. :mod:`agent.store.sql_metrics`,
:mod:`agent.store.sql_operations` and :class:`~agent.store.sql.SqlStore` build on it.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn

from agent.errors import ConstraintViolation, StoreError, StoreUnavailable
from agent.logs import log, redact_text
from agent.models import NewAccount
from agent.store import queries
from agent.store.retry import DATABASE_ERRORS, DEFAULT_RETRY, RetryPolicy, is_unavailable
from agent.store.schema import accounts

# the PostgreSQL advisory lock ``ensure_accounts`` holds for its transaction (any fixed number
# the application uses for nothing else)
ACCOUNTS_LOCK = 0x67_6C_61_63  # "glac"

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _describe(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])


def _translated(exc: BaseException, *, retried: bool) -> StoreError:
    """The StoreError to raise for a database error (see ``SqlState._run``)."""
    detail = _describe(exc)
    if isinstance(exc, IntegrityError) and not retried:
        return ConstraintViolation(f"the database refused the write: {detail}")
    if is_unavailable(exc):
        return StoreUnavailable(f"database unavailable: {detail}")
    if isinstance(exc, IntegrityError):
        return ConstraintViolation(
            f"a retried write was refused ({detail}); its first attempt, cut off by a "
            "dropped connection, had probably been committed"
        )
    return StoreError(f"database error: {detail}")


class SqlState:
    """The engine and transactions of a :class:`~agent.store.sql.SqlStore`, and its accounts."""

    def __init__(self, engine: AsyncEngine, *, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.engine = engine
        self.retry = retry

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    async def _run(
        self,
        fn: Callable[Concatenate[AsyncConnection, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run ``fn`` in one transaction; retried (see :mod:`agent.store.retry`) while the
        database is unreachable, then :class:`StoreUnavailable`. Other database errors are a
        :class:`StoreError`; an IntegrityError becomes a :class:`ConstraintViolation` (on a
        retry it means the attempt that lost its connection had committed after all); a value
        the column types refuse (a naive datetime) is the caller's ValueError, as in the memory
        store. No SQLAlchemy exception leaves."""

        async def attempt() -> _T:
            async with self.engine.begin() as conn:
                return await fn(conn, *args, **kwargs)

        return await self._attempts(attempt)

    async def _once(
        self,
        fn: Callable[Concatenate[AsyncConnection, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """As :meth:`_run`, for work the database makes atomic without a transaction block:
        **one** statement (a write or a read), or reads only. PostgreSQL runs it in autocommit,
        one round trip per statement instead of ``BEGIN``, the statement and ``COMMIT``; at READ
        COMMITTED each statement saw a snapshot of its own inside a transaction too, so several
        reads see what they saw before. SQLite runs it as :meth:`_run` (``sqlite3`` opens no
        transaction for a read, and wraps a write in one by itself)."""
        if not self._autocommit:
            return await self._run(fn, *args, **kwargs)

        async def attempt() -> _T:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await fn(conn, *args, **kwargs)

        return await self._attempts(attempt)

    async def _run_plain(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """As :meth:`_run`, for a plain function on SQLAlchemy's synchronous ``Connection``:
        the checkout, the statements, the commit and the return to the pool run in one greenlet
        (what ``AsyncConnection`` does one greenlet and one task per step), which is most of
        what a store call costs the client. The calls every post makes use it."""
        call = functools.partial(self._plain, False, fn, *args, **kwargs)
        return await self._attempts(lambda: greenlet_spawn(call))

    async def _once_plain(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """:meth:`_once` for a plain function (see :meth:`_run_plain`)."""
        call = functools.partial(self._plain, self._autocommit, fn, *args, **kwargs)
        return await self._attempts(lambda: greenlet_spawn(call))

    def _plain(
        self,
        autocommit: bool,
        fn: Callable[Concatenate[Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        with self.engine.sync_engine.connect() as conn:
            if autocommit:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                return fn(conn, *args, **kwargs)
            with conn.begin():
                return fn(conn, *args, **kwargs)

    @property
    def _autocommit(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def _attempts(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``attempt`` until it succeeds, the error is not "unavailable" or the policy
        gives up.

        Exponential backoff with full jitter, as ``RetryPolicy`` says: after attempt ``n`` a wait
        drawn from [0, min(max_wait, first_wait * 2 ** (n - 1))]. The first attempt costs no
        more than a ``try``: a store call is cheap when nothing fails.
        """
        policy = self.retry
        number, started = 1, time.monotonic()
        while True:
            try:
                return await attempt()
            except DATABASE_ERRORS as exc:
                if (
                    not is_unavailable(exc)
                    or number >= policy.attempts
                    or time.monotonic() - started >= policy.give_up_after
                ):
                    raise _translated(exc, retried=number > 1) from exc
                log.debug("store_retrying", attempt=number, error=_describe(exc))
                cap = min(policy.max_wait, policy.first_wait * 2 ** (number - 1))
                await asyncio.sleep(random.uniform(0, cap))
                number += 1
            except StatementError as exc:
                if isinstance(exc.orig, ValueError):  # a bad value (a naive datetime): the
                    raise ValueError(str(exc.orig)) from None  # caller's bug, as in memory
                raise StoreError(f"database error: {type(exc).__name__}: {exc.orig}") from exc

    # -- accounts ---------------------------------------------------------------------------

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int:
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        # several workers start at once: whoever inserts first wins, the others find that row
        register = (
            insert(accounts)
            .values(name=name, platform=platform, handle=handle, created_at=now)
            .on_conflict_do_nothing(index_elements=[accounts.c.name])
        )

        async def go(conn: AsyncConnection) -> int:
            found = await conn.scalar(sa.select(accounts.c.id).where(accounts.c.name == name))
            if found is None:
                await conn.execute(register)
                found = await conn.scalar(sa.select(accounts.c.id).where(accounts.c.name == name))
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == found)
                .values(platform=platform, handle=handle)
            )
            assert found is not None  # inserted by us or, just now, by another worker
            return int(found)

        return int(await self._run(go))

    async def ensure_accounts(
        self, wanted: Sequence[NewAccount], *, now: datetime
    ) -> dict[str, int]:
        """``ensure_account`` for every account in one transaction of a few statements, not two
        transactions per account (issue 16: 10,000 accounts took 52 s to start on SQLite and
        232 s on PostgreSQL): one read of the stored accounts, one insert of the missing ones (in
        the order given, so ids are numbered as one call each would number them; a row another
        worker inserts first is kept), one update of those whose platform or handle changed."""
        unique = list({a.name: a for a in wanted}.values())
        insert = sqlite_insert if self.backend == "sqlite" else postgresql_insert
        register = insert(accounts).on_conflict_do_nothing(index_elements=[accounts.c.name])
        change = (
            accounts.update()
            .where(accounts.c.id == sa.bindparam("account_id"))
            .values(platform=sa.bindparam("new_platform"), handle=sa.bindparam("new_handle"))
        )
        read = sa.select(accounts.c.id, accounts.c.name, accounts.c.platform, accounts.c.handle)

        async def go(conn: AsyncConnection) -> dict[str, int]:
            if self.backend == "postgresql":
                # workers starting at once take turns (SQLite's writers do anyway): the second
                # finds the first's rows, and two inserts in different orders cannot deadlock
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ACCOUNTS_LOCK)))
            stored = {r.name: r for r in await conn.execute(read)}
            missing = [a for a in unique if a.name not in stored]
            if missing:
                await conn.execute(
                    register,
                    [
                        {
                            "name": a.name,
                            "platform": a.platform,
                            "handle": a.handle,
                            "created_at": now,
                        }
                        for a in missing
                    ],
                )
                stored = {r.name: r for r in await conn.execute(read)}
            changed = [
                {
                    "account_id": stored[a.name].id,
                    "new_platform": a.platform,
                    "new_handle": a.handle,
                }
                for a in unique
                if (stored[a.name].platform, stored[a.name].handle) != (a.platform, a.handle)
            ]
            if changed:
                await conn.execute(change, changed)
            return {a.name: int(stored[a.name].id) for a in unique}

        return await self._run(go)

    async def account_names(self) -> dict[int, str]:
        """Every stored account's id and name."""
        return await self._once(queries.account_names)
