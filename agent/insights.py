"""Insights: gather each account's inputs, compute (learning/insights.py), write the table.

Computed in the health cycle (agent/cycles/health.py), right after the hourly health rows are
written, so every insight sees the hour that just ended; an hour with no new health row computes
nothing. Each account's set is written with ``Store.sync_insights``: an insight keeps its row
(key: account, kind, subject) and is updated in place hour after hour, and one that no longer
holds is marked resolved, so nothing is duplicated.

One truth: what an arm, a topic or an hour is worth is read from ``arm_statistics``, which the
learn cycle writes from the deciding policy's own :class:`~learning.estimates.Estimates` (the
model the planner chooses with); no model is fitted here. The rest comes from the account's
health rows (follower gains, publish and poll outcomes, spend) and its posts (attributed
followers, engagements), over the last ``LOOKBACK``.

Several workers: computed under the lease ``insights``; a worker that does not get it skips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
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


async def compute(agent: Agent, now: datetime) -> dict[int | None, list[Insight]]:
    """Every account's insights, and (key None) those about several accounts."""
    found: dict[int | None, list[Insight]] = {}
    by_platform: dict[str, list[float]] = {}
    for account in agent.config.accounts:
        account_id = agent.account_ids[account.name]
        inputs = await account_inputs(agent, account_id, now)
        found[account_id] = account_insights(inputs, now, rng_for(account_id, now))
        by_platform.setdefault(account.platform, []).extend(
            p.followers for p in inputs.posts if p.followers is not None
        )
    found[None] = platforms(by_platform, "followers per post")
    return found


async def insights_cycle(agent: Agent, now: datetime) -> int:
    """Compute and store every account's insights; returns the rows inserted or changed."""
    async with agent.leased(LEASE, now) as held:
        if not held:
            return 0  # another worker is computing them
        changed = 0
        counts: dict[str, int] = {}
        for account_id, found in (await compute(agent, now)).items():
            changed += await agent.store.sync_insights(
                account_id, [as_new(account_id, i) for i in found], now=now
            )
            for i in found:
                counts[i.severity.value] = counts.get(i.severity.value, 0) + 1
        if changed:
            log.info("insights_computed", changed=changed, **counts)
        return changed
