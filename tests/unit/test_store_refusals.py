"""A PostgreSQL server that refuses the role, the password or the database name: translated at
the store boundary into StoreRefused, naming what to fix in DATABASE_URL, the password masked.

The unknown role and database are also refused by the real local server in
tests/acceptance/test_operator_errors.py. A wrong password cannot be: the test server trusts
every local connection (pg_hba.conf ``trust``), so it never checks one. Here the refusals are
asyncpg's own exception classes (what asyncpg raises for SQLSTATE 28P01, 28000, 3D000), bare as
asyncpg raises them at connect time and wrapped as SQLAlchemy wraps driver errors.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import OperationalError

from agent.errors import StoreError, StoreRefused
from agent.store.retry import is_unavailable, masked_url, refusal

URL = "postgresql+asyncpg://app_user:hunter2-secret@db.example.internal:6543/app"


def wrapped(error: BaseException) -> OperationalError:
    return OperationalError("connect", None, error)


@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "sqlalchemy"])
def test_wrong_password_names_the_role_and_database_url_with_the_password_masked(
    wrap: bool,
) -> None:
    error = asyncpg.InvalidPasswordError('password authentication failed for user "app_user"')
    found = refusal(wrapped(error) if wrap else error, url=URL)
    assert isinstance(found, StoreRefused) and isinstance(found, StoreError)
    message = str(found)
    assert "refused the password of the role (user) 'app_user'" in message
    assert "DATABASE_URL (postgresql://app_user:***@db.example.internal:6543/app)" in message
    assert "hunter2-secret" not in message


def test_unknown_role_and_missing_database_say_what_to_fix() -> None:
    role = refusal(
        asyncpg.InvalidAuthorizationSpecificationError('role "app_user" does not exist'), url=URL
    )
    database = refusal(asyncpg.InvalidCatalogNameError('database "app" does not exist'), url=URL)
    assert role is not None and "Fix the user name in DATABASE_URL" in str(role)
    assert database is not None and "no database 'app'" in str(database)
    assert "createdb app" in str(database)


def test_other_errors_are_not_refusals() -> None:
    assert refusal(ConnectionRefusedError(111, "Connect call failed"), url=URL) is None
    assert refusal(asyncpg.TooManyConnectionsError("too many clients"), url=URL) is None


def test_a_running_daemon_still_retries_a_refused_password() -> None:
    # a password rotated under a running daemon may be put right before its next tick
    error = wrapped(asyncpg.InvalidPasswordError("password authentication failed"))
    assert is_unavailable(error)


def test_masked_url_shows_the_scheme_operators_write() -> None:
    assert masked_url(URL) == "postgresql://app_user:***@db.example.internal:6543/app"
