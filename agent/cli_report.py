"""``growthloop report``: the HTML report and markdown summary of one account or all, over the
last days (agent/report/, docs/report.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli_support import ConfigOption, fail, out, with_store
from agent.cli_support import load as _load
from agent.report import DEFAULT_DAYS


def report(
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            metavar="NAME",
            help="Report on this account (its name in the config).",
            envvar="GROWTHLOOP_REPORT_ACCOUNT",
            show_envvar=True,
        ),
    ] = None,
    all_accounts: Annotated[
        bool,
        typer.Option("--all", help="Report on every configured account (the default)."),
    ] = False,
    days: Annotated[
        float,
        typer.Option(
            help="The period: this many days up to --until.",
            min=0.01,
            envvar="GROWTHLOOP_REPORT_DAYS",
            show_envvar=True,
        ),
    ] = DEFAULT_DAYS,
    until: Annotated[
        datetime | None,
        typer.Option(
            metavar="YYYY-MM-DD[THH:MM[:SS]]",
            help="The period's end (UTC unless it names an offset; default: now), e.g. the "
            "end of a simulation.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Where the HTML and markdown files go (created if missing).",
            envvar="GROWTHLOOP_REPORT_DIR",
            show_envvar=True,
        ),
    ] = Path("reports"),
    config: ConfigOption = None,
) -> None:
    """Write a self-contained HTML report (charts inline, opens offline) and a markdown summary:
    followers, what the model believes, posting hours, spend, health and insights."""
    if account is not None and all_accounts:
        fail("Give --account NAME or --all, not both.", 2)
    cfg = _load(config)
    names = [a.name for a in cfg.accounts]
    if account is not None and account not in names:
        fail(f"No account {account!r} in the config; the accounts are: {', '.join(names)}.", 2)
    now = datetime.now(UTC)
    end = now if until is None else until
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir} is a file, not a folder.", 2)

    from agent.report.files import write_report  # matplotlib and Jinja2: only when reporting
    from agent.report.render import Written

    async def go(store: Any) -> Written:
        _report, written = await write_report(
            store,
            cfg,
            out_dir=out_dir,
            end=end,
            days=days,
            accounts=None if account is None else [account],
            now=now,
        )
        return written

    try:
        written = with_store(cfg, go)
    except OSError as exc:
        fail(f"Could not write the report into {out_dir}: {exc}", 2)
        raise
    out.print(f"report: {written.html}\nsummary: {written.markdown}", highlight=False)
