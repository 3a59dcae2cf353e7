"""Which database errors mean "unreachable, try again", and how the store retries them.

A store method is one transaction (or one statement in autocommit, a transaction by itself),
so a transaction that failed because the connection dropped,
the server refused new connections or SQLite was locked is rolled back and can simply be run
again. :func:`is_unavailable` recognises those failures through the vendor exception chain
(SQLAlchemy wraps asyncpg, whose connect-time errors arrive unwrapped); :class:`RetryPolicy`
says how often and how long ``SqlStore._run`` retries them before raising
:class:`~agent.errors.StoreUnavailable`. This retry is also what recovers a pooled connection
that was dropped while idle: connections are not pinged before use (see
:mod:`agent.store.engine`), so the first statement on a dead one fails as unavailable, SQLAlchemy
discards the pool's connections, and the next attempt opens a new one.

What a retry can meet: every write is guarded (a status in its WHERE clause, a unique key, or a
"taken_at IS NULL" test), so a transaction that did commit but whose acknowledgement was lost
is not applied twice when it is run again; at worst the retry is refused by a unique key, which
``_run`` reports as a StoreError rather than a crash. The one unguarded insert is the follower
reading (``add_account_snapshot``): a lost acknowledgement can store the same reading twice at
the same instant, which changes no attribution.

When the store is opened (``agent.bootstrap.open_store``, ``growthloop migrate``) a server that
answers but refuses us is not "unavailable": :func:`refusal` turns asyncpg's
``InvalidAuthorizationSpecificationError`` (28000, unknown role), ``InvalidPasswordError``
(28P01) and ``InvalidCatalogNameError`` (3D000, no such database), bare or wrapped by
SQLAlchemy, into a :class:`~agent.errors.StoreRefused` naming what to fix in DATABASE_URL (the
password masked), and nothing retries it. A running daemon's transactions still retry 28000 and
28P01 (a password rotated under it may be put right by the next tick).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from agent.errors import StoreRefused
from agent.logs import redact_text

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


# SQLSTATE -> what the server refused (asyncpg's class for it, for the reader)
_REFUSED_ROLE = "28000"  # asyncpg.InvalidAuthorizationSpecificationError
_REFUSED_PASSWORD = "28P01"  # asyncpg.InvalidPasswordError
_NO_DATABASE = "3D000"  # asyncpg.InvalidCatalogNameError
_REFUSALS = frozenset({_REFUSED_ROLE, _REFUSED_PASSWORD, _NO_DATABASE})


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) else None


def masked_url(url: str) -> str:
    """``url`` as an operator wrote it (postgresql://), the password shown as ``***``."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql"):
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def refusal(exc: BaseException, *, url: str) -> StoreRefused | None:
    """A :class:`StoreRefused` naming what to fix when ``exc`` (or what it wraps) is the server
    refusing the role, the password or the database name of ``url``; None otherwise."""
    refused = next((e for e in _chain(exc) if _sqlstate(e) in _REFUSALS), None)
    if refused is None:
        return None
    state = _sqlstate(refused)
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    said = redact_text(str(refused).splitlines()[0] if str(refused) else type(refused).__name__)
    shown = f"DATABASE_URL ({masked_url(url)})"
    user, database = parsed.username or "(none)", parsed.database or "(none)"
    if state == _REFUSED_PASSWORD:
        return StoreRefused(
            f"PostgreSQL at {where} refused the password of the role (user) {user!r}: {said}. "
            f"Fix the password in {shown}; on Supabase, Project Settings > Database can reset "
            "it. Nothing was retried: a wrong password does not fix itself."
        )
    if state == _REFUSED_ROLE:
        return StoreRefused(
            f"PostgreSQL at {where} refused the role (user) {user!r}: {said}. Fix the user "
            f"name in {shown}, or create that role on the server (Supabase's pooler wants "
            "postgres.<project-ref>). Nothing was retried."
        )
    return StoreRefused(
        f"PostgreSQL at {where} has no database {database!r}: {said}. Fix the database name "
        f"at the end of {shown}, or create it (createdb {database}); Supabase's database is "
        "named postgres. Nothing was retried."
    )


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
