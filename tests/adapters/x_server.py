"""A local stand-in for X's API v2, enough for the X adapter: posts kept in memory, the response
shapes of the real API (templates: tweepy's recorded cassettes and X's OpenAPI spec) and
switchable failure modes.

Endpoints: ``POST /2/tweets``, ``DELETE /2/tweets/{id}``, ``GET /2/tweets``, ``GET /2/users/me``,
``GET /2/users/{id}/tweets``; the audience reads ``GET /2/users/{id}/mentions``,
``GET /2/tweets/{id}/liking_users``, ``/retweeted_by``, ``/quote_tweets`` and
``GET /2/users/{id}/followers`` (pages bounded by the spec's ``max_results``: 400 outside them).
Every request must carry an OAuth 1.0a ``Authorization`` header.

Replies: ``POST /2/tweets`` takes ``reply: {"in_reply_to_tweet_id": ...}`` (what tweepy sends for
``in_reply_to_tweet_id``); the parent must exist (else 403, as X answers a reply to a deleted or
invisible post), is stored as ``StoredPost.reply_to`` and comes back as ``referenced_tweets``
(``[{"type": "replied_to", "id": ...}]``) when ``tweet.fields`` asks for it. Every POST body is
kept in ``XServer.create_bodies``.

Revoked credentials: ``XServer.revoked = True`` makes every request answer 401 Unauthorized.

Access level: every authenticated response carries ``x-access-level: <XServer.access_level>``
(``"read-write"`` by default); ``"read"`` also makes POST and DELETE answer the read-only 403, and
``None`` leaves the header out.

Failure modes are queued per route with :meth:`XServer.fail` and consumed one per request:

- ``rate_limit``: 429 with ``x-rate-limit-reset`` (``reset=`` epoch seconds);
- ``unavailable``: 503;
- ``duplicate``: 403 with X's duplicate-content problem (also happens naturally for a repeat);
- ``unauthorized``: 401; ``read_only``: 403 "oauth1 app permissions" (a read-only app);
- ``malformed``: 200 with a truncated JSON body;
- ``slow_after_store`` (POST /2/tweets): the post is stored, then the answer waits ``delay=``
  seconds (longer than the client's timeout).
- ``none``: no failure; queued first, it makes the next fault hit a later request (e.g. the second
  part of a thread).

``restrict_private_metrics = True`` makes GET /2/tweets answer requests for
``non_public_metrics``/``organic_metrics`` like X does for posts older than 30 days: HTTP 200, the
posts left out of ``data`` and a "Field Authorization Error" per post in ``errors[]``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

USER_ID = "1072250532645998596"  # the account of tweepy's recordings (cassettes/get_me.yaml)
USERNAME = "TweepyDev"
FIRST_ID = 1522929456142245888  # cassettes/create_and_delete_tweet.yaml

DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
READ_ONLY = {
    "title": "Forbidden",
    "detail": "Your client app is not configured with the appropriate oauth1 app permissions for "
    "this endpoint.",
    "type": "https://api.twitter.com/2/problems/oauth1-permissions",
    "status": 403,
}
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
TOO_MANY = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
UNAVAILABLE = {
    "title": "Service Unavailable",
    "detail": "Service Unavailable",
    "type": "about:blank",
    "status": 503,
}
REPLY_TO_MISSING = {
    "detail": "You attempted to reply to a Tweet that is deleted or not visible to you.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")


@dataclass
class Fault:
    kind: str
    reset: int | None = None  # rate_limit: epoch seconds
    delay: float = 0.0  # slow_after_store: seconds


@dataclass
class StoredPost:
    id: str
    text: str
    created_at: datetime
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    impressions: int = 0
    profile_clicks: int = 0
    url_clicks: int = 0
    deleted: bool = False
    reply_to: str | None = None  # the parent's id, for a reply


@dataclass
class XServer:
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    repost_field: str = "repost_count"  # the newer schemas' name; live responses: retweet_count
    followers: int = 321
    restrict_private_metrics: bool = False
    access_level: str | None = "read-write"  # x-access-level; None: the header is left out
    revoked: bool = False  # every request answers 401, as X does for revoked credentials
    posts: dict[str, StoredPost] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    responses: list[tuple[str, int, Any]] = field(default_factory=list)  # (route, status, json)
    create_bodies: list[Any] = field(default_factory=list)  # JSON bodies of POST /2/tweets
    base_url: str = ""
    # the audience (test helpers: mention, like, retweet, quote, follow)
    people: dict[str, str] = field(default_factory=dict)  # user id -> username
    mentions: list[dict[str, Any]] = field(default_factory=list)  # post objects, oldest first
    likes: dict[str, list[str]] = field(default_factory=dict)  # post id -> user ids, newest first
    retweets: dict[str, list[str]] = field(default_factory=dict)
    quotes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # post id -> posts
    follower_ids: list[str] = field(default_factory=list)  # newest first
    _runner: web.AppRunner | None = None
    _next_id: int = FIRST_ID

    # -- lifecycle --

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/2/tweets", self._create)
        app.router.add_delete("/2/tweets/{id}", self._delete)
        app.router.add_get("/2/tweets", self._lookup)
        app.router.add_get("/2/users/me", self._me)
        app.router.add_get("/2/users/{id}/tweets", self._timeline)
        app.router.add_get("/2/users/{id}/mentions", self._mentions)
        app.router.add_get("/2/users/{id}/followers", self._followers)
        for kind in ("liking_users", "retweeted_by", "quote_tweets"):
            app.router.add_get(f"/2/tweets/{{id}}/{kind}", partial(self._engaged, kind))
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, route: str, kind: str, *, times: int = 1, **options: Any) -> None:
        """Queue ``times`` failures of ``kind`` for ``route`` (e.g. ``"POST /2/tweets"``)."""
        self.faults.setdefault(route, []).extend(Fault(kind, **options) for _ in range(times))

    def add_post(
        self,
        text: str,
        *,
        created_at: datetime | None = None,
        reply_to: str | None = None,
        **counters: int,
    ) -> str:
        post_id = str(self._next_id)
        self._next_id += 1
        self.posts[post_id] = StoredPost(
            id=post_id,
            text=text,
            created_at=created_at or self.now(),
            **counters,  # type: ignore[arg-type]  # the int counters only
        )
        self.posts[post_id].reply_to = reply_to
        return post_id

    def person(self, username: str) -> str:
        """The user id of ``username`` (made up, stable)."""
        user_id = str(2_000_000_000 + sum(ord(c) * 31**i for i, c in enumerate(username)) % 10**9)
        self.people[user_id] = username
        return user_id

    def mention(self, username: str, text: str, *, reply_to: str | None = None) -> str:
        """``username`` posts ``text`` naming us (answering our post ``reply_to``)."""
        post_id = str(self._next_id)
        self._next_id += 1
        post: dict[str, Any] = {
            "id": post_id,
            "text": f"@{USERNAME} {text}",
            "author_id": self.person(username),
            "created_at": self.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "edit_history_tweet_ids": [post_id],
        }
        if reply_to is not None:
            post |= {
                "in_reply_to_user_id": USER_ID,
                "referenced_tweets": [{"type": "replied_to", "id": reply_to}],
                "conversation_id": reply_to,
            }
        self.mentions.append(post)
        return post_id

    def engage(self, kind: str, post_id: str, username: str) -> None:
        """``username`` likes (``like``), reposts (``retweet``) or quotes (``quote``) our post."""
        user = self.person(username)
        if kind == "like":
            self.likes.setdefault(post_id, []).insert(0, user)
        elif kind == "retweet":
            self.retweets.setdefault(post_id, []).insert(0, user)
        else:
            quote_id = str(self._next_id)
            self._next_id += 1
            self.quotes.setdefault(post_id, []).insert(
                0,
                {
                    "id": quote_id,
                    "text": f"look at this {quote_id}",
                    "author_id": user,
                    "created_at": self.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "edit_history_tweet_ids": [quote_id],
                },
            )

    def follow(self, username: str) -> None:
        self.follower_ids.insert(0, self.person(username))

    # -- plumbing --

    def _respond(
        self, route: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.responses.append((route, status, body))
        reset = str(int(time.time()) + 900)
        base = {
            "x-rate-limit-limit": "200",
            "x-rate-limit-remaining": "199",
            "x-rate-limit-reset": reset,
        }
        if self.access_level is not None:
            base["x-access-level"] = self.access_level
        return web.Response(
            status=status,
            text=json.dumps(body, separators=(",", ":")),
            content_type="application/json",
            charset="utf-8",
            headers={**base, **(headers or {})},
        )

    def _gate(self, route: str, request: web.Request) -> tuple[web.Response | None, Fault | None]:
        """Check auth and pop a queued fault; a response to send instead, or the fault to apply."""
        self.requests.append((request.method, request.path, dict(request.query)))
        auth = request.headers.get("Authorization", "")
        if self.revoked or not (auth.startswith("OAuth ") and "oauth_signature=" in auth):
            return self._respond(route, 401, UNAUTHORIZED), None
        if self.access_level == "read" and request.method in {"POST", "DELETE"}:
            return self._respond(route, 403, READ_ONLY), None
        queue = self.faults.get(route)
        fault = queue.pop(0) if queue else None
        if fault is None or fault.kind == "none":
            return None, None
        if fault.kind == "rate_limit":
            reset = str(fault.reset if fault.reset is not None else int(time.time()) + 900)
            return self._respond(
                route, 429, TOO_MANY, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
            ), None
        if fault.kind == "unavailable":
            return self._respond(route, 503, UNAVAILABLE), None
        if fault.kind == "duplicate":
            return self._respond(route, 403, DUPLICATE), None
        if fault.kind == "unauthorized":
            return self._respond(route, 401, UNAUTHORIZED), None
        if fault.kind == "read_only":
            return self._respond(route, 403, READ_ONLY, {"x-access-level": "read"}), None
        if fault.kind == "malformed":
            self.responses.append((route, 200, None))
            return web.Response(
                status=200, text='{"data":{"id":"15229', content_type="application/json"
            ), None
        return None, fault

    def _post_json(self, post: StoredPost, fields: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": post.id,
            "text": post.text,
            "edit_history_tweet_ids": [post.id],
        }
        if "created_at" in fields:
            body["created_at"] = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if "referenced_tweets" in fields and post.reply_to is not None:
            body["referenced_tweets"] = [{"type": "replied_to", "id": post.reply_to}]
        if "public_metrics" in fields:
            body["public_metrics"] = {
                self.repost_field: post.reposts,
                "reply_count": post.replies,
                "like_count": post.likes,
                "quote_count": post.quotes,
                "bookmark_count": post.bookmarks,
                "impression_count": post.impressions,
            }
        if "non_public_metrics" in fields:
            body["non_public_metrics"] = {
                "impression_count": post.impressions,
                "user_profile_clicks": post.profile_clicks,
                "url_link_clicks": post.url_clicks,
            }
        if "organic_metrics" in fields:
            body["organic_metrics"] = {
                "impression_count": post.impressions,
                "like_count": post.likes,
                "reply_count": post.replies,
                "retweet_count": post.reposts,
                "user_profile_clicks": post.profile_clicks,
                "url_link_clicks": post.url_clicks,
            }
        return body

    def _live(self) -> list[StoredPost]:
        return [p for p in self.posts.values() if not p.deleted]

    # -- endpoints --

    async def _create(self, request: web.Request) -> web.Response:
        route = "POST /2/tweets"
        answer, fault = self._gate(route, request)
        if answer is not None:
            return answer
        payload = await request.json()
        self.create_bodies.append(payload)
        text = payload.get("text")
        if not isinstance(text, str) or not text:
            body: dict[str, Any] = {
                "errors": [{"message": "text is required"}],
                "title": "Invalid Request",
            }
            return self._respond(route, 400, body)
        reply = payload.get("reply")
        reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if reply is not None and not isinstance(reply_to, str):
            body = {
                "errors": [{"message": "reply.in_reply_to_tweet_id is required"}],
                "title": "Invalid Request",
            }
            return self._respond(route, 400, body)
        if reply_to is not None:
            parent = self.posts.get(reply_to)
            if parent is None or parent.deleted:
                return self._respond(route, 403, REPLY_TO_MISSING)
        if any(p.text == text for p in self._live()):
            return self._respond(route, 403, DUPLICATE)
        post_id = self.add_post(text, reply_to=reply_to)
        if fault is not None and fault.kind == "slow_after_store":
            await asyncio.sleep(fault.delay)
        body = {"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}}
        return self._respond(route, 201, body, {"location": f"{self.base_url}/2/tweets/{post_id}"})

    async def _delete(self, request: web.Request) -> web.Response:
        route = "DELETE /2/tweets/:id"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        post = self.posts.get(request.match_info["id"])
        if post is None or post.deleted:
            return self._respond(route, 200, {"data": {"deleted": False}})
        post.deleted = True
        return self._respond(route, 200, {"data": {"deleted": True}})

    async def _lookup(self, request: web.Request) -> web.Response:
        route = "GET /2/tweets"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        fields = set(request.query.get("tweet.fields", "").split(","))
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        refused = sorted(fields & set(PRIVATE_FIELDS)) if self.restrict_private_metrics else []
        for post_id in ids:
            post = self.posts.get(post_id)
            if post is None or post.deleted:
                errors.append(
                    {
                        "value": post_id,
                        "detail": f"Could not find tweet with ids: [{post_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "ids",
                        "resource_id": post_id,
                        "type": "https://api.x.com/2/problems/resource-not-found",
                    }
                )
            elif refused:
                errors.extend(
                    {
                        "value": name,
                        "detail": f"Sorry, you are not authorized to access '{name}' on a "
                        "Tweet when using the current authentication.",
                        "title": "Field Authorization Error",
                        "resource_type": "tweet",
                        "parameter": "tweet.fields",
                        "field": name,
                        "resource_id": post_id,
                        "type": "https://api.x.com/2/problems/not-authorized-for-field",
                    }
                    for name in refused
                )
            else:
                data.append(self._post_json(post, fields))
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return self._respond(route, 200, body)

    async def _me(self, request: web.Request) -> web.Response:
        route = "GET /2/users/me"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        user: dict[str, Any] = {"id": USER_ID, "name": "Tweepy Testing", "username": USERNAME}
        if "public_metrics" in request.query.get("user.fields", ""):
            user["public_metrics"] = {
                "followers_count": self.followers,
                "following_count": 12,
                "post_count": len(self._live()),
                "listed_count": 0,
            }
        return self._respond(route, 200, {"data": user})

    def _bounded(
        self, route: str, request: web.Request, low: int, high: int, default: int
    ) -> int | web.Response:
        size = int(request.query.get("max_results", str(default)))
        if not low <= size <= high:
            return self._respond(
                route,
                400,
                {
                    "errors": [
                        {
                            "parameters": {"max_results": [str(size)]},
                            "message": f"The `max_results` query parameter value [{size}] is not "
                            f"between {low} and {high}",
                        }
                    ],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
            )
        return size

    def _users(self, ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": i, "name": self.people[i], "username": self.people[i]} for i in ids]

    def _paged(
        self, route: str, request: web.Request, items: list[Any], size: int
    ) -> tuple[list[Any], dict[str, Any]]:
        offset = int(request.query.get("pagination_token", "0"))
        page = items[offset : offset + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if offset + size < len(items):
            meta["next_token"] = str(offset + size)
        return page, meta

    async def _mentions(self, request: web.Request) -> web.Response:
        """Newest first; ``since_id`` keeps the newer ones; offset ``pagination_token``."""
        route = "GET /2/users/:id/mentions"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        size = self._bounded(route, request, 5, 100, 10)
        if isinstance(size, web.Response):
            return size
        posts = sorted(self.mentions, key=lambda p: int(p["id"]), reverse=True)
        if "since_id" in request.query:
            posts = [p for p in posts if int(p["id"]) > int(request.query["since_id"])]
        page, meta = self._paged(route, request, posts, size)
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            authors = list(dict.fromkeys(p["author_id"] for p in page))
            body["includes"] = {"users": self._users(authors)}
        return self._respond(route, 200, body)

    async def _engaged(self, kind: str, request: web.Request) -> web.Response:
        route = f"GET /2/tweets/:id/{kind}"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        low, high = (10, 100) if kind == "quote_tweets" else (1, 100)
        size = self._bounded(route, request, low, high, 10 if kind == "quote_tweets" else 100)
        if isinstance(size, web.Response):
            return size
        post_id = request.match_info["id"]
        if kind == "quote_tweets":
            page, meta = self._paged(route, request, self.quotes.get(post_id, []), size)
            body: dict[str, Any] = {"meta": meta}
            if page:
                authors = list(dict.fromkeys(q["author_id"] for q in page))
                body |= {"data": page, "includes": {"users": self._users(authors)}}
            return self._respond(route, 200, body)
        source = self.likes if kind == "liking_users" else self.retweets
        page, meta = self._paged(route, request, source.get(post_id, []), size)
        body = {"meta": meta}
        if page:
            body["data"] = self._users(page)
        return self._respond(route, 200, body)

    async def _followers(self, request: web.Request) -> web.Response:
        route = "GET /2/users/:id/followers"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        size = self._bounded(route, request, 1, 1000, 100)
        if isinstance(size, web.Response):
            return size
        page, meta = self._paged(route, request, self.follower_ids, size)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = self._users(page)
        return self._respond(route, 200, body)

    async def _timeline(self, request: web.Request) -> web.Response:
        route = "GET /2/users/:id/tweets"
        answer, _ = self._gate(route, request)
        if answer is not None:
            return answer
        if request.match_info["id"] != USER_ID:
            return self._respond(route, 200, {"meta": {"result_count": 0}})
        query = request.query
        fields = set(query.get("tweet.fields", "").split(","))
        posts = sorted(self._live(), key=lambda p: (p.created_at, p.id), reverse=True)
        if "start_time" in query:
            start = datetime.fromisoformat(query["start_time"].replace("Z", "+00:00"))
            posts = [p for p in posts if p.created_at >= start]
        size = int(query.get("max_results", "10"))
        offset = int(query.get("pagination_token", "0"))
        page = posts[offset : offset + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if offset + size < len(posts):
            meta["next_token"] = str(offset + size)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self._post_json(p, fields) for p in page]
        return self._respond(route, 200, body)
