"""A fake Bluesky PDS on 127.0.0.1, speaking the XRPC endpoints atproto's client calls.

- ``com.atproto.server.createSession`` / ``refreshSession`` / ``getSession``: JWT-shaped tokens
  (unsigned) whose ``exp`` atproto reads; ``access_ttl`` decides when atproto refreshes.
  ``create_sessions`` and ``refreshes`` count the calls.
- ``com.atproto.repo.createRecord`` / ``deleteRecord`` for ``app.bsky.feed.post``.
- ``app.bsky.feed.getPosts`` (at most 25 uris), ``app.bsky.actor.getProfile``,
  ``app.bsky.feed.getAuthorFeed`` (``limit``, ``cursor``), shaped as the lexicons' PostView,
  ProfileViewDetailed and FeedViewPost.
- Every call but createSession needs ``Authorization: Bearer <accessJwt>`` (400 ExpiredToken
  otherwise, as the PDS answers); every response carries ``ratelimit-limit/remaining/reset/policy``.
- Errors are ``{"error": "...", "message": "..."}``.

Faults (:meth:`BlueskyServer.fail`) are consumed by the first matching request: ``rate_limit``
(429), ``unavailable`` (503), ``auth`` (401), ``malformed`` (200, body not JSON, after the handler
ran), ``lose_response`` (the handler runs - a post is stored - then the answer is delayed past the
client's timeout).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from adapters.bluesky import BlueskyPlatform

FAULT_KINDS = ("rate_limit", "unavailable", "lose_response", "auth", "malformed")
# "none": no failure; queued first, it makes the next fault hit a later request (a thread part)
QUEUE_KINDS = (*FAULT_KINDS, "none")
RATE_LIMIT = 3000  # points per window, like the PDS' global limit
HARNESS_TIMEOUT_S = 0.5  # the client's timeout in the harness; lose_response answers after 2 s

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    kind: str
    path: str | None
    times: int
    delay: float
    reset_in: timedelta


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _rough_graphemes(text: str) -> int:
    """The server's own rough count: code points that are not marks, joiners or modifiers."""
    count, after_zwj = 0, False
    for char in text:
        code = ord(char)
        joined = after_zwj or unicodedata.category(char).startswith("M") or code == 0x200D
        joined = joined or 0x1F3FB <= code <= 0x1F3FF or 0xFE00 <= code <= 0xFE0F
        count += 0 if joined else 1
        after_zwj = code == 0x200D
    return count


@dataclass
class BlueskyServer:
    """One PDS with one account. Start with ``await server.start()``."""

    handle: str = "growthbot.test"
    app_password: str = "abcd-efgh-ijkl-mnop"
    did: str = "did:plc:growthbot0000000000000000"
    followers: int = 42
    follows: int = 7
    access_ttl: timedelta = timedelta(hours=2)  # like the PDS; atproto refreshes 15 min before
    max_graphemes: int = 300
    active: bool = True  # getSession's ``active``; False with ``account_status`` as the reason
    account_status: str | None = None  # "takendown", "suspended", "deactivated"
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> PostView
    order: list[str] = field(default_factory=list)  # rkeys, oldest first
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)  # in arrival order
    follower_list: list[dict[str, Any]] = field(default_factory=list)  # getFollowers' order
    create_sessions: int = 0
    refreshes: int = 0
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    _next_rkey: int = 0
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> BlueskyServer:
        app = web.Application(middlewares=[self._middleware])
        routes: dict[str, Handler] = {
            "com.atproto.server.createSession": self._create_session,
            "com.atproto.server.refreshSession": self._refresh_session,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.deleteRecord": self._delete_record,
        }
        for nsid, handler in routes.items():
            app.router.add_post(f"/xrpc/{nsid}", handler)
        app.router.add_get("/xrpc/com.atproto.server.getSession", self._get_session)
        app.router.add_get("/xrpc/app.bsky.feed.getPosts", self._get_posts)
        app.router.add_get("/xrpc/app.bsky.actor.getProfile", self._get_profile)
        app.router.add_get("/xrpc/app.bsky.feed.getAuthorFeed", self._get_author_feed)
        app.router.add_get(
            "/xrpc/app.bsky.notification.listNotifications", self._list_notifications
        )
        app.router.add_get("/xrpc/app.bsky.graph.getFollowers", self._get_followers)
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
        path: str | None = None,
        times: int = 1,
        delay: float = 2.0,
        reset_in: timedelta = timedelta(seconds=120),
    ) -> None:
        """Make the next ``times`` requests whose NSID starts with ``path`` fail as ``kind``."""
        assert kind in QUEUE_KINDS, kind
        self.faults.append(Fault(kind, path, times, delay, reset_in))

    def expire_access_tokens(self) -> None:
        """Forget every access token (as after expiry): the next call gets 400 ExpiredToken."""
        self.access_tokens.clear()

    def add_post(self, text: str, *, created_at: datetime | None = None) -> dict[str, Any]:
        """Store a post as if it had been created (at ``created_at``, default now)."""
        self._next_rkey += 1
        rkey = f"3l{self._next_rkey:011d}"
        created = (created_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
        uri = f"at://{self.did}/app.bsky.feed.post/{rkey}"
        self.posts[rkey] = {
            "uri": uri,
            "cid": f"bafyrei{rkey}",
            "author": self._author(),
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": created.replace("+00:00", "Z"),
                "langs": ["en"],
            },
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "viewer": {},
            "labels": [],
        }
        self.order.append(rkey)
        return self.posts[rkey]

    def reply_of(self, uri: str) -> dict[str, Any] | None:
        """The reply refs (root and parent) of the post at ``uri``; None for a top-level post."""
        for post in self.posts.values():
            if post["uri"] == uri:
                reply: dict[str, Any] | None = post["record"].get("reply")
                return reply
        raise KeyError(uri)

    def notify(
        self,
        reason: str,
        who: str,
        *,
        subject: str | None = None,
        text: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A notification from ``who`` (their handle; DID ``did:plc:<who>``): ``follow``,
        ``like``, ``repost`` (of ``subject``, our post's uri), ``reply`` (to ``subject``, with
        ``text``), ``quote`` or ``mention``. Notifications are listed newest first."""
        at = at or datetime.now(UTC)
        did = f"did:plc:{who.split('.')[0]}"
        collection = {
            "follow": "app.bsky.graph.follow",
            "like": "app.bsky.feed.like",
            "repost": "app.bsky.feed.repost",
        }.get(reason, "app.bsky.feed.post")
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        uri = f"at://{did}/{collection}/3n{len(self.notifications):011d}"
        record: dict[str, Any] = {"$type": collection, "createdAt": stamp}
        if reason in ("like", "repost"):
            record["subject"] = {"uri": subject, "cid": "bafyreisubject"}
        elif reason == "follow":
            record["subject"] = self.did
        else:
            record["text"] = text or ""
            if reason == "reply":
                ref = {"uri": subject, "cid": "bafyreisubject"}
                record["reply"] = {"root": ref, "parent": ref}
            if reason == "quote":
                record["embed"] = {
                    "$type": "app.bsky.embed.record",
                    "record": {"uri": subject, "cid": "bafyreisubject"},
                }
        item: dict[str, Any] = {
            "uri": uri,
            "cid": f"bafyrei{len(self.notifications)}",
            "author": {"did": did, "handle": who, "labels": []},
            "reason": reason,
            "record": record,
            "isRead": False,
            "indexedAt": stamp,
            "labels": [],
        }
        if subject is not None and reason in ("like", "repost", "quote"):
            item["reasonSubject"] = subject
        self.notifications.append(item)
        return item

    def add_follower(self, who: str) -> None:
        """``who`` (a handle) follows the account now (listed first by getFollowers)."""
        self.follower_list.insert(
            0, {"did": f"did:plc:{who.split('.')[0]}", "handle": who, "labels": []}
        )

    def texts(self) -> list[str]:
        return [str(self.posts[r]["record"]["text"]) for r in self.order if r in self.posts]

    # -- plumbing -------------------------------------------------------------------------------

    def _take_fault(self, nsid: str) -> Fault | None:
        for fault in self.faults:
            if fault.path is not None and not nsid.startswith(fault.path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        nsid = request.path.removeprefix("/xrpc/")
        self.requests.append((request.method, nsid))
        reset = datetime.now(UTC) + timedelta(minutes=5)
        fault = self._take_fault(nsid)
        response: web.StreamResponse
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if fault is not None and fault.kind == "rate_limit":
            reset = datetime.now(UTC) + fault.reset_in
            response = _error(429, "RateLimitExceeded", "Rate Limit Exceeded")
            response.headers["ratelimit-remaining"] = "0"
        elif fault is not None and fault.kind == "unavailable":
            response = _error(503, "InternalServerError", "Service Unavailable")
        elif fault is not None and fault.kind == "auth":
            response = _error(401, "AuthenticationRequired", "Invalid identifier or password")
        elif nsid == "com.atproto.server.refreshSession":
            response = await handler(request)
        elif nsid != "com.atproto.server.createSession" and token not in self.access_tokens:
            response = _error(400, "ExpiredToken", "Token has expired")
        else:
            response = await handler(request)
            if fault is not None and fault.kind == "malformed":
                response = web.Response(
                    status=200, text='{"uri": "at://x", <broken', content_type="application/json"
                )
            elif fault is not None and fault.kind == "lose_response":
                await asyncio.sleep(fault.delay)
        response.headers["ratelimit-limit"] = str(RATE_LIMIT)
        response.headers.setdefault("ratelimit-remaining", str(RATE_LIMIT - 1))
        response.headers["ratelimit-reset"] = str(int(reset.timestamp()))
        response.headers["ratelimit-policy"] = f"{RATE_LIMIT};w=300"
        return response

    def _tokens(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        claims = {"sub": self.did, "aud": "did:web:127.0.0.1", "iat": int(now.timestamp())}
        header = _b64({"typ": "at+jwt", "alg": "HS256"})
        access = ".".join(
            (
                header,
                _b64(
                    claims
                    | {
                        "scope": "com.atproto.appPass",
                        "exp": int((now + self.access_ttl).timestamp()),
                        "jti": secrets.token_hex(8),
                    }
                ),
                "c2ln",
            )
        )
        refresh = ".".join(
            (
                _b64({"typ": "refresh+jwt", "alg": "HS256"}),
                _b64(
                    claims
                    | {
                        "scope": "com.atproto.refresh",
                        "exp": int((now + timedelta(days=90)).timestamp()),
                        "jti": secrets.token_hex(8),
                    }
                ),
                "c2ln",
            )
        )
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handle,
            "did": self.did,
            "didDoc": {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": self.did,
                "alsoKnownAs": [f"at://{self.handle}"],
                "verificationMethod": [],
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": self.base_url,
                    }
                ],
            },
            "active": True,
        }

    def _author(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "handle": self.handle,
            "displayName": "Growth Bot",
            "labels": [],
            "createdAt": "2024-01-01T00:00:00.000Z",
        }

    # -- endpoints ------------------------------------------------------------------------------

    async def _create_session(self, request: web.Request) -> web.Response:
        self.create_sessions += 1
        body = await request.json()
        if body.get("identifier") not in (self.handle, self.did) or (
            body.get("password") != self.app_password
        ):
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return web.json_response(self._tokens() | {"email": "bot@example.invalid"})

    async def _refresh_session(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.refresh_tokens:
            return _error(400, "ExpiredToken", "Token has been revoked")
        self.refresh_tokens.discard(token)  # refresh tokens are single-use
        self.refreshes += 1
        return web.json_response(self._tokens())

    async def _get_session(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"handle": self.handle, "did": self.did, "active": self.active}
        if not self.active and self.account_status is not None:
            body["status"] = self.account_status
        return web.json_response(body)

    async def _create_record(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("repo") not in (self.did, self.handle):
            return _error(400, "InvalidRequest", "Could not find repo")
        if body.get("collection") != "app.bsky.feed.post":
            return _error(400, "InvalidRequest", "Unexpected collection")
        record = body.get("record") or {}
        text = str(record.get("text", ""))
        if len(text.encode()) > 3000 or _rough_graphemes(text) > self.max_graphemes:
            return _error(
                400,
                "InvalidRequest",
                f"Invalid app.bsky.feed.post record: Record/text must not be longer than "
                f"{self.max_graphemes} graphemes",
            )
        reply = record.get("reply")  # a thread's later part: strong refs to root and parent
        if reply is not None:
            by_uri = {p["uri"]: p for p in self.posts.values()}
            for role in ("root", "parent"):
                ref = reply.get(role) if isinstance(reply, dict) else None
                target = by_uri.get(str((ref or {}).get("uri")))
                if target is None or target["cid"] != (ref or {}).get("cid"):
                    return _error(400, "InvalidRequest", f"Invalid reply {role} reference")
        created_at = datetime.fromisoformat(str(record["createdAt"]).replace("Z", "+00:00"))
        post = self.add_post(text, created_at=created_at)
        if reply is not None:
            post["record"]["reply"] = reply
        return web.json_response(
            {
                "uri": post["uri"],
                "cid": post["cid"],
                "commit": {"cid": "bafyreicommit", "rev": "3l000000000"},
                "validationStatus": "valid",
            }
        )

    async def _delete_record(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.pop(str(body.get("rkey")), None)  # deleting a missing record is fine
        return web.json_response({"commit": {"cid": "bafyreicommit", "rev": "3l000000001"}})

    async def _get_posts(self, request: web.Request) -> web.Response:
        uris = request.query.getall("uris", [])
        if len(uris) > 25:
            return _error(400, "InvalidRequest", "uris must not have more than 25 elements")
        by_uri = {p["uri"]: p for p in self.posts.values()}
        return web.json_response({"posts": [by_uri[u] for u in uris if u in by_uri]})

    async def _get_profile(self, request: web.Request) -> web.Response:
        if request.query.get("actor") not in (self.did, self.handle):
            return _error(400, "InvalidRequest", "Profile not found")
        return web.json_response(
            self._author()
            | {
                "description": "A bot.",
                "followersCount": self.followers,
                "followsCount": self.follows,
                "postsCount": len(self.posts),
                "indexedAt": "2024-01-01T00:00:00.000Z",
                "viewer": {},
            }
        )

    async def _get_author_feed(self, request: web.Request) -> web.Response:
        if request.query.get("actor") not in (self.did, self.handle):
            return _error(400, "InvalidRequest", "Profile not found")
        limit = min(int(request.query.get("limit", "50")), 100)
        start = int(request.query.get("cursor", "0"))
        rkeys = [r for r in reversed(self.order) if r in self.posts]
        page = rkeys[start : start + limit]
        body: dict[str, Any] = {"feed": [{"post": self.posts[r]} for r in page]}
        if start + limit < len(rkeys):
            body["cursor"] = str(start + limit)
        return web.json_response(body)

    async def _list_notifications(self, request: web.Request) -> web.Response:
        """Newest first (by indexedAt, then uri), ``cursor`` = the sort key of the last item of
        the previous page, as the AppView pages: a notification arriving meanwhile does not
        shift the pages."""
        limit = min(int(request.query.get("limit", "50")), 100)
        ordered = sorted(self.notifications, key=lambda n: (n["indexedAt"], n["uri"]), reverse=True)
        after = request.query.get("cursor")
        if after:
            stamp, uri = after.split("|", 1)
            ordered = [n for n in ordered if (n["indexedAt"], n["uri"]) < (stamp, uri)]
        page = ordered[:limit]
        body: dict[str, Any] = {"notifications": page, "priority": False}
        if len(ordered) > limit:
            body["cursor"] = f"{page[-1]['indexedAt']}|{page[-1]['uri']}"
        return web.json_response(body)

    async def _get_followers(self, request: web.Request) -> web.Response:
        if request.query.get("actor") not in (self.did, self.handle):
            return _error(400, "InvalidRequest", "Profile not found")
        limit = min(int(request.query.get("limit", "50")), 100)
        start = int(request.query.get("cursor", "0"))
        page = self.follower_list[start : start + limit]
        body: dict[str, Any] = {"followers": page, "subject": self._author()}
        if start + limit < len(self.follower_list):
            body["cursor"] = str(start + limit)
        return web.json_response(body)


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


class BlueskyHarness:
    """``tests/adapters/harness.py``'s Harness for Bluesky (a real adapter, a fake PDS)."""

    def __init__(self, server: BlueskyServer, platform: BlueskyPlatform) -> None:
        self.server = server
        self.platform = platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        path = "com.atproto.repo.createRecord" if kind == "lose_response" else None
        self.server.fail(kind, path=path, times=count)

    def stored_texts(self) -> list[str]:
        return self.server.texts()

    def supports(self, kind: str) -> bool:
        return kind in FAULT_KINDS

    def parent_of(self, post_id: str) -> str | None:
        reply = self.server.reply_of(post_id)
        return None if reply is None else str(reply["parent"]["uri"])

    def lose_response_after(self, creates: int) -> None:
        if creates:
            self.server.fail("none", path="com.atproto.repo.createRecord", times=creates)
        self.fail_next("lose_response")


@asynccontextmanager
async def bluesky_harness() -> AsyncIterator[BlueskyHarness]:
    """Start a fake PDS and yield a harness whose platform points at it."""
    server = await BlueskyServer().start()
    platform = BlueskyPlatform(
        handle=server.handle,
        app_password=server.app_password,
        base_url=server.base_url,
        now=lambda: datetime.now(UTC),
        request_timeout=HARNESS_TIMEOUT_S,
    )
    try:
        yield BlueskyHarness(server, platform)
    finally:
        await platform.aclose()
        await server.stop()
