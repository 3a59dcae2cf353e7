"""Who may read the dashboard, the JSON API and ``/metrics``: tokens from the environment.

- ``GROWTHLOOP_DASHBOARD_TOKEN`` unset: the dashboard is **off**. Every ``/dashboard...`` page
  and every ``/api/...`` path answers 401 with a line saying how to turn it on (401, not 404,
  so a tool learns that the address is right and a token is missing).
- Set: a request is let in with ``Authorization: Bearer <token>`` (scripts, n8n, Zapier) or with
  the session cookie a browser gets from the sign-in form (``POST /dashboard/login``). Without
  either, or with a wrong token, 401: the API answers JSON, a page answers the sign-in form.
- ``GROWTHLOOP_METRICS_TOKEN`` set: ``/metrics`` wants ``Authorization: Bearer <token>``, which is
  what a Prometheus scrape job sends with ``authorization: {credentials: ...}``; unset, it is open.
- ``/healthz`` is always open (platform health checks carry no credentials).

Tokens are compared with :func:`hmac.compare_digest` (constant time). A token is never put in a
URL (no ``?token=``: URLs end up in browser history, proxy logs and Referer headers), never
logged and never stored in the cookie: the cookie holds an expiry time and an HMAC of it keyed
by the token, so it lasts :data:`SESSION_TTL`, and changing the token signs every browser out.
It is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
``Secure`` when the request came over HTTPS (directly or per ``X-Forwarded-Proto``, as Railway's
and Heroku's routers set it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from agent.errors import ConfigError

DASHBOARD_TOKEN_ENV = "GROWTHLOOP_DASHBOARD_TOKEN"
METRICS_TOKEN_ENV = "GROWTHLOOP_METRICS_TOKEN"
# characters: `secrets.token_urlsafe(12)` gives 16 (96 random bits), beyond any online guessing
MIN_TOKEN_CHARS = 16
SESSION_COOKIE = "growthloop_session"
SESSION_TTL = timedelta(hours=12)  # a browser signs in again after this
DASHBOARD_PREFIX = "/dashboard"
API_PREFIX = "/api"
LOGIN_PATH = "/dashboard/login"
METRICS_PATH = "/metrics"
REALM = 'Bearer realm="growthloop"'
_SESSION_CONTEXT = b"growthloop dashboard session v1"  # what the cookie's HMAC is about

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LoginPage = Callable[[web.Request, str], Awaitable[web.Response]]


def off_message() -> str:
    return (
        f"The dashboard and the JSON API are off: set {DASHBOARD_TOKEN_ENV} (at least "
        f"{MIN_TOKEN_CHARS} characters, e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`) in the daemon's environment and restart it "
        "(docs/dashboard.md)."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """The tokens of one daemon (``repr`` never shows them)."""

    dashboard_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Access:
        """The tokens in ``environ``; an empty value is unset, a short one a ConfigError."""
        tokens = {}
        for name in (DASHBOARD_TOKEN_ENV, METRICS_TOKEN_ENV):
            value = (environ.get(name) or "").strip()
            if value and len(value) < MIN_TOKEN_CHARS:
                raise ConfigError(
                    f"{name} is {len(value)} characters; use at least {MIN_TOKEN_CHARS} random "
                    "ones, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
                )
            tokens[name] = value or None
        return cls(
            dashboard_token=tokens[DASHBOARD_TOKEN_ENV], metrics_token=tokens[METRICS_TOKEN_ENV]
        )

    @property
    def dashboard_on(self) -> bool:
        return self.dashboard_token is not None

    def token_matches(self, given: str) -> bool:
        """``given`` is the dashboard token (constant time; False when the dashboard is off)."""
        if self.dashboard_token is None:
            return False
        return hmac.compare_digest(given.encode(), self.dashboard_token.encode())

    def session_cookie(self, now: datetime) -> str:
        """A cookie value good until ``now + SESSION_TTL``: ``<expiry>.<hmac>``."""
        expires = int((now + SESSION_TTL).timestamp())
        return f"{expires}.{self._sign(expires)}"

    def session_valid(self, value: str, now: datetime) -> bool:
        expires_text, _, signature = value.partition(".")
        if self.dashboard_token is None or not expires_text.isdigit() or not signature:
            return False
        expires = int(expires_text)
        good = hmac.compare_digest(signature.encode(), self._sign(expires).encode())
        return good and expires > now.timestamp()

    def _sign(self, expires: int) -> str:
        assert self.dashboard_token is not None
        message = _SESSION_CONTEXT + b":" + str(expires).encode()
        return hmac.new(self.dashboard_token.encode(), message, hashlib.sha256).hexdigest()


def bearer(request: web.Request) -> str | None:
    """The credentials of an ``Authorization: Bearer ...`` header (None: no such header)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def guarded(path: str) -> bool:
    """A dashboard page or an API path (``/dashboard``, ``/dashboard/...``, ``/api/...``)."""
    return (
        path == DASHBOARD_PREFIX
        or path.startswith(DASHBOARD_PREFIX + "/")
        or path == API_PREFIX
        or path.startswith(API_PREFIX + "/")
    )


def is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def middleware(
    access: Access, *, now: Callable[[], datetime], login_page: LoginPage
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The aiohttp middleware that applies the rules above. ``now``: the wall clock (cookie
    expiry); ``login_page(request, message)``: the 401 page a browser gets (the sign-in form)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path == METRICS_PATH and access.metrics_token is not None:
            given = bearer(request) or ""
            if not hmac.compare_digest(given.encode(), access.metrics_token.encode()):
                return web.Response(
                    status=401,
                    text=f"/metrics wants Authorization: Bearer <{METRICS_TOKEN_ENV}>\n",
                    headers={"WWW-Authenticate": REALM},
                )
            return await handler(request)
        if not guarded(path):
            return await handler(request)
        if not access.dashboard_on:
            return _refused(request, off_message())
        if path == LOGIN_PATH and request.method == "POST":
            return await handler(request)  # the form checks the token itself
        credentials = bearer(request)
        if credentials is not None:
            if access.token_matches(credentials):
                return await handler(request)
            return _refused(request, "The bearer token is not the dashboard token.")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and access.session_valid(cookie, now()):
            return await handler(request)
        if path.startswith(API_PREFIX):
            return _refused(request, f"Send Authorization: Bearer <{DASHBOARD_TOKEN_ENV}>.")
        message = "Your session has expired: sign in again." if cookie else ""
        return await login_page(request, message)

    return guard


def _refused(request: web.Request, message: str) -> web.Response:
    """401 as JSON for the API, plain text for a page."""
    headers = {"WWW-Authenticate": REALM}
    if request.path.startswith(API_PREFIX):
        return web.json_response({"error": message}, status=401, headers=headers)
    return web.Response(status=401, text=message + "\n", headers=headers)


def set_session(response: web.StreamResponse, request: web.Request, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
