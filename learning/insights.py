"""Insights and recommendations: statements with a number, a 90% interval and a probability.

Pure computation (numpy/scipy, no I/O, no clock: ``now`` and a generator are passed in). The
daemon gathers the inputs (agent/insights.py) and stores the result (table ``insights``); the
operator reads them with ``growthloop insights``, the report and the dashboard.

One truth: what an arm, a topic or a posting hour is worth comes from the deciding policy's
:class:`~learning.estimates.Estimates` (the learn cycle's ``arm_statistics``), never from a
second model. The other insights read the account's own series: the hourly health rows (follower
gains, publish and poll outcomes, spend) and its posts' attributed followers and engagements.

Every insight has a stable ``key`` (kind and subject): computed again an hour later it updates
the same stored row. Thresholds are named below with where their value came from; the reference
with the formulas is docs/insights.md.

Kinds (``Kind``): ``leader`` per dimension (only when the evidence is not flat), ``best_hour`` /
``worst_hour``, ``platform``, ``conversion`` (engagement vs follows), the anomalies
``followers_below``, ``publish_failures``, ``poll_failures``, ``spend_per_follower``, the
``period`` comparisons, and the recommendations ``retire_arm``, ``add_topics`` and ``cadence``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from learning.estimates import Z_90, ArmEstimate, Estimates, sample_interval

# -- thresholds (docs/insights.md says why each has its value) -----------------------------------

# A leader is claimed only with P(best) at least this: the 95% "probability to be best" at which
# Bayesian A/B tools (Google Optimize, VWO SmartStats) declare a winner. Equal arms give each
# dimension's leader P(best) near 1/k (k arms), far below it.
LEADER_P_BEST = 0.95
# ... and only when the leader's and the runner-up's 90% intervals overlap by less than this
# share of the narrower one ("heavy" overlap: more than half; intervals that overlap by half
# still separate the means at about the 80% level for equal widths).
LEADER_MAX_OVERLAP = 0.5
HOUR_MIN_POSTS = 3  # an hour with fewer learned posts is not called best or worst (too few)
# Recommend retiring an arm once its dimension has this many learned posts (the example)
# and the arm's P(best) is below RETIRE_P_BEST with its interval entirely below the leader's mean.
RETIRE_AFTER_POSTS = 200
RETIRE_P_BEST = 0.01  # one in a hundred: the arm essentially never wins a posterior draw
# Topics are "flat" once this many topic posts (5 per topic for the example config's 6 topics,
# a minimum for the 90% intervals to mean anything) leave no topic with P(best) >= this.
TOPIC_FLAT_AFTER_POSTS = 30
TOPIC_FLAT_P_BEST = 0.5
# Cadence: followers per post against posts per day over at least this many days (two weeks:
# every weekday twice), a falling slope with one-sided p below CADENCE_P.
CADENCE_MIN_DAYS = 14
CADENCE_P = 0.05  # the conventional 5% level
# Anomalies.
ANOMALY_RECENT_DAYS = 2  # the follower series' recent window (the attribution lag is ~1 day)
ANOMALY_BASELINE_DAYS = 14  # the window before it that sets the expectation
ANOMALY_MIN_BASELINE_DAYS = 7  # fewer complete days: no expectation yet
ANOMALY_MIN_DROP = 0.3  # a shortfall below 30% of the expectation is not called an anomaly
WARNING_Z = 2.0  # standard errors below the expectation: a warning (P about 0.98)
CRITICAL_Z = 3.0  # ... critical (P about 0.999)
RATE_RECENT = timedelta(days=1)  # failure rates: the last day against ...
RATE_BEFORE = timedelta(days=7)  # ... the week before it
RISING_P = 0.95  # P(recent rate > rate before) needed to call a rate rising
MIN_FAILURE_RATE = 0.1  # a recent failure rate below 10% is not an anomaly however it moved
CRITICAL_FAILURE_RATE = 0.5  # half of the attempts failing: critical
MIN_TRIALS = 3  # publish attempts or due polls in the recent window (fewer: no rate)
SPEND_RECENT = timedelta(days=7)  # spend per follower: the last week against ...
SPEND_BEFORE = timedelta(days=28)  # ... the four weeks before it
SPEND_MIN_RISE = 0.25  # a rise of less than 25% is noise for a cost figure
CRITICAL_SPEND_RATIO = 2.0  # cost per follower doubled: critical
# Engagement vs follows: posts with at least the median engagements of the account's posts that
# gained fewer than NO_FOLLOW followers (an attributed gain that rounds to zero).
CONVERSION_MIN_POSTS = 20  # engaged posts needed
NO_FOLLOW = 0.5
CONVERSION_WARN_SHARE = 0.5  # half of the engaged posts bring nobody: a warning
PERIODS = (7, 30)  # period comparisons, days
PLATFORM_MIN_POSTS = 20  # posts per platform before platforms are compared
DRAWS = 4000  # posterior draws behind a probability (Monte Carlo error below 0.01)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Kind(StrEnum):
    LEADER = "leader"
    BEST_HOUR = "best_hour"
    WORST_HOUR = "worst_hour"
    PLATFORM = "platform"
    CONVERSION = "conversion"
    FOLLOWERS_BELOW = "followers_below"
    PUBLISH_FAILURES = "publish_failures"
    POLL_FAILURES = "poll_failures"
    SPEND_PER_FOLLOWER = "spend_per_follower"
    PERIOD = "period"
    RETIRE_ARM = "retire_arm"
    ADD_TOPICS = "add_topics"
    CADENCE = "cadence"


RECOMMENDATIONS = frozenset({Kind.RETIRE_ARM, Kind.ADD_TOPICS, Kind.CADENCE})


@dataclass(frozen=True, slots=True, kw_only=True)
class Insight:
    """One statement: ``value`` (in ``unit``) with its 90% interval ``[low, high]`` and the
    ``probability`` of the claim; ``evidence`` is JSON-ready. ``key`` (kind and subject) is
    stable: the same insight computed again replaces the stored one."""

    kind: Kind
    subject: str
    statement: str
    value: float
    low: float
    high: float
    probability: float
    unit: str
    severity: Severity = Severity.INFO
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.subject}"

    @property
    def recommendation(self) -> bool:
        return self.kind in RECOMMENDATIONS


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRecord:
    """One published post: when, its arms (``hour``: its local posting-hour label), its
    attributed followers (None until attributed) and engagements."""

    posted_at: datetime
    arms: Mapping[str, str]
    followers: float | None
    engagements: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthHour:
    """One hour of an account's health row (``system_health_metrics``)."""

    hour: datetime
    posts_succeeded: int = 0
    posts_failed: int = 0
    polls_due: int = 0
    polls_done: int = 0
    polls_late: int = 0
    followers_gained: float = 0.0
    spend_usd: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInputs:
    """Everything one account's insights are computed from."""

    estimates: Estimates | None
    posts: Sequence[PostRecord] = ()
    health: Sequence[HealthHour] = ()


def _r(x: Any, digits: int = 2) -> float:
    return round(float(x), digits)


def _sd(estimate: ArmEstimate) -> float:
    """The normal standard deviation a 90% interval implies."""
    return max((estimate.high - estimate.low) / (2 * Z_90), 1e-12)


def overlap(a: ArmEstimate, b: ArmEstimate) -> float:
    """How much two 90% intervals overlap, as a share of the narrower one (0: apart, 1: one
    inside the other)."""
    shared = min(a.high, b.high) - max(a.low, b.low)
    narrower = min(a.high - a.low, b.high - b.low)
    if narrower <= 0:
        return 0.0 if shared < 0 else 1.0
    return float(min(max(shared / narrower, 0.0), 1.0))


def _arm(e: ArmEstimate) -> dict[str, Any]:
    return e.as_dict()


# -- from the deciding model ---------------------------------------------------------------------


def leaders(estimates: Estimates) -> list[Insight]:
    """Per dimension (hours apart), the leading arm, when its P(best) reaches LEADER_P_BEST and
    its interval does not overlap the runner-up's heavily; flat evidence gives nothing."""
    found = []
    for dimension, arms in estimates.dimensions.items():
        if dimension == "hour" or len(arms) < 2:
            continue
        lead, runner = arms[0], arms[1]
        shared = overlap(lead, runner)
        if lead.p_best < LEADER_P_BEST or shared > LEADER_MAX_OVERLAP:
            continue
        margin = lead.mean - runner.mean
        found.append(
            Insight(
                kind=Kind.LEADER,
                subject=dimension,
                statement=(
                    f"{dimension} '{lead.arm}' leads: {lead.mean:.2f} {estimates.unit} "
                    f"(90% {lead.low:.2f}-{lead.high:.2f}) after {lead.posts} posts, "
                    f"{margin:+.2f} over '{runner.arm}'; P(best) {lead.p_best:.2f}"
                ),
                value=lead.mean,
                low=lead.low,
                high=lead.high,
                probability=lead.p_best,
                unit=estimates.unit,
                evidence={
                    "model": estimates.model,
                    "arm": lead.arm,
                    "leader": _arm(lead),
                    "runner_up": _arm(runner),
                    "interval_overlap": _r(shared, 3),
                },
            )
        )
    return found


def _better(a: ArmEstimate, b: ArmEstimate) -> float:
    """P(a's mean > b's) under independent normal posteriors read off the 90% intervals."""
    z = (a.mean - b.mean) / math.hypot(_sd(a), _sd(b))
    return float(stats.norm.cdf(z))


def hours(estimates: Estimates) -> list[Insight]:
    """The best and the worst posting hour of the model's ``hour`` dimension (hours with
    HOUR_MIN_POSTS learned posts), only when the two intervals do not overlap."""
    arms = [a for a in estimates.dimensions.get("hour", ()) if a.posts >= HOUR_MIN_POSTS]
    if len(arms) < 2:
        return []
    best, worst = arms[0], arms[-1]
    if best.low <= worst.high:
        return []  # no hour stands out
    p = _better(best, worst)
    evidence = {"model": estimates.model, "best": _arm(best), "worst": _arm(worst)}
    return [
        Insight(
            kind=Kind.BEST_HOUR,
            subject="hour",
            statement=(
                f"best posting hour {best.arm}: {best.mean:.2f} {estimates.unit} "
                f"(90% {best.low:.2f}-{best.high:.2f}, {best.posts} posts); P(best) "
                f"{best.p_best:.2f}, P(better than {worst.arm}) {p:.2f}"
            ),
            value=best.mean,
            low=best.low,
            high=best.high,
            probability=p,
            unit=estimates.unit,
            evidence=evidence | {"arm": best.arm},
        ),
        Insight(
            kind=Kind.WORST_HOUR,
            subject="hour",
            statement=(
                f"worst posting hour {worst.arm}: {worst.mean:.2f} {estimates.unit} "
                f"(90% {worst.low:.2f}-{worst.high:.2f}, {worst.posts} posts); "
                f"P(worse than {best.arm}) {p:.2f}"
            ),
            value=worst.mean,
            low=worst.low,
            high=worst.high,
            probability=p,
            unit=estimates.unit,
            evidence=evidence | {"arm": worst.arm},
        ),
    ]


def retire(estimates: Estimates) -> list[Insight]:
    """Arms that have not won after RETIRE_AFTER_POSTS posts of their dimension: P(best) below
    RETIRE_P_BEST and the whole interval below the leader's mean."""
    found = []
    for dimension, arms in estimates.dimensions.items():
        if dimension == "hour" or len(arms) < 2:
            continue
        total = sum(a.posts for a in arms)
        if total < RETIRE_AFTER_POSTS:
            continue
        lead = arms[0]
        for arm in arms[1:]:
            if arm.p_best >= RETIRE_P_BEST or arm.high >= lead.mean:
                continue
            found.append(
                Insight(
                    kind=Kind.RETIRE_ARM,
                    subject=f"{dimension}:{arm.arm}",
                    statement=(
                        f"retire {dimension} '{arm.arm}'? {arm.mean:.2f} {estimates.unit} "
                        f"(90% {arm.low:.2f}-{arm.high:.2f}) against '{lead.arm}' "
                        f"{lead.mean:.2f}; it won no more than {arm.p_best:.1%} of the model's "
                        f"draws after {total} {dimension} posts ({arm.posts} its own)"
                    ),
                    value=arm.mean,
                    low=arm.low,
                    high=arm.high,
                    probability=1.0 - arm.p_best,
                    unit=estimates.unit,
                    evidence={
                        "model": estimates.model,
                        "arm": _arm(arm),
                        "leader": _arm(lead),
                        "dimension_posts": total,
                    },
                )
            )
    return found


def add_topics(estimates: Estimates) -> list[Insight]:
    """Recommend new topics when the topic dimension is flat: TOPIC_FLAT_AFTER_POSTS posts and
    no topic with P(best) of TOPIC_FLAT_P_BEST."""
    arms = estimates.dimensions.get("topic", ())
    total = sum(a.posts for a in arms)
    if len(arms) < 2 or total < TOPIC_FLAT_AFTER_POSTS:
        return []
    top = max(arms, key=lambda a: a.p_best)
    if top.p_best >= TOPIC_FLAT_P_BEST:
        return []
    spread = arms[0].mean - arms[-1].mean
    return [
        Insight(
            kind=Kind.ADD_TOPICS,
            subject="topic",
            statement=(
                f"the {len(arms)} topics are hard to tell apart after {total} posts (most likely "
                f"best '{top.arm}' at P(best) {top.p_best:.2f}, means within {spread:.2f} "
                f"{estimates.unit}): add new topics to give the learner something to find"
            ),
            value=spread,
            low=min(a.low for a in arms),
            high=max(a.high for a in arms),
            probability=1.0 - top.p_best,
            unit=estimates.unit,
            evidence={"model": estimates.model, "topics": [_arm(a) for a in arms]},
        )
    ]


def posts_by_hour(posts: Sequence[PostRecord], unit: str) -> Estimates | None:
    """A stand-in ``hour`` dimension from the posts' own followers (the deciding policy does
    not learn hours): sample means with normal 90% intervals and P(best) from normal draws made
    with a fixed generator (no choice depends on it)."""
    by_hour: dict[str, list[float]] = {}
    for p in posts:
        if p.followers is not None and "hour" in p.arms:
            by_hour.setdefault(p.arms["hour"], []).append(p.followers)
    if len(by_hour) < 2:
        return None
    names = sorted(by_hour)
    moments = [sample_interval(by_hour[h]) for h in names]
    means = np.array([m[0] for m in moments])
    sds = np.array([max((m[2] - m[1]) / (2 * Z_90), 1e-9) for m in moments])
    draws = np.random.default_rng(0).normal(means, sds, size=(DRAWS, len(names)))
    wins = np.bincount(np.argmax(draws, axis=1), minlength=len(names)) / DRAWS
    arms = tuple(
        sorted(
            (
                ArmEstimate(
                    arm=h, posts=len(by_hour[h]), mean=m[0], low=m[1], high=m[2], p_best=float(w)
                )
                for h, m, w in zip(names, moments, wins, strict=True)
            ),
            key=lambda a: (-a.mean, a.arm),
        )
    )
    return Estimates(model="posts", unit=unit, dimensions={"hour": arms})


# -- from the account's series -------------------------------------------------------------------


def daily(health: Sequence[HealthHour], now: datetime) -> list[tuple[datetime, list[HealthHour]]]:
    """The health hours grouped into complete days ending at the last full hour before ``now``
    (oldest first; day ``i`` covers [end - (n-i) days, end - (n-i-1) days))."""
    if not health:
        return []
    end = now.replace(minute=0, second=0, microsecond=0)
    first = min(h.hour for h in health)
    n = int((end - first) / timedelta(days=1))
    days: list[tuple[datetime, list[HealthHour]]] = [
        (end - timedelta(days=n - i), []) for i in range(n)
    ]
    for h in health:
        i = n - 1 - int((end - h.hour - timedelta(seconds=1)) / timedelta(days=1))
        if 0 <= i < n and h.hour < end:
            days[i][1].append(h)
    return days


def followers_below(health: Sequence[HealthHour], now: datetime) -> list[Insight]:
    """The follower gain of the last ANOMALY_RECENT_DAYS days far below the daily gain of the
    ANOMALY_BASELINE_DAYS before (the expectation), in standard errors (at least Poisson's)."""
    days = daily(health, now)
    gains = np.array([sum(h.followers_gained for h in hs) for _, hs in days], dtype=float)
    recent_n = ANOMALY_RECENT_DAYS
    base = gains[:-recent_n][-ANOMALY_BASELINE_DAYS:]
    if len(base) < ANOMALY_MIN_BASELINE_DAYS:
        return []
    recent = gains[-recent_n:]
    expected = float(np.mean(base))
    seen = float(np.mean(recent))
    sd = max(float(np.std(base, ddof=1)), math.sqrt(max(expected, 1.0)))
    se = sd * math.sqrt(1 / recent_n + 1 / len(base))
    z = (seen - expected) / se
    if z > -WARNING_Z or seen > (1 - ANOMALY_MIN_DROP) * expected:
        return []
    diff = seen - expected
    p = float(stats.norm.cdf(-z))
    return [
        Insight(
            kind=Kind.FOLLOWERS_BELOW,
            subject="followers",
            statement=(
                f"followers are far below expectation: {seen:.1f}/day over the last "
                f"{recent_n} days against {expected:.1f}/day in the {len(base)} days before "
                f"({diff:+.1f}/day, 90% {diff - Z_90 * se:+.1f} to {diff + Z_90 * se:+.1f}, "
                f"{-z:.1f} standard errors); P(below) {p:.3f}"
            ),
            value=seen,
            low=seen - Z_90 * sd / math.sqrt(recent_n),
            high=seen + Z_90 * sd / math.sqrt(recent_n),
            probability=p,
            unit="followers per day",
            severity=Severity.CRITICAL if z <= -CRITICAL_Z else Severity.WARNING,
            evidence={
                "recent_per_day": [_r(g, 1) for g in recent],
                "baseline_mean": _r(expected),
                "baseline_sd": _r(sd),
                "z": _r(z),
            },
        )
    ]


def _window(health: Sequence[HealthHour], start: datetime, end: datetime) -> list[HealthHour]:
    return [h for h in health if start <= h.hour < end]


def _beta(events: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a rate's posterior under Jeffreys' prior Beta(1/2, 1/2)."""
    return rng.beta(events + 0.5, trials - events + 0.5, size=DRAWS)


def rate_rising(
    kind: Kind,
    what: str,
    recent: tuple[int, int],
    before: tuple[int, int],
    rng: np.random.Generator,
) -> list[Insight]:
    """A failure rate (``(failures, trials)``) rising from the week before to the last day:
    P(recent rate > earlier rate) at least RISING_P and the recent rate at least
    MIN_FAILURE_RATE."""
    (e1, n1), (e0, n0) = recent, before
    if n1 < MIN_TRIALS:
        return []
    now_rate, was_rate = e1 / n1, (e0 / n0 if n0 else 0.0)
    if now_rate < MIN_FAILURE_RATE:
        return []
    p = float(np.mean(_beta(e1, n1, rng) > _beta(e0, n0, rng)))
    if p < RISING_P:
        return []
    low, high = stats.beta.ppf([0.05, 0.95], e1 + 0.5, n1 - e1 + 0.5)
    return [
        Insight(
            kind=kind,
            subject=what,
            statement=(
                f"{what} failures rising: {e1} of {n1} ({now_rate:.0%}, 90% {low:.0%}-{high:.0%}) "
                f"in the last day against {e0} of {n0} ({was_rate:.0%}) in the week before; "
                f"P(rising) {p:.2f}"
            ),
            value=now_rate,
            low=float(low),
            high=float(high),
            probability=p,
            unit="share failed",
            severity=Severity.CRITICAL if now_rate >= CRITICAL_FAILURE_RATE else Severity.WARNING,
            evidence={"recent": [e1, n1], "before": [e0, n0]},
        )
    ]


def failures(
    health: Sequence[HealthHour], now: datetime, rng: np.random.Generator
) -> list[Insight]:
    """Publish failures (failed of failed + published) and poll failures (late or missed of the
    polls due), last day against the week before."""
    end = now.replace(minute=0, second=0, microsecond=0)
    split = end - RATE_RECENT
    recent = _window(health, split, end)
    before = _window(health, split - RATE_BEFORE, split)

    def publish(hs: list[HealthHour]) -> tuple[int, int]:
        failed = sum(h.posts_failed for h in hs)
        return failed, failed + sum(h.posts_succeeded for h in hs)

    def polls(hs: list[HealthHour]) -> tuple[int, int]:
        due = sum(h.polls_due for h in hs)
        missed = max(due - sum(h.polls_done for h in hs), 0)
        return min(missed + sum(h.polls_late for h in hs), due), due

    return [
        *rate_rising(Kind.PUBLISH_FAILURES, "publish", publish(recent), publish(before), rng),
        *rate_rising(Kind.POLL_FAILURES, "poll", polls(recent), polls(before), rng),
    ]


def spend_per_follower(
    health: Sequence[HealthHour], now: datetime, rng: np.random.Generator
) -> list[Insight]:
    """Spend per follower of the last week against the four weeks before: followers as a
    Poisson count (Gamma posterior), spend as billed; rising by SPEND_MIN_RISE or more with
    probability RISING_P."""
    end = now.replace(minute=0, second=0, microsecond=0)
    split = end - SPEND_RECENT
    recent = _window(health, split, end)
    before = _window(health, split - SPEND_BEFORE, split)
    if not before or min(h.hour for h in before) > split - SPEND_BEFORE + timedelta(hours=1):
        return []  # the earlier window is not fully covered
    s1, s0 = sum(h.spend_usd for h in recent), sum(h.spend_usd for h in before)
    f1 = max(sum(h.followers_gained for h in recent), 0.0)
    f0 = max(sum(h.followers_gained for h in before), 0.0)
    if s1 <= 0 or s0 <= 0 or f0 <= 0:
        return []
    cpf1 = s1 / rng.gamma(f1 + 0.5, size=DRAWS)
    cpf0 = s0 / rng.gamma(f0 + 0.5, size=DRAWS)
    p = float(np.mean(cpf1 > (1 + SPEND_MIN_RISE) * cpf0))
    if p < RISING_P:
        return []
    now_cpf, was_cpf = s1 / max(f1, 0.5), s0 / f0
    low, high = np.quantile(cpf1, [0.05, 0.95])
    ratio = now_cpf / was_cpf
    return [
        Insight(
            kind=Kind.SPEND_PER_FOLLOWER,
            subject="spend",
            statement=(
                f"spend per follower rising: ${now_cpf:.3f} in the last 7 days (90% "
                f"${low:.3f}-${high:.3f}) against ${was_cpf:.3f} in the 28 days before "
                f"(x{ratio:.1f}); P(up by {SPEND_MIN_RISE:.0%} or more) {p:.2f}"
            ),
            value=now_cpf,
            low=float(low),
            high=float(high),
            probability=p,
            unit="USD per follower",
            severity=Severity.CRITICAL if ratio >= CRITICAL_SPEND_RATIO else Severity.WARNING,
            evidence={
                "recent": {"spend_usd": _r(s1, 4), "followers": _r(f1, 1)},
                "before": {"spend_usd": _r(s0, 4), "followers": _r(f0, 1)},
            },
        )
    ]


def periods(health: Sequence[HealthHour], now: datetime) -> list[Insight]:
    """Followers gained per day in the last 7 (30) days against the 7 (30) before: the
    difference of the daily means with a Welch 90% interval and P(up)."""
    days = daily(health, now)
    found = []
    for n in PERIODS:
        if len(days) < 2 * n:
            continue
        gains = [sum(h.followers_gained for h in hs) for _, hs in days]
        posts = [sum(h.posts_succeeded for h in hs) for _, hs in days]
        now_g, was_g = np.array(gains[-n:]), np.array(gains[-2 * n : -n])
        diff = float(now_g.mean() - was_g.mean())
        se = math.sqrt(now_g.var(ddof=1) / n + was_g.var(ddof=1) / n) or 1e-9
        p = float(stats.norm.cdf(diff / se))
        now_posts, was_posts = sum(posts[-n:]), sum(posts[-2 * n : -n])
        found.append(
            Insight(
                kind=Kind.PERIOD,
                subject=f"{n}d",
                statement=(
                    f"last {n} days: {now_g.sum():.0f} followers ({now_g.mean():.1f}/day, "
                    f"{now_posts} posts) against {was_g.sum():.0f} ({was_g.mean():.1f}/day, "
                    f"{was_posts} posts) in the {n} before: {diff:+.1f}/day (90% "
                    f"{diff - Z_90 * se:+.1f} to {diff + Z_90 * se:+.1f}); P(up) {p:.2f}"
                ),
                value=diff,
                low=diff - Z_90 * se,
                high=diff + Z_90 * se,
                probability=p,
                unit="followers per day",
                evidence={
                    "current": {"followers": _r(now_g.sum(), 1), "posts": now_posts},
                    "previous": {"followers": _r(was_g.sum(), 1), "posts": was_posts},
                },
            )
        )
    return found


def cadence(health: Sequence[HealthHour], now: datetime) -> list[Insight]:
    """Recommend fewer posts a day when followers per post fall as posts per day rise: a least
    squares line through the days with posts, over CADENCE_MIN_DAYS days or more, with a
    negative slope at one-sided p < CADENCE_P."""
    points = [
        (float(sum(h.posts_succeeded for h in hs)), sum(h.followers_gained for h in hs))
        for _, hs in daily(health, now)
    ]
    points = [(n, g / n) for n, g in points if n > 0]
    if len(points) < CADENCE_MIN_DAYS:
        return []
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return []  # the same cadence (or gain per post) every day: nothing to compare
    fit = stats.linregress(x, y)
    p_one_sided = fit.pvalue / 2 if fit.slope < 0 else 1 - fit.pvalue / 2
    if p_one_sided >= CADENCE_P:
        return []
    t = stats.t.ppf(0.95, len(points) - 2)
    low, high = fit.slope - t * fit.stderr, fit.slope + t * fit.stderr
    return [
        Insight(
            kind=Kind.CADENCE,
            subject="posts_per_day",
            statement=(
                f"post less often? each extra post a day goes with {fit.slope:+.2f} followers "
                f"per post (90% {low:+.2f} to {high:+.2f}) over {len(points)} days of "
                f"{x.min():.0f}-{x.max():.0f} posts a day; P(falls) {1 - p_one_sided:.2f}"
            ),
            value=float(fit.slope),
            low=float(low),
            high=float(high),
            probability=1.0 - float(p_one_sided),
            unit="followers per post per extra daily post",
            evidence={"days": len(points), "intercept": _r(fit.intercept), "r": _r(fit.rvalue)},
        )
    ]


def conversion(posts: Sequence[PostRecord]) -> list[Insight]:
    """Engagement vs follows: of the posts with at least the median engagements, the share that
    brought no follower (attributed gain below NO_FOLLOW), with a Jeffreys 90% interval, and the
    rank correlation of engagements and followers over all attributed posts."""
    done = [p for p in posts if p.followers is not None]
    if not done:
        return []
    median = float(np.median([p.engagements for p in done]))
    engaged = [p for p in done if p.engagements >= median and p.engagements > 0]
    if len(engaged) < CONVERSION_MIN_POSTS:
        return []
    none = sum(1 for p in engaged if (p.followers or 0.0) < NO_FOLLOW)
    n = len(engaged)
    share = none / n
    low, high = stats.beta.ppf([0.05, 0.95], none + 0.5, n - none + 0.5)
    xs = [p.engagements for p in done]
    ys = [p.followers or 0.0 for p in done]
    rho, rho_p = 0.0, 1.0  # no correlation to speak of when either series is constant
    if np.ptp(xs) > 0 and np.ptp(ys) > 0:
        result = stats.spearmanr(xs, ys)
        rho, rho_p = float(result.statistic), float(result.pvalue)
    return [
        Insight(
            kind=Kind.CONVERSION,
            subject="engagement",
            statement=(
                f"{none} of {n} posts with {median:.0f}+ engagements brought no follower "
                f"({share:.0%}, 90% {low:.0%}-{high:.0%}); engagements and followers rank-"
                f"correlate at {rho:.2f} over {len(done)} posts"
            ),
            value=share,
            low=float(low),
            high=float(high),
            probability=1.0 - rho_p,
            unit="share of engaged posts",
            severity=Severity.WARNING if share >= CONVERSION_WARN_SHARE else Severity.INFO,
            evidence={"engaged_posts": n, "no_follow": none, "median": median, "rho": _r(rho)},
        )
    ]


def platforms(followers_per_post: Mapping[str, Sequence[float]], unit: str) -> list[Insight]:
    """Across accounts: the best and the worst platform by mean followers per post (platforms
    with PLATFORM_MIN_POSTS attributed posts), with normal 90% intervals and P(best > worst)."""
    rows = [
        (name, *sample_interval(values), len(values))
        for name, values in sorted(followers_per_post.items())
        if len(values) >= PLATFORM_MIN_POSTS
    ]
    if len(rows) < 2:
        return []
    rows.sort(key=lambda r: (-r[1], r[0]))
    (best, bm, bl, bh, bn), (worst, wm, wl, wh, wn) = rows[0], rows[-1]
    se = math.hypot((bh - bl) / (2 * Z_90), (wh - wl) / (2 * Z_90)) or 1e-9
    diff = bm - wm
    p = float(stats.norm.cdf(diff / se))
    return [
        Insight(
            kind=Kind.PLATFORM,
            subject="platforms",
            statement=(
                f"{best} brings {bm:.2f} {unit} (90% {bl:.2f}-{bh:.2f}, {bn} posts) against "
                f"{worst}'s {wm:.2f} ({wl:.2f}-{wh:.2f}, {wn} posts): {diff:+.2f} "
                f"(90% {diff - Z_90 * se:+.2f} to {diff + Z_90 * se:+.2f}); P({best} better) "
                f"{p:.2f}"
            ),
            value=diff,
            low=diff - Z_90 * se,
            high=diff + Z_90 * se,
            probability=p,
            unit=unit,
            evidence={
                "platforms": {
                    r[0]: {"mean": _r(r[1]), "interval_90": [_r(r[2]), _r(r[3])], "posts": r[4]}
                    for r in rows
                }
            },
        )
    ]


def account_insights(
    inputs: AccountInputs, now: datetime, rng: np.random.Generator
) -> list[Insight]:
    """Every insight and recommendation for one account, most severe first."""
    found: list[Insight] = []
    belief = inputs.estimates
    if belief is not None:
        found += leaders(belief) + retire(belief) + add_topics(belief)
        by_hour = belief if "hour" in belief.dimensions else None
    else:
        by_hour = None
    unit = belief.unit if belief is not None else "followers per post"
    if by_hour is None:
        by_hour = posts_by_hour(inputs.posts, unit)
    if by_hour is not None:
        found += hours(by_hour)
    found += conversion(inputs.posts)
    found += followers_below(inputs.health, now)
    found += failures(inputs.health, now, rng)
    found += spend_per_follower(inputs.health, now, rng)
    found += periods(inputs.health, now)
    found += cadence(inputs.health, now)
    return ranked(found)


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def ranked(found: Iterable[Insight]) -> list[Insight]:
    """Most severe first, then by kind and subject (a stable order)."""
    return sorted(found, key=lambda i: (SEVERITY_ORDER[i.severity], i.kind.value, i.subject))
