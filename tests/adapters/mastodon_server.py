"""A fake Mastodon instance on 127.0.0.1 for the adapter tests (aiohttp, random port).

It implements the REST endpoints :mod:`adapters.mastodon` uses, with the entity shapes of the
official API docs (Status, Account, Instance v1/v2, errors as ``{"error": "..."}``):

- ``POST /api/v1/statuses`` (honours ``Idempotency-Key``: the same key returns the same status),
  ``GET|DELETE /api/v1/statuses/:id``, ``GET /api/v1/accounts/verify_credentials``,
  ``GET /api/v1/accounts/:id/statuses`` (``limit``, ``max_id``), ``GET /api/v1/instance`` and
  ``/api/v2/instance`` (Mastodon.py asks with and without a trailing slash),
  ``GET /api/v1/apps/verify_credentials`` (an Application entity; ``list_app_scopes=False``
  answers as before Mastodon 4.3, without ``scopes``).
- Every request but the instance ones needs ``Authorization: Bearer <token>``; ``scopes`` decides
  whether a token may write (403 otherwise, as Mastodon does).
- Every response carries ``X-RateLimit-Limit/Remaining/Reset``.

Faults are queued with :meth:`MastodonServer.fail` and consumed by the first matching request:
``rate_limit`` (429), ``unavailable`` (503), ``unauthorized`` (401), ``malformed`` (200 with a
body that is not JSON, after the handler ran), ``slow`` (the handler runs - a status is stored -
then the answer is delayed by ``delay`` seconds, past the client's timeout).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

FAULT_KINDS = ("rate_limit", "unavailable", "unauthorized", "malformed", "slow")
# "none": no failure; queued first, it makes the next fault hit a later request (a thread part)
QUEUE_KINDS = (*FAULT_KINDS, "none")
RATE_LIMIT = 300  # requests per window, like Mastodon
URL_RE = re.compile(r"https?://[^\s<]+")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    kind: str
    method: str | None
    path: str | None
    times: int
    delay: float
    reset_in: timedelta


@dataclass
class MastodonServer:
    """One instance with one account. Start with ``await server.start()``."""

    token: str = "test-token"
    max_characters: int = 500
    characters_reserved_per_url: int = 23
    scopes: set[str] = field(default_factory=lambda: {"read", "write"})
    list_app_scopes: bool = True  # apps/verify_credentials lists ``scopes`` (Mastodon >= 4.3)
    username: str = "growthbot"
    followers: int = 42
    following: int = 7
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # id -> the plain text that was posted
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    idempotency: dict[str, str] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)  # ids ascending
    follower_list: list[tuple[int, dict[str, Any]]] = field(
        default_factory=list
    )  # (follow id, account)
    account_id: str = "109000000000000001"
    _next_id: int = 110000000000000000
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> MastodonServer:
        app = web.Application(middlewares=[self._middleware])
        for prefix in ("/api/v1/instance", "/api/v2/instance"):
            app.router.add_get(prefix, self._instance)
            app.router.add_get(prefix + "/", self._instance)
        app.router.add_post("/api/v1/statuses", self._post_status)
        app.router.add_get("/api/v1/statuses/{id}", self._get_status)
        app.router.add_delete("/api/v1/statuses/{id}", self._delete_status)
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify_credentials)
        app.router.add_get("/api/v1/accounts/{id}/statuses", self._account_statuses)
        app.router.add_get("/api/v1/apps/verify_credentials", self._app_credentials)
        app.router.add_get("/api/v1/notifications", self._notifications)
        app.router.add_get("/api/v1/accounts/{id}/followers", self._followers)
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
        delay: float = 2.0,
        reset_in: timedelta = timedelta(seconds=120),
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path`` (a prefix) fail."""
        assert kind in QUEUE_KINDS, kind
        self.faults.append(Fault(kind, method, path, times, delay, reset_in))

    def add_status(self, text: str, *, created_at: datetime | None = None) -> dict[str, Any]:
        """Store a status as if it had been posted (at ``created_at``, default now)."""
        self._next_id += 1
        status_id = str(self._next_id)
        created = created_at or datetime.now(UTC)
        status = _status(status_id, text, created, self._account())
        self.statuses[status_id] = status
        self.texts[status_id] = text
        return status

    def notify(
        self,
        kind: str,
        who: str,
        *,
        status_id: str | None = None,
        text: str = "",
        reply: bool = True,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A notification from ``who`` (their acct): ``follow``, ``favourite`` or ``reblog``
        (of our status ``status_id``), ``mention`` (a status of theirs with ``text``, answering
        ``status_id`` when ``reply``)."""
        self._next_id += 1
        at = at or datetime.now(UTC)
        account = _person(who)
        item: dict[str, Any] = {
            "id": str(self._next_id),
            "type": kind,
            "created_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "account": account,
            "group_key": f"ungrouped-{self._next_id}",
        }
        if kind in ("favourite", "reblog") and status_id is not None:
            item["status"] = self.statuses[status_id]
        elif kind == "mention":
            self._next_id += 1
            status = _status(str(self._next_id), f"@{self.username} {text}", at, account)
            if reply and status_id is not None:
                status |= {"in_reply_to_id": status_id, "in_reply_to_account_id": self.account_id}
            item["status"] = status
        self.notifications.append(item)
        return item

    def add_follower(self, who: str) -> None:
        self._next_id += 1
        self.follower_list.insert(0, (self._next_id, _person(who)))

    # -- plumbing -------------------------------------------------------------------------------

    def _take_fault(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if fault.method is not None and fault.method != request.method:
                continue
            if fault.path is not None and not request.path.startswith(fault.path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        reset = datetime.now(UTC) + timedelta(minutes=5)
        fault = self._take_fault(request)
        response: web.StreamResponse
        if fault is not None and fault.kind == "rate_limit":
            reset = datetime.now(UTC) + fault.reset_in
            response = _error(429, "Too many requests")
            response.headers["X-RateLimit-Remaining"] = "0"
        elif fault is not None and fault.kind == "unavailable":
            response = _error(503, "Service Unavailable")
        elif fault is not None and fault.kind == "unauthorized":
            response = _error(401, "The access token is invalid")
        elif not request.path.startswith(("/api/v1/instance", "/api/v2/instance")) and (
            request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            response = _error(401, "The access token is invalid")
        else:
            response = await handler(request)
            if fault is not None and fault.kind == "malformed":
                response = web.Response(
                    status=200,
                    text='{"id": "1", "content": <p>broken',
                    content_type="application/json",
                )
            elif fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay)
        response.headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
        response.headers.setdefault("X-RateLimit-Remaining", str(RATE_LIMIT - 1))
        response.headers["X-RateLimit-Reset"] = reset.isoformat().replace("+00:00", "Z")
        return response

    def _account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "username": self.username,
            "acct": self.username,
            "display_name": "Growth Bot",
            "locked": False,
            "bot": True,
            "discoverable": True,
            "group": False,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "<p>A bot.</p>",
            "url": f"https://example.invalid/@{self.username}",
            "avatar": "https://example.invalid/avatar.png",
            "avatar_static": "https://example.invalid/avatar.png",
            "header": "https://example.invalid/header.png",
            "header_static": "https://example.invalid/header.png",
            "followers_count": self.followers,
            "following_count": self.following,
            "statuses_count": len(self.statuses),
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }

    # -- endpoints ------------------------------------------------------------------------------

    async def _instance(self, request: web.Request) -> web.Response:
        statuses = {
            "max_characters": self.max_characters,
            "max_media_attachments": 4,
            "characters_reserved_per_url": self.characters_reserved_per_url,
        }
        if request.path.startswith("/api/v2/"):
            body: dict[str, Any] = {
                "domain": "127.0.0.1",
                "title": "Test instance",
                "version": "4.3.0",
                "api_versions": {"mastodon": 2},
                "source_url": "https://github.com/mastodon/mastodon",
                "description": "A fake instance for tests.",
                "usage": {"users": {"active_month": 1}},
                "languages": ["en"],
                "configuration": {"statuses": statuses, "accounts": {"max_featured_tags": 10}},
                "registrations": {"enabled": False, "approval_required": False, "message": None},
                "contact": {"email": "admin@example.invalid", "account": None},
                "rules": [],
            }
        else:
            body = {
                "uri": "127.0.0.1",
                "title": "Test instance",
                "short_description": "A fake instance for tests.",
                "description": "",
                "email": "admin@example.invalid",
                "version": "4.3.0",
                "urls": {},
                "stats": {"user_count": 1, "status_count": len(self.statuses), "domain_count": 1},
                "languages": ["en"],
                "registrations": False,
                "approval_required": False,
                "invites_enabled": False,
                "configuration": {"statuses": statuses},
                "contact_account": None,
                "rules": [],
            }
        return web.json_response(body)

    async def _post_status(self, request: web.Request) -> web.Response:
        if "write" not in self.scopes and "write:statuses" not in self.scopes:
            return _error(403, "This action is outside the authorized scopes")
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.idempotency:
            return web.json_response(self.statuses[self.idempotency[key]])
        form = await request.post()
        text = str(form.get("status", ""))
        if not text.strip():
            return _error(422, "Validation failed: Text can't be blank")
        if len(text) > self.max_characters:
            return _error(
                422, f"Validation failed: Text character limit of {self.max_characters} exceeded"
            )
        parent = form.get("in_reply_to_id")  # a thread's later part (docs/threads.md)
        if parent is not None and str(parent) not in self.statuses:
            return _error(404, "Record not found")
        status = self.add_status(text)
        status["visibility"] = str(form.get("visibility", "public"))
        if parent is not None:
            status["in_reply_to_id"] = str(parent)
            status["in_reply_to_account_id"] = self.account_id
        if key is not None:
            self.idempotency[key] = status["id"]
        return web.json_response(status)

    async def _get_status(self, request: web.Request) -> web.Response:
        status = self.statuses.get(request.match_info["id"])
        if status is None:
            return _error(404, "Record not found")
        return web.json_response(status)

    async def _delete_status(self, request: web.Request) -> web.Response:
        if "write" not in self.scopes and "write:statuses" not in self.scopes:
            return _error(403, "This action is outside the authorized scopes")
        status = self.statuses.pop(request.match_info["id"], None)
        if status is None:
            return _error(404, "Record not found")
        deleted = dict(status, text=self.texts[status["id"]])
        return web.json_response(deleted)

    async def _verify_credentials(self, request: web.Request) -> web.Response:
        account = self._account()
        account["source"] = {"privacy": "public", "sensitive": False, "language": "en", "note": ""}
        return web.json_response(account)

    async def _app_credentials(self, request: web.Request) -> web.Response:
        # The Application entity as Mastodon 4.3 renders it for a token (no client_secret).
        app: dict[str, Any] = {
            "id": "1",
            "name": "growthloop",
            "website": None,
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"],
            "client_id": "client-id",
            "vapid_key": "BFakeVapidKeyForTests0000000000000000000000=",
            "scopes": sorted(self.scopes),
        }
        if not self.list_app_scopes:  # before 4.3: name, website, vapid_key only
            app = {k: app[k] for k in ("name", "website", "vapid_key")}
        return web.json_response(app)

    async def _account_statuses(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.account_id:
            return _error(404, "Record not found")
        limit = min(int(request.query.get("limit", "20")), 40)
        max_id = request.query.get("max_id")
        ids = sorted(self.statuses, key=int, reverse=True)
        if max_id is not None:
            ids = [i for i in ids if int(i) < int(max_id)]
        return web.json_response([self.statuses[i] for i in ids[:limit]])

    async def _notifications(self, request: web.Request) -> web.Response:
        """GET /api/v1/notifications: newest first; ``max_id``/``since_id`` bound the page from
        above/below, ``min_id`` gives the page just newer than it; ``types[]`` filters; Link
        headers carry ``max_id`` (next, older) and ``min_id`` (prev, newer)."""
        limit = min(int(request.query.get("limit", "40")), 80)
        types = request.query.getall("types[]", []) or request.query.getall("types", [])
        items = [n for n in self.notifications if not types or n["type"] in types]
        if "max_id" in request.query:
            items = [n for n in items if int(n["id"]) < int(request.query["max_id"])]
        if "since_id" in request.query:
            items = [n for n in items if int(n["id"]) > int(request.query["since_id"])]
        if "min_id" in request.query:
            items = [n for n in items if int(n["id"]) > int(request.query["min_id"])][:limit]
        else:
            items = items[-limit:]
        page = sorted(items, key=lambda n: int(n["id"]), reverse=True)
        response = web.json_response(page)
        if page:
            url = f"{self.base_url}/api/v1/notifications"
            response.headers["Link"] = (
                f'<{url}?max_id={page[-1]["id"]}>; rel="next", '
                f'<{url}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return response

    async def _followers(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.account_id:
            return _error(404, "Record not found")
        limit = min(int(request.query.get("limit", "40")), 80)
        rows = self.follower_list
        if "max_id" in request.query:
            rows = [r for r in rows if r[0] < int(request.query["max_id"])]
        page = rows[:limit]
        response = web.json_response([account for _, account in page])
        if len(rows) > limit:
            url = f"{self.base_url}/api/v1/accounts/{self.account_id}/followers"
            response.headers["Link"] = f'<{url}?max_id={page[-1][0]}>; rel="next"'
        return response


def _person(acct: str) -> dict[str, Any]:
    """A remote account as Mastodon's API shows it (public fields only)."""
    number = int(hashlib.sha256(acct.encode()).hexdigest()[:12], 16)
    return {
        "id": str(number),
        "username": acct.split("@")[0],
        "acct": acct,
        "display_name": acct,
        "locked": False,
        "bot": False,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "",
        "url": f"https://example.invalid/@{acct}",
        "avatar": "",
        "header": "",
        "followers_count": 1,
        "following_count": 1,
        "statuses_count": 1,
        "emojis": [],
        "fields": [],
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _status(
    status_id: str, text: str, created_at: datetime, account: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": status_id,
        "created_at": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"https://example.invalid/users/{account['username']}/statuses/{status_id}",
        "url": f"https://example.invalid/@{account['username']}/{status_id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "content": to_html(text),
        "reblog": None,
        "application": {"name": "growthloop", "website": None},
        "account": account,
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
    }


def to_html(text: str) -> str:
    """Format plain text as Mastodon does: ``<p>`` per paragraph, ``<br />``, split links."""
    paragraphs = [p for p in text.strip().split("\n\n") if p]
    return "".join(f"<p>{_format_paragraph(p)}</p>" for p in paragraphs)


def _format_paragraph(paragraph: str) -> str:
    out: list[str] = []
    last = 0
    for match in URL_RE.finditer(paragraph):
        out.append(html.escape(paragraph[last : match.start()]))
        out.append(_format_link(match.group(0)))
        last = match.end()
    out.append(html.escape(paragraph[last:]))
    return "".join(out).replace("\n", "<br />")


def _format_link(url: str) -> str:
    prefix = re.match(r"https?://(www\.)?", url)
    assert prefix is not None
    head, rest = url[: prefix.end()], url[prefix.end() :]
    shown, hidden = rest[:30], rest[30:]
    return (
        f'<a href="{html.escape(url)}" rel="nofollow noopener" target="_blank">'
        f'<span class="invisible">{html.escape(head)}</span>'
        f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
        f'<span class="invisible">{html.escape(hidden)}</span></a>'
    )
