"""The daemon's HTTP application: ``/healthz``, ``/metrics``, the dashboard and the JSON API on one
port, with the access rules of :mod:`agent.dashboard.access` as a middleware."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from agent.core import Agent
from agent.dashboard import api
from agent.dashboard.access import Access, middleware
from agent.dashboard.pages import Pages
from agent.metrics import metrics_route


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def build_app(
    agent: Agent,
    access: Access,
    *,
    healthz: Callable[[web.Request], Awaitable[web.StreamResponse]],
    wall_clock: Callable[[], datetime] = _wall_clock,
) -> web.Application:
    """The application: ``healthz`` is the daemon's handler; the dashboard routes exist whether
    or not a token is set (without one the middleware answers them 401, saying how to turn the
    dashboard on). ``wall_clock``: the session cookies' time (never the simulated clock)."""
    render_lock = asyncio.Lock()
    pages = Pages(agent, access, render_lock=render_lock, wall_clock=wall_clock)
    app = web.Application(
        middlewares=[middleware(access, now=wall_clock, login_page=pages.login_page)]
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_route(agent))
    pages.add_routes(app)
    api.add_routes(app, agent, render_lock=render_lock)
    return app
