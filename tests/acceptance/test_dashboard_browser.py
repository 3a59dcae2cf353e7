"""The dashboard in Debian's headless Chromium against a running ``growthloop run``, on SQLite and
on PostgreSQL.

The daemon runs in compressed real time (tests/acceptance/conftest.py: a post as soon as it
starts, polls 2/4/6 s later, then the learning step; the next post queued minutes ahead) with
``GROWTHLOOP_DASHBOARD_TOKEN`` set. Once it has learned and queued its next post, the test:

- asks every dashboard page and ``/api/`` path without the token, and with a wrong one: 401;
- compares ``/api/health`` with ``growthloop health`` run beside it (pending work, the leading
  arm of each dimension) and with the seed-named SQL views (rank 1 of each dimension);
- signs in through the form in Chromium and reads the overview as a person sees it: the same
  pending work, the same leaders, the queued post; opens the account's page and checks that each
  of the report's charts rendered; checks no request left the machine (DevTools network
  events); takes the screenshot in docs/img/dashboard.png (SQLite run);
- stops the daemon and checks the token is nowhere in its log, sign-ins included.

Chromium missing: skips on a developer's machine, FAILS in CI (as the report's browser test).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.store.schema import ARM_VIEWS
from tests.acceptance.conftest import (
    STORE,
    Daemon,
    cli_env,
    free_port,
    must_query,
    realtime_overrides,
    run_cli,
    write_config,
    write_scenario,
)
from tests.acceptance.test_one_truth import table_rows
from tests.acceptance.test_report_browser import browser  # noqa: F401 (the fixture)
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.slow  # a daemon, Chromium and its driver

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "img" / "dashboard.png"
TOKEN = "acceptance-dashboard-token-7f3a9c"
ACCOUNT = "demo"
STEADY = 1.0  # s between the two equal reads that say the daemon has settled
SETTLE_TIMEOUT = 40  # s: start, post, three polls, learning and the next plan, on a busy machine
WIDTH, SHOT_HEIGHT = 1200, 2200  # px of the screenshot
GUARDED = (
    "/dashboard",
    "/dashboard/login",
    f"/dashboard/accounts/{ACCOUNT}",
    "/dashboard/unknown",
    "/api/health",
    "/api/accounts",
    f"/api/accounts/{ACCOUNT}",
    f"/api/accounts/{ACCOUNT}/report?days=30",
    "/api/queue",
    "/api/activity",
    "/api/insights",
    "/api/unknown",
)


def http(
    url: str, *, token: str | None = None, data: dict[str, str] | None = None
) -> tuple[int, str]:
    """Status and body of a GET (or a form POST with ``data``), errors included."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@asynccontextmanager
async def backend(kind: str, tmp_path: Path, config: Path) -> AsyncIterator[dict[str, str]]:
    """The daemon's extra environment: SQLite (the config's file) or a fresh, migrated
    PostgreSQL database (DATABASE_URL)."""
    if kind == "sqlite":
        yield {}
        return
    async with fresh_pg_database() as url:
        migrated = run_cli(
            "migrate", "--config", config, cwd=tmp_path, env=cli_env(DATABASE_URL=url)
        )
        assert migrated.returncode == 0, migrated.stderr
        yield {"DATABASE_URL": url}


async def view_leaders(kind: str, tmp_path: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Rank 1 of each seed-named SQL view, read with SQL as an operator would."""
    out = {}
    for view, dimension in ARM_VIEWS.items():
        sql = (
            f"SELECT {dimension} AS arm, posts_count, mean, p_best FROM {view} "
            "WHERE account = {p} AND rank = 1"
        )
        if kind == "sqlite":
            rows = must_query(tmp_path / STORE, sql.format(p="?"), (ACCOUNT,))
        else:
            import asyncpg

            conn = await asyncpg.connect(env["DATABASE_URL"])
            try:
                rows = [dict(r) for r in await conn.fetch(sql.format(p="$1"), ACCOUNT)]
            finally:
                await conn.close()
        if rows:
            out[dimension] = rows[0]
    return out


def settled(base: str) -> Callable[[], dict[str, Any] | None]:
    """/api/health once the first post is learned from and the next one is queued, no poll
    pending, and the same on two reads :data:`STEADY` seconds apart (nothing then changes for
    minutes)."""
    last: list[dict[str, Any]] = []

    def probe() -> dict[str, Any] | None:
        health = ready()
        if health is None:
            last.clear()
            return None
        figures = {k: health[k] for k in ("pending", "counts", "leaders")}
        if last and last[0] == figures:
            return health
        last[:] = [figures]
        time.sleep(STEADY)
        return None

    def ready() -> dict[str, Any] | None:
        status, body = http(f"{base}/api/health", token=TOKEN)
        if status != 200:
            return None
        health: dict[str, Any] = json.loads(body)
        pending, counts = health["pending"], health["counts"]
        done = (
            counts.get("learning_updates", 0) >= 1
            and pending["posts_queued"] >= 1
            and pending["polls_due"] == 0
            and pending["polls_upcoming"] == 0
            and pending["posts_in_flight"] == 0
            and health["leaders"]
        )
        return health if done else None

    return probe


def page_requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_dashboard_in_chromium_matches_health_and_the_sql_views(
    tmp_path: Path,
    daemons: Callable[..., Daemon],
    browser: Any,  # noqa: F811 (the fixture imported above)
    kind: str,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    scenario = write_scenario(tmp_path / "scenario.yaml")
    port = free_port()
    config = write_config(tmp_path / "growthloop.yaml", **realtime_overrides(scenario, port))
    async with backend(kind, tmp_path, config) as env:
        daemon = daemons(config, port=port, env={**env, "GROWTHLOOP_DASHBOARD_TOKEN": TOKEN})
        daemon.wait_started()
        base = f"http://127.0.0.1:{port}"
        health = daemon.wait(
            settled(base), timeout=SETTLE_TIMEOUT, what="a learned post and the next one queued"
        )

        # -- without the token (or with a wrong one): 401 everywhere; /healthz stays open
        for path in GUARDED:
            for token in (None, TOKEN[:-1], "Bearer"):
                status, body = http(base + path, token=token)
                assert status == 401, (path, token, status)
                assert TOKEN not in body
        assert http(base + "/healthz")[0] == 200
        assert http(base + "/dashboard/login", data={"token": "not-the-token-at-all"})[0] == 401

        # -- one truth: the API, `growthloop health` and the SQL views
        health_cli = run_cli(
            "health", "--config", config, cwd=tmp_path, env=cli_env(COLUMNS="250", **env)
        )
        assert health_cli.returncode == 0, health_cli.stderr
        _status, again = http(f"{base}/api/health", token=TOKEN)
        for key in ("pending", "counts", "leaders"):
            assert json.loads(again)[key] == health[key], f"{key} moved meanwhile"
        pending = {row[0]: row[1:] for row in table_rows(health_cli.stdout, "Pending work")}
        p = health["pending"]
        assert pending["posts queued"] == [str(p["posts_queued"]), p["next_post_at"]]
        assert pending["polls upcoming"][0] == str(p["polls_upcoming"])
        assert pending["posts in flight"][0] == str(p["posts_in_flight"])
        cli_leaders = {
            row[2]: row for row in table_rows(health_cli.stdout, "What the deciding model believes")
        }
        api_leaders = {
            row["dimension"]: row for row in health["leaders"] if row["account"] == ACCOUNT
        }
        assert set(cli_leaders) == set(api_leaders) and api_leaders
        for dimension, row in api_leaders.items():
            cli = cli_leaders[dimension]
            assert cli[:4] == [ACCOUNT, row["model"], dimension, row["arm"]], cli
            assert cli[4] == f"{row['mean']:.2f}" and cli[6] == f"{row['p_best']:.2f}", cli
        views = await view_leaders(kind, tmp_path, env)
        assert views, "the seed-named views have rows"
        for dimension, top in views.items():
            row = api_leaders[dimension]
            assert (top["arm"], top["posts_count"]) == (row["arm"], row["posts"]), dimension
            assert top["mean"] == pytest.approx(row["mean"]) and top["p_best"] == pytest.approx(
                row["p_best"]
            )
        _status, queue_body = http(f"{base}/api/queue", token=TOKEN)
        queued = [q for q in json.loads(queue_body)["next_posts"] if q["status"] == "planned"]
        assert queued, "the queue holds the next post"

        # -- a person in Chromium: sign in, read the overview, open the account
        browser.get_log("performance")
        browser.get(f"{base}/dashboard")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        # the form posts, then the overview loads (the login page had no #pending-work)
        WebDriverWait(browser, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#pending-work")
        )
        assert browser.current_url == f"{base}/dashboard"

        def cell(selector: str) -> str:
            text: str = browser.find_element(By.CSS_SELECTOR, selector).text
            return text

        for what, key in (("posts queued", "posts_queued"), ("polls upcoming", "polls_upcoming")):
            assert cell(f'#pending-work tr[data-what="{what}"] td.count') == str(p[key]), what
        assert cell('#pending-work tr[data-what="posts queued"] td.next') == p["next_post_at"]
        for dimension, row in api_leaders.items():
            selector = f'#leaders tr[data-account="{ACCOUNT}"][data-dimension="{dimension}"]'
            assert cell(f"{selector} td.leader") == row["arm"]
            assert cell(f"{selector} td.mean") == f"{row['mean']:.2f}"
        assert cell(f'#next-posts tr[data-post="{queued[0]["id"]}"] td.status') == "planned"
        if kind == "sqlite":
            height = min(browser.execute_script("return document.body.scrollHeight"), SHOT_HEIGHT)
            browser.set_window_size(WIDTH, height)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(SCREENSHOT))

        browser.get(f"{base}/dashboard/accounts/{ACCOUNT}?days=1")
        boxes = browser.execute_script(
            """return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
                 const r = svg.getBoundingClientRect();
                 return {name: svg.dataset.chart, width: r.width, height: r.height,
                         shapes: svg.querySelectorAll('path, text, use, image').length};
               });"""
        )
        assert len(boxes) >= 5, boxes  # followers, hours, engagement, spend, health (+ estimates)
        for box in boxes:  # each drew something; those without data yet say so in the chart
            assert box["width"] > 100 and box["height"] > 50 and box["shapes"] > 0, box
        drawn = {b["name"].split("-")[0]: b["shapes"] for b in boxes}
        assert drawn["followers"] > 10 and drawn["estimates"] > 10, drawn  # a series, the arms
        outside = [
            u for u in page_requests(browser) if not (u.startswith(base) or u.startswith("data:"))
        ]
        assert outside == [], "a request left the machine"

        assert daemon.terminate(timeout=15) == 0
    log = daemon.log_path.read_text(encoding="utf-8")
    assert TOKEN not in log
    events = {e["event"] for e in daemon.events()}
    assert {"dashboard_endpoint", "dashboard_signed_in", "dashboard_sign_in_failed"} <= events


@pytest.mark.parametrize("variable", ["GROWTHLOOP_DASHBOARD_TOKEN", "GROWTHLOOP_METRICS_TOKEN"])
@pytest.mark.parametrize("where", ["environment", ".env"])
def test_run_refuses_a_short_token_before_starting_anything(
    tmp_path: Path, variable: str, where: str
) -> None:
    """Read like every secret: from the environment or the working directory's .env."""
    config = write_config(tmp_path / "growthloop.yaml")
    env = cli_env(**{variable: "tiny-tok"}) if where == "environment" else cli_env()
    if where == ".env":
        (tmp_path / ".env").write_text(f"{variable}=tiny-tok\n", encoding="utf-8")
    result = run_cli("run", "--config", config, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr and "at least 16" in result.stderr
    assert "tiny-tok" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "nothing started"
