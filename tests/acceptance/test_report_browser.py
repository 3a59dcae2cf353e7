"""``growthloop report`` in a real browser: a 30-day simulation's report opened in Debian's
headless Chromium (driven by selenium through Debian's chromedriver).

Checks that every chart rendered (each inline ``<svg>`` has a non-zero box and drawn content),
that the page asked for nothing but its own file (every request the page made, from Chromium's
DevTools network events, and no console message about a refused load), and takes the screenshot
in docs/img/report.png. A canary page that loads an image proves the request check can fail.

Chromium missing: the test skips on a developer's machine and FAILS in CI (``CI`` set), where
.ci/run installs ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from agent.report.files import write_report
from tests.report_sim import simulate

pytestmark = pytest.mark.slow  # starts Chromium and its driver

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "img" / "report.png"
CHROMIUM = os.environ.get("GROWTHLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GROWTHLOOP_CHROMEDRIVER", "/usr/bin/chromedriver")
DAYS = 30
WIDTH = 1200  # px: the screenshot's width
SHOT_HEIGHT = 2400  # px: the top of the report (header, figures, followers, first estimates)


def _browser_or_fail() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if not missing:
        return
    message = (
        f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver, as .ci/run does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Any]:
    _browser_or_fail()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},900",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
    ):
        options.add_argument(arg)
    # the page's DevTools network events and its console, read back after the load
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, path: Path) -> tuple[list[str], list[str]]:
    """Load ``path``; the URLs the page requested and its console messages about loads."""
    driver.get_log("performance")  # drop what came before
    driver.get_log("browser")
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    console = [e["message"] for e in driver.get_log("browser")]
    return requests, console


def left_the_machine(requests: list[str], console: list[str], page: Path) -> list[str]:
    """Requests for anything but the page itself, and refused loads the console reported."""
    outside = [url for url in requests if url != page.as_uri() and not url.startswith("data:")]
    refused = [m for m in console if "Refused" in m or "net::" in m or "Failed to load" in m]
    return outside + refused


async def test_report_of_a_30_day_simulation_renders_offline_in_chromium(
    tmp_path: Path, browser: Any
) -> None:
    sim = await simulate(tmp_path, days=DAYS)
    try:
        report, written = await write_report(
            sim.store,
            sim.config,
            out_dir=tmp_path / "report",
            end=sim.end,
            days=DAYS,
            truth=sim.truth,
            title="growthloop simulation report",
        )
        stored = await sim.store.insights()  # the open ones: what the report shows
    finally:
        await sim.built.aclose()
    (account,) = report.accounts
    assert len(account.posts) >= DAYS * 2 and account.dimensions
    # the insights the health cycle stored during the run are in the report
    assert stored and len(account.insights) + len(report.insights) == len(stored)
    page = written.html.read_text()
    for insight in stored:
        assert str(escape(insight.statement)) in page, insight.statement  # as Jinja2 escapes

    requests, console = open_page(browser, written.html)
    # the page itself, and the heatmap's raster inlined as a data: URI
    assert [u for u in requests if not u.startswith("data:")] == [written.html.as_uri()]
    assert left_the_machine(requests, console, written.html) == []

    boxes = browser.execute_script(
        """return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
             const r = svg.getBoundingClientRect(); const b = svg.getBBox();
             return {name: svg.dataset.chart, width: r.width, height: r.height,
                     drawnWidth: b.width, drawnHeight: b.height,
                     shapes: svg.querySelectorAll('path, text, use, image').length};
           });"""
    )
    expected = 5 + len(account.dimensions)  # followers, hours, engagement, spend, health
    assert len(boxes) == expected, [b["name"] for b in boxes]
    for box in boxes:
        assert box["width"] > 100 and box["height"] > 50, box
        assert box["drawnWidth"] > 0 and box["drawnHeight"] > 0, box
        assert box["shapes"] > 10, box
    heatmap = next(b for b in boxes if b["name"].startswith("hours-"))
    assert heatmap["width"] > 600, "charts scale to the page's width"

    height = min(browser.execute_script("return document.body.scrollHeight"), SHOT_HEIGHT)
    browser.set_window_size(WIDTH, height)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000


def test_the_request_check_sees_a_page_that_loads_from_elsewhere(
    tmp_path: Path, browser: Any
) -> None:
    """The canary: an image from another address (a closed local port: nothing leaves the
    machine) is seen, so the check above can fail."""
    page = tmp_path / "canary.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/canary.png"></body></html>'
    )
    requests, console = open_page(browser, page)
    found = left_the_machine(requests, console, page)
    assert any("127.0.0.1:9/canary.png" in item for item in found), (requests, console)
