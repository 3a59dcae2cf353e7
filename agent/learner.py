"""The configured policy, and the history it chooses from (glue between the store and learning/).

``choose_arms`` is what the plan cycle calls: it reads the account's history
(``Store.learning_history``), turns it into :class:`learning.policies.Outcome` values for the
configured objective, and asks the account's policy for one arm per dimension (plus the topic),
passing the state the policy returned last time (``Agent.learner_states``) and keeping the one it
returns. ``estimates`` is what the learn cycle calls: the same policy's belief, from the same
history and state, drawn with its own generator so the choices are not changed by it.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from agent import schedule
from agent.config import Account, ActiveHours, Config
from agent.core import Agent
from agent.models import DIMENSIONS, FORMATS, Observation
from learning.design import Pairs
from learning.estimates import Estimates
from learning.joint import JointPosterior
from learning.joint_policy import FitMemo
from learning.outcomes import unit
from learning.policies import (
    POLICIES,
    REWARD_UNIT,
    Independent,
    Joint,
    Outcome,
    Policy,
)

# Posting hours are learned from the natural spread of posting times first; the planner starts
# moving posts to chosen hours only after this many finished posts (so a new account's first
# posts go out when the cadence says, not hours later on an uninformed draw).
HOURS_AFTER_POSTS = 30

POLICY_CACHE = "policy"  # agent.caches key of the configured policy (see policy_for)


def interaction_pairs(pairs: list[tuple[str, str]]) -> Pairs | None:
    """``learning.interaction_pairs`` as the joint policy takes it (one pair as one pair)."""
    if not pairs:
        return None
    if len(pairs) == 1:
        return (pairs[0][0], pairs[0][1])
    return tuple((a, b) for a, b in pairs)


def joint_policy(config: Config, memo: FitMemo | None = None) -> Joint:
    """The joint learner with the configured settings (``memo``: fits it may share between
    accounts, see :class:`learning.joint_policy.FitMemo`)."""
    learning = config.learning
    return Joint(
        objective=learning.objective,
        half_life_days=learning.half_life_days,
        interaction=interaction_pairs(learning.interaction_pairs) if learning.interaction else None,
        provisional=learning.provisional,
        exploration=learning.exploration,
        change_threshold=learning.change_threshold,
        forget_threshold=learning.forget_threshold,
        forget_half_life_days=learning.forget_half_life_days,
        audience=learning.audience_covariate,
        negbin=learning.negative_binomial,
        carry_auxiliary=learning.carry_auxiliary,
        memo=memo,
    )


def build_policy(config: Config, memo: FitMemo | None = None) -> Policy:
    """The policy ``learning.policy`` names, with the learning settings it uses (``memo``: the
    joint policy's shared fits)."""
    learning = config.learning
    name = learning.policy
    if name == "joint":
        return joint_policy(config, memo)
    if name == "independent":
        return Independent(prior_mean=learning.prior.mean, prior_strength=learning.prior.strength)
    policy: Policy = POLICIES[name]()
    return policy


def policy_for(agent: Agent, account: Account) -> Policy:
    """The account's policy: a benchmark's override, else the configured one (a frozen value:
    what it learns between plans is its state, kept in ``agent.learner_states``). The configured
    one is built once per agent, with one :class:`FitMemo` for all its accounts."""
    override = agent.policies.get(account.name)
    if override is not None:
        policy: Policy = override
        return policy
    learning = agent.config.learning
    built: tuple[Any, Policy] | None = agent.caches.get(POLICY_CACHE)
    if built is None or built[0] != learning:  # built anew if the settings were replaced
        built = (learning, build_policy(agent.config, FitMemo()))
        agent.caches[POLICY_CACHE] = built
    return built[1]


def outcomes(
    observations: list[Observation],
    objective: str,
    active: ActiveHours | None = None,
    audience: Any = None,
    formats: bool = False,
) -> list[Outcome]:
    """The history as policies see it: the objective's final value, or None while in flight.

    With ``active`` (hour learning on) each post's local posting hour is its arm "hour";
    ``audience`` (a :class:`Audience`) gives each post the account's followers when posted;
    ``formats`` (threads on): each post's format (single | thread) is an arm too.
    """
    out = []
    for o in observations:
        if objective == "followers":
            reward = o.followers
        else:
            reward = float(o.engagements) if o.learned else None
        arms = {d: o.arms.arm(d) for d in (*DIMENSIONS, "topic")}
        if formats:
            arms["format"] = o.arms.format
        if active is not None:
            arms["hour"] = schedule.hour_label(o.posted_at, active)
        out.append(
            Outcome(
                arms=arms,
                posted_at=o.posted_at,
                reward=reward,
                engagements=float(o.engagements),
                hours_observed=o.hours_observed,
                profile_clicks=float(o.profile_clicks),
                audience=None if audience is None else audience.at(o.posted_at),
                key=o.content_id,
            )
        )
    return out


# readings are re-read this far back from the latest one kept, so one another worker stored late
# (with an earlier time than ours) is still picked up
AUDIENCE_OVERLAP = timedelta(hours=6)


class Audience:
    """The account's follower readings, read incrementally: the followers at any past time."""

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.counts: list[int] = []

    async def update(self, agent: Agent, account_id: int, now: datetime) -> None:
        start = self.times[-1] - AUDIENCE_OVERLAP if self.times else now - timedelta(days=3650)
        for reading in await agent.store.account_series(account_id, start, now):
            i = bisect.bisect_left(self.times, reading.taken_at)
            if i < len(self.times) and self.times[i] == reading.taken_at:
                continue  # already kept
            self.times.insert(i, reading.taken_at)
            self.counts.insert(i, reading.followers)

    def at(self, when: datetime) -> float | None:
        """The last reading at or before ``when`` (the first one for a post before any)."""
        if not self.times:
            return None
        i = bisect.bisect_right(self.times, when) - 1
        return float(self.counts[max(i, 0)])


def catalogue_for(config: Config, account: Account) -> dict[str, list[str]]:
    catalogue = config.catalogues.arms()
    if config.threads.enabled:  # docs/threads.md
        catalogue["format"] = list(FORMATS)
    if account.topics:
        catalogue["topic"] = list(dict.fromkeys(account.topics))
    return catalogue


async def history(
    agent: Agent, account_id: int, *, learned: Collection[int] = (), new: bool = False
) -> list[Outcome]:
    """The account's posts as policies see them (:func:`outcomes`); the posts in ``learned``
    count as learned (the learn cycle's batch, before it is written); ``new``: the account has
    no post (none is read).

    Each post's Outcome is kept between plans (in ``agent.caches``) and rebuilt only when its
    Observation changed: building them is most of the cost of reading a long history.
    """
    learning = agent.config.learning
    observations = (
        []
        if new
        else await agent.store.learning_history(account_id, method=learning.attribution_method)
    )
    active = agent.config.cadence_for(agent.account(account_id)).active_hours
    hours = active if learning.learn_hours else None
    kept: dict[int, tuple[Observation, Outcome]] = agent.caches.setdefault(
        f"outcomes:{account_id}:{learning.objective}:{learning.attribution_method}"
        + (":formats" if agent.config.threads.enabled else ""),
        {},
    )
    audience: Audience = agent.caches.setdefault(f"audience:{account_id}", Audience())
    if observations:  # no post, no covariate to measure (a new account's plan reads nothing)
        await audience.update(agent, account_id, agent.clock.now())
    out = []
    for o in observations:
        if o.content_id in learned and not o.learned:
            o = replace(o, learned=True)
        known = kept.get(o.content_id)
        stale = known is not None and known[1].audience is None and bool(audience.times)
        if known is None or stale or not (known[0] is o or known[0] == o):
            formats = agent.config.threads.enabled
            known = (o, outcomes([o], learning.objective, hours, audience, formats)[0])
            kept[o.content_id] = known
        out.append(known[1])
    return out


def learning_catalogue(
    agent: Agent,
    account: Account,
    policy: Policy,
    past: list[Outcome],
    slots: Mapping[str, datetime] | None,
) -> dict[str, list[str]]:
    """The dimensions and arms the policy chooses among: topics and hours only where the policy
    learns them (hours once the account has ``HOURS_AFTER_POSTS`` finished posts; ``slots``:
    the hours allowed next, None: every hour posted at)."""
    catalogue = catalogue_for(agent.config, account)
    learning = agent.config.learning
    learns = policy.learns_hours
    if not (learning.learn_topics and learns):
        catalogue.pop("topic", None)
    finished = sum(1 for o in past if o.final)
    if learning.learn_hours and learns and finished >= HOURS_AFTER_POSTS:
        if slots is None:
            catalogue["hour"] = sorted({o.arms["hour"] for o in past if "hour" in o.arms})
        elif slots:
            catalogue["hour"] = list(slots)
    return catalogue


def without(
    catalogue: dict[str, list[str]], retired: Mapping[str, Collection[str]] | None
) -> dict[str, list[str]]:
    """The catalogue without the ``retired`` arms (a dimension keeps at least one)."""
    for dimension, arms in (retired or {}).items():
        kept = [arm for arm in catalogue.get(dimension, []) if arm not in arms]
        if kept:
            catalogue[dimension] = kept
    return catalogue


async def choose_arms(
    agent: Agent,
    account: Account,
    account_id: int,
    now: datetime,
    *,
    slots: Mapping[str, datetime] | None = None,
    new: bool = False,
    retired: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, str], str]:
    """One arm per dimension and a topic for the account's next post, and the policy's name.

    ``slots``: posting hours the cadence allows next (label -> time); a policy that learns hours
    (the joint one, and the benchmark's oracle) picks one as the dimension "hour". ``new``: the
    account has no post (its history is not read). ``retired``: arms a promoted experiment
    retired (agent/experiments.py), by dimension: not offered to the policy (a dimension keeps
    at least one arm). The policy still learns from the posts that used them.
    """
    policy = policy_for(agent, account)
    past = await history(agent, account_id, new=new)
    catalogue = without(learning_catalogue(agent, account, policy, past, slots or {}), retired)
    state = agent.learner_states.get(account.name)
    chosen, state = policy.choose(past, catalogue, now, agent.rng, state)
    agent.learner_states[account.name] = state
    if "topic" not in chosen:
        chosen["topic"] = agent.random.choice(account.topics)
    return chosen, policy.name


async def estimates(
    agent: Agent, account: Account, account_id: int, now: datetime, *, learned: Collection[int]
) -> Estimates:
    """What the account's policy believes now (every dimension it learns), from the history with
    the posts in ``learned`` counted as learned, and the state of its last choice (read, not
    advanced). Its probabilities of being best are drawn from a generator seeded by the account
    and the newest learned post, never ``agent.rng``: the choices stay exactly as they were."""
    policy = policy_for(agent, account)
    past = await history(agent, account_id, learned=learned)
    catalogue = learning_catalogue(agent, account, policy, past, None)
    rng = np.random.default_rng([account_id, max(learned, default=0)])
    belief = policy.estimates(past, catalogue, now, rng, agent.learner_states.get(account.name))
    if belief.unit == REWARD_UNIT:  # a baseline's reward is the objective's
        belief = replace(belief, unit=unit(agent.config.learning.objective))
    return belief


async def joint_posterior(agent: Agent, account: Account, account_id: int) -> JointPosterior:
    """The joint model's posterior for an account, fit afresh on its history (benchmarks;
    any configured policy)."""
    joint = joint_policy(agent.config)
    past = await history(agent, account_id)
    catalogue = catalogue_for(agent.config, account)
    posterior, _state = joint.posterior(past, catalogue, agent.clock.now())
    return posterior
