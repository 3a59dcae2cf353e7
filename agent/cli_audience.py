"""``growthloop audience``: who follows and engages (docs/audience.md) - tier sizes, top fans, the
weekly cohorts' retention, churn per week and the followers each arm brought and kept; and
``growthloop audience forget HANDLE``, which removes every row naming a person.

Registered on the main app by :mod:`agent.cli`. It opens the store as ``drafts`` does (no lock,
safe while daemons run). Scores and tiers are those the daily upkeep last wrote
(agent/cycles/audience.py); retention and churn are computed now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from agent.audience import AudienceReport, report
from agent.cli_support import ConfigOption, fail, load, out, with_store
from learning.audience import RETENTION_WEEKS, STAY_DAYS

TOP_FANS = 10  # followers listed by score
CHURN_WEEKS = 8  # weeks of churn shown
ARMS_SHOWN = 12  # arms listed, most followers brought first

audience_app = typer.Typer(
    help="Who follows and engages: tiers, top fans, cohort retention, churn; forget a person.",
    invoke_without_command=True,
)

AccountOption = Annotated[
    str | None,
    typer.Option("--account", "-a", help="Only this account (default: every account)."),
]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def print_report(name: str, found: AudienceReport) -> None:
    """The account's audience as rich tables."""
    out.print(
        f"[bold]{name}[/]: {found.members} people seen, {found.followers} following now",
        highlight=False,
    )
    if not found.members:
        out.print("  nothing recorded yet (the adapters' audience reads fill this in)")
        return
    tiers = Table(title="Tiers (by engagement score)")
    tiers.add_column("tier")
    tiers.add_column("people", justify="right")
    for tier, n in found.tiers.items():
        tiers.add_row(tier.value, str(n))
    out.print(tiers)

    fans = Table(title=f"Top fans (current followers, top {TOP_FANS})")
    for column in ("handle", "score", "tier", "following since"):
        fans.add_column(column, justify="right" if column == "score" else "left")
    for m in found.top:
        since = m.followed_at.strftime("%Y-%m-%d") if m.followed_at else "-"
        fans.add_row(m.handle or m.user_id, f"{m.engagement_score:.1f}", m.tier.value, since)
    out.print(fans)

    cohorts = Table(title="Cohort retention (share still following after n weeks)")
    cohorts.add_column("cohort (week of)")
    cohorts.add_column("followed", justify="right")
    cohorts.add_column("following now", justify="right")
    for n in RETENTION_WEEKS:
        cohorts.add_column(f"{n}w", justify="right")
    for c in found.cohorts:
        cohorts.add_row(
            c.week,
            str(c.followers),
            str(c.still_following),
            *(_share(c.retained[n]) for n in RETENTION_WEEKS),
        )
    out.print(cohorts)

    churn = Table(title="Churn per week (of those following at its start, the share who left)")
    columns = ("week of", "following at start", "follows", "unfollows", "left of those", "churn")
    for column in columns:
        churn.add_column(column, justify="left" if column == "week of" else "right")
    for w in found.churn[-CHURN_WEEKS:]:
        churn.add_row(
            w.week,
            str(w.followers_at_start),
            str(w.follows),
            str(w.unfollows),
            str(w.left),
            _share(w.churn),
        )
    out.print(churn)

    if found.by_arm:
        arms = Table(title="Followers brought per arm (follow's post, else last touch in 7 days)")
        for column in ("dimension", "arm", "brought", *(f"stayed {d}d" for d in STAY_DAYS)):
            arms.add_column(column, justify="left" if column in ("dimension", "arm") else "right")
        ranked = sorted(found.by_arm.items(), key=lambda kv: (-kv[1].brought, kv[0]))
        for (dimension, arm), kept in ranked[:ARMS_SHOWN]:
            arms.add_row(
                dimension, arm, str(kept.brought), *(_share(kept.share(d)) for d in STAY_DAYS)
            )
        out.print(arms)


@audience_app.callback()
def audience_show(
    ctx: typer.Context, config: ConfigOption = None, account: AccountOption = None
) -> None:
    """Show each account's audience: tier sizes, top fans, cohort retention table, churn."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = load(config)
    now = datetime.now(UTC)

    async def work(store: Any) -> list[tuple[str, AudienceReport]]:
        names = await store.account_names()
        ids = {name: account_id for account_id, name in names.items()}
        if account is not None and account not in ids:
            known = ", ".join(sorted(ids)) or "none yet"
            fail(f"No account named {account!r} in the database (accounts: {known}).", 2)
        wanted = [account] if account is not None else sorted(ids)
        return [(name, await report(store, ids[name], now=now, top=TOP_FANS)) for name in wanted]

    found = with_store(cfg, work)
    if not found:
        out.print("no accounts in the database yet (`growthloop run` registers them)")
    for name, one in found:
        print_report(name, one)


@audience_app.command("forget")
def audience_forget(
    handle: Annotated[
        str, typer.Argument(help="The person's handle (any case, @ optional) or platform user id.")
    ],
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Remove every row naming a person (member rows, interactions, the replies and mentions
    they wrote); exit 0 if none did."""
    if not handle.strip().lstrip("@").strip():
        fail("Give the person's handle or platform user id, e.g. `audience forget @ann`.", 2)
    cfg = load(config)

    async def work(store: Any) -> Any:
        account_id = None
        if account is not None:
            ids = {name: i for i, name in (await store.account_names()).items()}
            if account not in ids:
                fail(f"No account named {account!r} in the database.", 2)
            account_id = ids[account]
        return await store.forget_person(handle, account_id=account_id)

    gone = with_store(cfg, work)
    where = f" in {account}" if account else ""
    if not gone.members and not gone.conversations:
        out.print(f"nothing stored names {handle!r}{where}; nothing removed", highlight=False)
        return
    out.print(
        f"[green]forgotten[/] {handle!r}{where}: {gone.members} member row(s), "
        f"{gone.interactions} interaction(s) and {gone.conversations} conversation(s) removed",
        highlight=False,
    )
