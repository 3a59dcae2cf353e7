"""Learn: after each batch of finished posts, write what the deciding policy now believes.

A post is finished when its final-horizon snapshot is taken and (for the followers objective) its
followers are attributed. A learning step takes an account's finished posts in three steps, each
returning a value: their :class:`Evidence`, the account's policy's :class:`Estimates` (the same
policy and state the plan cycle chooses with, asked once per batch), and the write: the arm
statistics (the deciding model's posts, mean, 90% interval and probability of being best per arm,
behind the seed-named views), a ``learning_updates`` row (the evidence, what changed with before
and after, the leaders) and the posts' ``learned_at``, in one transaction, so a post is learned
from exactly once. The ``posterior_updated`` log event carries the same leaders.

No second model is kept: the policy refits from the history when it chooses, and these estimates
are that model's.

Experiments: after each account's learning step, the stop rules of the experiments running on it
are evaluated (agent/experiments.py ``evaluate_account``) on the posts just learned with the
rest: a rule that decides completes the experiment (and promotes its winner when set to), under
the same lease. The learn cycle, not the health cycle, so a rule is checked after every learned
post rather than once an hour: the sequential test is valid however often it looks.

Several workers: a worker learns under the lease ``learn`` (reading the finished posts again
under it), so two workers never write one account's estimates at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent import experiments, learner
from agent.core import Agent
from agent.logs import log
from agent.models import DIMENSIONS, ArmStat, LearnItem
from learning.estimates import Estimates
from learning.reward import reward


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One finished post as a learning step reads it."""

    content_id: int
    arms: dict[str, str]
    reward: float
    followers_gained: float
    attribution_confidence: float | None
    engagements: int
    impressions: int
    hours_since_post: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``learning_updates.evidence``."""
        return {
            "content_id": self.content_id,
            "arms": self.arms,
            "reward": self.reward,
            "followers_gained": self.followers_gained,
            "attribution_confidence": self.attribution_confidence,
            "engagements": self.engagements,
            "impressions": self.impressions,
            "hours_since_post": self.hours_since_post,
        }


def evidence(item: LearnItem, objective: str) -> Evidence:
    """What one finished post shows: its arms, reward under ``objective`` and the counts."""
    post, final, attribution = item.post, item.final, item.attribution
    followers = attribution.followers_gained if attribution else 0.0
    arms = {d: post.arms.arm(d) for d in (*DIMENSIONS, "topic") if post.arms.arm(d)}
    if "format" in post.generation_metadata:  # planned with threads on (docs/threads.md)
        arms["format"] = post.arms.format
    return Evidence(
        content_id=post.id,
        arms=arms,
        reward=reward(objective, followers_gained=followers, engagements=float(final.engagements)),
        followers_gained=followers,
        attribution_confidence=attribution.confidence_score if attribution else None,
        engagements=final.engagements,
        impressions=final.impressions,
        hours_since_post=final.hours_since_post,
    )


def arm_stats(account_id: int, estimates: Estimates) -> list[ArmStat]:
    """The estimates as ``arm_statistics`` rows."""
    return [
        ArmStat(
            account_id=account_id,
            dimension=dimension,
            arm=e.arm,
            posts=e.posts,
            mean=e.mean,
            interval_low=e.low,
            interval_high=e.high,
            p_best=e.p_best,
            model=estimates.model,
        )
        for dimension, arms in estimates.dimensions.items()
        for e in arms
    ]


def _stat_dict(stat: ArmStat) -> dict[str, Any]:
    return {
        "posts": stat.posts,
        "mean": round(stat.mean, 4),
        "interval_90": [round(stat.interval_low, 4), round(stat.interval_high, 4)],
        "p_best": round(stat.p_best, 4),
        "model": stat.model,
    }


def changes(before: Sequence[ArmStat], after: Sequence[ArmStat]) -> list[dict[str, Any]]:
    """The arms whose estimate changed, with the stored estimate before (None: a new arm) and
    the new one."""
    old = {(s.dimension, s.arm): s for s in before}
    out = []
    for stat in after:
        was = old.get((stat.dimension, stat.arm))
        if was is None or _stat_dict(was) != _stat_dict(stat):
            out.append(
                {
                    "dimension": stat.dimension,
                    "arm": stat.arm,
                    "before": None if was is None else _stat_dict(was),
                    "after": _stat_dict(stat),
                }
            )
    return out


def leaders(estimates: Estimates) -> dict[str, dict[str, Any]]:
    """Each dimension's leading arm (highest mean) with its estimate."""
    return {d: arms[0].as_dict() for d, arms in estimates.dimensions.items() if arms}


async def write(
    agent: Agent,
    account_id: int,
    seen: Sequence[Evidence],
    estimates: Estimates,
    before: Sequence[ArmStat],
    now: datetime,
) -> int:
    """Store one learning step; returns the number of posts newly learned from."""
    stats = arm_stats(account_id, estimates)
    top = leaders(estimates)
    learned = await agent.store.apply_learning(
        account_id=account_id,
        content_ids=[e.content_id for e in seen],
        stats=stats,
        evidence={
            "objective": agent.config.learning.objective,
            "posts": [e.as_dict() for e in seen],
        },
        updates_applied={
            "model": estimates.model,
            "unit": estimates.unit,
            "changes": changes(before, stats),
        },
        insights_summary={"leaders": top},
        now=now,
    )
    if learned:
        agent.stats.totals["learning_updates"] += learned
        log.info(
            "posterior_updated",
            account=agent.account(account_id).name,
            model=estimates.model,
            content_ids=[e.content_id for e in seen],
            rewards=[round(e.reward, 3) for e in seen],
            leaders={d: v["arm"] for d, v in top.items()},
        )
    return learned


async def learn_account(
    agent: Agent, account_id: int, items: Sequence[LearnItem], now: datetime
) -> int:
    """One learning step for one account's finished posts: evidence -> estimates -> write."""
    seen = [evidence(item, agent.config.learning.objective) for item in items]
    before = await agent.store.arm_stats(account_id)
    account = agent.account(account_id)
    belief = await learner.estimates(
        agent, account, account_id, now, learned={e.content_id for e in seen}
    )
    return await write(agent, account_id, seen, belief, before, now)


async def learn_cycle(agent: Agent, now: datetime) -> int:
    items = await _finished(agent)
    if not items:
        return 0
    async with agent.leased("learn", now) as held:
        if not held:
            return 0  # another worker is learning
        if not agent.exclusive:  # what is left once the previous holder is done
            items = await _finished(agent)
        by_account: dict[int, list[LearnItem]] = {}
        for item in items:
            by_account.setdefault(item.post.account_id, []).append(item)
        learned = 0
        for account_id, batch in by_account.items():
            learned += await learn_account(agent, account_id, batch, now)
            await experiments.evaluate_account(agent, account_id, now)
        return learned


async def _finished(agent: Agent) -> list[LearnItem]:
    return await agent.store.posts_to_learn(
        method=agent.config.learning.attribution_method,
        need_attribution=agent.config.learning.objective == "followers",
    )
