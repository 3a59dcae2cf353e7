"""The platform interface every adapter implements, and the values that cross it.

An adapter speaks to one account on one platform. It never touches the store and never reads the
wall clock for business logic; it translates the platform's errors into ``agent.errors``'
``PlatformError`` tree at its boundary (``raise RateLimited(reset_at=...) from exc``).

A create call (:meth:`Platform.publish`, :meth:`Platform.publish_reply`) is never retried blindly
by an adapter: when its outcome is unknown the adapter raises
:class:`agent.errors.AmbiguousPublish` and the daemon reconciles the post through
:meth:`Platform.find_recent`.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from agent.conversation_models import AudiencePage


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformLimits:
    """What a platform allows one account to do."""

    max_chars: int  # per post, counted the platform's way
    posts_per_hour: int  # hard cap the platform enforces (our own caps sit below it)
    posts_per_day: int


@dataclass(frozen=True, slots=True)
class Prices:
    """What a platform bills per call, in US dollars (all 0.0 where calls are free).

    ``read`` is per object returned (a post of a metrics read, the user object of an account
    read, every object of a reconciliation page). The daemon reads it to decide how often a
    follower reading is worth taking (agent/reading.py) and to price a post before sending it
    (the monthly platform budget); what was actually billed is :attr:`Platform.spend_usd`.
    """

    post: float = 0.0
    post_with_url: float = 0.0
    read: float = 0.0

    @property
    def billed(self) -> bool:
        """Whether any call costs money."""
        return self.post > 0 or self.post_with_url > 0 or self.read > 0


FREE = Prices()  # platforms that bill nothing (Bluesky, Mastodon, Threads, a default sandbox)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedPost:
    """A post as the platform reports it."""

    platform_post_id: str
    text: str
    posted_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyTo:
    """Where one part of a thread goes (docs/threads.md): under ``parent_id``, in the chain whose
    first part is ``root_id`` (Bluesky's reply refs name both; the other platforms need only the
    parent). Both are platform post ids as :class:`PublishedPost` carries them."""

    root_id: str
    parent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PostMetrics:
    """Cumulative public counters of one post at the time it was fetched."""

    platform_post_id: str
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    impressions: int = 0
    profile_clicks: int = 0
    url_clicks: int = 0

    @property
    def engagements(self) -> int:
        return self.likes + self.reposts + self.replies + self.quotes + self.bookmarks


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    """The account's public counters at the time they were fetched."""

    handle: str
    followers: int
    following: int
    posts: int


@runtime_checkable
class Platform(Protocol):
    """One account on one platform."""

    name: str  # "sandbox", "x", "bluesky", ...

    @property
    def limits(self) -> PlatformLimits:
        """The account's limits; ``max_chars`` is in the unit of :meth:`length`."""
        ...

    @property
    def spend_usd(self) -> float:
        """What this adapter's calls have cost so far in US dollars (0.0 where calls are free).

        A running total: the daemon reads it before and after each call to bill that call.
        """
        ...

    @property
    def prices(self) -> Prices:
        """What the platform bills per call (:data:`FREE` where nothing is billed)."""
        ...

    def length(self, text: str) -> int:
        """The length of ``text`` as the platform counts it against ``limits.max_chars``."""
        ...

    async def load_limits(self) -> PlatformLimits:
        """Read the limits the platform reports (a Mastodon instance's own character limit)
        and return :attr:`limits`; platforms whose limits are fixed just return them.

        May raise a PlatformError when the platform cannot be asked; :attr:`limits` then keeps
        its defaults.
        """
        ...

    async def check_write_access(self) -> str:
        """Whether the account may post, asked without posting; a short description for
        ``growthloop accounts check``, starting "unknown" or "not checkable" where the platform
        cannot tell (agent/breaker.py then does not take it as proof that the account may post).

        Raises AuthFailed when the platform says the account cannot post.
        """
        ...

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        """Create a post. Raises a PlatformError; AmbiguousPublish when the outcome is unknown.

        ``labels`` are the post's arms (content_type, formula, hook, topic). Real platforms ignore
        them; the simulated platform's audience reacts to them in place of reading the text.
        """
        ...

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """Create a post replying to ``reply_to.parent_id``: one later part of a thread (the
        first part is a :meth:`publish`). Errors as :meth:`publish`; never retried blindly.

        The daemon publishes a thread one part at a time, each part its own publish intent
        (agent/threads.py), so a crash resumes the chain from the first part not on the platform.
        """
        ...

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        """Current counters of the given posts; ids the platform no longer knows are omitted."""
        ...

    async def fetch_account(self) -> AccountInfo:
        """The account's current follower/following/post counts."""
        ...

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        """The account's own posts created at or after ``since``, newest first (reconciliation)."""
        ...

    async def delete(self, post_id: str) -> None: ...

    async def aclose(self) -> None: ...

    # -- audience and conversation reads (issue 19 item 2, issue 21 item 2) ---------------------

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """The sources :meth:`read_audience` reads, cheapest complete first (e.g. Bluesky's
        ``("notifications", "followers")``); empty where nothing can be read (or reading is off,
        as X's is on pay-per-use by default)."""
        ...

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of ``source`` from ``cursor`` (None: the start): who followed and engaged,
        the replies and mentions with their text, or a page of the follower list (``followers``).

        ``posts`` are the account's recent platform post ids, for sources read per post (X's
        liking users, Threads' replies). Each event and conversation carries the platform's id,
        so a page read twice is stored once. ``budget_usd``: the most this page may cost where
        reads are billed (None: no bound); a page that could cost more is refused before it is
        requested (``ReadBudgetExhausted``). Raises a PlatformError (``RateLimited`` with its
        reset time).
        """
        ...


def env_name(prefix: str | None, name: str) -> str:
    """The environment variable an account's secret ``name`` is read from: ``<PREFIX>_<NAME>``
    (agent/config.py, ``Account.env_prefix``), or ``name`` alone when no prefix is known."""
    return f"{prefix}_{name}" if prefix else name


def text_hash(text: str) -> str:
    """A stable fingerprint of a post's text, used to find it again during reconciliation.

    Unicode-normalised (NFC) and stripped of surrounding whitespace, because platforms may
    normalise what they store.
    """
    normal = unicodedata.normalize("NFC", text).strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()
