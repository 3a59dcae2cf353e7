"""The X (Twitter) API v2 adapter: one account, OAuth 1.0a user context, through tweepy.

tweepy's :class:`~tweepy.asynchronous.AsyncClient` builds every request from the hard-coded host
``https://api.twitter.com`` inside ``AsyncBaseClient.request``; that method is the only seam, so
:class:`_XClient` overrides it with the same signing and status handling plus a configurable host
(tests point it at a local server), one owned ``aiohttp`` session with timeouts, and no logging of
headers. Everything above it (endpoints, parameters, tweepy's exception classes) is tweepy's.

Error translation (every vendor error becomes an ``agent.errors`` error, ``from`` the original):

=======================================  ===========================  ==========================
what happened                            publish                      reads / delete
=======================================  ===========================  ==========================
429 (``x-rate-limit-reset``)             RateLimited(reset_at)        RateLimited(reset_at)
401                                      AuthFailed                   AuthFailed
403 "duplicate content"                  DuplicateContent             -
403 oauth1 permissions / read-only app   AuthFailed (names Read and Write)
other 403, 400                           ContentRejected              PermanentPlatformError
5xx, timeout after connecting,           AmbiguousPublish             PlatformUnavailable
connection dropped, malformed 2xx body
connection refused, DNS, connect timeout PlatformUnavailable          PlatformUnavailable
=======================================  ===========================  ==========================

Reads (and delete, which is idempotent) are retried with jittered exponential backoff on
``PlatformUnavailable`` and on ``RateLimited`` whose reset is at most :data:`MAX_RATE_LIMIT_WAIT`
away; a publish is never retried (the daemon reconciles an ``AmbiguousPublish`` through
:meth:`XPlatform.find_recent`). X takes no idempotency key, so ``idempotency_key`` is unused.

Threads: the daemon posts a thread one part at a time (:meth:`XPlatform.publish_reply`, each part
its own publish intent, agent/threads.py). :meth:`XPlatform.publish_thread` (a whole chain in one
call, not used by the daemon) length-checks every part before sending anything, then posts a
reply chain (each part ``in_reply_to_tweet_id`` the previous one). Errors are translated as
in ``publish`` and never retried; every error it raises carries ``posted``, the list of parts X
accepted before the failure (in order, possibly empty), so the caller reconciles the rest (after an
``AmbiguousPublish`` the failed part itself may exist too: look for it with ``find_recent``) and
never re-posts those parts. :func:`thread_posted` reads that attribute.

Write access: :meth:`XPlatform.check_write_access` asks ``GET /2/users/me`` (nothing is posted)
and reads the ``x-access-level`` header X sends on user-context responses (``read``,
``read-write``, ``read-write-directmessages``); ``read`` raises ``AuthFailed`` naming the fix.

Metrics: ``non_public_metrics`` / ``organic_metrics`` are asked for first; X answers a disallowed
field with HTTP 200 and a "Field Authorization Error" in ``errors[]`` (posts older than 30 days,
apps without user context), so the adapter then asks again with ``public_metrics`` only and keeps
doing so for the rest of the session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import tweepy
from oauthlib.oauth1 import Client as OAuthClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tweepy.asynchronous import AsyncClient
from yarl import URL

from adapters import x_audience
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
from adapters.length import X_MAX_CHARS, urls, x_length
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    DuplicateContent,
    PermanentPlatformError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)

DEFAULT_BASE_URL = "https://api.twitter.com"  # tweepy's host; api.x.com serves the same API
DEFAULT_TIMEOUT = 30.0  # seconds, whole request
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds; a connect timeout means nothing was sent
READ_ATTEMPTS = 4  # per read call, including the first
READ_BACKOFF = 1.0  # seconds, multiplier of the jittered exponential backoff
READ_BACKOFF_MAX = 30.0  # seconds, longest single wait between two read attempts
MAX_RATE_LIMIT_WAIT = timedelta(seconds=60)  # a read waits for a reset at most this far away
METRICS_BATCH = 100  # ids per GET /2/tweets (the API's maximum)
MAX_CHARS = X_MAX_CHARS  # weighted characters per post (adapters.length)

WRITE_ACCESS_LEVELS = ("read-write", "read-write-directmessages")  # x-access-level values
PRIVATE_METRIC_FIELDS = ["public_metrics", "non_public_metrics", "organic_metrics"]
PUBLIC_METRIC_FIELDS = ["public_metrics"]

# Posting caps by API access tier (per user). Approximate, from X's published limits; our own
# cadence caps sit well below them. Pay-per-use (the default for new developer accounts) is bound
# by the account-wide 2,400 posts/day, split by X into smaller semi-hourly windows (~100/hour);
# Basic allows 100 POST /2/tweets per user per 24 h; the legacy Free tier 17 per 24 h.
TIERS: dict[str, PlatformLimits] = {
    "pay_per_use": PlatformLimits(max_chars=MAX_CHARS, posts_per_hour=100, posts_per_day=2400),
    "basic": PlatformLimits(max_chars=MAX_CHARS, posts_per_hour=100, posts_per_day=100),
    "free": PlatformLimits(max_chars=MAX_CHARS, posts_per_hour=17, posts_per_day=17),
}
DEFAULT_TIER = "pay_per_use"


# What X charges per call, in US dollars (pay-per-use; the other tiers bill monthly, so a call
# costs nothing extra). ``read`` is per *owned* object returned: each post of GET /2/tweets, the
# user object of GET /2/users/me, each post of a GET /2/users/{id}/tweets page. Counted
# conservatively: every object in ``data`` and in ``includes`` is billed (an expansion such as
# ``author_id`` adds its user objects to the bill), never less than X could charge.
PRICES: dict[str, Prices] = {
    "pay_per_use": Prices(post=0.015, post_with_url=0.20, read=0.001),
    "basic": FREE,
    "free": FREE,
}


# --- Parsing X's JSON (pure; tested against recorded responses) -----------------------------


def parse_time(value: str) -> datetime:
    """X's ISO-8601 timestamps (``2022-05-07T13:20:51.000Z``) as aware UTC datetimes."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def parse_post(obj: Mapping[str, Any], *, default_time: datetime | None = None) -> PublishedPost:
    """A post object (``data`` of POST /2/tweets, or an item of GET /2/users/{id}/tweets)."""
    created = obj.get("created_at")
    if created is None and default_time is None:
        raise ValueError(f"post {obj.get('id')!r} has no created_at")
    return PublishedPost(
        platform_post_id=str(obj["id"]),
        text=str(obj["text"]),
        posted_at=parse_time(created) if created is not None else default_time,  # type: ignore[arg-type]
    )


def _count(*sources: Mapping[str, Any] | None, keys: Sequence[str]) -> int:
    """The first counter present among ``sources`` under any of ``keys``, else 0."""
    for source in sources:
        if not source:
            continue
        for key in keys:
            value = source.get(key)
            if value is not None:
                return int(value)
    return 0


def parse_metrics(obj: Mapping[str, Any]) -> PostMetrics:
    """A post object with any of public/non_public/organic_metrics (all optional)."""
    public = obj.get("public_metrics")
    private = obj.get("non_public_metrics")
    organic = obj.get("organic_metrics")
    return PostMetrics(
        platform_post_id=str(obj["id"]),
        likes=_count(public, organic, keys=["like_count"]),
        reposts=_count(public, organic, keys=["retweet_count", "repost_count"]),
        replies=_count(public, organic, keys=["reply_count"]),
        quotes=_count(public, keys=["quote_count"]),
        bookmarks=_count(public, keys=["bookmark_count"]),
        impressions=_count(private, organic, public, keys=["impression_count"]),
        profile_clicks=_count(private, organic, keys=["user_profile_clicks"]),
        url_clicks=_count(private, organic, keys=["url_link_clicks"]),
    )


def parse_account(obj: Mapping[str, Any]) -> AccountInfo:
    """A user object (``data`` of GET /2/users/me); counters 0 when public_metrics is absent."""
    metrics = obj.get("public_metrics") or {}
    return AccountInfo(
        handle=str(obj["username"]),
        followers=_count(metrics, keys=["followers_count"]),
        following=_count(metrics, keys=["following_count"]),
        posts=_count(metrics, keys=["tweet_count", "post_count"]),
    )


def _user_id(body: Mapping[str, Any]) -> str:
    return str(body["data"]["id"])


def has_field_authorization_error(body: Mapping[str, Any]) -> bool:
    """Whether ``errors[]`` of a 200 response refuses a field we asked for."""
    for error in body.get("errors") or ():
        if not isinstance(error, Mapping):
            continue
        kind = str(error.get("type", ""))
        if error.get("title") == "Field Authorization Error" or kind.endswith(
            ("/not-authorized-for-field", "/field-unauthorized")
        ):
            return True
    return False


# --- The tweepy client with a configurable host ----------------------------------------------


class _MalformedResponse(Exception):
    """A response whose body is not the JSON X documents."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status


class _XClient(AsyncClient):  # type: ignore[misc]
    """tweepy's AsyncClient with ``base_url``, an owned session and safe error bodies."""

    def __init__(self, *, base_url: str, timeout: aiohttp.ClientTimeout, **credentials: str):
        super().__init__(**credentials, return_type=dict)
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None  # tweepy's ``session`` stays unused

    async def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        user_auth: bool = False,
    ) -> aiohttp.ClientResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url: str | URL = self.base_url + route
        headers = {"User-Agent": self.user_agent}
        if json is not None:
            headers["Content-Type"] = "application/json"
        if user_auth:
            oauth = OAuthClient(
                self.consumer_key,
                self.consumer_secret,
                self.access_token,
                self.access_token_secret,
            )
            signed, headers, _ = oauth.sign(
                str(URL(str(url)).with_query(sorted((params or {}).items()))),
                method,
                headers=headers,
            )
            # oauthlib signs colons percent-encoded; aiohttp would not encode them (as tweepy)
            before, _, query = signed.partition("?")
            url = URL(f"{before}?{query.replace(':', '%3A')}", encoded=True)
            params = None
        else:
            headers["Authorization"] = f"Bearer {self.bearer_token}"

        async with self._session.request(
            method, url, params=params, json=json, headers=headers
        ) as response:
            body = await response.read()

        if 200 <= response.status < 300:
            try:
                _json.loads(body)
            except ValueError as exc:
                raise _MalformedResponse(response.status, "body is not JSON") from exc
            return response
        try:
            payload = _json.loads(body)
            if not isinstance(payload, dict):
                payload = {}
        except ValueError:
            payload = {}
        status = response.status
        if status == 400:
            raise tweepy.BadRequest(response, response_json=payload)
        if status == 401:
            raise tweepy.Unauthorized(response, response_json=payload)
        if status == 403:
            raise tweepy.Forbidden(response, response_json=payload)
        if status == 404:
            raise tweepy.NotFound(response, response_json=payload)
        if status == 429:
            reset = response.headers.get("x-rate-limit-reset")
            raise tweepy.TooManyRequests(
                response,
                response_json=payload,
                reset_time=int(reset) if reset and reset.isdigit() else None,
            )
        if status >= 500:
            raise tweepy.TwitterServerError(response, response_json=payload)
        raise tweepy.HTTPException(response, response_json=payload)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_json = json  # ``request`` has a parameter named ``json`` (tweepy's signature)


# --- Error translation -----------------------------------------------------------------------

# the account's secrets, unprefixed (agent/config.py PLATFORM_SECRETS: <PREFIX>_<NAME>)
SECRET_NAMES = ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")


def read_only_hint(env_prefix: str | None = None) -> str:
    """The fix for a read-only X app, naming the account's token variables."""
    token, token_secret = (env_name(env_prefix, n) for n in SECRET_NAMES[2:])
    return (
        "the X app has read-only permission; enable Read and Write under the app's User "
        "authentication settings in the developer portal, then regenerate the access token and "
        f"secret ({token}, {token_secret})"
    )


def translate(
    exc: BaseException, *, publishing: bool, env_prefix: str | None = None
) -> PlatformError:
    """The ``agent.errors`` error for a tweepy/aiohttp exception (``raise ... from exc``);
    credential errors name the account's variables (``<env_prefix>_X_API_KEY``...)."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, tweepy.TooManyRequests):
        reset = exc.reset_time
        reset_at = datetime.fromtimestamp(reset, UTC) if reset is not None else None
        return RateLimited(f"X rate limit reached: {exc}", reset_at=reset_at)
    if isinstance(exc, tweepy.Unauthorized):
        key, secret, token, token_secret = (env_name(env_prefix, n) for n in SECRET_NAMES)
        return AuthFailed(
            f"X refused the OAuth 1.0a credentials (401): check {key}, {secret}, "
            f"{token} and {token_secret} ({exc})"
        )
    if isinstance(exc, tweepy.Forbidden):
        detail = " ".join(str(m) for m in exc.api_messages).lower()
        access = exc.response.headers.get("x-access-level", "") if exc.response else ""
        if "duplicate content" in detail:
            return DuplicateContent(f"X refused a duplicate post: {exc}")
        if "oauth1" in detail or "permission" in detail or (publishing and access == "read"):
            return AuthFailed(f"{read_only_hint(env_prefix)} ({exc})")
        if publishing:
            return ContentRejected(f"X refused the post: {exc}")
        return PermanentPlatformError(f"X refused the request: {exc}")
    if isinstance(exc, tweepy.TwitterServerError | _MalformedResponse):
        if publishing:
            return AmbiguousPublish(f"X answered the post with {exc}; it may exist")
        return PlatformUnavailable(f"X server error: {exc}")
    if isinstance(exc, tweepy.BadRequest) and publishing:
        return ContentRejected(f"X refused the post: {exc}")
    if isinstance(exc, tweepy.HTTPException):
        return PermanentPlatformError(f"X refused the request: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return PlatformUnavailable(f"X could not be reached: {exc}")
    if isinstance(exc, TimeoutError | aiohttp.ClientError | ValueError | KeyError | TypeError):
        # sent (or half-read) without a usable answer; ValueError etc.: an unexpected body shape
        reason = f"{type(exc).__name__}: {exc}"
        if publishing:
            return AmbiguousPublish(f"X post outcome unknown ({reason})")
        return PlatformUnavailable(f"X request failed ({reason})")
    return PlatformError(f"X request failed ({type(exc).__name__}: {exc})")


# --- The adapter -----------------------------------------------------------------------------


class XPlatform(x_audience.XAudienceReads):
    """One X account (see the module docstring for behaviour)."""

    name = "x"

    def __init__(
        self,
        *,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        now: Callable[[], datetime],
        base_url: str | None = None,
        tier: str = DEFAULT_TIER,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_attempts: int = READ_ATTEMPTS,
        read_backoff: float = READ_BACKOFF,
        env_prefix: str | None = None,
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown X tier {tier!r}; one of {', '.join(TIERS)}")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._client = _XClient(
            base_url=self.base_url,
            timeout=aiohttp.ClientTimeout(total=timeout, connect=connect_timeout),
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
        )
        self._now = now
        self._limits = TIERS[tier]
        self._prices = PRICES[tier]
        self._spend_usd = 0.0  # what this session's calls cost, by PRICES
        self._read_attempts = read_attempts
        self._read_backoff = read_backoff
        self._metric_fields = PRIVATE_METRIC_FIELDS
        self._user_id: str | None = None
        self._env_prefix = env_prefix  # the account's secrets are <env_prefix>_X_API_KEY...

    @property
    def limits(self) -> PlatformLimits:
        return self._limits

    @property
    def spend_usd(self) -> float:
        """What this session's calls cost so far, by :data:`PRICES` (the daemon reads it)."""
        return self._spend_usd

    @property
    def prices(self) -> Prices:
        """The access tier's prices (:data:`PRICES`)."""
        return self._prices

    def length(self, text: str) -> int:
        """X's weighted length (twitter-text v3, see :mod:`adapters.length`)."""
        return x_length(text)

    async def load_limits(self) -> PlatformLimits:
        """Nothing to read: X's limits are fixed by the access tier."""
        return self._limits

    @property
    def private_metrics(self) -> bool:
        """False once X refused non-public metrics in this session."""
        return self._metric_fields is PRIVATE_METRIC_FIELDS

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        self._check_text(text)
        return await self._create(text)

    async def publish_thread(
        self, parts: Sequence[str], *, idempotency_key: str
    ) -> list[PublishedPost]:
        """Post ``parts`` as a reply chain; the posts in order.

        Every part is checked (non-empty, ``x_length`` within the limit) before anything is sent;
        a bad part raises ``ContentRejected`` naming it ("part 2 of 3"). The first part is a normal
        post, each next one replies to the previous one. Nothing is retried. Any error raised
        carries ``posted`` (see :func:`thread_posted`): the parts X accepted before the failure,
        which must not be posted again. Each part is charged as one post in ``spend_usd``.
        """
        texts = list(parts)
        posted: list[PublishedPost] = []
        try:
            if not texts:
                raise ContentRejected("an X thread needs at least one part")
            for index, text in enumerate(texts):
                try:
                    self._check_text(text)
                except ContentRejected as exc:
                    raise ContentRejected(
                        f"thread part {index + 1} of {len(texts)} (index {index}): {exc}"
                    ) from None
            for index, text in enumerate(texts):
                reply_to = posted[-1].platform_post_id if posted else None
                try:
                    posted.append(await self._create(text, reply_to=reply_to))
                except PlatformError as exc:
                    exc.add_note(
                        f"X thread part {index + 1} of {len(texts)} failed; "
                        f"{len(posted)} earlier part(s) were posted (see .posted)"
                    )
                    raise
        except PlatformError as exc:
            exc.posted = list(posted)  # type: ignore[attr-defined]
            raise
        return posted

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """One later part of a thread (docs/threads.md): ``POST /2/tweets`` with
        ``reply.in_reply_to_tweet_id`` the parent (X finds the root itself). Checked, translated
        and billed as :meth:`publish`; never retried."""
        self._check_text(text)
        return await self._create(text, reply_to=reply_to.parent_id)

    async def check_write_access(self) -> str:
        """Whether these credentials may post, without posting; a short description if so.

        Reads the ``x-access-level`` header of ``GET /2/users/me``: ``read-write`` and
        ``read-write-directmessages`` return e.g. ``"read-write (x-access-level)"``; ``read``
        raises ``AuthFailed`` with the fix; no header returns
        ``"unknown (X did not send x-access-level)"``. Charged as one owned read.
        """
        answer = await self._read(self._me_with_headers)
        self._spend_usd += self._prices.read
        body, headers = answer["body"], answer["headers"]
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "id" in body["data"]:
            self._user_id = str(body["data"]["id"])
        level = headers.get("x-access-level")
        if level is None:
            return "unknown (X did not send x-access-level)"
        level = level.strip().lower()
        if level == "read":
            raise AuthFailed(
                "X reports x-access-level 'read': the app has read-only access; set the App "
                "permissions to Read and Write (or Read and write and Direct message) under the "
                "app's User authentication settings in the developer portal and regenerate the "
                "access token and secret ("
                + ", ".join(env_name(self._env_prefix, n) for n in SECRET_NAMES[2:])
                + ")"
            )
        if level in WRITE_ACCESS_LEVELS:
            return f"{level} (x-access-level)"
        return f"unknown (X sent x-access-level {level!r})"

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        ids = list(dict.fromkeys(str(i) for i in post_ids))
        out: dict[str, PostMetrics] = {}
        for start in range(0, len(ids), METRICS_BATCH):
            batch = ids[start : start + METRICS_BATCH]
            body = await self._get_tweets(batch, self._metric_fields)
            if self.private_metrics and has_field_authorization_error(body):
                self._metric_fields = PUBLIC_METRIC_FIELDS
                body = await self._get_tweets(batch, self._metric_fields)
            for obj in body.get("data") or ():
                metrics = self._parsed(parse_metrics, obj)
                out[metrics.platform_post_id] = metrics
                self._spend_usd += self._prices.read
        return out

    async def fetch_account(self) -> AccountInfo:
        body = await self._read(
            lambda: self._client.get_me(user_fields=["public_metrics"], user_auth=True)
        )
        account: AccountInfo = self._parsed(parse_account, body["data"])
        self._user_id = str(body["data"]["id"])
        self._spend_usd += self._prices.read
        return account

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        user_id = await self._own_id()
        posts: list[PublishedPost] = []
        token: str | None = None
        while len(posts) < limit:
            page_size = min(max(limit - len(posts), 5), 100)  # the API takes 5..100
            body = await self._read(
                partial(
                    self._client.get_users_tweets,
                    user_id,
                    start_time=since,
                    max_results=page_size,
                    pagination_token=token,
                    tweet_fields=["created_at"],
                    user_auth=True,
                )
            )
            page = [self._parsed(parse_post, obj) for obj in body.get("data") or ()]
            self._spend_usd += self._prices.read * len(page)
            posts.extend(page)
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                break
        floor = since.replace(microsecond=0)  # X's start_time and created_at: whole seconds
        posts = [p for p in posts if p.posted_at >= floor]
        posts.sort(key=lambda p: p.posted_at, reverse=True)
        return posts[:limit]

    async def delete(self, post_id: str) -> None:
        try:
            await self._read(lambda: self._client.delete_tweet(post_id, user_auth=True))
        except PermanentPlatformError as exc:
            if isinstance(exc.__cause__, tweepy.NotFound):
                return  # already gone
            raise

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- helpers --

    def _check_text(self, text: str) -> None:
        if not text.strip():
            raise ContentRejected("an X post needs some text")
        length = x_length(text)
        if length > self._limits.max_chars:
            raise ContentRejected(f"X counts {length} characters; the limit is {MAX_CHARS}")

    async def _create(self, text: str, *, reply_to: str | None = None) -> PublishedPost:
        """One POST /2/tweets (a reply to ``reply_to`` if given), translated, never retried."""
        try:
            body = await self._client.create_tweet(
                text=text, in_reply_to_tweet_id=reply_to, user_auth=True
            )
            published = parse_post(body["data"], default_time=self._now())
            prices = self._prices
            has_url = bool(urls(text))  # X bills a post with a link more
            self._spend_usd += prices.post_with_url if has_url else prices.post
            return published
        except Exception as exc:
            raise translate(exc, publishing=True, env_prefix=self._env_prefix) from exc

    async def _me_with_headers(self) -> dict[str, Any]:
        """GET /2/users/me through ``_XClient.request``: the JSON body and the headers."""
        response = await self._client.request("GET", "/2/users/me", user_auth=True)
        return {"body": await response.json(), "headers": response.headers}

    async def _own_id(self) -> str:
        if self._user_id is None:
            body = await self._read(lambda: self._client.get_me(user_auth=True))
            self._user_id = str(self._parsed(_user_id, body))
        return self._user_id

    async def _get_tweets(self, ids: list[str], fields: list[str]) -> dict[str, Any]:
        return await self._read(
            lambda: self._client.get_tweets(ids, tweet_fields=fields, user_auth=True)
        )

    def _parsed(self, parse: Callable[[Any], Any], obj: Any) -> Any:
        try:
            return parse(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformUnavailable(f"X sent an unexpected response shape: {exc!r}") from exc

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, RateLimited):
            return exc.reset_at is not None and exc.reset_at - self._now() <= MAX_RATE_LIMIT_WAIT
        return isinstance(exc, PlatformUnavailable)

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=self._read_backoff, max=READ_BACKOFF_MAX)
        seconds = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.reset_at is not None:
            seconds = max(seconds, (exc.reset_at - self._now()).total_seconds())
        return seconds

    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One read call, translated, retried on transient errors (never used by publish)."""

        async def once() -> Any:
            try:
                body = await call()
            except Exception as exc:
                raise translate(exc, publishing=False, env_prefix=self._env_prefix) from exc
            if not isinstance(body, dict):
                raise PlatformUnavailable(f"X sent a {type(body).__name__}, not a JSON object")
            return body

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self._read_attempts),
            wait=self._wait,
            reraise=True,
        ):
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover


def thread_posted(exc: BaseException) -> list[PublishedPost]:
    """The parts of a thread X accepted before ``exc`` (raised by ``publish_thread``), else []."""
    posted = getattr(exc, "posted", None)
    return list(posted) if isinstance(posted, list) else []


def from_config(
    *,
    account: str,
    secrets: Mapping[str, str],
    base_url: str | None,
    now: Callable[[], datetime],
    tier: str | None = None,
    env_prefix: str | None = None,
) -> XPlatform:
    """Build the adapter from the account's ``X_*`` secrets (OAuth 1.0a user context), read
    from ``<env_prefix>_X_*`` (named so in error messages)."""
    missing = [env_name(env_prefix, n) for n in SECRET_NAMES if not secrets.get(n)]
    if missing:
        raise ConfigError(f"account {account!r} (x) needs {', '.join(missing)}")
    return XPlatform(
        consumer_key=secrets["X_API_KEY"],
        consumer_secret=secrets["X_API_SECRET"],
        access_token=secrets["X_ACCESS_TOKEN"],
        access_token_secret=secrets["X_ACCESS_TOKEN_SECRET"],
        base_url=base_url,
        now=now,
        tier=tier or DEFAULT_TIER,
        env_prefix=env_prefix,
    )
