"""The dashboard and JSON API in process (aiohttp's test server, a simulated run on SQLite): who
gets in, what they read, and that the token is never logged. The browser test against a running
daemon is tests/acceptance/test_dashboard_browser.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from agent import breaker
from agent.daemon import Daemon
from agent.dashboard import views
from agent.dashboard.access import (
    DASHBOARD_TOKEN_ENV,
    METRICS_TOKEN_ENV,
    MIN_TOKEN_CHARS,
    SESSION_COOKIE,
    SESSION_TTL,
    Access,
)
from agent.dashboard.app import build_app
from agent.dashboard.pages import safe_next
from agent.errors import AuthFailed, ConfigError, StoreUnavailable
from agent.models import PostStatus
from agent.simulator import run_until
from tests.conftest import T0
from tests.unit.vt_harness import Harness, make_harness

TOKEN = "dash-Token-for-tests-0123456789"  # what an operator sets: long and random
METRICS_TOKEN = "metrics-Token-for-tests-987654"
# every page and API path; unknown ones too: a guess must not learn what exists
GUARDED = (
    "/dashboard",
    "/dashboard/",
    "/dashboard/login",
    "/dashboard/accounts/demo",
    "/dashboard/accounts/demo?days=7",
    "/dashboard/nothing-here",
    "/api",
    "/api/health",
    "/api/accounts",
    "/api/accounts/demo",
    "/api/accounts/demo/report?days=30",
    "/api/queue",
    "/api/activity",
    "/api/insights",
    "/api/nothing-here",
)
API = tuple(p for p in GUARDED if p.startswith("/api/") and "nothing" not in p)
PAGES = ("/dashboard", "/dashboard/accounts/demo")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """Two simulated days on SQLite: posts published, polled, attributed and learned, and the
    next post queued."""
    async with make_harness(tmp_path) as h:
        await run_until(h.agent, h.clock, T0 + timedelta(days=2))
        yield h


def serve(h: Harness, environ: dict[str, str]) -> TestServer:
    daemon = Daemon(h.agent, environ=environ)
    app = build_app(h.agent, daemon.access, healthz=daemon.healthz)
    return TestServer(app, host="127.0.0.1")


async def get(
    session: ClientSession, server: TestServer, path: str, **headers: str
) -> tuple[int, str]:
    async with session.get(server.make_url(path), headers=headers, allow_redirects=False) as r:
        return r.status, await r.text()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_without_a_token_set_every_dashboard_path_answers_401_saying_how_to_turn_it_on(
    harness: Harness,
) -> None:
    async with serve(harness, {}) as server, ClientSession() as session:
        for path in GUARDED:
            for headers in ({}, bearer(TOKEN), bearer("")):
                status, body = await get(session, server, path, **headers)
                assert status == 401, (path, headers, status)
                assert DASHBOARD_TOKEN_ENV in body, (path, body)
        async with session.post(server.make_url("/dashboard/login"), data={"token": ""}) as r:
            assert r.status == 401
        assert (await get(session, server, "/healthz"))[0] == 200
        assert (await get(session, server, "/metrics"))[0] == 200  # open by default


async def test_with_a_token_set_only_its_bearer_or_a_signed_in_browser_gets_in(
    harness: Harness,
) -> None:
    with capture_logs() as logs:
        async with (
            serve(harness, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
            # unsafe: aiohttp's jar keeps no cookie of an IP address (127.0.0.1) otherwise
            ClientSession(cookie_jar=CookieJar(unsafe=True)) as session,
        ):
            for path in GUARDED:
                for headers in ({}, bearer(TOKEN[:-1]), bearer(TOKEN + "x"), bearer("")):
                    status, body = await get(session, server, path, **headers)
                    assert status == 401, (path, headers, status)
                    assert TOKEN not in body
                if path.startswith("/dashboard"):  # a browser gets the sign-in form
                    assert 'name="token"' in (await get(session, server, path))[1]
            for path in API:
                status, body = await get(session, server, path, **bearer(TOKEN))
                assert status == 200, (path, body[:300])
                json.loads(body)
            for path in PAGES:
                status, body = await get(session, server, path, **bearer(TOKEN))
                assert status == 200 and "<html" in body, path
            assert (await get(session, server, "/api/nothing-here", **bearer(TOKEN)))[0] == 404

            # the browser: a wrong token is refused; the right one sets the session cookie
            login = server.make_url("/dashboard/login")
            async with session.post(login, data={"token": "wrong" * 4}) as r:
                assert r.status == 401 and "not the dashboard token" in await r.text()
            assert not session.cookie_jar.filter_cookies(server.make_url("/"))
            form = {"token": TOKEN, "next": "/dashboard/accounts/demo"}
            async with session.post(login, data=form, allow_redirects=False) as r:
                assert r.status == 303
                assert r.headers["Location"] == "/dashboard/accounts/demo"
                cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
            assert "Secure" not in cookie  # plain HTTP here; HTTPS (or X-Forwarded-Proto) sets it
            for path in (*PAGES, "/api/queue"):
                assert (await get(session, server, path))[0] == 200, path
            async with session.post(server.make_url("/dashboard/logout")) as r:
                assert r.status == 401  # signed out: back on the form
            assert (await get(session, server, "/dashboard"))[0] == 401

    # the token never reaches a log event (captured before any redaction processor runs)
    assert logs, "signing in and the failed attempts are logged"
    events = {e["event"] for e in logs}
    assert {"dashboard_signed_in", "dashboard_sign_in_failed"} <= events
    for event in logs:
        assert TOKEN not in repr(event), event


async def test_the_session_cookie_expires_and_cannot_be_forged() -> None:
    access = Access(dashboard_token=TOKEN)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    cookie = access.session_cookie(now)
    assert TOKEN not in cookie
    assert access.session_valid(cookie, now + SESSION_TTL - timedelta(seconds=1))
    assert not access.session_valid(cookie, now + SESSION_TTL)
    expires, _, signature = cookie.partition(".")
    later = str(int(expires) + 86400)
    assert not access.session_valid(f"{later}.{signature}", now)  # a longer life, same signature
    assert not access.session_valid(f"{expires}.{signature[:-1]}0", now)
    assert not access.session_valid("garbage", now)
    # another token (rotated) signs every browser out
    assert not Access(dashboard_token=TOKEN + "2").session_valid(cookie, now)


async def test_an_expired_cookie_gets_the_sign_in_form_again(harness: Harness) -> None:
    past = datetime.now(UTC) - SESSION_TTL - timedelta(minutes=1)
    stale = Access(dashboard_token=TOKEN).session_cookie(past)
    async with (
        serve(harness, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
        ClientSession(cookies={SESSION_COOKIE: stale}) as session,
    ):
        status, body = await get(session, server, "/dashboard")
        assert status == 401 and "session has expired" in body


def test_sign_in_only_sends_a_browser_on_to_a_dashboard_page() -> None:
    assert safe_next("/dashboard/accounts/demo?days=7") == "/dashboard/accounts/demo?days=7"
    for bad in ("https://evil.example/", "//evil.example/dashboard", "/healthz", None, ""):
        assert safe_next(bad) == "/dashboard", bad


def test_a_short_token_is_a_config_error_naming_the_variable() -> None:
    for name in (DASHBOARD_TOKEN_ENV, METRICS_TOKEN_ENV):
        with pytest.raises(ConfigError, match=name) as info:
            Access.from_environ({name: "x" * (MIN_TOKEN_CHARS - 1)})
        assert "x" * (MIN_TOKEN_CHARS - 1) not in str(info.value)
    assert Access.from_environ({DASHBOARD_TOKEN_ENV: "  "}).dashboard_on is False
    assert "dash" not in repr(Access.from_environ({DASHBOARD_TOKEN_ENV: TOKEN}))


async def test_metrics_follows_its_own_bearer_token(harness: Harness) -> None:
    environ = {METRICS_TOKEN_ENV: METRICS_TOKEN}
    async with serve(harness, environ) as server, ClientSession() as session:
        assert (await get(session, server, "/metrics"))[0] == 401
        assert (await get(session, server, "/metrics", **bearer(TOKEN)))[0] == 401
        status, body = await get(session, server, "/metrics", **bearer(METRICS_TOKEN))
        assert status == 200 and "growthloop_posts_published_total" in body
        assert (await get(session, server, "/healthz"))[0] == 200
        assert (await get(session, server, "/api/health", **bearer(METRICS_TOKEN)))[0] == 401


async def test_the_api_reads_what_the_store_says(harness: Harness) -> None:
    """One truth: the API's figures are the store methods' answers (those `growthloop health`,
    `growthloop posts` and `growthloop drafts` print)."""
    h = harness
    store, now = h.store, h.clock.now()
    async with (
        serve(h, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
        ClientSession(headers=bearer(TOKEN)) as session,
    ):

        async def api(path: str) -> Any:
            status, body = await get(session, server, path)
            assert status == 200, (path, body)
            return json.loads(body)

        health = await api("/api/health")
        queue = await api("/api/queue")
        accounts = await api("/api/accounts")
        report = await api("/api/accounts/demo/report?days=2")
        assert (await get(session, server, "/api/accounts/nobody/report"))[0] == 404
        status, body = await get(session, server, "/api/accounts/demo/report?days=soon")
        assert status == 400 and "days" in json.loads(body)["error"]

    assert health["pending"] == views.jsonable(await store.pending_work(now))
    assert health["counts"] == await store.counts()
    account_id = h.agent.account_ids["demo"]
    stats = await store.arm_stats(account_id)
    assert stats, "two days learn something"
    for row in health["leaders"]:
        best = max(
            (s for s in stats if s.dimension == row["dimension"]), key=lambda s: (s.mean, s.arm)
        )
        assert (row["arm"], row["mean"], row["p_best"]) == (best.arm, best.mean, best.p_best)
    planned = await store.list_posts(statuses=(PostStatus.PLANNED, PostStatus.PUBLISHING))
    assert planned, "the next post is queued"
    assert [p["id"] for p in queue["next_posts"]] == [p.id for p in planned]
    assert queue["pending"]["posts_queued"] == health["pending"]["posts_queued"] >= 1
    (demo,) = accounts
    latest = (await store.last_account_snapshots())[account_id]
    assert demo["followers"] == latest.followers
    assert demo["posts_queued"] == len(planned)
    (account,) = report["accounts"]
    posted = await store.list_posts(statuses=(PostStatus.POSTED,), limit=1000)
    assert account["summary"]["posts"] == len(posted) > 0
    assert account["summary"]["followers_end"] == latest.followers
    assert {d["dimension"] for d in account["dimensions"]} == {s.dimension for s in stats}


async def test_the_overview_page_shows_the_queue_and_the_leaders(harness: Harness) -> None:
    h = harness
    planned = await h.store.list_posts(statuses=(PostStatus.PLANNED,))
    account_id = h.agent.account_ids["demo"]
    await h.store.add_platform_spend(account_id, usd=0.25, posts=0, at=h.clock.now())
    async with (
        serve(h, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
        ClientSession(headers=bearer(TOKEN)) as session,
    ):
        status, page = await get(session, server, "/dashboard")
        assert status == 200
        status, account_page = await get(session, server, "/dashboard/accounts/demo?days=2")
        assert status == 200
    assert f'data-post="{planned[0].id}"' in page
    assert f'data-post="{planned[0].id}"' in account_page  # the account's own queue
    for dimension in ("content_type", "formula", "hook"):
        assert f'data-dimension="{dimension}"' in page
    assert account_page.count('class="chart"') >= 5  # the report's charts, inline SVG
    (cost,) = await h.store.platform_costs(at=h.clock.now())
    assert f"<td>{cost.spend_usd:.4f}</td>" in page  # this month's platform cost, as health
    rows = await h.store.latest_health(limit=views.HEALTH_HOURS)
    assert rows and 'id="health-hours"' in page
    assert page.count(f"<td>{rows[0]['hour_start']:%Y-%m-%d %H:00}</td>") == 1
    assert "<script" not in page and "<script" not in account_page


async def test_the_daemon_serves_the_dashboard_on_its_one_application(harness: Harness) -> None:
    """The routes exist on the daemon's app (the middleware decides who gets in)."""
    daemon = Daemon(harness.agent, environ={DASHBOARD_TOKEN_ENV: TOKEN})
    app = build_app(harness.agent, daemon.access, healthz=daemon.healthz)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/healthz", "/metrics", "/dashboard", "/api/health", "/api/queue"} <= paths
    assert isinstance(app, web.Application)


async def test_the_queue_shows_drafts_waiting_and_suspended_accounts(tmp_path: Path) -> None:
    """Approve mode: the planner's drafts wait for a person; then the circuit breaker suspends
    the account. Both are in /api/queue and on the overview, as `growthloop drafts` and
    `growthloop health` list them."""
    async with make_harness(tmp_path, mode="approve") as h:
        await h.run_cycles("plan")
        account = h.agent.config.accounts[0]
        await breaker.suspend(h.agent, account, AuthFailed("401"), T0, reason=breaker.AUTH)
        drafts = await h.store.drafts()
        assert drafts, "approve mode writes drafts"
        async with (
            serve(h, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
            ClientSession(headers=bearer(TOKEN)) as session,
        ):
            status, body = await get(session, server, "/api/queue")
            assert status == 200
            status, mine = await get(session, server, "/api/queue?account=demo")
            assert status == 200 and json.loads(mine)["drafts_waiting"] == len(drafts)
            assert (await get(session, server, "/api/queue?account=nobody"))[0] == 404
            status, page = await get(session, server, "/dashboard")
            assert status == 200
    queue = json.loads(body)
    assert [d["id"] for d in queue["drafts"]] == [d.id for d in drafts]
    assert queue["drafts_waiting"] == len(drafts)
    assert queue["next_posts"] == []  # nothing is planned until a person approves
    assert [(s["account"], s["reason"]) for s in queue["suspended"]] == [("demo", "auth")]
    assert f'<tr data-post="{drafts[0].id}">' in page
    assert "suspended</span>" in page and "Approve or reject them with" in page


async def test_a_database_that_cannot_be_read_is_a_503_not_a_traceback(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreUnavailable("connection refused")

    for method in ("pending_work", "account_names"):
        monkeypatch.setattr(harness.store, method, down)
    async with (
        serve(harness, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
        ClientSession(headers=bearer(TOKEN)) as session,
    ):
        for path in ("/api/health", "/api/queue", "/api/accounts/demo/report", "/dashboard"):
            status, body = await get(session, server, path)
            assert status == 503, (path, status, body[:200])
            assert "could not be read" in body and "Traceback" not in body
        assert (await get(session, server, "/dashboard/accounts/demo"))[0] == 503


async def test_the_account_page_and_api_show_the_audience_and_experiments_sections(
    harness: Harness,
) -> None:
    """Issue 18 item 6: the audience's and experiments' sections, live, as their commands."""
    from dataclasses import replace as replaced

    from agent.audience_models import AudienceEvent, AudienceKind
    from tests.unit.test_report_sections import plan

    h = harness
    account_id = h.agent.account_ids["demo"]
    now = h.clock.now()
    await h.store.record_audience(
        account_id,
        [
            AudienceEvent(
                kind=AudienceKind.FOLLOW,
                user_id=f"u{i}",
                handle=f"p{i}.example",
                at=now - timedelta(hours=5 + i),
                source_id=f"follow:{i}",
            )
            for i in range(3)
        ],
        now=now,
    )
    created = await h.store.create_experiment(replaced(plan(), account_id=account_id), now=now)
    async with (
        serve(h, {DASHBOARD_TOKEN_ENV: TOKEN}) as server,
        ClientSession(headers=bearer(TOKEN)) as session,
    ):
        status, body = await get(session, server, "/api/accounts/demo/report?days=2")
        assert status == 200
        status, page = await get(session, server, "/dashboard/accounts/demo?days=2")
        assert status == 200
    (account,) = json.loads(body)["accounts"]
    assert account["audience"]["members"] == account["audience"]["followers"] == 3
    assert [e["id"] for e in account["experiments"]] == [created.id]
    assert 'data-chart="retention-demo"' in page and 'data-chart="tiers-demo"' in page
    assert f'data-chart="experiment-demo-{created.id}"' in page
