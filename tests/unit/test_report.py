"""``growthloop report``'s data, charts and rendering on a short simulation of two accounts.

Every figure the report gathers is compared with the store's own rows (follower series, posts,
the deciding model's stored estimates, the hourly health rows) and with the sandbox's truth; the
HTML is checked for what makes it self-contained (inline SVG per chart, no script, nothing
fetched), the markdown for its tables. The real browser test is tests/acceptance/
test_report_browser.py.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent.bootstrap import save_sqlite
from agent.cli import app
from agent.report.data import (
    FollowerPoint,
    InsightRecord,
    Report,
    gather,
    insight_views,
    thin,
)
from agent.report.files import write_report
from agent.report.render import render_html, render_markdown
from tests.report_sim import report_raw, simulate

DAYS = 3


@dataclass
class Case:
    report: Report
    series: dict[str, list[Any]]
    posted: dict[str, list[Any]]
    stats: dict[str, list[Any]]
    health: list[dict[str, Any]]
    truth: dict[str, dict[str, float]]
    db: Path
    end: Any


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    tmp = tmp_path_factory.mktemp("report")

    async def run() -> Case:
        sim = await simulate(tmp, days=DAYS, accounts=2)
        try:
            store = sim.store
            insights = {
                "demo": [
                    InsightRecord(title="fyi", statement="a plain note", severity="info"),
                    InsightRecord(
                        title="<b>loud</b>",
                        statement="<script>alert(1)</script> rising failures",
                        severity="critical",
                        confidence=0.93,
                        kind="anomaly",
                    ),
                ]
            }
            report = await gather(
                store,
                sim.config,
                start=sim.start,
                end=sim.end,
                insights=insights,
                truth=sim.truth,
            )
            ids = {name: i for i, name in (await store.account_names()).items()}
            truth = {
                d: sim.truth.arm_values(d, sim.end) for d in ("content_type", "formula", "hook")
            }
            db = tmp / "sim.db"
            await save_sqlite(store, db)
            return Case(
                report=report,
                series={
                    n: await store.account_series(i, sim.start, sim.end) for n, i in ids.items()
                },
                posted={
                    n: await store.posted_between(i, sim.start, sim.end) for n, i in ids.items()
                },
                stats={n: await store.arm_stats(i) for n, i in ids.items()},
                health=await store.latest_health(limit=10_000),
                truth=truth,
                db=db,
                end=sim.end,
            )
        finally:
            await sim.built.aclose()

    return asyncio.run(run())


def test_followers_and_posts_are_the_stored_rows(case: Case) -> None:
    assert [a.name for a in case.report.accounts] == ["demo", "demo2"]
    for account in case.report.accounts:
        series = case.series[account.name]
        assert len(series) > 2
        assert account.followers_start == series[0].followers
        assert account.followers_end == series[-1].followers
        assert account.followers_gained == series[-1].followers - series[0].followers
        posted = case.posted[account.name]
        assert len(posted) >= DAYS  # the example cadence posts several times a day
        assert sorted(p.content_id for p in account.posts) == sorted(p.id for p, _c in posted)
        assert account.engagements == sum(c.engagements for _p, c in posted)
        attributed = [p for p in account.posts if p.gained is not None]
        assert attributed, "posts older than the attribution window are attributed"
        for post in account.posts:  # the marker sits on the reading before the post
            before = [s for s in series if s.taken_at <= post.posted_at]
            assert post.followers_at == (before[-1].followers if before else None)


def test_estimates_are_the_deciding_models_with_the_truth_beside(case: Case) -> None:
    for account in case.report.accounts:
        stored = {(s.dimension, s.arm): s for s in case.stats[account.name]}
        shown = {(d.dimension, a.arm): a for d in account.dimensions for a in d.arms}
        assert shown.keys() == stored.keys()
        for key, arm in shown.items():
            s = stored[key]
            assert (arm.mean, arm.low, arm.high, arm.p_best, arm.posts) == (
                s.mean,
                s.interval_low,
                s.interval_high,
                s.p_best,
                s.posts,
            )
            assert arm.true_value == case.truth.get(key[0], {}).get(key[1])
        for d in account.dimensions:
            assert d.leader is not None
            assert d.leader.mean == max(a.mean for a in d.arms)
        assert account.model == case.stats[account.name][0].model
        assert account.has_truth


def test_health_and_spend_sum_the_hourly_rows(case: Case) -> None:
    for account in case.report.accounts:
        rows = [
            r
            for r in case.health
            if r["account"] == account.name
            and case.report.start <= r["hour_start"] < case.report.end
        ]
        assert len(rows) == account.health.hours >= 24 * DAYS - 1
        h = account.health
        assert h.posts_succeeded == sum(r["posts_succeeded"] for r in rows)
        assert h.polls_done == sum(r["polls_done"] for r in rows) > 0
        assert h.api_calls == sum(r["api_calls"] for r in rows) > 0
        assert h.publish_success == h.posts_succeeded / h.posts_attempted
        assert sum(d.polls_due for d in account.days) == h.polls_due
        assert len(account.days) == DAYS
        cells = {(c.weekday, c.hour): c.posts for c in account.hours}
        assert sum(cells.values()) == len(account.posts)


def test_html_is_self_contained_with_one_svg_per_chart(case: Case) -> None:
    html = render_html(case.report)
    charts = re.findall(r'<svg class="chart" data-chart="([^"]+)"', html)
    expected = sum(5 + len(a.dimensions) for a in case.report.accounts)
    assert len(charts) == expected
    assert len(set(charts)) == len(charts)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "charts inlined in one page share no element id"
    assert "<script" not in html.replace("&lt;script", "")
    assert not re.search(r'<link\b|@import|url\(\s*["\']?https?:', html)
    assert not re.search(r'\s(?:src|href)="(?!#|data:)', html), "nothing loaded from elsewhere"


def test_insights_are_escaped_and_ordered_by_severity(case: Case) -> None:
    html = render_html(case.report)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; rising failures" in html
    assert "&lt;b&gt;loud&lt;/b&gt;" in html
    assert html.index("loud") < html.index("a plain note"), "critical before info"
    assert "confidence 93.0%" in html
    assert html.count("No insights for this account") == 1  # demo2 has none
    markdown = render_markdown(case.report)
    assert "confidence 93.0%" in markdown


def test_markdown_lists_each_dimensions_leader(case: Case) -> None:
    markdown = render_markdown(case.report)
    for account in case.report.accounts:
        assert f"## {account.name} (sandbox)" in markdown
        section = markdown.split(f"## {account.name} (sandbox)")[1].split("\n## ")[0]
        for d in account.dimensions:
            top = d.leader
            assert top is not None
            row = next(
                line for line in section.splitlines() if line.startswith(f"| {d.dimension} |")
            )
            assert row.startswith(f"| {d.dimension} | {top.arm} | {top.mean:,.2f} |")
            values = case.truth.get(d.dimension)
            true_best = max(values, key=lambda arm: values[arm]) if values else "-"
            assert d.true_best == (true_best if values else None)
            assert row.endswith(f"| {true_best} |"), row


def test_thin_keeps_the_ends_and_the_limit() -> None:
    points = [
        FollowerPoint(at=case_time(i), followers=i)  # type: ignore[arg-type]
        for i in range(10_001)
    ]
    kept = thin(points, 1500)
    assert len(kept) == 1500
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [p.followers for p in kept] == sorted(p.followers for p in kept)
    assert thin(points[:10], 1500) == tuple(points[:10])


def case_time(i: int) -> Any:
    from tests.report_sim import START

    return START + timedelta(minutes=5 * i)


async def test_an_account_with_no_rows_gets_an_empty_report(tmp_path: Path) -> None:
    """An account in the config that never ran (no rows) still renders, with every chart."""
    sim = await simulate(tmp_path, days=0.01)
    try:
        config = sim.config.model_copy(
            update={
                "accounts": [
                    *sim.config.accounts,
                    sim.config.accounts[0].model_copy(update={"name": "never_ran"}),
                ]
            }
        )
        report, written = await write_report(
            sim.store,
            config,
            out_dir=tmp_path / "out",
            end=sim.end,
            days=1,
            accounts=["never_ran"],
        )
    finally:
        await sim.built.aclose()
    (account,) = report.accounts
    assert account.followers == () and account.posts == () and account.dimensions == ()
    html = written.html.read_text()
    assert html.count('<svg class="chart"') == 5
    assert "No learning step yet" in html
    assert written.markdown.name == "report-never_ran-" + f"{sim.end:%Y-%m-%d}.md"


def test_cli_writes_the_report_of_one_account(case: Case, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{case.db}")
    config = tmp_path / "growthloop.yaml"
    config.write_text(yaml.safe_dump(report_raw(accounts=2)))
    out = tmp_path / "reports"
    until = case.end.strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--account",
            "demo2",
            "--days",
            "2",
            "--until",
            until,
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out / f"report-demo2-{case.end:%Y-%m-%d}.html"
    assert html.is_file() and str(html) in result.output.replace("\n", "")
    text = html.read_text()
    assert "demo2" in text and 'id="account-demo"' not in text
    assert (out / f"report-demo2-{case.end:%Y-%m-%d}.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "nobody"], "No account 'nobody' in the config"),
        (["--account", "demo", "--all"], "not both"),
        (["--days", "0"], "0"),
    ],
)
def test_cli_refuses_bad_options_with_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["report", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_an_out_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    result = CliRunner().invoke(app, ["report", "--out", str(target)])
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output


@dataclass(frozen=True)
class FakeStored:
    """A stored insight as the insights table's rows come back (the attributes the report reads)."""

    account: str | None
    kind: str
    subject: str
    statement: str
    severity: str
    probability: float
    recommendation: bool


def test_stored_insights_become_views_per_account_and_across_accounts(case: Case) -> None:
    rows = [
        FakeStored(
            account="demo",
            kind="retire_arm",
            subject="hook:question",
            statement="question has not led in 200 posts",
            severity="info",
            probability=0.97,
            recommendation=True,
        ),
        FakeStored(
            account=None,
            kind="platform",
            subject="sandbox",
            statement="sandbox accounts gain 2.1 more followers per post",
            severity="warning",
            probability=0.88,
            recommendation=False,
        ),
    ]
    views = insight_views(rows)
    assert set(views) == {"demo", None}
    (retire,) = views["demo"]
    assert retire.title == "retire arm: hook:question"
    assert retire.kind == "recommendation (retire_arm)"
    assert retire.confidence == 0.97 and retire.severity == "info"
    report = replace(
        case.report,
        insights=tuple(views[None]),
        accounts=(replace(case.report.accounts[0], insights=tuple(views["demo"])),),
    )
    html = render_html(report)
    assert html.count("Across accounts") == 1
    assert html.index("Across accounts") < html.index('id="account-demo"')
    assert "sandbox accounts gain 2.1 more followers per post" in html
    assert "confidence 88.0%" in html and "confidence 97.0%" in html
    markdown = render_markdown(report)
    assert "## Across accounts" in markdown
    assert "**retire arm: hook:question** (recommendation (retire_arm), info" in markdown
    assert "Across accounts" not in render_html(case.report), "no section without insights"
