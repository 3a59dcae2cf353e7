"""Learn: turn each finished post into evidence and update the arms' posteriors.

A post is finished when its final-horizon snapshot is taken and (for the followers objective) its
followers are attributed. Its reward updates the posterior of the content type, formula and hook
it used; the new statistics, a ``learning_updates`` row (what changed, from which evidence, what
is winning) and the post's ``learned_at`` are written in one transaction, so a post is learned
from exactly once.

Several workers: a worker learns under the lease ``learn`` (reading the finished posts again
under it), because an update writes statistics computed from the ones it read: two workers
updating one account's arms at once would lose one update.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from agent.core import Agent
from agent.cycles.plan import posteriors, prior
from agent.logs import log
from agent.models import ArmStat, LearnItem
from learning.policy import update_posteriors
from learning.posteriors import GammaPoisson, dispersion
from learning.reward import reward

FAMILY = "gamma_poisson"


def _blank(account_id: int, dimension: str, arm: str, p: GammaPoisson) -> ArmStat:
    return ArmStat(
        account_id=account_id,
        dimension=dimension,
        arm=arm,
        posts=0,
        reward_sum=0.0,
        reward_sq_sum=0.0,
        followers_gained=0.0,
        likes_sum=0,
        reposts_sum=0,
        replies_sum=0,
        impressions_sum=0,
        engagement_rate_sum=0.0,
        posterior_family=FAMILY,
        thompson_alpha=p.shape,
        thompson_beta=p.rate,
    )


async def learn_from(agent: Agent, item: LearnItem, now: datetime) -> bool:
    post, final, attribution = item.post, item.final, item.attribution
    account_id = post.account_id
    objective = agent.config.learning.objective
    followers = attribution.followers_gained if attribution else 0.0
    value = reward(objective, followers_gained=followers, engagements=float(final.engagements))
    the_prior = prior(agent)
    current = await posteriors(agent, account_id)
    old = {(s.dimension, s.arm): s for s in await agent.store.arm_stats(account_id)}
    # every post is counted once per dimension: pool the first dimension's sums
    pooled = [s for s in old.values() if s.dimension == agent.config.dimensions[0]]
    phi = dispersion(
        sum(s.posts for s in pooled),
        sum(s.reward_sum for s in pooled),
        sum(s.reward_sq_sum for s in pooled),
    )
    arms = post.arms
    chosen = {d: arms.arm(d) for d in agent.config.dimensions if arms.arm(d)}
    updated, changes = update_posteriors(
        current,
        chosen,
        value,
        prior=the_prior,
        discount=agent.config.learning.discount,
        weight=1.0 / phi,
    )
    stats = []
    for dimension, by_arm in updated.items():
        if dimension not in chosen:
            continue
        for arm, posterior in by_arm.items():
            stat = old.get((dimension, arm)) or _blank(account_id, dimension, arm, the_prior)
            if posterior == GammaPoisson(shape=stat.thompson_alpha, rate=stat.thompson_beta) and (
                arm != chosen[dimension]
            ):
                continue  # unchanged (no discounting)
            stat = replace(stat, thompson_alpha=posterior.shape, thompson_beta=posterior.rate)
            if arm == chosen[dimension]:
                stat = replace(
                    stat,
                    posts=stat.posts + 1,
                    reward_sum=stat.reward_sum + value,
                    reward_sq_sum=stat.reward_sq_sum + value * value,
                    followers_gained=stat.followers_gained + followers,
                    likes_sum=stat.likes_sum + final.likes,
                    reposts_sum=stat.reposts_sum + final.reposts,
                    replies_sum=stat.replies_sum + final.replies,
                    impressions_sum=stat.impressions_sum + final.impressions,
                    engagement_rate_sum=stat.engagement_rate_sum + (final.engagement_rate or 0.0),
                )
            stats.append(stat)
    catalogue = agent.config.catalogues.arms()
    leaders: dict[str, Any] = {}
    for dimension in chosen:
        by_arm = updated.get(dimension, {})
        top = max(catalogue[dimension], key=lambda a: by_arm.get(a, the_prior).mean)  # ties: first
        posterior = by_arm.get(top, the_prior)
        low, high = posterior.interval(0.9)
        leaders[dimension] = {
            "arm": top,
            "mean": round(posterior.mean, 4),
            "interval_90": [round(low, 4), round(high, 4)],
        }
    evidence = {
        "objective": objective,
        "reward": value,
        "followers_gained": followers,
        "attribution_confidence": attribution.confidence_score if attribution else None,
        "engagements": final.engagements,
        "impressions": final.impressions,
        "hours_since_post": final.hours_since_post,
        "arms": chosen,
        "dispersion": phi,
        "update_weight": 1.0 / phi,
    }
    applied = {"family": FAMILY, "changes": [c.as_dict() for c in changes]}
    done = await agent.store.apply_learning(
        account_id=account_id,
        content_id=post.id,
        stats=stats,
        evidence=evidence,
        updates_applied=applied,
        insights_summary={"leaders": leaders},
        now=now,
    )
    if done:
        agent.stats.totals["learning_updates"] += 1
        log.info(
            "posterior_updated",
            account=agent.account(account_id).name,
            content_id=post.id,
            reward=round(value, 3),
            arms=chosen,
            leaders={d: v["arm"] for d, v in leaders.items()},
        )
    return done


async def learn_cycle(agent: Agent, now: datetime) -> int:
    items = await _finished(agent)
    if not items:
        return 0
    async with agent.leased("learn", now) as held:
        if not held:
            return 0  # another worker is learning
        if not agent.exclusive:  # what is left once the previous holder is done
            items = await _finished(agent)
        learned = 0
        for item in items:
            learned += await learn_from(agent, item, now)
        return learned


async def _finished(agent: Agent) -> list[LearnItem]:
    return await agent.store.posts_to_learn(
        method=agent.config.learning.attribution_method,
        need_attribution=agent.config.learning.objective == "followers",
    )
