"""Bluesky: one account on its PDS, through atproto's async client (:class:`BlueskyPlatform`).

The adapter logs in lazily, on its first call, with ``com.atproto.server.createSession`` (handle +
app password) and then REUSES that session: createSession is rate-limited per account (30 per
5 minutes, 300 per day), so it is never called per request. atproto refreshes the access token
with ``refreshSession`` shortly before it expires; when the PDS still answers ``ExpiredToken`` /
``InvalidToken`` (revoked, clock skew) the adapter refreshes once - or logs in again when the
refresh token is refused too - and repeats the call, which is safe even for a create because a
refused token means the PDS did nothing. The session is kept in memory only
(:attr:`BlueskyPlatform.session_string`, atproto's export format).

Errors are translated here, and only here, into ``agent.errors``:

============================================  =================================================
atproto / HTTP                                growthloop
============================================  =================================================
429 (``RateLimitExceededError``)              ``RateLimited(reset_at=...)`` from ``ratelimit-reset``
                                              (epoch seconds)
401, 403, invalid identifier or password      ``AuthFailed`` naming ``BLUESKY_APP_PASSWORD``
400 on publish (InvalidRequest, too long)     ``ContentRejected``; 413 too
other 4xx                                     ``PermanentPlatformError``
5xx, timeout, reset, unreadable 2xx body      ``AmbiguousPublish`` on publish (the request left;
                                              the post may exist), ``PlatformUnavailable`` on reads
connection refused / connect timeout          ``PlatformUnavailable`` (nothing was sent)
============================================  =================================================

Exactly-once: Bluesky has no idempotency key for createRecord, so the daemon reconciles an
``AmbiguousPublish`` through :meth:`BlueskyPlatform.find_recent` (the author feed, whose
``record.text`` is exactly the text that was sent).

Limits: a post's text is at most 300 graphemes (and 3000 UTF-8 bytes); longer texts are refused
with ``ContentRejected`` before any request. Bluesky's write budget is 5000 points per hour and
35000 per day per account, a create costing 3 points (about 1666/hour, 11666/day); our caps sit
far below that, at a pace that does not look like spam.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
from atproto import AsyncClient, AsyncRequest
from atproto_client import exceptions as atexc
from atproto_client import models
from atproto_core.exceptions import AtProtocolError

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
from adapters.length import BLUESKY_MAX_GRAPHEMES, grapheme_length
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

__all__ = ["BlueskyPlatform", "from_config"]

SECRET_HANDLE = "BLUESKY_HANDLE"
SECRET_APP_PASSWORD = "BLUESKY_APP_PASSWORD"
DEFAULT_BASE_URL = "https://bsky.social"  # the PDS that hosts most accounts (an entryway)
MAX_GRAPHEMES = BLUESKY_MAX_GRAPHEMES  # per post (app.bsky.feed.post lexicon: text maxGraphemes)
MAX_TEXT_BYTES = 3000  # per post, UTF-8 (lexicon: text maxLength)
DEFAULT_REQUEST_TIMEOUT_S = 30.0  # seconds, per HTTP request
DEFAULT_CONNECT_TIMEOUT_S = 10.0  # seconds, to open a connection
# Far below Bluesky's write budget (5000 points/hour, 35000/day; a create costs 3 points).
DEFAULT_POSTS_PER_HOUR = 30
DEFAULT_POSTS_PER_DAY = 300
DEFAULT_RATELIMIT_WAIT = timedelta(minutes=5)  # when a 429 carries no ratelimit-reset
GET_POSTS_BATCH = 25  # the most uris app.bsky.feed.getPosts accepts
FEED_PAGE_SIZE = 100  # the most items app.bsky.feed.getAuthorFeed returns per page
_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})

T = TypeVar("T")


def _check_text(text: str) -> None:
    count = grapheme_length(text)
    if count > MAX_GRAPHEMES:
        raise ContentRejected(
            f"Bluesky posts are at most {MAX_GRAPHEMES} graphemes; this one has {count}."
        )
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ContentRejected(f"Bluesky posts are at most {MAX_TEXT_BYTES} bytes of UTF-8.")
    if not text.strip():
        raise ContentRejected("Bluesky posts need some text.")


class BlueskyPlatform:
    """An :class:`adapters.base.Platform` for one Bluesky account."""

    name = "bluesky"

    def __init__(
        self,
        *,
        handle: str,
        app_password: str,
        base_url: str,
        now: Callable[[], datetime],
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        posts_per_hour: int = DEFAULT_POSTS_PER_HOUR,
        posts_per_day: int = DEFAULT_POSTS_PER_DAY,
        env_prefix: str | None = None,
    ) -> None:
        self._handle = handle
        # the variable the app password is read from, named in credential errors
        self._password_var = env_name(env_prefix, SECRET_APP_PASSWORD)
        self._app_password = app_password
        self._now = now
        timeout = httpx.Timeout(
            request_timeout, connect=min(request_timeout, DEFAULT_CONNECT_TIMEOUT_S)
        )
        self._client = AsyncClient(base_url=base_url, request=AsyncRequest(timeout=timeout))
        self._client.on_session_change(self._remember_session)
        self._posts_per_hour = posts_per_hour
        self._posts_per_day = posts_per_day
        self._session_string: str | None = None
        self._did: str | None = None

    @property
    def limits(self) -> PlatformLimits:
        return PlatformLimits(
            max_chars=MAX_GRAPHEMES,
            posts_per_hour=self._posts_per_hour,
            posts_per_day=self._posts_per_day,
        )

    @property
    def spend_usd(self) -> float:
        """Bluesky does not bill API calls."""
        return 0.0

    @property
    def prices(self) -> Prices:
        """Nothing is billed."""
        return FREE

    def length(self, text: str) -> int:
        """Grapheme clusters, as the lexicon's ``maxGraphemes`` counts (:mod:`adapters.length`)."""
        return grapheme_length(text)

    async def load_limits(self) -> PlatformLimits:
        """Nothing to read: the limit is the lexicon's."""
        return self.limits

    @property
    def session_string(self) -> str | None:
        """The current session in atproto's export format (in memory only), once logged in."""
        return self._session_string

    @property
    def base_url(self) -> str:
        """The XRPC endpoint in use (atproto may switch to the account's PDS from its DID doc)."""
        return str(self._client._base_url)

    # -- Platform -------------------------------------------------------------------------------

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        _check_text(text)
        did = await self._login()  # nothing is posted if this fails
        created = await self._call(self._client.send_post, text, profile_identify=did, publish=True)
        return self._created(created, text)

    # -- threads (docs/threads.md) ---------------------------------------------------------

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """A later part of a thread: a post whose ``reply`` holds strong refs (uri + cid) to the
        thread's root and to its parent. The cids are read first (``app.bsky.feed.getPosts``,
        nothing is posted if that fails); a root or parent that is gone is ``ContentRejected``.
        Errors as :meth:`publish`; never retried."""
        _check_text(text)
        did = await self._login()
        uris = list(dict.fromkeys([reply_to.root_id, reply_to.parent_id]))
        response = await self._call(
            self._client.app.bsky.feed.get_posts, models.AppBskyFeedGetPosts.Params(uris=uris)
        )
        cids = {
            str(post.uri): str(post.cid)
            for post in _read(partial(_field, response, "posts"), what="getPosts")
        }
        missing = [u for u in uris if u not in cids]
        if missing:
            raise ContentRejected(f"Bluesky has no post {missing[0]!r} to reply to")
        ref = models.AppBskyFeedPost.ReplyRef(
            root=models.ComAtprotoRepoStrongRef.Main(
                uri=reply_to.root_id, cid=cids[reply_to.root_id]
            ),
            parent=models.ComAtprotoRepoStrongRef.Main(
                uri=reply_to.parent_id, cid=cids[reply_to.parent_id]
            ),
        )
        created = await self._call(
            self._client.send_post, text, profile_identify=did, reply_to=ref, publish=True
        )
        return self._created(created, text)

    def _created(self, created: Any, text: str) -> PublishedPost:
        try:
            uri = str(created.uri)
        except (AttributeError, TypeError, ValueError) as exc:
            raise AmbiguousPublish(f"Bluesky answered publish unreadably: {exc!r}") from exc
        return PublishedPost(platform_post_id=uri, text=text, posted_at=_aware(self._now()))

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        uris = [p for p in dict.fromkeys(post_ids) if p.startswith("at://")]
        metrics: dict[str, PostMetrics] = {}
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = uris[start : start + GET_POSTS_BATCH]
            response = await self._call(
                self._client.app.bsky.feed.get_posts, models.AppBskyFeedGetPosts.Params(uris=batch)
            )
            for post in _read(partial(_field, response, "posts"), what="getPosts"):
                found = _read(partial(_metrics, post), what="post")
                metrics[found.platform_post_id] = found
        return metrics

    async def fetch_account(self) -> AccountInfo:
        did = await self._login()
        profile = await self._call(
            self._client.app.bsky.actor.get_profile, models.AppBskyActorGetProfile.Params(actor=did)
        )
        return _read(partial(_account, profile), what="profile")

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        did = await self._login()
        since = _aware(since)
        found: list[PublishedPost] = []
        cursor: str | None = None
        while len(found) < limit:
            page = await self._call(
                self._client.app.bsky.feed.get_author_feed,
                models.AppBskyFeedGetAuthorFeed.Params(
                    actor=did, limit=FEED_PAGE_SIZE, cursor=cursor
                ),
            )
            items = _read(partial(_field, page, "feed"), what="getAuthorFeed")
            if not items:
                break
            oldest: datetime | None = None
            for item in items:
                if getattr(item, "reason", None) is not None:
                    continue  # a repost of someone else's post
                post = _read(partial(_published, item.post), what="feed item")
                if str(getattr(getattr(item.post, "author", None), "did", "")) != did:
                    continue
                oldest = post.posted_at if oldest is None else min(oldest, post.posted_at)
                if post.posted_at >= since:
                    found.append(post)
            cursor = getattr(page, "cursor", None)
            # Newest first: once a page reaches before ``since`` there is nothing older to want.
            if cursor is None or (oldest is not None and oldest < since):
                break
        return found[:limit]

    async def delete(self, post_id: str) -> None:
        if not post_id.startswith("at://"):
            raise PermanentPlatformError(f"Not a Bluesky post uri: {post_id!r}")
        await self._login()
        await self._call(self._client.delete_post, post_id)  # idempotent on the PDS

    async def check_write_access(self) -> str:
        """Whether the account may post, asked without posting (``growthloop accounts check``).

        Every app password may create records (a privileged one only adds DMs), so a session
        that ``com.atproto.server.getSession`` accepts may post unless the PDS says the account
        is not active (taken down, suspended, deactivated). A refused login is ``AuthFailed``
        naming ``BLUESKY_APP_PASSWORD``.
        """
        session = await self._call(self._client.com.atproto.server.get_session)
        if getattr(session, "active", None) is False:
            status = getattr(session, "status", None) or "no reason given"
            raise AuthFailed(
                f"Bluesky account {self._handle!r} is not active ({status}): it cannot post "
                f"whatever {self._password_var} allows."
            )
        return "session ok (app passwords may post)"

    async def aclose(self) -> None:
        await self._client.request.close()

    # -- audience reads (issue 19 item 2, issue 21 item 2; docs/conversations.md) ---------------

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """``notifications`` (app.bsky.notification.listNotifications: follows, likes, reposts,
        replies, quotes, mentions) and ``followers`` (app.bsky.graph.getFollowers, for the
        unfollows no notification tells). Free."""
        return BLUESKY_AUDIENCE_SOURCES

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of ``source``. Notifications come newest first and page towards older ones,
        so a read is a sweep from the newest down to the newest of the previous sweep; the
        cursor (JSON) holds that mark, the newest seen in this sweep and the page cursor, so a
        sweep cut by a crash or a rate limit resumes at its page."""
        if source not in BLUESKY_AUDIENCE_SOURCES:
            raise ValueError(f"Bluesky reads {', '.join(BLUESKY_AUDIENCE_SOURCES)}, not {source!r}")
        did = await self._login()
        if source == "followers":
            page = await self._call(
                self._client.app.bsky.graph.get_followers,
                models.AppBskyGraphGetFollowers.Params(
                    actor=did, limit=AUDIENCE_PAGE_SIZE, cursor=cursor or None
                ),
            )
            found = _read(partial(_followers, page), what="getFollowers")
            following = getattr(page, "cursor", None) if found else None
            return AudiencePage(
                source=source,
                followers=tuple(found),
                cursor=following,
                more=following is not None,
                reads=len(found),
            )
        state = _sweep_state(cursor)
        page = await self._call(
            self._client.app.bsky.notification.list_notifications,
            models.AppBskyNotificationListNotifications.Params(
                limit=AUDIENCE_PAGE_SIZE, cursor=state.get("page")
            ),
        )
        items = _read(partial(_field, page, "notifications"), what="listNotifications")
        until, top = _mark(state.get("until")), _mark(state.get("top"))
        times = [_read(partial(_as_datetime, n.indexed_at), what="notification") for n in items]
        fresh = [n for n, t in zip(items, times, strict=True) if until is None or t >= until]
        events, said = _read(partial(_notifications, fresh), what="notification")
        top = max([t for t in (top, *times) if t is not None], default=None)
        following = getattr(page, "cursor", None)
        done = following is None or not items or (until is not None and min(times) < until)
        new_state = {"until": _iso(top)}
        if not done:
            new_state |= {"until": _iso(until), "top": _iso(top), "page": following}
        return AudiencePage(
            source=source,
            events=tuple(events),
            conversations=tuple(said),
            cursor=json.dumps(new_state, sort_keys=True),
            more=not done,
            reads=len(items),
        )

    # -- session --------------------------------------------------------------------------------

    def _remember_session(self, event: Any, session: Any) -> None:
        self._session_string = session.export()
        self._did = str(session.did)

    async def _login(self) -> str:
        """The account's DID, creating the session on first use (never again while it lives)."""
        if self._did is None:
            await self._create_session()
        assert self._did is not None
        return self._did

    async def _create_session(self) -> None:
        try:
            await self._client.login(self._handle, self._app_password, fetch_bsky_profile=False)
        except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
            if isinstance(exc, atexc.UnauthorizedError | atexc.BadRequestError):
                raise AuthFailed(
                    f"Bluesky refused the login of {self._handle!r}: check {self._password_var} "
                    f"(an app password from Settings > Privacy and security > App passwords, not "
                    f"the account password). {_detail(exc)}"
                ) from exc
            raise self._translate(exc, publish=False) from exc

    async def _refresh_session(self) -> None:
        """Refresh the access token, or log in again when the refresh token is refused too."""
        try:
            await self._client._refresh_and_set_session()
        except (atexc.UnauthorizedError, atexc.BadRequestError, atexc.LoginRequiredError):
            await self._create_session()
        except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
            raise self._translate(exc, publish=False) from exc

    def _session_expiring(self) -> bool:
        try:
            return bool(self._client._should_refresh_session())
        except (AtProtocolError, ValueError):
            return False  # a token without an expiry: let the PDS say when it is refused

    async def _call(
        self, func: Callable[..., Awaitable[T]], *args: Any, publish: bool = False, **kwargs: Any
    ) -> T:
        """Run one XRPC call, translating atproto's errors; refresh a refused token once."""
        await self._login()
        if self._session_expiring():
            # Refresh here rather than inside atproto's call, so that a failed refresh is not
            # mistaken for a failed (possibly ambiguous) create.
            await self._refresh_session()
        for attempt in (1, 2):
            try:
                return await func(*args, **kwargs)
            except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
                if attempt == 1 and _token_refused(exc):
                    # The PDS refused the token, so it did nothing: repeating is safe.
                    await self._refresh_session()
                    continue
                raise self._translate(exc, publish=publish) from exc
        raise AssertionError("unreachable")

    # -- error translation ----------------------------------------------------------------------

    def _translate(self, exc: Exception, *, publish: bool) -> PlatformError:
        unknown = AmbiguousPublish if publish else PlatformUnavailable
        if isinstance(exc, atexc.RateLimitExceededError):
            reset_at = exc.reset_at or _aware(self._now()) + DEFAULT_RATELIMIT_WAIT
            return RateLimited(
                f"Bluesky rate limit hit; resets at {reset_at.isoformat()}.", reset_at=reset_at
            )
        if isinstance(exc, atexc.UnauthorizedError) or _token_refused(exc):
            return AuthFailed(
                f"Bluesky refused the session of {self._handle!r}: check "
                f"{self._password_var} (an app password with access to the account). "
                f"{_detail(exc)}"
            )
        if isinstance(exc, atexc.LoginRequiredError):
            return AuthFailed(f"Bluesky needs a login: check {self._password_var}.")
        if _never_sent(exc):
            return PlatformUnavailable(f"Bluesky could not be reached: {_detail(exc)}")
        status = _status(exc)
        if status is None:
            # Timeout, dropped connection after sending, or a 2xx body that is not what it should
            # be (malformed JSON, missing fields): a create may have happened.
            return unknown(f"Bluesky answered unreadably or not at all: {_detail(exc)}")
        if status == 400 or status == 413:
            if publish:
                return ContentRejected(f"Bluesky rejected the post: {_detail(exc)}")
            return PermanentPlatformError(f"Bluesky refused the request: {_detail(exc)}")
        if status >= 500:
            return unknown(f"Bluesky answered HTTP {status}: {_detail(exc)}")
        return PermanentPlatformError(
            f"Bluesky refused the request (HTTP {status}): {_detail(exc)}"
        )


def from_config(
    *,
    account: str,
    secrets: Mapping[str, str],
    base_url: str | None,
    now: Callable[[], datetime],
    env_prefix: str | None = None,
) -> BlueskyPlatform:
    """Build the adapter for one configured account (see ``agent.bootstrap``); its secrets are
    read from ``<env_prefix>_BLUESKY_*``, named so in error messages."""
    handle = secrets.get(SECRET_HANDLE)
    password = secrets.get(SECRET_APP_PASSWORD)
    for name, value in ((SECRET_HANDLE, handle), (SECRET_APP_PASSWORD, password)):
        if not value:
            raise ConfigError(
                f"account {account!r}: the secret {env_name(env_prefix, name)} is not set."
            )
    assert handle is not None and password is not None
    return BlueskyPlatform(
        handle=handle.lstrip("@"),
        app_password=password,
        base_url=base_url or DEFAULT_BASE_URL,
        now=now,
        env_prefix=env_prefix,
    )


# -- helpers --------------------------------------------------------------------------------------


def _read(func: Callable[[], T], *, what: str) -> T:
    """Read a field out of a response, turning a surprising shape into PlatformUnavailable."""
    try:
        return func()
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PlatformUnavailable(f"Bluesky sent an unreadable {what}: {exc!r}") from exc


def _field(response: Any, name: str) -> list[Any]:
    return list(getattr(response, name))


def _account(profile: Any) -> AccountInfo:
    return AccountInfo(
        handle=str(profile.handle),
        followers=int(profile.followers_count or 0),
        following=int(profile.follows_count or 0),
        posts=int(profile.posts_count or 0),
    )


def _metrics(post: Any) -> PostMetrics:
    return PostMetrics(
        platform_post_id=str(post.uri),
        likes=int(post.like_count or 0),
        reposts=int(post.repost_count or 0),
        replies=int(post.reply_count or 0),
        quotes=int(getattr(post, "quote_count", 0) or 0),
    )


def _published(post: Any) -> PublishedPost:
    record = post.record
    if isinstance(record, Mapping):
        text, created = record.get("text"), record.get("createdAt")
    else:
        text, created = getattr(record, "text", None), getattr(record, "created_at", None)
    return PublishedPost(
        platform_post_id=str(post.uri),
        text=str(text or ""),
        posted_at=_as_datetime(created or post.indexed_at),
    )


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _error_name(exc: BaseException) -> str | None:
    content = getattr(getattr(exc, "response", None), "content", None)
    name = getattr(content, "error", None)
    return name if isinstance(name, str) else None


def _token_refused(exc: BaseException) -> bool:
    return _error_name(exc) in _TOKEN_ERRORS


def _never_sent(exc: BaseException) -> bool:
    """Whether the failure happened before the request left (nothing can have been created)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return True
        cause = cause.__cause__
    return False


def _detail(exc: BaseException) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    error, message = getattr(content, "error", None), getattr(content, "message", None)
    if error or message:
        return f"{error or 'Error'}: {message or ''}".strip()
    return str(exc) or type(exc).__name__


# -- audience reads -------------------------------------------------------------------------------

BLUESKY_AUDIENCE_SOURCES = ("notifications", "followers")
AUDIENCE_PAGE_SIZE = 100  # the most listNotifications and getFollowers return per page
_REASONS = {  # notification reason -> what it tells of a person
    "follow": AudienceKind.FOLLOW,
    "like": AudienceKind.LIKE,
    "repost": AudienceKind.REPOST,
    "reply": AudienceKind.REPLY,
    "quote": AudienceKind.QUOTE,
}


def _sweep_state(cursor: str | None) -> dict[str, str | None]:
    """The notifications cursor: ``until`` (the newest notification of the last whole sweep,
    ISO time), ``top`` (the newest of this sweep) and ``page`` (listNotifications' cursor)."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _mark(value: str | None) -> datetime | None:
    return None if value is None else _as_datetime(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds")


def _followers(page: Any) -> list[Follower]:
    return [
        Follower(user_id=str(p.did), handle=str(p.handle) if p.handle else None)
        for p in page.followers
    ]


def _record_field(record: Any, *names: str) -> Any:
    """A field of a notification's record (a model or a plain mapping), following ``names``."""
    value = record
    for name in names:
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = value.get(name)
        else:
            value = getattr(value, _snake(name), None)
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _notifications(items: Sequence[Any]) -> tuple[list[AudienceEvent], list[Conversation]]:
    """The events and the replies/mentions of a page of notifications."""
    events: list[AudienceEvent] = []
    said: list[Conversation] = []
    for n in items:
        reason = str(n.reason)
        user, handle = str(n.author.did), str(n.author.handle) if n.author.handle else None
        created = _record_field(n.record, "createdAt")
        at = _as_datetime(created or n.indexed_at)
        parent = _record_field(n.record, "reply", "parent", "uri")
        subject = getattr(n, "reason_subject", None)
        kind = _REASONS.get(reason)
        if kind is not None:
            post = parent if kind == AudienceKind.REPLY else subject
            events.append(
                AudienceEvent(
                    kind=kind,
                    user_id=user,
                    handle=handle,
                    at=at,
                    source_id=str(n.uri),
                    platform_post_id=str(post) if post else None,
                )
            )
        if reason in ("reply", "mention"):
            said.append(
                Conversation(
                    kind=ConversationKind.REPLY if reason == "reply" else ConversationKind.MENTION,
                    platform_post_id=str(n.uri),
                    parent_post_id=str(parent) if parent else None,
                    author_id=user,
                    author_handle=handle,
                    text=str(_record_field(n.record, "text") or ""),
                    at=at,
                )
            )
    return events, said
