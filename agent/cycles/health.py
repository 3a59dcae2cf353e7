"""Health: one ``system_health_metrics`` row per account for every hour that has ended.

Writing the rows of a UTC day's last hour also runs the daily audience upkeep (scores, tiers,
retention purge: agent/cycles/audience.py).

Most figures are read back from the tables (so an hour the daemon was partly down is still
summarised); API calls, errors and rate-limit waits come from the in-memory counters, which a
restart loses (their hours show zero calls rather than invented ones).

When it has written an hour's rows, it computes the insights (agent/insights.py) from them and
the deciding model's estimates: each account's once a day and after a troubled hour, each
insight updated in place.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.budget import book_all
from agent.core import Agent, hour_floor
from agent.cycles.audience import audience_upkeep, is_upkeep_hour
from agent.insights import due_accounts, insights_cycle
from agent.logs import log

BACKFILL = timedelta(hours=48)  # hours older than this are not written after a long outage


LATE_AFTER = timedelta(minutes=5)  # a poll taken later than this after it fell due is late


async def health_cycle(agent: Agent, now: datetime) -> int:
    await book_all(agent, now)  # the monthly platform spend ledger (agent/budget.py)
    current = hour_floor(now)
    last = await agent.store.last_health_hour()
    start = (last + timedelta(hours=1)) if last else current - timedelta(hours=1)
    start = max(start, current - BACKFILL)
    if agent.stats.started_at and last is None:
        start = max(start, hour_floor(agent.stats.started_at))
    rows: list[dict[str, object]] = []
    upkeep = False
    hour = start
    while hour < current:
        upkeep = upkeep or is_upkeep_hour(hour)
        for account in agent.config.accounts:
            account_id = agent.account_ids[account.name]
            row = await _row(agent, account_id, hour, now)
            await agent.store.write_health(row)
            rows.append(row)
        hour += timedelta(hours=1)
    if rows:
        through = (current - timedelta(hours=1)).isoformat()
        log.info("health_written", rows=len(rows), through=through)
        # each account's once a day and after a troubled hour; platform differences (every
        # account's posts) once a day, where the accounts are on more than one platform
        daily = current.hour == 0 and len({a.platform for a in agent.config.accounts}) > 1
        await insights_cycle(agent, now, due_accounts(agent, current, rows), across=daily)
    if upkeep:
        await audience_upkeep(agent, now)
    return len(rows)


async def _row(agent: Agent, account_id: int, hour: datetime, now: datetime) -> dict[str, object]:
    end = hour + timedelta(hours=1)
    data = await agent.store.health_inputs(account_id, hour, end)
    counters = agent.stats.pop_hour(hour, account_id)
    statuses = data["status_counts"]
    late = sum(1 for due, taken in data["polls_done"] if taken - due > LATE_AFTER)
    gained = 0.0
    if data["followers_end"] is not None and data["followers_start"] is not None:
        gained = float(data["followers_end"] - data["followers_start"])
    llm = float(data["llm_spend_usd"])
    platform_spend = counters.platform_spend_usd
    spend = llm + platform_spend
    return {
        "hour_start": hour,
        "account_id": account_id,
        "posts_attempted": data["posts_attempted"],
        "posts_succeeded": data["posts_succeeded"],
        "posts_failed": statuses.get("failed", 0),
        "posts_rejected": statuses.get("rejected", 0),
        "polls_due": data["polls_due"],
        "polls_done": len(data["polls_done"]),
        "polls_late": late,
        "api_calls": counters.api_calls,
        "api_errors": counters.api_errors,
        "rate_limit_waits": counters.rate_limit_waits,
        "errors_by_kind": dict(counters.errors_by_kind),
        "engagement_rate": data["engagement_rate"],
        "followers_total": data["followers_end"],
        "followers_gained": gained,
        "llm_spend_usd": llm,
        "platform_spend_usd": platform_spend,
        "cost_per_follower_usd": (spend / gained) if gained > 0 else None,
        "created_at": now,
    }
