"""The dashboard's HTML pages, server-rendered with the report's Jinja2 environment.

- ``/dashboard``: the overview - accounts, the queue (pending work, next posts, drafts waiting
  for approval, suspended accounts), what the deciding model believes, the latest health hours,
  open insights and recent activity (:mod:`agent.dashboard.views`);
- ``/dashboard/accounts/{name}?days=30``: that account's report section, live - the same
  template (``_account.html.j2``) and charts as ``growthloop report``;
- ``/dashboard/login`` (the sign-in form, ``POST`` checks the token and sets the session cookie)
  and ``POST /dashboard/logout``.

Pages carry no script: a Content-Security-Policy allows inline styles, ``data:`` images and
forms posted to the daemon itself, nothing else. Every response says ``Cache-Control:
no-store`` (the figures are live) and may not be framed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import ChoiceLoader, Environment, PackageLoader

from agent.core import Agent
from agent.dashboard import access as auth
from agent.dashboard import views
from agent.errors import StoreError
from agent.logs import log
from agent.report import DEFAULT_DAYS
from agent.report import render as report_render

PERIOD_CHOICES = (7, 30, 90)  # days offered as links on an account's page
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def environment() -> Environment:
    """The report's environment (filters, autoescaping), finding the dashboard's templates first
    and the report's partials (``_style.html.j2``, ``_account.html.j2``) after them."""
    env = report_render.environment()
    assert env.loader is not None
    env.loader = ChoiceLoader([PackageLoader("agent.dashboard", "templates"), env.loader])
    return env


def _page(html: str, status: int = 200) -> web.Response:
    return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)


def safe_next(value: object) -> str:
    """Where to go after signing in: a dashboard path of this server, else the overview."""
    text = value if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not auth.guarded(parts.path) or text.startswith("//"):
        return auth.DASHBOARD_PREFIX
    return text


class Pages:
    """The page handlers of one agent."""

    def __init__(
        self,
        agent: Agent,
        access: auth.Access,
        *,
        render_lock: asyncio.Lock,
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.agent = agent
        self.access = access
        self.env = environment()
        self.render_lock = render_lock
        self.wall_clock = wall_clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/dashboard", self.overview)
        app.router.add_get("/dashboard/accounts/{name}", self.account)
        app.router.add_get(auth.LOGIN_PATH, self.login_form)
        app.router.add_post(auth.LOGIN_PATH, self.login)
        app.router.add_post("/dashboard/logout", self.logout)

    def _nav(self) -> list[str]:
        return [a.name for a in self.agent.config.accounts]

    async def login_page(self, request: web.Request, message: str) -> web.Response:
        """The sign-in form, answered with 401 (the middleware's page for a browser)."""
        nxt = request.path_qs if request.method == "GET" else auth.DASHBOARD_PREFIX
        html = self.env.get_template("login.html.j2").render(
            message=message,
            next_path=safe_next(nxt if request.path != auth.LOGIN_PATH else ""),
            session_hours=round(auth.SESSION_TTL.total_seconds() / 3600),
            nav=None,
            here="",
        )
        return _page(html, status=401)

    async def login_form(self, request: web.Request) -> web.Response:
        """Signed in already (the middleware let the request through): go to the overview."""
        raise web.HTTPSeeOther(auth.DASHBOARD_PREFIX)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not self.access.token_matches(given.strip()):
            log.warning("dashboard_sign_in_failed", remote=request.remote)
            return await self.login_page(request, "That is not the dashboard token.")
        log.info("dashboard_signed_in", remote=request.remote)
        response = web.HTTPSeeOther(safe_next(form.get("next")), headers=HEADERS)
        auth.set_session(response, request, self.access.session_cookie(self.wall_clock()))
        raise response

    async def logout(self, _request: web.Request) -> web.Response:
        response = web.HTTPSeeOther(auth.LOGIN_PATH, headers=HEADERS)
        auth.clear_session(response)
        raise response

    async def overview(self, _request: web.Request) -> web.Response:
        agent = self.agent
        now = agent.clock.now()
        try:
            context: dict[str, Any] = {
                "now": now,
                "mode": agent.config.mode.value,
                "health": await views.health(agent, now),
                "accounts": await views.accounts(agent, now),
                "queue": await views.queue(agent, now),
                "insights": await views.insights(agent),
                "activity": await views.activity(agent),
            }
        except StoreError as exc:
            return self._store_error(exc)
        html = self.env.get_template("overview.html.j2").render(
            **context, nav=self._nav(), here="overview"
        )
        return _page(html)

    async def account(self, request: web.Request) -> web.Response:
        try:
            name = views.account_name(self.agent, request.match_info["name"])
            days = views.parse_days(request.query.get("days"), DEFAULT_DAYS)
        except LookupError as exc:
            return _page(f"<p>{_escape(str(exc.args[0]))}</p>", status=404)
        except views.BadRequest as exc:
            return _page(f"<p>{_escape(str(exc))}</p>", status=400)
        async with self.render_lock:  # one report at a time: the cycles keep their CPU
            try:
                now = self.agent.clock.now()
                report = await views.account_report(self.agent, name, now=now, days=days)
                queue = await views.queue(self.agent, now, account=name)
            except StoreError as exc:
                return self._store_error(exc)
            (account,) = report.accounts
            # matplotlib is CPU work: off the event loop, so /healthz and the cycles go on
            charts = await asyncio.to_thread(report_render.account_charts, account)
        section = {
            "account": account,
            "charts": charts,
            "insights": report_render.ordered(account.insights),
        }
        html = self.env.get_template("account.html.j2").render(
            report=report,
            s=section,
            queue=queue,
            shared=report_render.ordered(report.insights),
            period_choices=PERIOD_CHOICES,
            nav=self._nav(),
            here=name,
        )
        return _page(html)

    def _store_error(self, exc: StoreError) -> web.Response:
        log.warning("dashboard_store_error", error=str(exc))
        return _page(
            f"<p>The database could not be read: {_escape(str(exc))}. Try again.</p>", status=503
        )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
