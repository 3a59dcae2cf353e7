"""Rich tables for people: the simulation summary and `growthloop health`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.models import ArmStat
from agent.store.base import Store


def by_dimension(stats: list[ArmStat]) -> dict[str, list[ArmStat]]:
    """Stored estimates per dimension, best first (by the model's mean; ties by arm name)."""
    out: dict[str, list[ArmStat]] = {}
    for stat in sorted(stats, key=lambda s: (s.dimension, -s.mean, s.arm)):
        out.setdefault(stat.dimension, []).append(stat)
    return out


async def simulation_report(built: Any, result: Any) -> dict[str, Any]:
    """The figures the summary prints, as data (the benchmarks and tests read this too).

    The learned rankings are the stored estimates of the deciding policy (what the learn cycle
    wrote last, the same rows the SQL views and ``growthloop health`` show)."""
    agent = built.agent
    truth = built.world.ground_truth() if built.world is not None else None
    report: dict[str, Any] = {"counts": result.counts, "accounts": {}}
    for account in agent.config.accounts:
        account_id = agent.account_ids[account.name]
        series = await agent.store.account_series(account_id, result.start, result.end)
        posts = await agent.store.posted_between(account_id, result.start, result.end)
        gained = (series[-1].followers - series[0].followers) if len(series) > 1 else 0
        stored = by_dimension(await agent.store.arm_stats(account_id))
        dimensions = list(dict.fromkeys([*agent.config.catalogues.arms(), *stored]))
        dims: dict[str, Any] = {}
        for dimension in dimensions:
            true_rank = truth.ranking(dimension, at=result.end) if truth else []
            values = truth.arm_values(dimension, at=result.end) if truth else {}
            dims[dimension] = {
                "learned": [
                    (s.arm, s.mean, s.interval_low, s.interval_high, s.posts, s.p_best)
                    for s in stored.get(dimension, [])
                ],
                "true": true_rank,
                "true_values": values,
            }
        report["accounts"][account.name] = {
            "posts": len(posts),
            "followers_start": series[0].followers if series else None,
            "followers_end": series[-1].followers if series else None,
            "followers_gained": gained,
            "engagements": sum(c.engagements for _p, c in posts),
            "model": next((s.model for rows in stored.values() for s in rows), None),
            "dimensions": dims,
        }
    return report


async def print_summary(console: Console, built: Any, result: Any, *, db: Path) -> None:
    report = await simulation_report(built, result)
    days = (result.end - result.start).total_seconds() / 86400
    counts = result.counts
    console.print(
        f"\n[bold]Simulated {days:g} days[/] ({result.steps} steps). Data: {db}\n"
        f"Drafts rejected by the quality gate: {counts.get('rejected', 0)}; "
        f"failed: {counts.get('failed', 0)}; "
        f"learning updates: {counts.get('learning_updates', 0)}\n",
        highlight=False,
    )
    overview = Table(title="Accounts")
    for col in ("account", "posts", "followers start", "followers end", "gained", "eng./post"):
        overview.add_column(col, justify="right" if col != "account" else "left")
    for name, acc in report["accounts"].items():
        overview.add_row(
            name,
            str(acc["posts"]),
            str(acc["followers_start"]),
            str(acc["followers_end"]),
            f"{acc['followers_gained']:+d}",
            f"{acc['engagements'] / acc['posts']:.1f}" if acc["posts"] else "-",
        )
    console.print(overview)
    for name, acc in report["accounts"].items():
        for dimension, data in acc["dimensions"].items():
            table = Table(
                title=f"{name}: {dimension} - followers per post, learned vs true",
                caption=f"learned: what the deciding policy ({acc['model'] or 'none yet'}) "
                "believes - mean and 90% interval per post with this arm (other arms at their "
                "average), and the probability it is best; true: the simulated audience's "
                "expectation, which the agent never sees",
            )
            table.add_column("rank", justify="right")
            table.add_column("learned arm")
            table.add_column("mean", justify="right")
            table.add_column("90% interval", justify="right")
            table.add_column("P(best)", justify="right")
            table.add_column("posts learned from", justify="right")
            table.add_column("true value", justify="right")
            table.add_column("true ranking")
            true = data["true"]
            values = data.get("true_values", {})
            for i, (arm, mean, low, high, n, best) in enumerate(data["learned"]):
                true_arm = true[i] if i < len(true) else ""
                table.add_row(
                    str(i + 1),
                    f"[bold green]{arm}[/]" if true and arm == true[0] else arm,
                    f"{mean:.2f}",
                    f"{low:.2f}-{high:.2f}",
                    f"{best:.2f}",
                    f"{n:.0f}",
                    f"{values[arm]:.2f}" if arm in values else "-",
                    f"{true_arm} ({values[true_arm]:.2f})" if true_arm in values else true_arm,
                )
            console.print(table)


async def print_health(console: Console, store: Store, *, hours: int, now: datetime) -> None:
    pending = await store.pending_work(now)
    rows = await store.latest_health(limit=hours)
    table = Table(title="Health (latest hours, per account)")
    cols = (
        "hour (UTC)",
        "account",
        "posts ok/tried",
        "polls done/due",
        "late",
        "api calls",
        "errors",
        "eng. rate",
        "followers",
        "gained",
        "spend $",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in {"hour (UTC)", "account"} else "right")
    for r in rows:
        table.add_row(
            r["hour_start"].strftime("%Y-%m-%d %H:00"),
            r["account"],
            f"{r['posts_succeeded']}/{r['posts_attempted']}",
            f"{r['polls_done']}/{r['polls_due']}",
            str(r["polls_late"]),
            str(r["api_calls"]),
            str(r["api_errors"]),
            f"{r['engagement_rate']:.2%}" if r["engagement_rate"] is not None else "-",
            str(r["followers_total"] if r["followers_total"] is not None else "-"),
            f"{r['followers_gained']:+.0f}",
            f"{r['llm_spend_usd'] + r['platform_spend_usd']:.4f}",
        )
    if rows:
        console.print(table)
    else:
        console.print("No health metrics yet (the first row is written after a full hour).")
    await print_platform_costs(console, store, now=now)
    await print_leaders(console, store)
    work = Table(title="Pending work")
    work.add_column("what")
    work.add_column("count", justify="right")
    work.add_column("next", justify="left")
    work.add_row("polls due now", str(pending["polls_due"]), "")
    work.add_row(
        "polls upcoming",
        str(pending["polls_upcoming"]),
        pending["next_poll_at"].isoformat() if pending["next_poll_at"] else "",
    )
    work.add_row(
        "posts queued",
        str(pending["posts_queued"]),
        pending["next_post_at"].isoformat() if pending["next_post_at"] else "",
    )
    work.add_row("posts in flight", str(pending["posts_in_flight"]), "")
    console.print(work)


async def print_platform_costs(console: Console, store: Store, *, now: datetime) -> None:
    """What each platform billed this calendar month (UTC), per account and per platform, and
    the all-in cost per post (every billed call over the posts published; agent/budget.py).
    Nothing is printed while nothing was billed or posted this month."""
    costs = await store.platform_costs(at=now)
    if not costs:
        return
    table = Table(title=f"Platform cost, {costs[0].month} (UTC)")
    for col in ("platform", "account", "posts", "spend $", "$ per post"):
        table.add_column(col, justify="left" if col in {"platform", "account"} else "right")
    platforms: dict[str, list[float]] = {}
    for c in costs:
        per_post = c.cost_per_post_usd
        table.add_row(
            c.platform,
            c.account,
            str(c.posts),
            f"{c.spend_usd:.4f}",
            f"{per_post:.4f}" if per_post is not None else "-",
        )
        total = platforms.setdefault(c.platform, [0.0, 0.0])
        total[0] += c.spend_usd
        total[1] += c.posts
    if len(costs) > 1:
        for platform, (spend, posts) in sorted(platforms.items()):
            table.add_row(
                platform,
                "(all)",
                f"{posts:.0f}",
                f"{spend:.4f}",
                f"{spend / posts:.4f}" if posts else "-",
            )
    console.print(table)


async def print_leaders(console: Console, store: Store) -> None:
    """Each account's leading arm per dimension, as the deciding policy estimated it at its
    latest learning step (``arm_statistics``)."""
    table = Table(title="What the deciding model believes (leading arm per dimension)")
    for col in ("account", "model", "dimension", "leader", "mean", "90% interval", "P(best)"):
        table.add_column(col, justify="right" if col in {"mean", "P(best)"} else "left")
    shown = False
    for account_id, name in sorted((await store.account_names()).items()):
        for dimension, rows in by_dimension(await store.arm_stats(account_id)).items():
            top = rows[0]
            table.add_row(
                name,
                top.model,
                dimension,
                top.arm,
                f"{top.mean:.2f}",
                f"{top.interval_low:.2f}-{top.interval_high:.2f}",
                f"{top.p_best:.2f}",
            )
            shown = True
    if shown:
        console.print(table)
    else:
        console.print("No learning step yet (the model's estimates are written after it).")


async def print_controls(console: Console, store: Any, config: Any, *, now: datetime) -> None:
    """Publishing state (kill switch) and today's LLM spend against the budgets."""
    import os

    paused, reason = await store.paused()
    if os.environ.get("GROWTHLOOP_NO_PUBLISH") == "1":
        console.print("Publishing: [red]off[/] (GROWTHLOOP_NO_PUBLISH=1 in this environment)")
    elif paused:
        console.print(f"Publishing: [red]paused[/] ({reason or 'no reason given'})")
    else:
        console.print("Publishing: [green]on[/]")
    suspended = await print_suspensions(console, store, config, now=now)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    budget = config.budget
    table = Table(title="LLM spend today (UTC)")
    for column in ("account", "spent $", "budget $", "planning"):
        table.add_column(column, justify="left" if column == "account" else "right")
    rows = []
    for account_id, name in sorted((await store.account_names()).items()):
        spent = float((await store.health_inputs(account_id, day_start, now))["llm_spend_usd"])
        rows.append((name, spent))
    total = sum(spent for _name, spent in rows)
    for name, spent in rows:
        over = spent >= budget.llm_daily_usd_per_account or total >= budget.llm_daily_usd_total
        table.add_row(
            name,
            f"{spent:.4f}",
            f"{budget.llm_daily_usd_per_account:.2f}",
            "[red]suspended[/]"
            if name in suspended
            else "[red]paused (budget)[/]"
            if over and config.generator.kind != "template"
            else "on",
        )
    table.add_row("all accounts", f"{total:.4f}", f"{budget.llm_daily_usd_total:.2f}", "")
    console.print(table)


async def print_suspensions(
    console: Console, store: Any, config: Any, *, now: datetime
) -> set[str]:
    """The accounts the circuit breaker suspended (agent/breaker.py), with what to check;
    returns their names."""
    from agent.config import account_secret_names

    held = await store.suspensions(now=now)
    if not held:
        console.print("Suspended accounts: none")
        return set()
    accounts = {a.name: a for a in config.accounts}
    table = Table(title="Suspended accounts (no drafts, no publishing)")
    for column in ("account", "platform", "reason", "since", "until", "check"):
        table.add_column(column)
    for s in held:
        account = accounts.get(s.account)
        check = ", ".join(account_secret_names(account)) if account is not None else "-"
        table.add_row(
            s.account,
            s.platform,
            f"{s.reason}: {s.error_kind}",
            s.suspended_at.strftime("%Y-%m-%d %H:%M"),
            s.until.strftime("%Y-%m-%d %H:%M") if s.until else "credentials change / resume",
            check or "-",
        )
    console.print(table)
    for s in held:
        console.print(f"  {s.account}: {s.detail}", highlight=False, markup=False)
    console.print(
        "Resume one with `growthloop resume --account NAME` once its credentials are fixed.",
        highlight=False,
    )
    return {s.account for s in held}
