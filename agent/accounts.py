"""`growthloop accounts check`: can each configured account be used, without posting anything?

For every account it builds the adapter from the config and the environment, reads the account
(which proves the credentials work and shows the follower count), asks the adapter to check write
permission where the platform can tell without posting (``check_write_access``), and
prints the platform's limits. Nothing is written to the store or the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from adapters.base import PlatformLimits
from agent.bootstrap import build_platforms, open_world
from agent.config import Config, check_account_secrets
from agent.errors import PlatformError


@dataclass(frozen=True, slots=True)
class AccountCheck:
    account: str
    platform: str
    ok: bool
    followers: int | None = None
    limits: PlatformLimits | None = None
    write_access: str = "not checked"
    problem: str | None = None


async def check_accounts(config: Config) -> list[AccountCheck]:
    check_account_secrets(config)
    now = datetime.now(UTC)
    needs_world = any(a.platform == "sandbox" for a in config.accounts)
    world = open_world(config, start=now, in_memory=True) if needs_world else None
    results = []
    try:
        platforms = build_platforms(config, world, lambda: datetime.now(UTC))
        for account in config.accounts:
            platform = platforms[account.name]
            try:
                await platform.load_limits()
                info = await platform.fetch_account()
                write = await platform.check_write_access()
                results.append(
                    AccountCheck(
                        account=account.name,
                        platform=account.platform,
                        ok=True,
                        followers=info.followers,
                        limits=platform.limits,
                        write_access=write,
                    )
                )
            except PlatformError as exc:
                results.append(
                    AccountCheck(
                        account=account.name,
                        platform=account.platform,
                        ok=False,
                        problem=f"{type(exc).__name__}: {exc}",
                    )
                )
            finally:
                await platform.aclose()
    finally:
        if world is not None:
            world.close()
    return results


def print_checks(console: Console, results: list[AccountCheck]) -> None:
    table = Table(title="Accounts")
    for column in ("account", "platform", "status", "followers", "chars", "posts/h", "posts/day"):
        table.add_column(column, justify="left" if column in {"account", "platform"} else "right")
    table.add_column("write access / problem")
    for r in results:
        limits = r.limits
        table.add_row(
            r.account,
            r.platform,
            "[green]ok[/]" if r.ok else "[red]failed[/]",
            str(r.followers) if r.followers is not None else "-",
            str(limits.max_chars) if limits else "-",
            str(limits.posts_per_hour) if limits else "-",
            str(limits.posts_per_day) if limits else "-",
            r.write_access if r.ok else (r.problem or ""),
        )
    console.print(table)
