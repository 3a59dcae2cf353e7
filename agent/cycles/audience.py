"""The audience upkeep: once a day, every account's engagement scores and tiers are recomputed
from the stored interactions (scores decay with age, so they change even when nothing new was
read), the multi-touch credits of recent follows are recomputed (learning/touch.py), and what is
older than ``audience.retention`` is purged (docs/audience.md).

It runs from the health cycle (agent/cycles/health.py) when that writes the health rows of a UTC
day's last hour (23:00-24:00), so once a day shortly after midnight UTC, also after an outage
(the health cycle back-fills the hours it missed). Several workers may each run it: both steps
are idempotent (the same rows give the same scores; a purge past the cut-off finds nothing the
second time).
"""

from __future__ import annotations

from datetime import datetime

from agent.audience import purge, update_credits, update_scores
from agent.core import Agent
from agent.logs import log

DAY_LAST_HOUR = 23  # the health row whose writing triggers the upkeep: the day's last UTC hour


def is_upkeep_hour(hour_start: datetime) -> bool:
    """Whether the health row of the hour starting at ``hour_start`` (UTC) triggers the
    upkeep."""
    return hour_start.hour == DAY_LAST_HOUR


async def audience_upkeep(agent: Agent, now: datetime) -> int:
    """Score every account's audience and purge past the retention period; members scored."""
    settings = agent.config.audience
    scored = credited = 0
    kept = await agent.store.audience_accounts()
    for account in agent.config.accounts:
        account_id = agent.account_ids[account.name]
        if account_id in kept:
            scored += await update_scores(agent.store, account_id, settings, now=now)
            credited += await update_credits(agent.store, account_id, settings, now=now)
    purged = await purge(agent.store, settings, now=now)
    log.info(
        "audience_upkeep",
        members_scored=scored,
        touch_credits=credited,
        interactions_purged=purged.interactions,
        members_purged=purged.members,
        retention_days=settings.retention.total_seconds() / 86_400,
    )
    return scored
