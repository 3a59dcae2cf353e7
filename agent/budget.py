"""The monthly platform budget: what an account's platform may bill in a calendar month (UTC).

``budget.platform_monthly_usd_per_account`` (unset: no cap). Only platforms that bill calls
(``Platform.prices``: X pay-per-use) are ever checked; on the others nothing changes.

Every billed call is noted by ``Agent.api_call`` in the agent's :class:`SpendBook` and written to
the store's ledger (``Store.add_platform_spend``, one row per account and month, shared by every
worker and kept across restarts) whenever a cycle asks for the account's :class:`Stage` and by
the health cycle every hour; ``growthloop health`` and ``/metrics`` show it as the month's cost
per post. (Spend a process had not booked when it died is lost: at most an hour's reads.) The stage
follows what is left of the month's budget against what the rest of the month's posts need, at
``posts_per_day`` of the account's cadence (``n`` posts left, ``H`` poll horizons, prices ``post``
and ``read``):

======================  ===================================  ================================
stage                   when the remaining budget is below   what stops
======================  ===================================  ================================
``FULL``                -                                    nothing
``NO_PERIODIC_READS``   ``n * (post + (H + 1) * read)``      periodic follower reads
``FINAL_HORIZON_ONLY``  ``n * (post + 2 * read)``            metric polls but the last horizon
``NO_POSTS``            ``post + 2 * read``                  planning (no new post)
======================  ===================================  ================================

So reads degrade first and posts stop only when the remaining budget cannot pay for one more
post with its reading before and its last poll. Each change of stage is logged
(``platform_budget_stage``) and alerted (``AlertKind.PLATFORM_BUDGET``) once, not on every tick.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING

from adapters.base import Prices
from agent.alerts import AlertKind
from agent.logs import log
from agent.reading import poll_horizons

if TYPE_CHECKING:
    from agent.core import Agent


class Stage(IntEnum):
    """How far an account's reads and posts are cut back to stay within its budget."""

    FULL = 0
    NO_PERIODIC_READS = 1
    FINAL_HORIZON_ONLY = 2
    NO_POSTS = 3


DESCRIPTION = {
    Stage.FULL: "within budget",
    Stage.NO_PERIODIC_READS: "periodic follower reads stopped",
    Stage.FINAL_HORIZON_ONLY: "periodic follower reads stopped, metrics polled at the last "
    "horizon only",
    Stage.NO_POSTS: "no new posts: the remaining budget cannot pay for one",
}


@dataclass
class SpendBook:
    """This process's platform spend not yet written to the store, and each account's last
    known stage (logged and alerted on change; the simulator skips stopped periodic reads)."""

    unbooked: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))
    posts: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    stages: dict[int, Stage] = field(default_factory=dict)

    def note(self, account_id: int, usd: float, *, posted: bool) -> None:
        """One platform call of the account billed ``usd`` (and published a post if ``posted``)."""
        if usd > 0:
            self.unbooked[account_id] += usd
        if posted:
            self.posts[account_id] += 1

    def take(self, account_id: int) -> tuple[float, int]:
        """What is not yet booked for the account, now marked booked."""
        return self.unbooked.pop(account_id, 0.0), self.posts.pop(account_id, 0)

    def stage(self, account_id: int) -> Stage:
        return self.stages.get(account_id, Stage.FULL)


def posts_left_in_month(posts_per_day: float, now: datetime) -> float:
    """Posts the cadence still makes this calendar month (UTC), from ``now`` on."""
    at = now.astimezone(UTC)
    days = calendar.monthrange(at.year, at.month)[1]
    month_end = datetime(at.year, at.month, days, tzinfo=UTC).timestamp() + 86400
    return posts_per_day * max(month_end - at.timestamp(), 0.0) / 86400


def stage_for(
    *, budget: float, spent: float, posts_left: float, prices: Prices, horizons: int
) -> Stage:
    """The stage for ``spent`` of ``budget`` (the module docstring's table)."""
    remaining = budget - spent
    one_post = prices.post + 2 * prices.read  # the reading before it and its last poll
    if remaining < one_post:
        return Stage.NO_POSTS
    if remaining < posts_left * one_post:
        return Stage.FINAL_HORIZON_ONLY
    if remaining < posts_left * (prices.post + (horizons + 1) * prices.read):
        return Stage.NO_PERIODIC_READS
    return Stage.FULL


async def book(agent: Agent, account_id: int, now: datetime) -> None:
    """Write the account's unbooked spend and posts to the store's ledger."""
    usd, posts = agent.spend.take(account_id)
    if usd > 0 or posts:
        await agent.store.add_platform_spend(account_id, usd=usd, posts=posts, at=now)


async def book_all(agent: Agent, now: datetime) -> None:
    """Write every billed account's unbooked spend to the ledger (the health cycle, hourly)."""
    for account_id in agent.account_ids.values():
        if agent.platform_for(account_id).prices.billed:
            await book(agent, account_id, now)


async def account_stage(agent: Agent, account_id: int, now: datetime) -> Stage:
    """The account's stage now, its unbooked spend first written to the ledger (``FULL`` on a
    platform that bills nothing, where the store is not asked, and without a budget); a change
    is logged and alerted once."""
    limit = agent.config.budget.platform_monthly_usd_per_account
    prices = agent.platform_for(account_id).prices
    if not prices.billed:
        return Stage.FULL
    await book(agent, account_id, now)
    if limit is None:
        return Stage.FULL
    month = await agent.store.platform_spend(account_id, at=now)
    account = agent.account(account_id)
    stage = stage_for(
        budget=limit,
        spent=month.spend_usd,
        posts_left=posts_left_in_month(agent.config.cadence_for(account).posts_per_day, now),
        prices=prices,
        horizons=len(poll_horizons(agent.config, prices)),
    )
    before = agent.spend.stage(account_id)
    agent.spend.stages[account_id] = stage
    if stage != before:
        log.warning(
            "platform_budget_stage",
            account=account.name,
            platform=account.platform,
            stage=stage.name.lower(),
            was=before.name.lower(),
            spent_usd=round(month.spend_usd, 4),
            budget_usd=limit,
            month=month.month,
        )
        if stage > before:
            agent.alerts.notify(
                AlertKind.PLATFORM_BUDGET,
                f"platform budget of account {account.name!r} ({account.platform}): spent "
                f"${month.spend_usd:.3f} of ${limit:.2f} in {month.month}; {DESCRIPTION[stage]}",
                now=now,
                account=account.name,
            )
    return stage
