"""Planned experiments in the daemon: assigning posts to variants, the stop rules, promotion.

The statistics are :mod:`learning.experiments`' (pure); this module is the I/O around them.

**Assignment** (the plan step ``choose``, :func:`assign`). While an experiment runs, each post the
planner writes for its account is given a variant: the experiment's ``seq``-th post falls in
block ``seq // L`` (``L`` a multiple of the active variants, ``block_size`` rounded), whose order
is a permutation drawn from ``numpy.random.default_rng([seed, experiment id, block])``, so every
block holds each active variant equally often and the sequence is reproducible. The assignment is
stored before the post is written and linked to the stored post after; the variant's value
replaces the policy's choice for the one thing the experiment varies (an arm of ``content_type``,
``formula``, ``hook`` or ``topic``; a posting ``hour`` or hour window ``"09-11"``; a ``voice``,
the persona the generator writes with), everything else is still the learner's choice, the
cadence and the caps are untouched, and the learner learns from these posts like any other. An
hour variant whose hours the cadence does not allow for this post leaves the post out of the
experiment (it is not assigned).

**Stop rules** (:func:`decide`, after each learning step: see :func:`evaluate_account`). On the
learned posts of each variant (the metric per post: followers attributed, engagements per
impression, or retained followers), in this order:

- ``poor_performer``: a non-control variant whose engagement rate (engagements over impressions,
  pooled) is below ``engagement_rate_below`` after ``after_posts`` posts is stopped (no more
  posts assigned to it); with only the control left the experiment completes with it;
- ``significance``: the mSPRT's always-valid p-value of each variant against the control (the
  running minimum kept in the experiment's ``state``; ``tau`` = the MDE in the metric's units),
  Holm-corrected over the comparisons: any at or under ``alpha`` ends the experiment, the better
  of the pair wins;
- ``bayesian``: a variant's posterior probability of being best above ``p_best`` and its expected
  loss below ``expected_loss`` (relative to the baseline mean) ends it with that variant. The
  posteriors are normal on each variant's mean per post (flat prior, the per-post spread): the
  Beta-Binomial and Gamma-Poisson models of learning/experiments.py treat each impression or
  follower as independent and are far too sure of themselves on posts whose reach varies
  tenfold (over-dispersion), so they are not used for decisions. Peeking at this rule is not
  protected the way the mSPRT is: it is off unless configured;
- ``futility``: once each variant has ``after_fraction`` of the planned posts, if every
  variant's upper confidence bound (Welch, 1 - alpha) on its difference from the control is
  below the MDE, the effect planned for is ruled out: completed, no winner;
- ``max_duration`` (always): the planned posts per variant or ``max_days`` reached: completed,
  no winner unless a rule above decided.

Each decision is stored with the rule, a sentence and its numbers. ``retained_followers``
counts, per post, the followers it brought who still followed a week later (agent/retained.py,
from the audience tables); a post enters the sample once that is final, two weeks after it was
posted.

**Promotion** (:func:`promote`): a completed experiment's winner is applied, automatically
(``stop_rules.promote: auto``, the default) or by ``growthloop experiments promote N``. For an
arm or an hour the losing values are retired (the learner no longer chooses them for the
account: :func:`agent.learner.choose_arms`' ``retired``); for a voice the winner becomes the
account's persona. The promotion is written to ``learning_updates`` with the decision's evidence
and undone with ``promote N --undo`` (the retired arms come back).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from agent.core import Agent
from agent.errors import ConstraintViolation
from agent.logs import log
from agent.models import Experiment, ExperimentStatus, Variant
from agent.retained import retained_followers
from learning import experiments as stats

ARM_DIMENSIONS = ("content_type", "formula", "hook", "topic", "format")
VARIES = (*ARM_DIMENSIONS, "hour", "voice", "prompt")  # what an experiment may vary
METRICS = ("followers_per_post", "engagement_rate", "retained_followers")
RUNNING = ExperimentStatus.RUNNING
CACHE = "experiment_accounts"  # agent.caches: (tick, accounts with experiments)
# the draws behind P(best) and expected loss (learning.experiments.BEST_DRAWS: a probability's
# standard error under 0.005)
DRAWS = stats.BEST_DRAWS


# -- assignment ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Assigned:
    """What the experiments running on an account give the next post."""

    arms: Mapping[str, str] = field(default_factory=dict)  # dimension (or voice) -> value
    assignments: tuple[int, ...] = ()  # assignment ids, linked to the post once stored
    experiments: tuple[dict[str, Any], ...] = ()  # for the post's generation_metadata


def block_variant(experiment: Experiment, seq: int) -> Variant:
    """The variant of the experiment's ``seq``-th post: balanced, seeded blocks."""
    active = [v for v in experiment.variants if v.active]
    per = max(1, experiment.plan.block_size // len(active))
    length = per * len(active)
    rng = np.random.default_rng([experiment.plan.seed, experiment.id, seq // length])
    order = rng.permutation(np.repeat(np.arange(len(active)), per))
    return active[int(order[seq % length])]


def hours_in(window: str) -> set[str]:
    """The hour labels of ``"09"`` or ``"09-11"`` (both ends included, wrapping past 23)."""
    first, _, last = window.partition("-")
    start, end = int(first), int(last or first)
    return {f"{(start + i) % 24:02d}" for i in range((end - start) % 24 + 1)}


async def experiment_accounts(agent: Agent, now: datetime) -> set[int]:
    """The accounts with a running experiment or a promotion in force, read once per tick."""
    cached: tuple[datetime, set[int]] | None = agent.caches.get(CACHE)
    if cached is None or cached[0] != now:
        cached = (now, await agent.store.experiment_accounts())
        agent.caches[CACHE] = cached
    return cached[1]


async def assign(
    agent: Agent, account_id: int, now: datetime, *, hours: Mapping[str, datetime]
) -> Assigned:
    """Give the account's next post a variant of each running experiment (recorded now, before
    the post is written). ``hours``: the posting hours the cadence allows for it."""
    if account_id not in await experiment_accounts(agent, now):
        return Assigned()
    arms: dict[str, str] = {}
    ids: list[int] = []
    described: list[dict[str, Any]] = []
    for experiment in await agent.store.experiments(account_id=account_id, statuses=[RUNNING]):
        seq = len(await agent.store.assignments(experiment.id))
        variant = block_variant(experiment, seq)
        value = variant.value
        if experiment.dimension == "hour":
            allowed = sorted(hours_in(value) & set(hours))
            if not allowed:
                continue  # the cadence does not allow the variant's hours for this post
            value = allowed[0]
        try:
            assignment = await agent.store.assign_variant(
                experiment.id, variant.id, seq=seq, now=now
            )
        except ConstraintViolation:
            continue  # another worker took this place in the sequence: not in the experiment
        arms[experiment.dimension] = value
        ids.append(assignment.id)
        described.append({"id": experiment.id, "variant": variant.name, "seq": seq})
    return Assigned(arms=arms, assignments=tuple(ids), experiments=tuple(described))


async def promoted(agent: Agent, account_id: int, now: datetime) -> dict[str, set[str]]:
    """The values promotions in force retired for the account, by dimension (and ``voice``:
    the promoted voice, one value)."""
    if account_id not in await experiment_accounts(agent, now):
        return {}
    out: dict[str, set[str]] = {}
    for experiment in await agent.store.experiments(account_id=account_id):
        if experiment.promoted and experiment.winner is not None:
            applied = promotion_of(experiment)
            for dimension, values in applied["retired"].items():
                out.setdefault(dimension, set()).update(values)
            for kind in ("voice", "prompt"):
                if applied.get(kind):
                    out[kind] = {applied[kind]}
    return out


# -- outcomes and the stop rules ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One variant's learned posts: the metric per post, and the engagements and impressions."""

    values: tuple[float, ...] = ()
    engagements: int = 0
    impressions: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else 0.0

    @property
    def engagement_rate(self) -> float | None:
        return self.engagements / self.impressions if self.impressions else None


async def samples(
    store: Any, experiment: Experiment, *, method: str, now: datetime
) -> dict[str, Sample]:
    """Each variant's learned posts (by name). A post's metric: the followers attributed to it
    by ``method``, or its engagements per impression (posts without impressions are left
    out)."""
    assigned = {
        a.content_id: a.variant_id
        for a in await store.assignments(experiment.id)
        if a.content_id is not None
    }
    names = {v.id: v.name for v in experiment.variants}
    out: dict[str, list[tuple[float, int, int]]] = {v.name: [] for v in experiment.variants}
    if not assigned or experiment.started_at is None:
        return {name: Sample() for name in out}
    account_id = experiment.account_id
    followers = {
        o.content_id: o.followers for o in await store.learning_history(account_id, method=method)
    }
    posted = await store.posted_between(account_id, experiment.started_at, now)
    retained: dict[int, float] = {}
    if experiment.plan.metric == "retained_followers":
        retained = await retained_followers(
            store,
            account_id,
            [(p.id, p.posted_at) for p, _ in posted if p.id in assigned and p.posted_at],
            now=now,
        )
    for post, counts in posted:
        variant = assigned.get(post.id)
        if variant is None or post.learned_at is None:
            continue
        if experiment.plan.metric == "retained_followers":
            if post.id not in retained:
                continue  # not measured yet
            value = retained[post.id]
        elif experiment.plan.metric == "engagement_rate":
            if not counts.impressions:
                continue
            value = counts.engagements / counts.impressions
        else:
            value = float(followers.get(post.id) or 0.0)
        out[names[variant]].append((value, counts.engagements, counts.impressions))
    return {
        name: Sample(
            values=tuple(v for v, _, _ in rows),
            engagements=sum(e for _, e, _ in rows),
            impressions=sum(i for _, _, i in rows),
        )
        for name, rows in out.items()
    }


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the stop rules say: ``rule`` None while the experiment goes on."""

    rule: str | None = None
    winner: str | None = None
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    stop_variants: tuple[tuple[str, str], ...] = ()  # (variant, why)
    state: dict[str, Any] = field(default_factory=dict)


def _summary(found: Mapping[str, Sample]) -> dict[str, Any]:
    return {
        name: {
            "posts": s.n,
            "mean": round(s.mean, 6),
            "engagement_rate": None if s.engagement_rate is None else round(s.engagement_rate, 6),
        }
        for name, s in found.items()
    }


def _normal_draws(found: Sequence[Sample], rng: np.random.Generator) -> np.ndarray:
    """Posterior draws of each variant's mean per post: normal, the per-post spread."""
    means = np.array([s.mean for s in found])
    ses = np.array([np.std(s.values, ddof=1) / math.sqrt(s.n) for s in found])
    return rng.normal(means, np.maximum(ses, 1e-12), size=(DRAWS, len(found)))


def decide(
    experiment: Experiment, found: Mapping[str, Sample], *, days: float, rng: np.random.Generator
) -> Decision:
    """The stop rules on the variants' samples (see the module docstring), ``days`` since the
    experiment started."""
    plan, rules = experiment.plan, experiment.plan.stop_rules
    control = next(v for v in experiment.variants if v.control)
    active = [v for v in experiment.variants if v.active]
    evidence: dict[str, Any] = {"variants": _summary(found), "days": round(days, 3)}
    state = dict(experiment.state)
    mde = abs(plan.mde * plan.baseline_mean)  # in the metric's units
    n_min = min(found[v.name].n for v in active)

    poor = rules.get("poor_performer")
    stopping: list[tuple[str, str]] = []
    if poor:
        for v in active:
            rate = found[v.name].engagement_rate
            if v.control or rate is None or found[v.name].n < int(poor["after_posts"]):
                continue
            if rate < float(poor["engagement_rate_below"]):
                stopping.append(
                    (
                        v.name,
                        f"engagement rate {rate:.2%} below {poor['engagement_rate_below']:.2%}"
                        f" after {found[v.name].n} posts",
                    )
                )
    if stopping:
        left = [v for v in active if v.name not in {n for n, _ in stopping}]
        if len(left) == 1:
            return Decision(
                rule="poor_performer",
                winner=left[0].name,
                reason="; ".join(f"{n}: {why}" for n, why in stopping)
                + f"; {left[0].name} is left",
                evidence=evidence,
                stop_variants=tuple(stopping),
                state=state,
            )
        active = left
        n_min = min(found[v.name].n for v in active)

    treatments = [v for v in active if not v.control]
    xc = found[control.name].values
    p_values: dict[str, float] = dict(state.get("p_values", {}))
    if rules.get("significance", True) and mde > 0:
        for v in treatments:
            seq = stats.Sequential(
                tau=mde * stats.TAU_PER_MDE,
                alpha=plan.alpha,
                p_value=float(p_values.get(v.name, 1.0)),
            )
            p_values[v.name] = seq.update(xc, found[v.name].values)
        state["p_values"] = p_values
        names = [v.name for v in treatments]
        adjusted = dict(zip(names, stats.holm([p_values[n] for n in names]), strict=True))
        evidence["p_values"] = {n: round(p, 6) for n, p in adjusted.items()}
        rejected = [n for n in names if adjusted[n] <= plan.alpha]
        if rejected:
            better = [n for n in rejected if found[n].mean > found[control.name].mean]
            winner = max(better, key=lambda n: found[n].mean) if better else control.name
            return Decision(
                rule="significance",
                winner=winner,
                reason=f"mSPRT: always-valid p = {min(adjusted[n] for n in rejected):.4f}"
                f" <= alpha {plan.alpha} (Holm over {len(names)}); {winner} is better",
                evidence=evidence,
                stop_variants=tuple(stopping),
                state=state,
            )
    bayes = rules.get("bayesian")
    if bayes and n_min >= stats.MIN_PER_VARIANT:
        p_best, loss = stats.best_of(_normal_draws([found[v.name] for v in active], rng))
        evidence["p_best"] = {
            v.name: round(float(p), 4) for v, p in zip(active, p_best, strict=True)
        }
        i = int(np.argmax(p_best))
        bound = float(bayes["expected_loss"]) * plan.baseline_mean
        if p_best[i] > float(bayes["p_best"]) and loss[i] < bound:
            return Decision(
                rule="bayesian",
                winner=active[i].name,
                reason=f"P(best) {p_best[i]:.3f} > {bayes['p_best']}"
                f" and expected loss {loss[i]:.4g} < {bound:.4g}",
                evidence=evidence,
                stop_variants=tuple(stopping),
                state=state,
            )
    futility = rules.get("futility")
    if (
        futility
        and treatments
        and n_min >= max(2, float(futility["after_fraction"]) * plan.max_posts_per_variant)
    ):
        highs = {
            v.name: stats.welch_ttest(xc, found[v.name].values, alpha=plan.alpha).high
            for v in treatments
        }
        evidence["upper_bounds"] = {n: round(h, 6) for n, h in highs.items()}
        if all(h < mde for h in highs.values()):
            return Decision(
                rule="futility",
                reason=f"after {n_min} posts per variant every upper bound is below the MDE"
                f" {mde:.4g}: the effect planned for is ruled out",
                evidence=evidence,
                stop_variants=tuple(stopping),
                state=state,
            )
    if n_min >= plan.max_posts_per_variant or days >= plan.max_days:
        return Decision(
            rule="max_duration",
            reason=f"maximum duration reached ({n_min} of {plan.max_posts_per_variant} posts per"
            f" variant, {days:.1f} of {plan.max_days:g} days) without a decision",
            evidence=evidence,
            stop_variants=tuple(stopping),
            state=state,
        )
    return Decision(evidence=evidence, stop_variants=tuple(stopping), state=state)


async def evaluate(agent: Agent, experiment: Experiment, now: datetime) -> Decision:
    """Apply the stop rules to a running experiment and store what they decided."""
    method = agent.config.learning.attribution_method
    found = await samples(agent.store, experiment, method=method, now=now)
    days = (now - (experiment.started_at or now)).total_seconds() / 86_400
    rng = np.random.default_rng(
        [experiment.plan.seed, experiment.id, sum(s.n for s in found.values())]
    )
    decision = decide(experiment, found, days=days, rng=rng)
    account = agent.account(experiment.account_id).name
    for name, why in decision.stop_variants:
        if await agent.store.stop_variant(experiment.id, name, reason=why, now=now):
            log.info(
                "experiment_variant_stopped",
                account=account,
                experiment=experiment.id,
                variant=name,
                reason=why,
            )
    if decision.rule is None:
        if decision.state != experiment.state:
            await agent.store.save_experiment_state(experiment.id, decision.state, now=now)
        return decision
    ended = await agent.store.set_experiment_status(
        experiment.id,
        expected=[RUNNING],
        status=ExperimentStatus.COMPLETED,
        now=now,
        winner=decision.winner,
        decision=decision.rule,
        reason=decision.reason,
        evidence=decision.evidence,
    )
    if ended:
        await agent.store.save_experiment_state(experiment.id, decision.state, now=now)
        log.info(
            "experiment_completed",
            account=account,
            experiment=experiment.id,
            rule=decision.rule,
            winner=decision.winner,
            reason=decision.reason,
        )
        agent.caches.pop(CACHE, None)
        if (
            decision.winner is not None
            and experiment.plan.stop_rules.get("promote", "auto") == "auto"
        ):
            done = await agent.store.get_experiment(experiment.id)
            if done is not None and await promote(agent.store, done, now=now):
                log.info(
                    "experiment_promoted",
                    account=account,
                    experiment=experiment.id,
                    winner=decision.winner,
                    applied=promotion_of(done),
                )
    return decision


async def evaluate_account(agent: Agent, account_id: int, now: datetime) -> list[Decision]:
    """The stop rules of every experiment running on the account (the learn cycle, after each
    learning step)."""
    if account_id not in await experiment_accounts(agent, now):
        return []
    running = await agent.store.experiments(account_id=account_id, statuses=[RUNNING])
    return [await evaluate(agent, e, now) for e in running]


# -- promotion -----------------------------------------------------------------------------------


def promotion_of(experiment: Experiment) -> dict[str, Any]:
    """What promoting the winner applies: the losing values retired (arms, hours), or the
    voice that becomes the account's default."""
    winner = experiment.variant(experiment.winner or "")
    losers = [v.value for v in experiment.variants if v.name != winner.name]
    if experiment.dimension in ("voice", "prompt"):
        return {"winner": winner.value, "retired": {}, experiment.dimension: winner.value}
    if experiment.dimension == "hour":
        keep = hours_in(winner.value)
        retired = sorted(set().union(*(hours_in(v) for v in losers)) - keep)
        return {"winner": winner.value, "retired": {"hour": retired}}
    return {"winner": winner.value, "retired": {experiment.dimension: sorted(losers)}}


async def promote(store: Any, experiment: Experiment, *, now: datetime, undo: bool = False) -> bool:
    """Apply (or undo) the winner of an ended experiment, with its learning_updates row; False
    when it cannot be (see ``Store.record_promotion``). Logs nothing: the daemon logs
    ``experiment_promoted``, the command prints."""
    if experiment.winner is None:
        return False
    applied = promotion_of(experiment)
    evidence = {
        "decision": experiment.decision,
        "reason": experiment.reason,
        "winner": experiment.winner,
        **experiment.evidence,
    }
    return bool(
        await store.record_promotion(
            experiment.id, undo=undo, evidence=evidence, updates_applied=applied, now=now
        )
    )
