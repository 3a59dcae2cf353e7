"""Threads (Meta's Graph API for Threads): one account, one long-lived access token.

:class:`ThreadsPlatform` speaks HTTP itself through one ``aiohttp`` session it owns (connect and
total timeouts), against ``https://graph.threads.net/v1.0`` by default. Publishing is Meta's
two-step flow, preceded by a quota check:

1. ``GET /me/threads_publishing_limit?fields=quota_usage,config``: when ``quota_usage`` has reached
   ``config.quota_total`` (250 posts per rolling 24 h) raise ``RateLimited`` before creating
   anything.
2. ``POST /me/threads`` (``media_type=TEXT``, ``text``) creates a media container. A container is
   not a post: any failure here is definite (nothing is visible, an unpublished container expires
   after 24 h).
3. ``POST /me/threads_publish`` (``creation_id``) turns the container into a post. Once this
   request has left, a 5xx, a timeout, a dropped connection or an unreadable 2xx body is
   ``AmbiguousPublish``: the daemon reconciles through :meth:`ThreadsPlatform.find_recent`. It is
   never retried here.

Threads (the format, docs/threads.md): a later part is :meth:`ThreadsPlatform.publish_reply`, the
same two steps with the container created ``reply_to_id`` the parent. The account's replies are
listed by ``GET /me/replies``, not ``/me/threads``, so :meth:`ThreadsPlatform.find_recent` reads
both.

Threads takes no idempotency key, so ``idempotency_key`` is unused. POST parameters (and the
token) travel in the form body, GET/DELETE ones in the query string; error messages name the
endpoint, never the URL, so the token cannot end up in a log.

Error translation (Graph error body ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}``; the Graph API usually answers errors with HTTP 400 whatever they are, so the
``code`` decides first):

=============================================  ==================  ===========================
what happened                                  threads_publish     other calls
=============================================  ==================  ===========================
code 4, 17, 32, 613 or HTTP 429                RateLimited(reset_at)
code 190, 10, 200-299 or HTTP 401/403          AuthFailed (names the permissions the call needs)
code 100 subcode 33 or HTTP 404                PermanentPlatformError (reads: id omitted;
                                               delete: already gone)
other 4xx                                      ContentRejected     ContentRejected (container)
                                                                   PermanentPlatformError
code 1/2, 5xx, timeout after connecting,       AmbiguousPublish    PlatformUnavailable
connection dropped, body not a JSON object
connection refused, DNS, connect timeout       PlatformUnavailable PlatformUnavailable
=============================================  ==================  ===========================

``reset_at`` is ``now`` plus the largest ``estimated_time_to_regain_access`` (minutes) found in the
``x-business-use-case-usage`` or ``x-app-usage`` headers, else ``Retry-After`` (seconds), else
:data:`DEFAULT_RATE_LIMIT_WAIT` (the Graph API's usage windows are rolling one-hour windows).

Reads (the quota check, metrics, account, recent posts) and delete are retried with jittered
exponential backoff on ``PlatformUnavailable`` only, a bounded number of times.

Mapping choices:

- Metrics (``GET /{media-id}/insights``, needs ``threads_manage_insights``): ``views`` ->
  impressions, ``likes``, ``replies``, ``reposts``, ``quotes``. ``shares`` (sends to DMs and other
  apps) is deliberately left out: it is neither a bookmark nor a public repost, and folding it into
  either would skew the counters the learner compares across platforms.
- Account: ``followers`` from ``GET /me/threads_insights?metric=followers_count``. The API
  exposes neither a following count nor a post count, so both are 0.
- Delete: ``DELETE /{media-id}`` (needs ``threads_delete``; Meta caps it at 100 per account per
  day). Deleting an id Threads no longer knows is not an error.
- Length: Meta counts 500 characters per text post, emojis as their UTF-8 byte length
  (:func:`adapters.length.threads_length`); longer texts are refused before any request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDictProxy
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

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
from adapters.length import THREADS_MAX_CHARS, threads_length
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import AudiencePage, Conversation, ConversationKind
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

__all__ = ["ThreadsPlatform", "from_config"]

SECRET_ACCESS_TOKEN = "THREADS_ACCESS_TOKEN"
DEFAULT_BASE_URL = "https://graph.threads.net"
API_VERSION = "v1.0"
MAX_CHARS = THREADS_MAX_CHARS  # per text post, counted by adapters.length.threads_length
POSTS_PER_DAY = 250  # Meta's publishing quota, per rolling 24 h
# Meta documents no hourly cap; this is our own, so a burst cannot burn the day's quota.
POSTS_PER_HOUR = 25
DEFAULT_TIMEOUT = 30.0  # seconds, whole request
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds; a connect failure means nothing was sent
READ_ATTEMPTS = 3  # per read call, including the first
READ_BACKOFF = 1.0  # seconds, multiplier of the jittered exponential backoff
READ_BACKOFF_MAX = 30.0  # seconds, longest single wait between two read attempts
DEFAULT_RATE_LIMIT_WAIT = timedelta(hours=1)  # Graph usage windows roll over one hour
QUOTA_RECHECK = timedelta(hours=1)  # quota exhausted: when to look again (rolling 24 h window)
PAGE_SIZE = 100  # the most posts GET /me/threads returns per page
POST_METRICS = ("views", "likes", "replies", "reposts", "quotes", "shares")

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error", "service temporarily unavailable"
AUTH_CODES = frozenset({10, 190, *range(200, 300)})
NOT_FOUND_SUBCODE = 33  # code 100: "object does not exist or cannot be loaded"
PERMISSIONS = ("threads_basic", "threads_content_publish", "threads_manage_insights")


class _Step(StrEnum):
    READ = "read"
    QUOTA = "quota"  # GET /me/threads_publishing_limit: needs the publishing permission
    CREATE = "create"  # POST /me/threads: a container, not yet a post
    PUBLISH = "publish"  # POST /me/threads_publish: the post appears
    DELETE = "delete"


_NEEDS = {
    _Step.READ: "threads_basic and threads_manage_insights",
    _Step.QUOTA: "threads_basic and threads_content_publish",
    _Step.CREATE: "threads_basic and threads_content_publish",
    _Step.PUBLISH: "threads_basic and threads_content_publish",
    _Step.DELETE: "threads_basic and threads_delete",
}


class _NotFound(PermanentPlatformError):
    """Threads does not know this id (deleted, never existed, or not ours)."""


def parse_time(value: str) -> datetime:
    """Graph timestamps (``2023-10-17T05:42:03+0000``) as aware UTC datetimes."""
    return datetime.fromisoformat(value).astimezone(UTC)


class ThreadsPlatform:
    """One Threads account (see the module docstring for behaviour)."""

    name = "threads"

    def __init__(
        self,
        *,
        access_token: str,
        now: Callable[[], datetime],
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_attempts: int = READ_ATTEMPTS,
        read_backoff: float = READ_BACKOFF,
        posts_per_hour: int = POSTS_PER_HOUR,
        env_prefix: str | None = None,
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        # the variable the token is read from, named in credential errors
        self._token_var = env_name(env_prefix, SECRET_ACCESS_TOKEN)
        self._api = f"{self.base_url}/{API_VERSION}"
        self._token = access_token
        self._now = now
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._read_attempts = read_attempts
        self._read_backoff = read_backoff
        self._limits = PlatformLimits(
            max_chars=MAX_CHARS, posts_per_hour=posts_per_hour, posts_per_day=POSTS_PER_DAY
        )
        self._session: aiohttp.ClientSession | None = None  # opened on first use, in the loop

    @property
    def limits(self) -> PlatformLimits:
        return self._limits

    @property
    def spend_usd(self) -> float:
        """The Threads API does not bill calls."""
        return 0.0

    @property
    def prices(self) -> Prices:
        """Nothing is billed."""
        return FREE

    def length(self, text: str) -> int:
        """Code points, an emoji's by its UTF-8 bytes, as Meta counts (:mod:`adapters.length`)."""
        return threads_length(text)

    async def load_limits(self) -> PlatformLimits:
        """Nothing to read up front: the publishing quota is asked before each post."""
        return self._limits

    # -- Platform -------------------------------------------------------------------------------

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        return await self._publish(text, reply_to=None)

    async def _publish(self, text: str, *, reply_to: str | None) -> PublishedPost:
        if not text.strip():
            raise ContentRejected("a Threads text post needs some text")
        length = self.length(text)
        if length > MAX_CHARS:
            raise ContentRejected(f"Threads counts {length} characters; the limit is {MAX_CHARS}")
        await self._check_quota()
        form = {"media_type": "TEXT", "text": text}
        if reply_to is not None:
            form["reply_to_id"] = reply_to
        container = await self._call("POST", "me/threads", step=_Step.CREATE, form=form)
        creation_id = self._field(container, "id", step=_Step.CREATE)
        published = await self._call(
            "POST", "me/threads_publish", step=_Step.PUBLISH, form={"creation_id": creation_id}
        )
        post_id = self._field(published, "id", step=_Step.PUBLISH)
        return PublishedPost(platform_post_id=post_id, text=text, posted_at=_aware(self._now()))

    # -- threads (docs/threads.md) ---------------------------------------------------------

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """A later part of a thread: the two-step flow of :meth:`publish` with the container
        created ``reply_to_id`` the parent. Errors as :meth:`publish`; never retried."""
        return await self._publish(text, reply_to=reply_to.parent_id)

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        out: dict[str, PostMetrics] = {}
        for post_id in dict.fromkeys(str(i) for i in post_ids):
            try:
                body = await self._read(
                    f"{_node(post_id)}/insights", params={"metric": ",".join(POST_METRICS)}
                )
            except _NotFound:
                continue  # deleted or unknown: omitted, as the Protocol says
            out[post_id] = _parsed(partial(_metrics, post_id, body), what="insights")
        return out

    async def fetch_account(self) -> AccountInfo:
        me = await self._read("me", params={"fields": "id,username,threads_profile_picture_url"})
        insights = await self._read("me/threads_insights", params={"metric": "followers_count"})
        return _parsed(
            lambda: AccountInfo(
                handle=str(me["username"]),
                followers=_insight(insights, "followers_count"),
                following=0,  # not exposed by the Threads API
                posts=0,  # not exposed either (counting would page through every post)
            ),
            what="account",
        )

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        floor = _aware(since).replace(microsecond=0)  # Graph timestamps: whole seconds
        params = {
            "fields": "id,text,timestamp",
            "since": str(int(floor.timestamp())),
            "limit": str(min(max(limit, 1), PAGE_SIZE)),
        }
        posts: list[PublishedPost] = []
        # the account's threads, then its replies (a thread's later parts are replies)
        for listing in ("me/threads", "me/replies"):
            found: list[PublishedPost] = []
            page_params = dict(params)
            seen_cursors: set[str] = set()
            while len(found) < limit:
                body = await self._read(listing, params=page_params)
                page: list[PublishedPost] = _parsed(partial(_posts, body), what="posts")
                found.extend(page)
                after = _next_cursor(body)
                if not page or after is None or after in seen_cursors:
                    break
                seen_cursors.add(after)
                page_params = {**page_params, "after": after}
            posts.extend(found)
        posts = [p for p in posts if p.posted_at >= floor]
        posts.sort(key=lambda p: p.posted_at, reverse=True)
        return posts[:limit]

    async def delete(self, post_id: str) -> None:
        try:
            await self._retrying(lambda: self._call("DELETE", _node(post_id), step=_Step.DELETE))
        except _NotFound:
            return  # already gone: deleting is idempotent

    async def check_write_access(self) -> str:
        """Whether the token may publish, asked without posting (``growthloop accounts check``).

        ``GET /me/threads_publishing_limit`` needs ``threads_content_publish``: a permission error
        (code 10, 200-299 or 190) is ``AuthFailed`` naming it. Success reports the posts left in
        the rolling 24 h quota.
        """
        used, total = await self._quota()
        remaining = max(total - used, 0)
        return f"threads_content_publish granted ({remaining} of {total} posts left today)"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- audience reads (issue 19 item 2, issue 21 item 2; docs/conversations.md) ---------------

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """``replies``: the replies to the account's recent posts (``GET /{media-id}/replies``,
        needs ``threads_read_replies``). The Threads API names no liker, reposter or follower,
        and gives a reply's author by username only. Free."""
        return THREADS_AUDIENCE_SOURCES

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of replies to one of ``posts`` (the newest first). The cursor (JSON) names
        the post and its ``after`` cursor; past the last post it is None, so the next run
        sweeps the posts again (a reply read again is stored once)."""
        if source not in THREADS_AUDIENCE_SOURCES:
            raise ValueError(f"Threads reads {', '.join(THREADS_AUDIENCE_SOURCES)}, not {source!r}")
        ids = list(dict.fromkeys(posts))
        state = _replies_state(cursor)
        index = ids.index(state["post"]) if state.get("post") in ids else 0
        if not ids:
            return AudiencePage(source=source)
        post = ids[index]
        params = {"fields": REPLY_FIELDS, "limit": str(PAGE_SIZE), "reverse": "false"}
        if state.get("post") == post and state.get("after"):
            params["after"] = str(state["after"])
        body = await self._read(f"{_node(post)}/replies", params=params)
        events, said = _parsed(partial(_replies, body, post), what="replies")
        after = _next_cursor(body)
        if after is not None:
            following: dict[str, str] | None = {"post": post, "after": after}
        elif index + 1 < len(ids):
            following = {"post": ids[index + 1]}
        else:
            following = None
        return AudiencePage(
            source=source,
            events=tuple(events),
            conversations=tuple(said),
            cursor=json.dumps(following, sort_keys=True) if following else None,
            more=following is not None,
            reads=len(said),
        )

    # -- helpers --------------------------------------------------------------------------------

    async def _quota(self) -> tuple[int, int]:
        """Posts used and allowed in the rolling 24 h (``GET /me/threads_publishing_limit``)."""
        body = await self._read(
            "me/threads_publishing_limit",
            params={"fields": "quota_usage,config"},
            step=_Step.QUOTA,
        )

        def usage() -> tuple[int, int]:
            entry = body["data"][0]
            config = entry.get("config") or {}
            return int(entry["quota_usage"]), int(config.get("quota_total", POSTS_PER_DAY))

        quota: tuple[int, int] = _parsed(usage, what="publishing limit")
        return quota

    async def _check_quota(self) -> None:
        used, total = await self._quota()
        if used >= total:
            reset_at = _aware(self._now()) + QUOTA_RECHECK
            raise RateLimited(
                f"Threads publishing quota used up ({used}/{total} posts in 24 h); "
                f"checking again at {reset_at.isoformat()}",
                reset_at=reset_at,
            )

    async def _read(
        self, path: str, *, params: Mapping[str, str], step: _Step = _Step.READ
    ) -> dict[str, Any]:
        return await self._retrying(lambda: self._call("GET", path, step=step, params=params))

    async def _retrying(self, call: Callable[[], Any]) -> dict[str, Any]:
        """Run an idempotent call, retrying ``PlatformUnavailable`` (never used for a post)."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(PlatformUnavailable),
            stop=stop_after_attempt(max(self._read_attempts, 1)),
            wait=wait_random_exponential(multiplier=self._read_backoff, max=READ_BACKOFF_MAX),
            reraise=True,
        ):
            with attempt:
                result: dict[str, Any] = await call()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self,
        method: str,
        path: str,
        *,
        step: _Step,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Graph request; the JSON object it answered, or an ``agent.errors`` error."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        what = f"{method} /{API_VERSION}/{path.split('?')[0]}"
        query = dict(params or {})
        data: dict[str, str] | None = None
        if form is not None:
            data = {**form, "access_token": self._token}
        else:
            query["access_token"] = self._token
        try:
            async with self._session.request(
                method, f"{self._api}/{path}", params=query, data=data
            ) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection never opened: the request did not leave.
            raise PlatformUnavailable(
                f"Threads could not be reached ({what}: {type(exc).__name__})"
            ) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._lost(step, what, type(exc).__name__) from exc
        payload = _json_object(raw)
        if 200 <= status < 300:
            if payload is None:
                raise self._lost(step, what, f"HTTP {status} with a body that is not JSON")
            return payload
        raise self._error(status, payload, headers, step=step, what=what)

    def _lost(self, step: _Step, what: str, reason: str) -> PlatformError:
        if step is _Step.PUBLISH:
            return AmbiguousPublish(f"Threads publish outcome unknown ({what}: {reason})")
        return PlatformUnavailable(f"Threads request failed ({what}: {reason})")

    def _error(
        self,
        status: int,
        payload: Mapping[str, Any] | None,
        headers: CIMultiDictProxy[str],
        *,
        step: _Step,
        what: str,
    ) -> PlatformError:
        error = (payload or {}).get("error")
        error = error if isinstance(error, Mapping) else {}
        code = _int(error.get("code"))
        subcode = _int(error.get("error_subcode"))
        detail = (
            f"HTTP {status}, code {code}, subcode {subcode}: {error.get('message', 'no message')}"
            f" (fbtrace_id {error.get('fbtrace_id')})"
        )
        if code in RATE_LIMIT_CODES or status == 429:
            reset_at = _aware(self._now()) + _regain_wait(headers)
            return RateLimited(
                f"Threads rate limit reached ({what}; {detail}); retry after "
                f"{reset_at.isoformat()}",
                reset_at=reset_at,
            )
        if code in AUTH_CODES or status in (401, 403):
            return AuthFailed(
                f"Threads refused the access token ({what}; {detail}). This call needs "
                f"{_NEEDS[step]}; growthloop needs a long-lived token ({self._token_var}) "
                f"granting {', '.join(PERMISSIONS)} (and threads_delete to delete posts)."
            )
        if code in TRANSIENT_CODES or status >= 500:
            return self._lost(step, what, detail)
        if (code == 100 and subcode == NOT_FOUND_SUBCODE) or status == 404:
            return _NotFound(f"Threads does not know this object ({what}; {detail})")
        if step in (_Step.CREATE, _Step.PUBLISH):
            return ContentRejected(f"Threads refused the post ({what}; {detail})")
        return PermanentPlatformError(f"Threads refused the request ({what}; {detail})")

    def _field(self, body: Mapping[str, Any], key: str, *, step: _Step) -> str:
        value = body.get(key)
        if not isinstance(value, str | int) or not str(value):
            raise self._lost(step, f"POST {step}", f"the answer has no {key!r}")
        return str(value)


def from_config(
    *,
    account: str,
    secrets: Mapping[str, str],
    base_url: str | None,
    now: Callable[[], datetime],
    env_prefix: str | None = None,
) -> ThreadsPlatform:
    """Build the adapter for one configured account (see ``agent.bootstrap``); its token is
    read from ``<env_prefix>_THREADS_ACCESS_TOKEN``, named so in error messages."""
    token = secrets.get(SECRET_ACCESS_TOKEN)
    if not token:
        raise ConfigError(
            f"account {account!r}: the secret {env_name(env_prefix, SECRET_ACCESS_TOKEN)} "
            "is not set."
        )
    return ThreadsPlatform(access_token=token, base_url=base_url, now=now, env_prefix=env_prefix)


# -- parsing (pure) -----------------------------------------------------------------------------


def _node(object_id: str) -> str:
    return quote(str(object_id), safe="")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _regain_wait(headers: CIMultiDictProxy[str]) -> timedelta:
    """How long the Graph API's usage headers say to wait (minutes), else Retry-After, else 1 h."""
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage"):
        usage = _json_object(headers.get(name, "").encode())
        if usage is None:
            continue
        entries: list[Any] = [usage]
        for value in usage.values():
            entries.extend(value if isinstance(value, list) else [value])
        for entry in entries:
            if isinstance(entry, Mapping):
                wait = _int(entry.get("estimated_time_to_regain_access"))
                if wait is not None and wait > 0:
                    minutes.append(wait)
    if minutes:
        return timedelta(minutes=max(minutes))
    retry_after = _int(headers.get("Retry-After"))
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=retry_after)
    return DEFAULT_RATE_LIMIT_WAIT


def _parsed(build: Callable[[], Any], *, what: str) -> Any:
    try:
        return build()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise PlatformUnavailable(f"Threads returned an unreadable {what}: {exc!r}") from exc


def _insight(body: Mapping[str, Any], name: str) -> int:
    """One metric of an insights answer (``values[0].value`` or ``total_value.value``), else 0."""
    for item in body["data"]:
        if item.get("name") != name:
            continue
        if "total_value" in item:
            return int(item["total_value"]["value"])
        values = item.get("values") or []
        return int(values[-1]["value"]) if values else 0
    return 0


def _metrics(post_id: str, body: Mapping[str, Any]) -> PostMetrics:
    return PostMetrics(
        platform_post_id=post_id,
        impressions=_insight(body, "views"),
        likes=_insight(body, "likes"),
        replies=_insight(body, "replies"),
        reposts=_insight(body, "reposts"),
        quotes=_insight(body, "quotes"),
    )


def _post(item: Mapping[str, Any]) -> PublishedPost:
    return PublishedPost(
        platform_post_id=str(item["id"]),
        text=str(item.get("text") or ""),
        posted_at=parse_time(str(item["timestamp"])),
    )


def _posts(body: Mapping[str, Any]) -> list[PublishedPost]:
    return [_post(item) for item in body["data"]]


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    if not isinstance(paging, Mapping) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    return str(after) if after else None


# -- audience reads -------------------------------------------------------------------------------

THREADS_AUDIENCE_SOURCES = ("replies",)
REPLY_FIELDS = "id,text,username,timestamp,replied_to"


def _replies_state(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _replies(body: Mapping[str, Any], post: str) -> tuple[list[AudienceEvent], list[Conversation]]:
    """The replies of a page of ``GET /{media-id}/replies``: a reply event each (the author
    known by username only: Threads gives no user id) and the reply's text."""
    events: list[AudienceEvent] = []
    said: list[Conversation] = []
    for item in body["data"]:
        author = str(item["username"])
        at = parse_time(str(item["timestamp"]))
        parent = (item.get("replied_to") or {}).get("id") or post
        events.append(
            AudienceEvent(
                kind=AudienceKind.REPLY,
                user_id=author,
                handle=author,
                at=at,
                source_id=f"reply:{item['id']}",
                platform_post_id=str(parent),
            )
        )
        said.append(
            Conversation(
                kind=ConversationKind.REPLY,
                platform_post_id=str(item["id"]),
                parent_post_id=str(parent),
                author_id=author,
                author_handle=author,
                text=str(item.get("text") or ""),
                at=at,
            )
        )
    return events, said
