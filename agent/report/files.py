"""One call from a store to the report's files: what ``growthloop report`` and ``growthloop
simulate`` both run."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from agent.config import Config
from agent.report import DEFAULT_DAYS
from agent.report.data import InsightView, Report, Truth, gather, insight_views
from agent.report.render import Written, write
from agent.store.base import Store


def stem(accounts: Sequence[str] | None, end: datetime) -> str:
    """``report-<account>-<YYYY-MM-DD>`` (``all`` for every account): a safe file name."""
    who = "all" if accounts is None else "-".join(accounts)
    who = re.sub(r"[^A-Za-z0-9_.-]+", "_", who)[:60] or "account"
    return f"report-{who}-{end:%Y-%m-%d}"


async def write_report(
    store: Store,
    config: Config,
    *,
    out_dir: Path,
    end: datetime,
    days: float = DEFAULT_DAYS,
    accounts: Sequence[str] | None = None,
    insights: Mapping[str | None, Sequence[InsightView]] | None = None,
    truth: Truth | None = None,
    title: str = "growthloop report",
    notes: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[Report, Written]:
    """Gather the report of ``accounts`` (None: all) over the ``days`` before ``end`` and write
    its HTML and markdown into ``out_dir`` (``now``: when it was generated; default ``end``).
    ``insights``: None shows the store's open insights and recommendations (those neither
    resolved nor acknowledged: what ``growthloop insights`` lists)."""
    if insights is None:
        insights = insight_views(await store.insights())
    report = await gather(
        store,
        config,
        start=end - timedelta(days=days),
        end=end,
        accounts=accounts,
        insights=insights,
        truth=truth,
        title=title,
        notes=notes,
        now=now,
    )
    return report, write(report, out_dir, stem=stem(accounts, end))
