"""The report's sections of later capabilities: the audience (issue 19) and planned experiments
(issue 20), gathered per account through the same calls as their commands, so the report, the
dashboard, ``/api/`` and the terminal agree (one truth):

- **audience**: :func:`agent.audience.report` (``growthloop audience``): members, followers,
  tier sizes, top fans, weekly cohort retention and churn, and the followers each arm brought
  and kept; plus **tier sizes over time**, the members' tiers recomputed from their
  interactions at the end of each week of the period (:func:`agent.audience.scores_of`, the
  daily upkeep's scoring);
- **experiments**: the account's experiments (``Store.experiments``) with each variant's learned
  posts (:func:`agent.experiments.samples`, as ``growthloop experiments show``): its mean with a
  95% t interval, and the Welch interval of its difference from the control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import stats as scipy_stats

from agent import audience as audience_figures
from agent.audience_models import AudienceInteraction, AudienceMember
from agent.config import Config
from agent.models import Experiment
from agent.store.base import Store
from learning import audience as maths
from learning.experiments import welch_ttest

TOP_FANS = 10
RETENTION_WEEKS = maths.RETENTION_WEEKS
MAX_TIER_POINTS = 13  # weekly tier counts shown (a quarter)
KEPT_DAYS = (7, 30)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fan:
    handle: str
    score: float
    tier: str
    followed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TierPoint:
    """Members per tier at one moment (members first seen by then)."""

    at: datetime
    tiers: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmKept:
    dimension: str
    arm: str
    brought: int
    kept: dict[int, float | None]  # days -> share still following (None: none that old)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceView:
    members: int
    followers: int
    tiers: dict[str, int]
    tiers_over_time: tuple[TierPoint, ...]
    top: tuple[Fan, ...]
    cohorts: tuple[maths.Cohort, ...]
    churn: tuple[maths.WeekChurn, ...]
    by_arm: tuple[ArmKept, ...]
    retention_weeks: tuple[int, ...] = tuple(RETENTION_WEEKS)


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantView:
    name: str
    value: str
    control: bool
    posts: int
    mean: float | None
    low: float | None  # 95% t interval of the mean (None below two posts)
    high: float | None
    diff: float | None  # mean minus the control's, Welch 95% interval
    diff_low: float | None
    diff_high: float | None
    active: bool
    stopped_reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentView:
    id: int
    name: str
    hypothesis: str
    status: str
    dimension: str
    metric: str
    started_at: datetime | None
    stopped_at: datetime | None
    variants: tuple[VariantView, ...]
    decision: str | None
    winner: str | None
    reason: str | None
    promoted: bool


async def audience_view(
    store: Store, config: Config, account_id: int, *, start: datetime, end: datetime
) -> AudienceView | None:
    """The account's audience at ``end`` (None: no member recorded)."""
    if account_id not in await store.audience_accounts():
        return None
    found = await audience_figures.report(store, account_id, now=end, top=TOP_FANS)
    members = await store.audience_members(account_id)
    interactions = await store.audience_interactions(account_id)
    return AudienceView(
        members=found.members,
        followers=found.followers,
        tiers={str(t): n for t, n in found.tiers.items()},
        tiers_over_time=_tiers_over_time(config, members, interactions, start=start, end=end),
        top=tuple(
            Fan(
                handle=m.handle or m.user_id,
                score=m.engagement_score,
                tier=str(m.tier),
                followed_at=m.followed_at,
            )
            for m in found.top
        ),
        cohorts=tuple(c for c in found.cohorts if c.week >= maths.week_start(start)),
        churn=tuple(found.churn),
        by_arm=tuple(
            ArmKept(
                dimension=dimension,
                arm=arm,
                brought=kept.brought,
                kept={d: kept.share(d) for d in KEPT_DAYS},
            )
            for (dimension, arm), kept in sorted(found.by_arm.items())
        ),
    )


def _tiers_over_time(
    config: Config,
    members: Sequence[AudienceMember],
    interactions: Sequence[AudienceInteraction],
    *,
    start: datetime,
    end: datetime,
) -> tuple[TierPoint, ...]:
    """Members per tier at the end of each week of [start, end] (at most
    :data:`MAX_TIER_POINTS`, the latest kept), scored as the daily upkeep scores them."""
    weeks = max(1, math.ceil((end - start) / timedelta(weeks=1)))
    points = [end - timedelta(weeks=k) for k in range(min(weeks, MAX_TIER_POINTS - 1), -1, -1)]
    points = [p for p in points if p >= start] or [end]
    settings = config.audience
    out = []
    for at in points:
        seen = [m for m in members if m.first_seen_at <= at]
        events = [(i.member_id, str(i.kind), i.at) for i in interactions if i.at <= at]
        counts = {str(t): 0 for t in audience_figures.TIER_ORDER}
        for score in audience_figures.scores_of(settings, list(seen), events, now=at):
            counts[str(score.tier)] += 1
        out.append(TierPoint(at=at, tiers=counts))
    return tuple(out)


def _mean_interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    sem = float(scipy_stats.sem(x))
    if sem == 0.0:
        return mean, mean, mean
    low, high = scipy_stats.t.interval(0.95, x.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


async def experiment_views(
    store: Store, config: Config, account_id: int, *, start: datetime, end: datetime
) -> tuple[ExperimentView, ...]:
    """The account's experiments that ran in [start, end) or are running or drafted now,
    newest first."""
    from agent.experiments import samples  # agent.experiments imports the agent's core

    out = []
    for e in await store.experiments(account_id=account_id):
        if e.stopped_at is not None and e.stopped_at < start:
            continue
        if e.started_at is not None and e.started_at >= end:
            continue
        found = await samples(store, e, method=config.learning.attribution_method, now=end)
        out.append(_experiment_view(e, found))
    return tuple(sorted(out, key=lambda v: -v.id))


def _experiment_view(e: Experiment, found: dict) -> ExperimentView:  # type: ignore[type-arg]
    control = next((v for v in e.variants if v.control), e.variants[0])
    base = found[control.name].values
    variants = []
    for v in e.variants:
        values = found[v.name].values
        mean, low, high = _mean_interval(values)
        diff = diff_low = diff_high = None
        if not v.control and len(values) >= 2 and len(base) >= 2:
            t = welch_ttest(base, values)
            if all(math.isfinite(x) for x in (t.estimate, t.low, t.high)):
                diff, diff_low, diff_high = t.estimate, t.low, t.high
        variants.append(
            VariantView(
                name=v.name,
                value=v.value,
                control=v.control,
                posts=len(values),
                mean=mean,
                low=low,
                high=high,
                diff=diff,
                diff_low=diff_low,
                diff_high=diff_high,
                active=v.active,
                stopped_reason=v.stopped_reason,
            )
        )
    return ExperimentView(
        id=e.id,
        name=e.plan.name,
        hypothesis=e.plan.hypothesis,
        status=e.status.value,
        dimension=e.plan.dimension,
        metric=e.plan.metric,
        started_at=e.started_at,
        stopped_at=e.stopped_at,
        variants=tuple(variants),
        decision=e.decision,
        winner=e.winner,
        reason=e.reason,
        promoted=e.promoted,
    )
