"""Turn a :class:`~agent.report.data.Report` into a self-contained HTML page and a markdown
summary, with the Jinja2 templates in ``agent/report/templates/``.

The HTML carries its CSS in a ``<style>`` element and its charts as inline ``<svg>`` elements
(:mod:`agent.report.charts`): no script, no stylesheet, font or image from anywhere else, so the
file opens offline and makes no request. Templates are autoescaped (account names, arm names
and insight text are data, never markup); only the SVG from matplotlib is marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from agent.report import charts
from agent.report.data import AccountReport, InsightView, Report

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    """The files one report wrote."""

    html: Path
    markdown: Path


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("agent.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["usd"] = _usd
    env.filters["when"] = _when
    return env


def account_charts(account: AccountReport) -> dict[str, Any]:
    """Every chart of one account, as inline SVG (marked safe for the template)."""
    return {
        "followers": Markup(charts.followers_chart(account)),
        "estimates": {
            d.dimension: Markup(charts.estimates_chart(account, d)) for d in account.dimensions
        },
        "hours": Markup(charts.hour_heatmap(account)),
        "engagement": Markup(charts.engagement_chart(account)),
        "spend": Markup(charts.spend_chart(account)),
        "health": Markup(charts.health_chart(account)),
        "retention": Markup(charts.retention_chart(account)) if account.audience else None,
        "tiers": Markup(charts.tiers_chart(account)) if account.audience else None,
        "experiments": {
            e.id: Markup(charts.experiment_chart(account, e)) for e in account.experiments
        },
    }


def ordered(insights: Sequence[InsightView]) -> list[InsightView]:
    """Most severe first (a stable sort: the given order within a severity)."""
    return sorted(insights, key=lambda i: SEVERITY_ORDER.get(i.severity, len(SEVERITY_ORDER)))


def _insights(account: AccountReport) -> list[InsightView]:
    return ordered(account.insights)


def render_html(report: Report) -> str:
    template = environment().get_template("report.html.j2")
    return template.render(
        report=report,
        shared=ordered(report.insights),
        sections=[
            {"account": a, "charts": account_charts(a), "insights": _insights(a)}
            for a in report.accounts
        ],
    )


def render_markdown(report: Report) -> str:
    template = environment().get_template("report.md.j2")
    return template.render(
        report=report,
        shared=ordered(report.insights),
        sections=[{"account": a, "insights": _insights(a)} for a in report.accounts],
    )


def write(report: Report, out_dir: Path, *, stem: str) -> Written:
    """Write ``<stem>.html`` and ``<stem>.md`` into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / f"{stem}.html"
    markdown = out_dir / f"{stem}.md"
    html.write_text(render_html(report), encoding="utf-8")
    markdown.write_text(render_markdown(report), encoding="utf-8")
    return Written(html=html, markdown=markdown)


def _num(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")
