"""A fake Threads Graph API on 127.0.0.1 for the adapter tests (aiohttp, random port).

It implements the ``/v1.0`` endpoints :mod:`adapters.threads` uses, with the JSON shapes of Meta's
Threads API docs: ``{"id": ...}`` for creates, ``{"data": [...], "paging": {"cursors": {...},
"next": ...}}`` for lists, insights as ``{"data": [{"name", "period", "values": [{"value"}],
"title", "description", "id"}]}`` (user insights with ``total_value``), errors as
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``:

- ``GET /me``, ``GET /me/threads_publishing_limit``, ``POST /me/threads`` (a TEXT container),
  ``POST /me/threads_publish``, ``GET /me/threads`` (``since``, ``limit``, ``after``; top-level
  posts only), ``GET /me/replies`` (the same for the account's replies; a container created with
  ``reply_to_id`` publishes a reply),
  ``GET /me/threads_insights``, ``GET /{media-id}/insights``, ``DELETE /{media-id}``.
- ``access_token`` is required, in the query string or the form body; a wrong one answers
  HTTP 400 with code 190 (``OAuthException``), as the Graph API does.
- ``publish_denied_code`` (10, or 200-299) makes the token lack ``threads_content_publish``: the
  publishing-limit and create-container endpoints answer HTTP 400 with that permission error.

Faults are queued with :meth:`ThreadsServer.fail` and consumed by the first matching request:

- ``rate_limit``: code 4 "Application request limit reached" with the ``x-app-usage`` and
  ``x-business-use-case-usage`` headers (``estimated_time_to_regain_access`` in minutes). Meta
  documents the codes and headers, not an HTTP status; the Graph API answers them with HTTP 400,
  so that is the default (``status=429`` is available too).
- ``unavailable``: HTTP 503 with code 2 "Service temporarily unavailable" (``is_transient``).
- ``auth``: HTTP 401 with code 190 (an expired or revoked token).
- ``malformed``: the handler runs, then HTTP 200 with a body that is not JSON.
- ``lose_response``: the handler runs (a post is stored), then the connection is dropped
  (``delay=0``) or the answer waits ``delay`` seconds, past the client's timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.base import Platform
from adapters.length import threads_length
from adapters.threads import MAX_CHARS, ThreadsPlatform

FAULT_KINDS = ("rate_limit", "unavailable", "auth", "malformed", "lose_response")
# "none": no failure; queued first, it makes the next fault hit a later request (a thread part)
QUEUE_KINDS = (*FAULT_KINDS, "none")
PREFIX = "/v1.0"
USER_ID = "17841400000000001"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    kind: str
    method: str | None
    path: str | None  # a suffix of the request path
    times: int
    status: int
    delay: float
    regain_minutes: int


@dataclass
class ThreadsServer:
    """One Threads account. Start with ``await server.start()``."""

    token: str = "test-token"
    username: str = "growthbot"
    followers: int = 42
    quota_usage: int = 0
    quota_total: int = 250
    publish_denied_code: int | None = None  # e.g. 10 or 200: no threads_content_publish
    max_chars: int = MAX_CHARS
    containers: dict[str, str] = field(default_factory=dict)  # container id -> text
    # container id -> the media id it replies to (``reply_to_id``, a thread's later part)
    container_replies: dict[str, str] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)  # container ids already published
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # media id -> post
    insights: dict[str, dict[str, int]] = field(default_factory=dict)  # media id -> counters
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # media id -> replies
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    faults: list[Fault] = field(default_factory=list)
    _next_id: int = 18000000000000000
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ThreadsServer:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(PREFIX + "/{node}", self._me)
        app.router.add_delete(PREFIX + "/{node}", self._delete)
        app.router.add_get(PREFIX + "/{node}/threads_publishing_limit", self._publishing_limit)
        app.router.add_post(PREFIX + "/{node}/threads", self._create_container)
        app.router.add_post(PREFIX + "/{node}/threads_publish", self._publish)
        app.router.add_get(PREFIX + "/{node}/threads", self._threads)
        app.router.add_get(PREFIX + "/{node}/replies", self._replies)
        app.router.add_get(PREFIX + "/{node}/threads_insights", self._user_insights)
        app.router.add_get(PREFIX + "/{node}/insights", self._media_insights)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        status: int | None = None,
        delay: float = 0.0,
        regain_minutes: int = 15,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path`` (a suffix) fail."""
        assert kind in QUEUE_KINDS, kind
        default_status = {"rate_limit": 400, "unavailable": 503, "auth": 401}.get(kind, 200)
        self.faults.append(
            Fault(kind, method, path, times, status or default_status, delay, regain_minutes)
        )

    def add_post(self, text: str, *, created_at: datetime | None = None) -> str:
        """Store a published post (at ``created_at``, default now); its media id."""
        media_id = self._new_id()
        created = created_at or datetime.now(UTC)
        self.posts[media_id] = {
            "id": media_id,
            "text": text,
            "timestamp": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "_created": created.replace(microsecond=0),
        }
        self.insights[media_id] = dict.fromkeys(
            ("views", "likes", "replies", "reposts", "quotes", "shares"), 0
        )
        return media_id

    def add_reply(
        self, media_id: str, username: str, text: str, *, at: datetime | None = None
    ) -> str:
        """``username`` replies to our post ``media_id`` (at ``at``, default now); its id."""
        reply_id = self._new_id()
        created = at or datetime.now(UTC)
        self.replies.setdefault(media_id, []).append(
            {
                "id": reply_id,
                "text": text,
                "username": username,
                "timestamp": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "replied_to": {"id": media_id},
                "root_post": {"id": media_id},
                "is_reply": True,
            }
        )
        return reply_id

    def paths(self) -> list[str]:
        """The request log as ``"METHOD /path"`` strings."""
        return [f"{m} {p}" for m, p in self.requests]

    # -- plumbing -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _take_fault(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if fault.method is not None and fault.method != request.method:
                continue
            if fault.path is not None and not request.path.endswith(fault.path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        form = await request.post() if request.method == "POST" else {}
        token = request.query.get("access_token") or form.get("access_token")
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "rate_limit":
            return _rate_limited(fault)
        if fault is not None and fault.kind == "unavailable":
            return graph_error(fault.status, 2, "Service temporarily unavailable", transient=True)
        if fault is not None and fault.kind == "auth":
            return graph_error(fault.status, 190, "Error validating access token", subcode=463)
        if token != self.token:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        response = await handler(request)
        if fault is not None and fault.kind == "malformed":
            return web.Response(status=200, text='{"id": "1", "data": [', content_type="text/json")
        if fault is not None and fault.kind == "lose_response":
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            elif request.transport is not None:
                request.transport.abort()  # the post exists; the client never hears so
        return response

    # -- endpoints ------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        if request.match_info["node"] not in ("me", USER_ID):
            return _not_found(request.match_info["node"])
        fields = request.query.get("fields", "id").split(",")
        user = {
            "id": USER_ID,
            "username": self.username,
            "threads_profile_picture_url": "https://example.invalid/avatar.jpg",
            "threads_biography": "A bot.",
        }
        return web.json_response({k: v for k, v in user.items() if k in fields or k == "id"})

    def _publish_denied(self) -> web.Response | None:
        if self.publish_denied_code is None:
            return None
        if self.publish_denied_code == 10:
            message = "Application does not have permission for this action"
        else:
            message = "Permissions error: threads_content_publish is required"
        return graph_error(400, self.publish_denied_code, message)

    async def _publishing_limit(self, request: web.Request) -> web.Response:
        if (denied := self._publish_denied()) is not None:
            return denied
        entry: dict[str, Any] = {}
        fields = request.query.get("fields", "quota_usage").split(",")
        if "quota_usage" in fields:
            entry["quota_usage"] = self.quota_usage
        if "config" in fields:
            entry["config"] = {"quota_total": self.quota_total, "quota_duration": 86400}
        return web.json_response({"data": [entry]})

    async def _create_container(self, request: web.Request) -> web.Response:
        if (denied := self._publish_denied()) is not None:
            return denied
        params = {**request.query, **(await request.post())}
        if params.get("media_type") != "TEXT":
            return graph_error(400, 100, "The parameter media_type is required.")
        text = str(params.get("text", ""))
        if not text.strip():
            return graph_error(400, 100, "The parameter text is required.")
        if threads_length(text) > self.max_chars:
            return graph_error(
                400, 100, f"Param text must be at most {self.max_chars} characters long."
            )
        reply_to = params.get("reply_to_id")
        if reply_to is not None and str(reply_to) not in self.posts:
            return graph_error(400, 100, "The parameter reply_to_id is invalid.", subcode=33)
        container_id = self._new_id()
        self.containers[container_id] = text
        if reply_to is not None:
            self.container_replies[container_id] = str(reply_to)
        return web.json_response({"id": container_id})

    async def _publish(self, request: web.Request) -> web.Response:
        params = {**request.query, **(await request.post())}
        creation_id = str(params.get("creation_id", ""))
        if creation_id not in self.containers:
            return graph_error(400, 100, "The parameter creation_id is required.", subcode=33)
        if creation_id in self.published:
            return graph_error(400, 10, "The media has already been published.", subcode=2207)
        if self.quota_usage >= self.quota_total:
            return graph_error(400, 4, "Application request limit reached", subcode=2207051)
        self.published.add(creation_id)
        self.quota_usage += 1
        media_id = self.add_post(self.containers[creation_id])
        if creation_id in self.container_replies:
            self.posts[media_id]["_reply_to"] = self.container_replies[creation_id]
        return web.json_response({"id": media_id})

    async def _replies(self, request: web.Request) -> web.Response:
        """GET /{node}/replies: the account's own replies for ``me`` (or its user id), else the
        replies to a media object."""
        if request.match_info["node"] in ("me", USER_ID):
            return self._listing(request, replies=True)
        return await self._media_replies(request)

    async def _media_replies(self, request: web.Request) -> web.Response:
        """GET /{media-id}/replies: top-level replies, oldest first with ``reverse=false``,
        cursor-paginated (``paging.cursors.after`` and ``paging.next`` while more remain)."""
        media_id = request.match_info["node"]
        if media_id not in self.posts:
            return _not_found(media_id)
        items = list(self.replies.get(media_id, []))
        if request.query.get("reverse", "true") != "false":
            items.reverse()
        limit = min(int(request.query.get("limit", "25")), 100)
        start = int(request.query.get("after", "0") or "0")
        page = items[start : start + limit]
        fields = request.query.get("fields", "id").split(",")
        body: dict[str, Any] = {
            "data": [{k: v for k, v in r.items() if k in fields or k == "id"} for r in page],
            "paging": {"cursors": {"before": str(start), "after": str(start + len(page))}},
        }
        if start + limit < len(items):
            body["paging"]["next"] = f"{self.base_url}{request.path}?after={start + len(page)}"
        return web.json_response(body)

    async def _threads(self, request: web.Request) -> web.Response:
        """The account's threads (``GET /me/threads``): top-level posts, not its replies."""
        return self._listing(request, replies=False)

    def replies_to(self, media_id: str) -> str | None:
        """The media id a post replies to (None: a top-level post), for tests."""
        return self.posts[media_id].get("_reply_to")

    def _listing(self, request: web.Request, *, replies: bool) -> web.Response:
        since = request.query.get("since")
        limit = min(int(request.query.get("limit", "25")), 100)
        posts = sorted(
            (p for p in self.posts.values() if ("_reply_to" in p) == replies),
            key=lambda p: (p["_created"], p["id"]),
            reverse=True,
        )
        if since is not None:
            floor = datetime.fromtimestamp(int(since), UTC)
            posts = [p for p in posts if p["_created"] >= floor]
        start = int(request.query.get("after", "0") or "0")
        page = posts[start : start + limit]
        fields = request.query.get("fields", "id").split(",")
        body: dict[str, Any] = {
            "data": [{k: v for k, v in p.items() if k in fields or k == "id"} for p in page],
            "paging": {"cursors": {"before": str(start), "after": str(start + len(page))}},
        }
        if start + limit < len(posts):
            body["paging"]["next"] = f"{self.base_url}{request.path}?after={start + len(page)}"
        return web.json_response(body)

    async def _user_insights(self, request: web.Request) -> web.Response:
        data = []
        if "followers_count" in request.query.get("metric", "").split(","):
            data.append(
                {
                    "name": "followers_count",
                    "period": "day",
                    "title": "followers_count",
                    "description": "The number of followers on the profile.",
                    "total_value": {"value": self.followers},
                    "id": f"{USER_ID}/insights/followers_count/day",
                }
            )
        return web.json_response({"data": data})

    async def _media_insights(self, request: web.Request) -> web.Response:
        media_id = request.match_info["node"]
        counters = self.insights.get(media_id)
        if counters is None or media_id not in self.posts:
            return _not_found(media_id)
        data = [
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": counters.get(name, 0)}],
                "title": name,
                "description": f"The number of {name} of the post.",
                "id": f"{media_id}/insights/{name}/lifetime",
            }
            for name in request.query.get("metric", "").split(",")
            if name in counters
        ]
        return web.json_response({"data": data})

    async def _delete(self, request: web.Request) -> web.Response:
        media_id = request.match_info["node"]
        if self.posts.pop(media_id, None) is None:
            return _not_found(media_id)
        return web.json_response({"success": True, "deleted_id": media_id})


def graph_error(
    status: int, code: int, message: str, *, subcode: int | None = None, transient: bool = False
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException"
        if code in (4, 10, 100, 190) or 200 <= code < 300
        else "THApiException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjKlMnOp",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return web.json_response({"error": error}, status=status)


def _not_found(object_id: str) -> web.Response:
    return graph_error(
        400,
        100,
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        subcode=33,
    )


def _rate_limited(fault: Fault) -> web.Response:
    response = graph_error(fault.status, 4, "Application request limit reached", transient=True)
    response.headers["x-app-usage"] = json.dumps(
        {"call_count": 100, "total_cputime": 12, "total_time": 30}
    )
    response.headers["x-business-use-case-usage"] = json.dumps(
        {
            USER_ID: [
                {
                    "type": "threads",
                    "call_count": 100,
                    "total_cputime": 12,
                    "total_time": 30,
                    "estimated_time_to_regain_access": fault.regain_minutes,
                }
            ]
        }
    )
    return response


# -- the contract-suite harness ----------------------------------------------------------------


class ThreadsHarness:
    """:class:`tests.adapters.harness.Harness` for Threads.

    ``rate_limit``, ``unavailable``, ``auth`` and ``malformed`` hit the next request, whichever
    endpoint (for a publish that is the quota check, so the failure is definite);
    ``lose_response`` hits the next ``POST .../threads_publish``. The platform makes one attempt
    per read (no retry) so that each queued fault surfaces to the caller.
    """

    def __init__(self, server: ThreadsServer, platform: ThreadsPlatform) -> None:
        self.server = server
        self.platform: Platform = platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        if kind == "lose_response":
            self.server.fail(kind, method="POST", path="/threads_publish", times=count)
        else:
            self.server.fail(kind, times=count)

    def stored_texts(self) -> list[str]:
        return [p["text"] for p in self.server.posts.values()]

    def supports(self, kind: str) -> bool:
        return kind in FAULT_KINDS

    def parent_of(self, post_id: str) -> str | None:
        return self.server.replies_to(post_id)

    def lose_response_after(self, creates: int) -> None:
        if creates:
            self.server.fail("none", method="POST", path="/threads_publish", times=creates)
        self.fail_next("lose_response")


@asynccontextmanager
async def threads_harness(**platform_overrides: Any) -> AsyncIterator[ThreadsHarness]:
    """Start a :class:`ThreadsServer` and yield a harness whose platform points at it."""
    server = await ThreadsServer().start()
    kwargs: dict[str, Any] = {
        "access_token": server.token,
        "base_url": server.base_url,
        "now": lambda: datetime.now(UTC),
        "timeout": 2.0,
        "read_attempts": 1,
        "read_backoff": 0.0,
    }
    kwargs.update(platform_overrides)
    assert kwargs["base_url"].startswith("http://127.0.0.1:")  # never a public address
    platform = ThreadsPlatform(**kwargs)
    try:
        yield ThreadsHarness(server, platform)
    finally:
        await platform.aclose()
        await server.stop()
