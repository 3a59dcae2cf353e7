"""``growthloop insights``: what the agent learned and what looks wrong, with numbers, a 90%
interval and a probability (learning/insights.py, computed hourly by the health cycle), and
``growthloop insights ack N`` to acknowledge one. Registered on the main app by
:mod:`agent.cli`; opens the store as ``drafts`` does (no lock: safe while daemons run).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agent.cli_support import ConfigOption, load, out, with_store
from agent.errors import GrowthloopError
from agent.models import StoredInsight

insights_app = typer.Typer(
    help="Insights and recommendations with their confidence; `insights ack N` acknowledges one.",
    invoke_without_command=True,
)

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class InsightError(GrowthloopError):
    """An insight command cannot act (unknown account or insight id)."""


def status_of(insight: StoredInsight) -> str:
    if insight.resolved_at is not None:
        return f"resolved {insight.resolved_at:%Y-%m-%d %H:%M}"
    if insight.acknowledged_at is not None:
        return f"acknowledged {insight.acknowledged_at:%Y-%m-%d %H:%M}"
    return "open"


def print_insights(console: Console, found: Sequence[StoredInsight], *, closed: bool) -> None:
    """The insights as one table, most severe first."""
    what = "all" if closed else "open"
    if not found:
        hint = "" if closed else " (--all lists acknowledged and resolved ones too)"
        console.print(f"no insights ({what}){hint}", highlight=False)
        return
    table = Table(title=f"Insights ({what}): {len(found)}", expand=True)
    table.add_column("id", justify="right", no_wrap=True)
    for col in ("account", "severity", "kind"):
        table.add_column(col, no_wrap=True)
    table.add_column("statement", ratio=1, min_width=20)
    table.add_column("P", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for i in found:
        kind = f"{i.kind} (recommendation)" if i.recommendation else i.kind
        table.add_row(
            str(i.id),
            i.account or "(all)",
            f"[{SEVERITY_STYLE.get(i.severity, '')}]{i.severity}[/]",
            kind,
            i.statement,
            f"{i.probability:.2f}",
            status_of(i),
        )
    console.print(table)


@insights_app.callback()
def insights_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's insights (its name).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Acknowledged and resolved insights too.")
    ] = False,
) -> None:
    """List the open insights and recommendations, most severe first."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = load(config)

    async def work(store: Any) -> list[StoredInsight]:
        account_id = None
        if account is not None:
            ids = {name: i for i, name in (await store.account_names()).items()}
            if account not in ids:
                known = ", ".join(sorted(ids)) or "none yet"
                raise InsightError(
                    f"There is no account {account!r} in the store (known: {known})."
                )
            account_id = ids[account]
        found: list[StoredInsight] = await store.insights(
            account_id=account_id, include_closed=all_
        )
        return found

    print_insights(out, with_store(cfg, work, refusals=(InsightError,)), closed=all_)


@insights_app.command("ack")
def insights_ack(
    insight_id: Annotated[
        int, typer.Argument(help="The insight's id (see `growthloop insights`).", min=1)
    ],
    config: ConfigOption = None,
) -> None:
    """Acknowledge an insight: it leaves the default list until it comes back or gets worse."""

    async def work(store: Any) -> None:
        if not await store.acknowledge_insight(insight_id, now=datetime.now(UTC)):
            raise InsightError(
                f"There is no insight with id {insight_id} (see `growthloop insights --all`)."
            )

    with_store(load(config), work, refusals=(InsightError,))
    out.print(f"[green]acknowledged[/] insight {insight_id}", highlight=False)
