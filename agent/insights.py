"""Insights: gather each account's inputs, compute (learning/insights.py), write the table.

Computed in the health cycle (agent/cycles/health.py), right after the hourly health rows are
written, so every insight sees the hour that just ended; an hour with no new health row computes
nothing. Each account's are computed once a day, in an hour spread by its id (:func:`due_hour`),
and at once after an hour whose health row shows a failure (:func:`troubled`); the insights about
several accounts (platform differences, which read every account's posts) once a day, at 00 UTC,
where the accounts are on more than one platform (``insights_cycle`` without ``accounts``
computes everything). Each account's set is written with ``Store.sync_insights``: an insight
keeps its row (key: account, kind, subject) and is updated in place, and one that no longer holds
is marked resolved, so nothing is duplicated.

One truth: what an arm, a topic or an hour is worth is read from ``arm_statistics``, which the
learn cycle writes from the deciding policy's own :class:`~learning.estimates.Estimates` (the
model the planner chooses with); no model is fitted here. The rest comes from the account's
health rows (follower gains, publish and poll outcomes, spend) and its posts (attributed
followers, engagements), over the last ``LOOKBACK``.

Several workers: computed under the lease ``insights``; a worker that does not get it skips.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from agent import schedule
from agent.core import Agent
from agent.logs import log
from agent.models import DIMENSIONS, ArmStat, NewInsight, Observation
from agent.store.insight_rows import insight_key
from learning.estimates import ArmEstimate, Estimates, ranked
from learning.insights import (
    AccountInputs,
    HealthHour,
    Insight,
    PostRecord,
    account_insights,
    platforms,
)
from learning.outcomes import unit

# How far back the inputs are read: twice the longest period comparison (30 days against the
# 30 before) plus a day of slack, so every insight of learning/insights.py has its windows.
LOOKBACK = timedelta(days=61)
LEASE = "insights"
# The health cycle computes an account's insights once a day, in an hour spread over the day by
# its id, and at once after an hour with a publish failure, a late or missed poll or an API
# error (the anomalies that cannot wait a day). Every account every hour cost ~15 ms of CPU per
# account (61 days of posts and health rows read and summarised): at 10,000 accounts 150 s an
# hour, 4 % of a core, for leaders and period comparisons that move from day to day.
DAILY_HOURS = 24
PHI = 0.6180339887498949  # spreads ids evenly over the day (as agent/reading.first_reading_at)


def due_hour(account_id: int) -> int:
    """The hour of the UTC day (0-23) at which the account's daily insights are computed."""
    return int(((account_id * PHI) % 1.0) * DAILY_HOURS)


def troubled(row: Mapping[str, Any]) -> bool:
    """Whether an hour's health row shows what an anomaly insight watches for."""
    return bool(
        row.get("posts_failed")
        or row.get("api_errors")
        or row.get("polls_late")
        or (row.get("polls_due") or 0) > (row.get("polls_done") or 0)
    )


def due_accounts(agent: Agent, now: datetime, rows: Sequence[Mapping[str, Any]]) -> set[int]:
    """The accounts whose insights the health cycle computes at ``now``: those whose daily hour
    it is, and those with a troubled hour among the ``rows`` just written."""
    hour = now.astimezone(UTC).hour
    due = {a for a in agent.account_ids.values() if due_hour(a) == hour}
    return due | {int(r["account_id"]) for r in rows if troubled(r)}


def estimates_of(stats: Sequence[ArmStat], unit_name: str) -> Estimates | None:
    """The deciding model's estimates as the learn cycle stored them (None before the first
    learning step)."""
    if not stats:
        return None
    by_dimension: dict[str, list[ArmEstimate]] = {}
    for s in stats:
        by_dimension.setdefault(s.dimension, []).append(
            ArmEstimate(
                arm=s.arm,
                posts=s.posts,
                mean=s.mean,
                low=s.interval_low,
                high=s.interval_high,
                p_best=s.p_best,
            )
        )
    return Estimates(
        model=stats[0].model,
        unit=unit_name,
        dimensions={d: ranked(arms) for d, arms in by_dimension.items()},
    )


def records(observations: Sequence[Observation], agent: Agent, account_id: int) -> list[PostRecord]:
    """The posts as learning/insights.py reads them (``hour``: the local posting hour)."""
    active = agent.config.cadence_for(agent.account(account_id)).active_hours
    out = []
    for o in observations:
        arms = {d: o.arms.arm(d) for d in (*DIMENSIONS, "topic") if o.arms.arm(d)}
        arms["hour"] = schedule.hour_label(o.posted_at, active)
        out.append(
            PostRecord(
                posted_at=o.posted_at,
                arms=arms,
                followers=o.followers,
                engagements=float(o.engagements),
            )
        )
    return out


def health_of(rows: Sequence[Mapping[str, Any]]) -> list[HealthHour]:
    """The health rows as learning/insights.py reads them."""
    return [
        HealthHour(
            hour=r["hour_start"],
            posts_succeeded=int(r["posts_succeeded"]),
            posts_failed=int(r["posts_failed"]),
            polls_due=int(r["polls_due"]),
            polls_done=int(r["polls_done"]),
            polls_late=int(r["polls_late"]),
            followers_gained=float(r["followers_gained"]),
            spend_usd=float(r["llm_spend_usd"]) + float(r["platform_spend_usd"]),
        )
        for r in rows
    ]


def as_new(account_id: int | None, insight: Insight) -> NewInsight:
    """A computed insight as the store writes it."""
    return NewInsight(
        key=insight_key(account_id, insight.kind.value, insight.subject),
        account_id=account_id,
        kind=insight.kind.value,
        subject=insight.subject,
        severity=insight.severity.value,
        recommendation=insight.recommendation,
        statement=insight.statement,
        value=float(insight.value),
        low=float(insight.low),
        high=float(insight.high),
        probability=float(insight.probability),
        unit=insight.unit,
        evidence=dict(insight.evidence),
    )


def rng_for(account_id: int, now: datetime) -> np.random.Generator:
    """The draws behind an account's probabilities: seeded by the account and the hour, so the
    same inputs give the same insight (and never touch the generator the planner chooses with)."""
    return np.random.default_rng([account_id, int(now.timestamp()) // 3600])


async def account_inputs(agent: Agent, account_id: int, now: datetime) -> AccountInputs:
    """One account's estimates, posts and health hours over ``LOOKBACK``."""
    learning = agent.config.learning
    stats = await agent.store.arm_stats(account_id)
    observations = await agent.store.learning_history(
        account_id, method=learning.attribution_method, since=now - LOOKBACK
    )
    rows = await agent.store.health_hours(account_id, now - LOOKBACK, now)
    return AccountInputs(
        estimates=estimates_of(stats, unit(learning.objective)),
        posts=records(observations, agent, account_id),
        health=health_of(rows),
    )


async def compute(
    agent: Agent, now: datetime, accounts: Collection[int] | None = None, *, across: bool = True
) -> dict[int | None, list[Insight]]:
    """The insights of ``accounts`` (None: every account) and, with ``across``, under the key
    None those about several accounts (which read every account's posts)."""
    found: dict[int | None, list[Insight]] = {}
    by_platform: dict[str, list[float]] = {}
    for account in agent.config.accounts:
        account_id = agent.account_ids[account.name]
        mine = accounts is None or account_id in accounts
        if not (mine or across):
            continue
        if mine:
            inputs = await account_inputs(agent, account_id, now)
            found[account_id] = account_insights(inputs, now, rng_for(account_id, now))
            posts = inputs.posts
        else:
            posts = await account_posts(agent, account_id, now)
        by_platform.setdefault(account.platform, []).extend(
            p.followers for p in posts if p.followers is not None
        )
    if across:
        found[None] = platforms(by_platform, "followers per post")
    return found


async def account_posts(agent: Agent, account_id: int, now: datetime) -> list[PostRecord]:
    """One account's posts over ``LOOKBACK`` (what the insights across accounts read)."""
    observations = await agent.store.learning_history(
        account_id, method=agent.config.learning.attribution_method, since=now - LOOKBACK
    )
    return records(observations, agent, account_id)


async def insights_cycle(
    agent: Agent, now: datetime, accounts: Collection[int] | None = None, *, across: bool = True
) -> int:
    """Compute and store the insights of ``accounts`` (None: every account) and, with
    ``across``, those about several accounts; returns the rows inserted or changed."""
    async with agent.leased(LEASE, now) as held:
        if not held:
            return 0  # another worker is computing them
        changed = 0
        counts: dict[str, int] = {}
        for account_id, found in (await compute(agent, now, accounts, across=across)).items():
            changed += await agent.store.sync_insights(
                account_id, [as_new(account_id, i) for i in found], now=now
            )
            for i in found:
                counts[i.severity.value] = counts.get(i.severity.value, 0) + 1
        if changed:
            log.info("insights_computed", changed=changed, **counts)
        return changed
