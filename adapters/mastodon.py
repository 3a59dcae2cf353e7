"""Mastodon: one account on one instance, through Mastodon.py (:class:`MastodonPlatform`).

Mastodon.py is synchronous (requests), so every call runs in a worker thread
(``asyncio.to_thread``). The client is built with ``ratelimit_method="throw"`` (never sleep inside
a call: the daemon decides when to come back) and ``version_check_mode="none"`` (no request at
construction).

Errors are translated here, and only here, into ``agent.errors``:

============================================  =================================================
Mastodon.py / HTTP                            growthloop
============================================  =================================================
429 (``MastodonRatelimitError``)              ``RateLimited(reset_at=...)`` from X-RateLimit-Reset
401, 403 (bad token, missing scope)           ``AuthFailed`` naming the scope the call needs
422 on publish (too long, empty...)           ``ContentRejected``
other 4xx                                     ``PermanentPlatformError`` (the request was refused)
5xx, timeout, reset, unreadable 2xx body      ``AmbiguousPublish`` on publish (the request left;
                                              the post may exist), ``PlatformUnavailable`` on reads
connection refused / connect timeout          ``PlatformUnavailable`` (nothing was sent)
============================================  =================================================

Exactly-once: ``publish`` sends the caller's idempotency key as Mastodon's ``Idempotency-Key``
header, so a resend with the same key returns the first status instead of posting twice. The
daemon still never resends blindly: after ``AmbiguousPublish`` it reconciles with
:meth:`MastodonPlatform.find_recent`, whose texts are the statuses' HTML ``content`` turned back
into plain text (:func:`html_to_text`), so that ``text_hash`` of what we sent matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from html.parser import HTMLParser
from typing import Any, TypeVar

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from adapters.base import (
    FREE,
    AccountInfo,
    PlatformLimits,
    PostMetrics,
    Prices,
    PublishedPost,
    ReplyTo,
    env_name,
)
from adapters.length import MASTODON_DEFAULT_MAX_CHARS, URL_CHARS, mastodon_length
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import AudiencePage, Conversation, ConversationKind, Follower
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    PermanentPlatformError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)

__all__ = ["MastodonPlatform", "from_config", "html_to_text"]

SECRET_ACCESS_TOKEN = "MASTODON_ACCESS_TOKEN"
DEFAULT_MAX_CHARS = MASTODON_DEFAULT_MAX_CHARS  # Mastodon's default when the instance is silent
DEFAULT_REQUEST_TIMEOUT_S = 30.0  # seconds, per HTTP request
# Mastodon's API limit (300 requests / 5 min) is not a posting cap, and instances do not publish
# one; these are our own conservative caps, well below what an instance tolerates.
DEFAULT_POSTS_PER_HOUR = 10
DEFAULT_POSTS_PER_DAY = 100
DEFAULT_RATELIMIT_WAIT = timedelta(minutes=5)  # Mastodon's window, when no reset header came
PAGE_SIZE = 40  # the most statuses Mastodon returns per page
WRITE_SCOPES = frozenset({"write", "write:statuses"})  # either lets a token post statuses

T = TypeVar("T")


class MastodonPlatform:
    """An :class:`adapters.base.Platform` for one Mastodon account."""

    name = "mastodon"

    def __init__(
        self,
        *,
        access_token: str,
        base_url: str,
        now: Callable[[], datetime],
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        posts_per_hour: int = DEFAULT_POSTS_PER_HOUR,
        posts_per_day: int = DEFAULT_POSTS_PER_DAY,
        env_prefix: str | None = None,
    ) -> None:
        self._now = now
        # the variable the token is read from, named in credential errors
        self._token_var = env_name(env_prefix, SECRET_ACCESS_TOKEN)
        self._client = Mastodon(
            access_token=access_token,
            api_base_url=base_url,
            ratelimit_method="throw",
            request_timeout=request_timeout,
            version_check_mode="none",
        )
        self._posts_per_hour = posts_per_hour
        self._posts_per_day = posts_per_day
        self._max_chars: int | None = None
        self._url_chars = URL_CHARS  # characters_reserved_per_url, once load_limits ran
        self._account_id: str | None = None

    # -- limits ---------------------------------------------------------------------------------

    @property
    def limits(self) -> PlatformLimits:
        """The instance's character limit once :meth:`load_limits` ran, else Mastodon's default."""
        return PlatformLimits(
            max_chars=self._max_chars or DEFAULT_MAX_CHARS,
            posts_per_hour=self._posts_per_hour,
            posts_per_day=self._posts_per_day,
        )

    @property
    def spend_usd(self) -> float:
        """Mastodon instances do not bill API calls."""
        return 0.0

    @property
    def prices(self) -> Prices:
        """Nothing is billed."""
        return FREE

    def length(self, text: str) -> int:
        """The length the instance counts: URLs as ``characters_reserved_per_url``, remote
        mentions by their username, in grapheme clusters (:mod:`adapters.length`)."""
        return mastodon_length(text, url_chars=self._url_chars)

    async def load_limits(self) -> PlatformLimits:
        """Read ``configuration.statuses.max_characters`` (and ``characters_reserved_per_url``)
        from the instance (once).

        ``limits`` is a synchronous property, so it cannot do I/O itself; :meth:`publish` calls
        this before its first post. A failure keeps the default (500) and is retried next time.
        """
        if self._max_chars is None:
            try:
                instance = await self._call(self._instance_info, scope="read")
            except PlatformError:
                return self.limits
            self._max_chars = _max_characters(instance)
            self._url_chars = _url_characters(instance)
        return self.limits

    # -- Platform -------------------------------------------------------------------------------

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        await self.load_limits()
        try:
            status = await asyncio.to_thread(
                self._client.status_post,
                text,
                idempotency_key=idempotency_key,
                visibility="public",
            )
        except MastodonError as exc:
            raise self._publish_error(exc) from exc
        try:
            return _published(status)
        except (KeyError, TypeError, ValueError) as exc:
            # 2xx with a body we cannot read: the status most likely exists.
            raise AmbiguousPublish(
                f"Mastodon answered publish with an unreadable status: {exc!r}"
            ) from exc

    # -- threads (docs/threads.md) ---------------------------------------------------------

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """A later part of a thread: ``POST /api/v1/statuses`` with ``in_reply_to_id`` (the
        parent; Mastodon finds the root itself), the part's own ``Idempotency-Key``. Errors as
        :meth:`publish`."""
        await self.load_limits()
        try:
            status = await asyncio.to_thread(
                self._client.status_post,
                text,
                in_reply_to_id=reply_to.parent_id,
                idempotency_key=idempotency_key,
                visibility="public",
            )
        except MastodonError as exc:
            raise self._publish_error(exc) from exc
        try:
            return _published(status)
        except (KeyError, TypeError, ValueError) as exc:
            raise AmbiguousPublish(
                f"Mastodon answered a reply with an unreadable status: {exc!r}"
            ) from exc

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        metrics: dict[str, PostMetrics] = {}
        for post_id in post_ids:
            try:
                status = await self._call(self._client.status, post_id, scope="read:statuses")
            except _NotFound:
                continue  # deleted, or never existed: omitted, as the Protocol says
            metrics[post_id] = _parse(partial(_metrics, post_id, status), what="status")
        return metrics

    async def fetch_account(self) -> AccountInfo:
        account = await self._call(self._client.account_verify_credentials, scope="read:accounts")
        info = _parse(
            lambda: AccountInfo(
                handle=str(account["acct"]),
                followers=int(account["followers_count"]),
                following=int(account["following_count"]),
                posts=int(account["statuses_count"]),
            ),
            what="account",
        )
        self._account_id = _parse(lambda: str(account["id"]), what="account")
        return info

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        if self._account_id is None:
            await self.fetch_account()
        assert self._account_id is not None
        since = _aware(since)
        found: list[PublishedPost] = []
        max_id: str | None = None
        while len(found) < limit:
            page = await self._call(
                self._client.account_statuses,
                self._account_id,
                exclude_reblogs=True,
                max_id=max_id,
                limit=min(PAGE_SIZE, limit - len(found)),
                scope="read:statuses",
            )
            posts = [_parse(partial(_published, s), what="status") for s in page]
            if not posts:
                break
            found.extend(p for p in posts if p.posted_at >= since)
            # Newest first: once a page reaches before ``since`` there is nothing older to want.
            if min(p.posted_at for p in posts) < since:
                break
            max_id = posts[-1].platform_post_id
        return found[:limit]

    async def delete(self, post_id: str) -> None:
        try:
            await self._call(self._client.status_delete, post_id, scope="write:statuses")
        except _NotFound:
            return  # already gone: deleting is idempotent

    async def check_write_access(self) -> str:
        """Whether the token may post, asked without posting (``growthloop accounts check``).

        ``GET /api/v1/apps/verify_credentials`` lists ``scopes`` since Mastodon 4.3; older
        instances do not, and then the answer is "unknown". Those are the scopes of the token's
        application, which bound the token's own: an application without ``write`` or
        ``write:statuses`` cannot have issued a token that posts.
        """
        app = await self._call(self._client.app_verify_credentials, scope="write:statuses")
        scopes = _parse(partial(_scopes, app), what="application")
        if scopes is None:
            return "unknown (the instance does not list the token's scopes)"
        if not scopes & WRITE_SCOPES:
            listed = " ".join(sorted(scopes)) or "none"
            raise AuthFailed(
                f"Mastodon token lacks write:statuses (its scopes: {listed}); create a token "
                f"with the write:statuses (or write) scope to publish and put it in "
                f"{self._token_var}."
            )
        return "write:statuses granted"

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.session.close)

    # -- audience reads (issue 19 item 2, issue 21 item 2; docs/conversations.md) ---------------

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """``notifications`` (GET /api/v1/notifications: follow, favourite, reblog, mention -
        replies are mentions answering our posts) and ``followers`` (for unfollows). Free."""
        return MASTODON_AUDIENCE_SOURCES

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of ``source``. Notifications are read forwards with ``min_id`` (the page
        just newer than the cursor, the newest id read so far), so the cursor only grows and a
        crash resumes after the last stored page; followers page with the ``max_id`` of the
        ``Link: rel="next"`` header."""
        if source not in MASTODON_AUDIENCE_SOURCES:
            raise ValueError(
                f"Mastodon reads {', '.join(MASTODON_AUDIENCE_SOURCES)}, not {source!r}"
            )
        if self._account_id is None:
            await self.fetch_account()
        me = self._account_id
        assert me is not None
        if source == "followers":
            found = await self._call(
                self._client.account_followers,
                me,
                max_id=cursor or None,
                limit=FOLLOWERS_PAGE_SIZE,
                scope="read:accounts",
            )
            people = [_parse(partial(_follower, a), what="account") for a in found]
            following = getattr(found, "_pagination_next", None)
            after = str(following["max_id"]) if following and people else None
            return AudiencePage(
                source=source,
                followers=tuple(people),
                cursor=after,
                more=after is not None,
                reads=len(people),
            )
        found = await self._call(
            self._client.notifications,
            min_id=cursor or "0",  # the first read starts at the oldest the server keeps
            limit=NOTIFICATIONS_PAGE_SIZE,
            types=list(NOTIFICATION_TYPES),
            scope="read:notifications",
        )
        events, said = _parse(partial(_notifications, list(found), me), what="notification")
        ids = [int(n["id"]) for n in found]
        return AudiencePage(
            source=source,
            events=tuple(events),
            conversations=tuple(said),
            cursor=str(max(ids)) if ids else cursor,
            more=len(ids) >= NOTIFICATIONS_PAGE_SIZE,
            reads=len(ids),
        )

    def _instance_info(self) -> Any:
        # Not Mastodon.py's instance(): its version detection recurses without end
        # (RecursionError) when the instance cannot be reached. Ask v2 (Mastodon >= 4.0), then v1.
        try:
            return self._client.instance_v2()
        except MastodonNotFoundError:
            return self._client.instance_v1()

    # -- error translation ----------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any, scope: str, **kwargs: Any) -> T:
        """Run a read (or delete) in a thread, translating Mastodon.py's errors."""
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except MastodonError as exc:
            raise self._read_error(exc, scope=scope) from exc

    def _rate_limited(self, exc: MastodonRatelimitError) -> RateLimited:
        reset = self._client.ratelimit_reset  # epoch seconds, set from X-RateLimit-Reset
        if reset is not None:
            reset_at = datetime.fromtimestamp(float(reset), UTC)
        else:
            reset_at = _aware(self._now()) + DEFAULT_RATELIMIT_WAIT
        return RateLimited(
            f"Mastodon rate limit hit; resets at {reset_at.isoformat()}.", reset_at=reset_at
        )

    def _publish_error(self, exc: MastodonError) -> PlatformError:
        status = _http_status(exc)
        if isinstance(exc, MastodonRatelimitError):
            if _is_429(exc):
                return self._rate_limited(exc)
            # A response came back but its rate-limit headers were unreadable: it may be a 2xx.
            return AmbiguousPublish(f"Mastodon publish outcome unknown: {exc}")
        if isinstance(exc, MastodonIllegalArgumentError):  # refused before anything was sent
            return PermanentPlatformError(f"Mastodon.py refused the post's arguments: {exc}")
        if isinstance(exc, MastodonNetworkError):
            if _never_sent(exc):
                return PlatformUnavailable(f"Mastodon could not be reached: {exc}")
            return AmbiguousPublish(f"Mastodon publish outcome unknown (network): {exc}")
        if status in (401, 403) or isinstance(exc, MastodonUnauthorizedError):
            return AuthFailed(
                f"Mastodon refused the access token for publishing (HTTP {status}): check "
                f"{self._token_var}; it needs the write:statuses scope. {_detail(exc)}"
            )
        if status == 422:
            return ContentRejected(f"Mastodon rejected the post: {_detail(exc)}")
        if isinstance(exc, MastodonServerError) or status is None or status >= 500:
            return AmbiguousPublish(f"Mastodon publish outcome unknown (HTTP {status}): {exc}")
        return PermanentPlatformError(f"Mastodon refused the post (HTTP {status}): {_detail(exc)}")

    def _read_error(self, exc: MastodonError, *, scope: str) -> PlatformError:
        status = _http_status(exc)
        if isinstance(exc, MastodonRatelimitError) and _is_429(exc):
            return self._rate_limited(exc)
        if status in (401, 403) or isinstance(exc, MastodonUnauthorizedError):
            return AuthFailed(
                f"Mastodon refused the access token (HTTP {status}): check {self._token_var}; "
                f"it needs the {scope} scope. {_detail(exc)}"
            )
        if status == 404 or isinstance(exc, MastodonNotFoundError):
            return _NotFound(f"Mastodon: not found. {_detail(exc)}")
        if status is not None and 400 <= status < 500:
            return PermanentPlatformError(
                f"Mastodon refused the request (HTTP {status}): {_detail(exc)}"
            )
        return PlatformUnavailable(f"Mastodon is unavailable: {exc}")


class _NotFound(PermanentPlatformError):
    """Mastodon does not know this id (deleted or never existed)."""


def from_config(
    *,
    account: str,
    secrets: Mapping[str, str],
    base_url: str | None,
    now: Callable[[], datetime],
    env_prefix: str | None = None,
) -> MastodonPlatform:
    """Build the adapter for one configured account (see ``agent.bootstrap``); its token is
    read from ``<env_prefix>_MASTODON_ACCESS_TOKEN``, named so in error messages."""
    if not base_url:
        raise ConfigError(
            f"account {account!r}: Mastodon needs api_base_url, the instance's address "
            "(e.g. https://mastodon.social)."
        )
    token = secrets.get(SECRET_ACCESS_TOKEN)
    if not token:
        raise ConfigError(
            f"account {account!r}: the secret {env_name(env_prefix, SECRET_ACCESS_TOKEN)} "
            "is not set."
        )
    return MastodonPlatform(access_token=token, base_url=base_url, now=now, env_prefix=env_prefix)


# -- helpers ------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            if self._paragraphs:
                self.parts.append("\n\n")
            self._paragraphs += 1
        elif tag == "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Turn a status' HTML ``content`` back into the plain text that was posted.

    Mastodon wraps paragraphs (blank-line separated) in ``<p>``, turns single newlines into
    ``<br />``, escapes ``& < > "`` and splits links into visible/invisible ``<span>`` parts, whose
    text joined together is the original URL.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _metrics(post_id: str, status: Mapping[str, Any]) -> PostMetrics:
    return PostMetrics(
        platform_post_id=post_id,
        likes=int(status.get("favourites_count") or 0),
        reposts=int(status.get("reblogs_count") or 0),
        replies=int(status.get("replies_count") or 0),
    )


def _published(status: Mapping[str, Any]) -> PublishedPost:
    return PublishedPost(
        platform_post_id=str(status["id"]),
        text=html_to_text(str(status.get("content") or "")),
        posted_at=_as_datetime(status["created_at"]),
    )


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _max_characters(instance: Mapping[str, Any]) -> int:
    try:
        value = instance["configuration"]["statuses"]["max_characters"]
        return int(value) if int(value) > 0 else DEFAULT_MAX_CHARS
    except (KeyError, TypeError, ValueError):
        return DEFAULT_MAX_CHARS


def _url_characters(instance: Mapping[str, Any]) -> int:
    try:
        value = int(instance["configuration"]["statuses"]["characters_reserved_per_url"])
        return value if value >= 0 else URL_CHARS
    except (KeyError, TypeError, ValueError):
        return URL_CHARS


def _scopes(app: Mapping[str, Any]) -> set[str] | None:
    """The application's scopes (a list; a space-separated string tolerated), None if unlisted."""
    value = app.get("scopes")
    if value is None:
        return None
    if isinstance(value, str):
        return set(value.split())
    if not isinstance(value, list | tuple):
        raise TypeError(f"scopes is not a list: {value!r}")
    return {str(scope) for scope in value}


def _parse(build: Callable[[], T], *, what: str) -> T:
    try:
        return build()
    except (KeyError, TypeError, ValueError) as exc:
        raise PlatformUnavailable(f"Mastodon returned an unreadable {what}: {exc!r}") from exc


def _http_status(exc: MastodonError) -> int | None:
    # Mastodon.py raises HTTP errors as (message, status_code, reason, error_message).
    if isinstance(exc, MastodonAPIError) and len(exc.args) >= 2 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def _detail(exc: MastodonError) -> str:
    if len(exc.args) >= 4 and exc.args[3]:
        return str(exc.args[3])
    return str(exc)


def _is_429(exc: MastodonRatelimitError) -> bool:
    return str(exc).startswith("Hit rate limit")


def _never_sent(exc: MastodonNetworkError) -> bool:
    """True when the connection could not even be opened, so the request never left."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and not isinstance(
        cause, requests.exceptions.ReadTimeout
    ):
        text = repr(cause)
        return "NewConnectionError" in text or "Connection refused" in text
    return False


# -- audience reads -------------------------------------------------------------------------------

MASTODON_AUDIENCE_SOURCES = ("notifications", "followers")
NOTIFICATIONS_PAGE_SIZE = 80  # the most GET /api/v1/notifications returns per page
FOLLOWERS_PAGE_SIZE = 80  # the most GET /api/v1/accounts/:id/followers returns per page
NOTIFICATION_TYPES = ("follow", "favourite", "reblog", "mention")
_TYPES = {
    "follow": AudienceKind.FOLLOW,
    "favourite": AudienceKind.LIKE,
    "reblog": AudienceKind.REPOST,
}


def _follower(account: Mapping[str, Any]) -> Follower:
    return Follower(user_id=str(account["id"]), handle=str(account["acct"]))


def _notifications(
    items: Sequence[Mapping[str, Any]], me: str
) -> tuple[list[AudienceEvent], list[Conversation]]:
    """The events and the replies/mentions of a page of notifications (``me``: our account id).
    A mention answering one of our statuses is a reply."""
    events: list[AudienceEvent] = []
    said: list[Conversation] = []
    for n in items:
        kind, account, status = str(n["type"]), n["account"], n.get("status")
        user, handle, at = str(account["id"]), str(account["acct"]), _as_datetime(n["created_at"])
        source = f"notification:{n['id']}"
        if kind in _TYPES:
            events.append(
                AudienceEvent(
                    kind=_TYPES[kind],
                    user_id=user,
                    handle=handle,
                    at=at,
                    source_id=source,
                    platform_post_id=str(status["id"]) if status else None,
                )
            )
        elif kind == "mention" and status:
            parent = status.get("in_reply_to_id")
            reply = parent is not None and str(status.get("in_reply_to_account_id")) == me
            if reply:
                events.append(
                    AudienceEvent(
                        kind=AudienceKind.REPLY,
                        user_id=user,
                        handle=handle,
                        at=at,
                        source_id=source,
                        platform_post_id=str(parent),
                    )
                )
            said.append(
                Conversation(
                    kind=ConversationKind.REPLY if reply else ConversationKind.MENTION,
                    platform_post_id=str(status["id"]),
                    parent_post_id=str(parent) if parent is not None else None,
                    author_id=user,
                    author_handle=handle,
                    text=html_to_text(str(status.get("content") or "")),
                    at=at,
                )
            )
    return events, said
