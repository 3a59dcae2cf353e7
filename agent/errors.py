"""growthloop's error tree.

Every error growthloop raises on purpose derives from :class:`GrowthloopError`. Vendor exceptions
(tweepy, atproto, aiohttp, asyncpg, SQLAlchemy...) are translated at the boundary that meets them
and never leak into ``agent/`` or ``learning/``::

    GrowthloopError
    ├── ConfigError                      bad config file, missing secret, unusable data directory
    ├── StoreError                       the database refused or could not be reached
    │   ├── ConstraintViolation          a write broke a unique key, a foreign key or a NOT
    │   │                                NULL column (both stores; never SQLAlchemy's error)
    │   ├── SchemaOutOfDate              the schema is behind the code (`growthloop migrate`)
    │   ├── StoreRefused                 the server answered but refused us: unknown role/user,
    │   │                                wrong password, no such database (fix DATABASE_URL)
    │   └── StoreUnavailable             unreachable or dropped connection, still failing after
    │                                    a few retries with backoff; the daemon tries next tick
    ├── GenerationError                  a generator could not produce a valid draft
    ├── DraftError (agent/drafts.py)     UnknownDraft, DraftRefused: `growthloop drafts` refusals
    ├── PostError (agent/posts.py)       UnknownPost, PostRefused: `growthloop posts` refusals
    ├── ExperimentError                  a bad experiment file or command (agent/experiment_spec.py)
    ├── ShareError (agent/report/share.py) a report could not be shared through Supabase Storage
    │   ├── ShareRefused                 Storage answered no: the key, a public bucket, a name
    │   └── ShareUnavailable             Storage could not be reached or failed (5xx)
    └── PlatformError                    anything a platform adapter reports
        ├── TransientPlatformError       worth retrying later (reads are retried with backoff)
        │   ├── RateLimited(reset_at)    the platform asked us to wait until ``reset_at``
        │   ├── PlatformUnavailable      5xx, connection refused, DNS...
        │   └── AmbiguousPublish         a create call with an unknown outcome (timeout after send):
        │                                never retried blindly, always reconciled
        └── PermanentPlatformError       retrying will not help
            ├── AuthFailed               bad or insufficient credentials (names the permission)
            ├── DuplicateContent         the platform says this text was already posted
            ├── ContentRejected          too long, refused by the platform's rules
            └── ReadBudgetExhausted      a metered audience read (X) would pass the month's read
                                         budget: refused before the request is sent
"""

from __future__ import annotations

from datetime import datetime


class GrowthloopError(Exception):
    """Something went wrong in growthloop."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())


class ConfigError(GrowthloopError):
    """The configuration is not usable."""


class StoreError(GrowthloopError):
    """The database refused the operation or could not be reached."""


class ConstraintViolation(StoreError):
    """The store refused a write that breaks a constraint of the schema: a duplicate of a unique
    key (an idempotency key, a second attribution for the same post, method and window), a
    reference to a row that does not exist, a required value missing. Both store
    implementations raise it; SQLAlchemy's IntegrityError never leaves the store."""


class SchemaOutOfDate(StoreError):
    """The database schema is not at the version this code expects; run `growthloop migrate`."""


class StoreRefused(StoreError):
    """The database server refused the connection: the role (user), its password or the
    database name in DATABASE_URL is wrong. Retrying will not help; the message names what to
    fix, with the password masked."""


class StoreUnavailable(StoreError):
    """The database could not be reached (connection refused, dropped or locked), even after
    retrying with backoff."""


class GenerationError(GrowthloopError):
    """The generator could not produce a valid draft."""


class ExperimentError(GrowthloopError):
    """The experiment file or command cannot be used (agent/experiment_spec.py)."""


class PlatformError(GrowthloopError):
    """A platform adapter reported an error."""


class TransientPlatformError(PlatformError):
    """A platform error that may go away if retried later."""


class RateLimited(TransientPlatformError):
    """The platform rate-limited us."""

    def __init__(self, message: str | None = None, *, reset_at: datetime | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class PlatformUnavailable(TransientPlatformError):
    """The platform could not be reached or answered with a server error."""


class AmbiguousPublish(TransientPlatformError):
    """The publish request may or may not have taken effect; the post must be reconciled."""


class PermanentPlatformError(PlatformError):
    """A platform error that retrying will not fix."""


class AuthFailed(PermanentPlatformError):
    """The platform refused our credentials or they lack a permission."""


class DuplicateContent(PermanentPlatformError):
    """The platform refused the post as a duplicate of an earlier one."""


class ContentRejected(PermanentPlatformError):
    """The platform refused the post's content (too long, against its rules)."""


class ReadBudgetExhausted(PermanentPlatformError):
    """A metered audience read would pass this month's read budget (``audience.read.x_budget_usd``);
    nothing was requested."""


class ShareError(GrowthloopError):
    """The report could not be shared through Supabase Storage."""


class ShareRefused(ShareError):
    """Supabase Storage refused the request (a wrong key, a public bucket, an invalid name): fix
    the settings and try again."""


class ShareUnavailable(ShareError):
    """Supabase Storage could not be reached or failed (a network error or a 5xx answer)."""
