"""Which database errors mean "unreachable, try again", and how the store retries them.

A store method is one transaction, so a transaction that failed because the connection dropped,
the server refused new connections or SQLite was locked is rolled back and can simply be run
again. :func:`is_unavailable` recognises those failures through the vendor exception chain
(SQLAlchemy wraps asyncpg, whose connect-time errors arrive unwrapped); :class:`RetryPolicy`
says how often and how long ``SqlStore._run`` retries them before raising
:class:`~agent.errors.StoreUnavailable`.

What a retry can meet: every write is guarded (a status in its WHERE clause, a unique key, or a
"taken_at IS NULL" test), so a transaction that did commit but whose acknowledgement was lost
is not applied twice when it is run again; at worst the retry is refused by a unique key, which
``_run`` reports as a StoreError rather than a crash. The one unguarded insert is the follower
reading (``add_account_snapshot``): a lost acknowledgement can store the same reading twice at
the same instant, which changes no attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError

# Errors from the database layer that _run translates (anything else is a bug and propagates).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    DBAPIError,
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    asyncpg.PostgresError,  # asyncpg's connect-time errors are not wrapped by SQLAlchemy
    asyncpg.InterfaceError,
)

# SQLSTATEs that mean the server (or the way to it) is unavailable, not that the query is wrong.
_UNAVAILABLE_CLASSES = ("08",)  # connection exception: does not exist, failure, rejected
_UNAVAILABLE_STATES = frozenset(
    {
        "28000",  # role may not log in (revoked access, a disabled role, a pooler refusing)
        "28P01",  # password rejected (a rotated password on a running daemon)
        "53300",  # too many connections
        "57P01",  # admin shutdown / pg_terminate_backend
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now (starting up, recovery)
    }
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, then ``__cause__``), without cycles."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen) and len(seen) < 10:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not be reached or the connection dropped."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for error in _chain(exc):
        if isinstance(error, OSError | asyncpg.InterfaceError):
            return True
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and (
            state in _UNAVAILABLE_STATES or state.startswith(_UNAVAILABLE_CLASSES)
        ):
            return True
        if isinstance(error, OperationalError) or type(error).__name__ == "OperationalError":
            if any(text in str(error).lower() for text in _SQLITE_BUSY):
                return True
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How ``SqlStore`` retries a transaction the database was unavailable for.

    Exponential backoff with full jitter from ``first_wait`` up to ``max_wait`` between
    attempts; it gives up after ``attempts`` tries or once ``give_up_after`` seconds have passed
    since the first, whichever comes first. The defaults ride out a dropped connection, a
    pooler restart or a failover of a few seconds inside one call; a longer outage fails the
    cycle (``store_unavailable``) and the daemon tries again on its next tick.
    """

    attempts: int = 5
    first_wait: float = 0.2  # seconds before the second attempt
    max_wait: float = 3.0  # seconds, the longest wait between two attempts
    give_up_after: float = 10.0  # seconds since the first attempt


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)
