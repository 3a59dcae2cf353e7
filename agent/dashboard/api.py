"""The JSON API under ``/api/``: the dashboard's data for other tools (n8n, Zapier, scripts).

Read-only, ``GET`` only, behind the dashboard token (:mod:`agent.dashboard.access`):

==================================  ==============================================================
path                                body
==================================  ==============================================================
``/api/health``                     what ``growthloop health`` prints: publishing state, pending
                                    work, latest hourly rows, leading arms, platform costs,
                                    suspended accounts, row counts
``/api/accounts``                   one summary per configured account
``/api/accounts/{name}``            that summary alone
``/api/accounts/{name}/report``     the report's value tree over ``?days=`` (default 30, at most
                                    366): followers, posts, estimates, hours, days, health,
                                    insights (``growthloop report --account NAME``, as data)
``/api/queue``                      next posts, drafts waiting for approval, suspended accounts
                                    (``?account=NAME``: of that account)
``/api/activity``                   the latest posts in any status
``/api/insights``                   open insights (``?all=1``: resolved and acknowledged too)
==================================  ==============================================================

Errors are JSON too: ``{"error": "..."}`` with 400 (a bad parameter), 401 (no or wrong token),
404 (an unknown account) or 503 (the database cannot be reached: try again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agent.core import Agent
from agent.dashboard import views
from agent.errors import StoreError
from agent.logs import log
from agent.report import DEFAULT_DAYS

Route = Callable[[web.Request], Awaitable[web.Response]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(views.jsonable(body), status=status)


def _handler(work: Callable[[web.Request], Awaitable[Any]]) -> Route:
    """A handler answering ``work``'s value as JSON, and every expected failure as a JSON error."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return _json(await work(request))
        except views.BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        except LookupError as exc:
            return _json({"error": str(exc.args[0])}, 404)
        except StoreError as exc:
            log.warning("dashboard_store_error", path=request.path, error=str(exc))
            return _json({"error": f"the database could not be read: {exc}"}, 503)

    return handle


def add_routes(app: web.Application, agent: Agent, *, render_lock: Any) -> None:
    """The ``/api/...`` routes of ``agent``. ``render_lock``: held while a report is gathered
    (one at a time, so a burst of requests cannot starve the cycles)."""

    def now() -> Any:
        return agent.clock.now()

    async def health(_request: web.Request) -> Any:
        return await views.health(agent, now())

    async def accounts(_request: web.Request) -> Any:
        return await views.accounts(agent, now())

    async def account(request: web.Request) -> Any:
        name = views.account_name(agent, request.match_info["name"])
        return next(a for a in await views.accounts(agent, now()) if a["name"] == name)

    async def report(request: web.Request) -> Any:
        name = views.account_name(agent, request.match_info["name"])
        days = views.parse_days(request.query.get("days"), DEFAULT_DAYS)
        async with render_lock:
            gathered = await views.account_report(agent, name, now=now(), days=days)
        return views.report_json(gathered)

    async def queue(request: web.Request) -> Any:
        return await views.queue(agent, now(), account=request.query.get("account"))

    async def activity(_request: web.Request) -> Any:
        return await views.activity(agent)

    async def insights(request: web.Request) -> Any:
        every = request.query.get("all", "").lower() in {"1", "true", "yes"}
        return await views.insights(agent, include_closed=every)

    routes = {
        "/api/health": health,
        "/api/accounts": accounts,
        "/api/accounts/{name}": account,
        "/api/accounts/{name}/report": report,
        "/api/queue": queue,
        "/api/activity": activity,
        "/api/insights": insights,
    }
    for path, work in routes.items():
        app.router.add_get(path, _handler(work))
