"""``growthloop report``: the HTML report and markdown summary of one account or all, over the
last days (agent/report/, docs/report.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli_support import ConfigOption, fail, out, with_store
from agent.cli_support import load as _load
from agent.config import parse_duration, signed_url_expiry
from agent.errors import ConfigError, ShareRefused, ShareUnavailable
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
    upload: Annotated[
        bool,
        typer.Option(
            "--upload",
            help="Also put the HTML into a private Supabase Storage bucket (report.bucket) and "
            "print a signed URL that expires; needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY "
            "in the environment or .env.",
        ),
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="How long the --upload link works, e.g. 12h or 7d (default: "
            "report.signed_url_expiry, 7d; at most 365d).",
            envvar="GROWTHLOOP_REPORT_EXPIRES",
            show_envvar=True,
        ),
    ] = None,
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
    if expires is not None and not upload:
        fail("--expires is the lifetime of the --upload link; give --upload too.", 2)
    lifetime = cfg.report.signed_url_expiry if expires is None else _lifetime(expires)
    storage: tuple[str, str] | None = None
    if upload:
        from agent.report.share import storage_settings

        try:
            storage = storage_settings()
        except ConfigError as exc:
            fail(str(exc), 2)

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
    if storage is not None:
        _upload(
            written.html,
            storage=storage,
            bucket=cfg.report.bucket,
            accounts=None if account is None else [account],
            expires=lifetime,
            now=now,
        )


def _lifetime(text: str) -> timedelta:
    """``--expires``: a duration (``12h``, ``7d``) within report.signed_url_expiry's bounds."""
    try:
        return signed_url_expiry(parse_duration(text))
    except ValueError as exc:
        fail(f"--expires {text}: {exc}", 2)
        raise


def _upload(
    html: Path,
    *,
    storage: tuple[str, str],
    bucket: str,
    accounts: list[str] | None,
    expires: timedelta,
    now: datetime,
) -> None:
    """Share the written HTML (agent/report/share.py); refusals exit 2, an unreachable or
    failing Storage exits 1."""
    from agent.report.share import object_path, share

    url, key = storage
    path = object_path(accounts, now)
    try:
        shared = asyncio.run(
            share(
                html.read_bytes(),
                filename=html.name,
                url=url,
                key=key,
                bucket=bucket,
                path=path,
                expires=expires,
                now=now,
            )
        )
    except (ConfigError, ShareRefused) as exc:
        fail(str(exc), 2)
        raise
    except ShareUnavailable as exc:
        fail(str(exc), 1)
        raise
    out.print(
        f"uploaded: {shared.bucket}/{shared.path}"
        + (" (bucket created, private)" if shared.created_bucket else "")
        + f"\nlink (expires {shared.expires_at:%Y-%m-%d %H:%M} UTC): {shared.url}",
        highlight=False,
        soft_wrap=True,
    )
