"""The state under :class:`agent.store.sql.SqlStore`: the engine, transactions and the accounts.

:class:`SqlState` holds the engine and the retry policy, and runs every method's work in one
transaction (``_run``: retried while the database is unreachable, database errors translated to
:class:`~agent.errors.StoreError`). The accounts live here too, as every part of the store writes
rows that belong to one. :mod:`agent.store.sql_metrics`, :mod:`agent.store.sql_operations` and
:class:`~agent.store.sql.SqlStore` build on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from agent.errors import ConstraintViolation, StoreError, StoreUnavailable
from agent.logs import log, redact_text
from agent.store import queries
from agent.store.retry import DATABASE_ERRORS, DEFAULT_RETRY, RetryPolicy, is_unavailable
from agent.store.schema import accounts

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _describe(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    return redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0]) if exc else ""


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
        policy = self.retry
        retried = False
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_unavailable),
                wait=wait_random_exponential(multiplier=policy.first_wait, max=policy.max_wait),
                stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.give_up_after),
                before_sleep=lambda state: log.debug(
                    "store_retrying", attempt=state.attempt_number, error=_describe(state)
                ),
                reraise=True,
            ):
                with attempt:
                    retried = attempt.retry_state.attempt_number > 1
                    async with self.engine.begin() as conn:
                        return await fn(conn, *args, **kwargs)
        except DATABASE_ERRORS as exc:
            detail = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
            if isinstance(exc, IntegrityError) and not retried:
                raise ConstraintViolation(f"the database refused the write: {detail}") from exc
            if is_unavailable(exc):
                raise StoreUnavailable(f"database unavailable: {detail}") from exc
            if isinstance(exc, IntegrityError):
                raise ConstraintViolation(
                    f"a retried write was refused ({detail}); its first attempt, cut off by a "
                    "dropped connection, had probably been committed"
                ) from exc
            raise StoreError(f"database error: {detail}") from exc
        except StatementError as exc:
            if isinstance(exc.orig, ValueError):  # a bad value (a naive datetime): the caller's
                raise ValueError(str(exc.orig)) from None  # bug, told as the memory store does
            raise StoreError(f"database error: {type(exc).__name__}: {exc.orig}") from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

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

    async def account_names(self) -> dict[int, str]:
        """Every stored account's id and name."""
        return await self._run(queries.account_names)
