"""What a report shows, gathered from the store: one tree of frozen values per account and period.

:func:`gather` reads only through the :class:`~agent.store.base.Store` Protocol, so the same
report comes out of an in-memory simulation, a SQLite file or PostgreSQL. Charts
(:mod:`agent.report.charts`) and templates (:mod:`agent.report.render`) take these values and
never touch the store; the dashboard serves the same tree.

Where each figure comes from:

- **followers**: ``account_snapshots`` (``Store.account_series``), thinned to at most
  :data:`MAX_SERIES_POINTS` evenly spaced readings (the first and last kept);
- **posts**: ``Store.learning_history`` with the configured attribution method: posting time,
  arms, engagements of the latest snapshot and the attributed follower gain (None until the
  attribution window closed);
- **estimates**: the deciding policy's estimates as its latest learning step stored them
  (``Store.arm_stats``: the ``arm_statistics`` rows behind the seed-named views, the same rows
  ``growthloop health`` prints): one truth, no second model is fitted for the report;
- **spend and health**: the hourly ``system_health_metrics`` rows (``Store.health_hours``)
  whose hour starts in the period, summed per day (UTC) and over the period;
- **insights**: given by the caller (:func:`insight_views` of the store's open insights, as
  ``growthloop report`` passes them);
- **truth** (simulations only): a :class:`Truth` such as the sandbox's ``GroundTruth`` gives each
  arm's true expected followers per post, shown beside the estimate; the agent never sees it;
- **audience** and **experiments**: :mod:`agent.report.sections` (``growthloop audience``'s and
  ``growthloop experiments show``'s figures).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from agent.config import Config
from agent.models import ArmStat, Observation
from agent.report.sections import AudienceView, ExperimentView, audience_view, experiment_views
from agent.store.base import Store

MAX_SERIES_POINTS = 1500  # follower readings per chart: enough for a month at ~30 min resolution
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class InsightView(Protocol):
    """One insight or recommendation as the report shows it (learning/insights.py's records, or
    anything with these attributes): ``severity`` is ``info``, ``warning`` or ``critical``;
    ``confidence`` a probability in [0, 1] (None: not a probabilistic statement); ``kind`` e.g.
    ``leader``, ``anomaly``, ``recommendation``."""

    @property
    def title(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class InsightRecord:
    """The simplest :class:`InsightView`."""

    title: str
    statement: str
    severity: str = "info"
    confidence: float | None = None
    kind: str = "insight"


class StoredInsightLike(Protocol):
    """What :func:`insight_views` reads of a stored insight (the ``insights`` table's rows as
    the store returns them): the account's name (None: about several accounts), the kind and
    subject, the statement with its numbers, severity, the probability of the claim and whether
    it is a recommendation."""

    @property
    def account(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def probability(self) -> float: ...
    @property
    def recommendation(self) -> bool: ...


def insight_views(rows: Iterable[StoredInsightLike]) -> dict[str | None, list[InsightView]]:
    """Stored insights as the report shows them, per account name (None: about several
    accounts), in the order given: the title names the kind and subject, the confidence is the
    claim's probability, and a recommendation's kind says so."""
    out: dict[str | None, list[InsightView]] = {}
    for row in rows:
        kind = str(row.kind)
        out.setdefault(row.account, []).append(
            InsightRecord(
                title=f"{kind.replace('_', ' ')}: {row.subject}",
                statement=row.statement,
                severity=str(row.severity),
                confidence=float(row.probability),
                kind=f"recommendation ({kind})" if row.recommendation else kind,
            )
        )
    return out


class Truth(Protocol):
    """The hidden truth of a simulated audience (``adapters.sandbox_model.GroundTruth``)."""

    def arm_values(
        self, dimension: str, at: datetime | None = None, *, metric: str = "followers"
    ) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowerPoint:
    at: datetime
    followers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PostMark:
    """One published post: when, with which arms, what it got and what it is credited with."""

    content_id: int
    posted_at: datetime
    local_hour: int  # 0-23 in the account's active-hours time zone
    weekday: int  # 0 = Monday, same zone
    arms: Mapping[str, str]
    engagements: int
    followers_at: int | None  # the latest follower reading at or before posting
    gained: float | None  # attributed followers (None: not attributed yet)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmView:
    arm: str
    posts: int
    mean: float
    low: float
    high: float
    p_best: float
    true_value: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DimensionView:
    """One dimension's arms, best estimate first."""

    dimension: str
    arms: tuple[ArmView, ...]

    @property
    def leader(self) -> ArmView | None:
        return self.arms[0] if self.arms else None

    @property
    def true_best(self) -> str | None:
        known = [a for a in self.arms if a.true_value is not None]
        return max(known, key=lambda a: (a.true_value, a.arm)).arm if known else None


@dataclass(frozen=True, slots=True, kw_only=True)
class HourCell:
    """Posts at one local weekday and hour, and their mean attributed follower gain."""

    weekday: int
    hour: int
    posts: int
    attributed: int  # of which attributed
    mean_gained: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DayFigures:
    """One UTC day of the hourly health rows."""

    day: date
    posts_attempted: int
    posts_succeeded: int
    polls_due: int
    polls_done: int
    polls_late: int
    api_calls: int
    api_errors: int
    followers_gained: float
    llm_spend_usd: float
    platform_spend_usd: float

    @property
    def spend_usd(self) -> float:
        return self.llm_spend_usd + self.platform_spend_usd


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    """The period's health, summed over its hourly rows."""

    hours: int
    posts_attempted: int
    posts_succeeded: int
    posts_failed: int
    polls_due: int
    polls_done: int
    polls_late: int
    api_calls: int
    api_errors: int
    rate_limit_waits: int
    errors_by_kind: Mapping[str, int]

    @property
    def publish_success(self) -> float | None:
        return self.posts_succeeded / self.posts_attempted if self.posts_attempted else None

    @property
    def poll_success(self) -> float | None:
        return self.polls_done / self.polls_due if self.polls_due else None

    @property
    def late_share(self) -> float | None:
        return self.polls_late / self.polls_done if self.polls_done else None

    @property
    def api_error_rate(self) -> float | None:
        return self.api_errors / self.api_calls if self.api_calls else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    """Everything the report shows for one account over one period."""

    name: str
    platform: str
    start: datetime
    end: datetime
    timezone: str  # of the heatmap's hours
    attribution_method: str  # how the followers per post were attributed
    model: str | None  # the deciding policy that wrote the estimates (None: no learning yet)
    followers: tuple[FollowerPoint, ...]
    posts: tuple[PostMark, ...]
    dimensions: tuple[DimensionView, ...]
    hours: tuple[HourCell, ...]
    days: tuple[DayFigures, ...]
    health: HealthView
    insights: tuple[InsightView, ...] = ()
    audience: AudienceView | None = None  # None: no audience member recorded
    experiments: tuple[ExperimentView, ...] = ()

    @property
    def followers_start(self) -> int | None:
        return self.followers[0].followers if self.followers else None

    @property
    def followers_end(self) -> int | None:
        return self.followers[-1].followers if self.followers else None

    @property
    def followers_gained(self) -> int | None:
        if not self.followers:
            return None
        return self.followers[-1].followers - self.followers[0].followers

    @property
    def attributed(self) -> float:
        return sum(p.gained for p in self.posts if p.gained is not None)

    @property
    def engagements(self) -> int:
        return sum(p.engagements for p in self.posts)

    @property
    def spend_usd(self) -> float:
        return sum(d.spend_usd for d in self.days)

    @property
    def cost_per_follower_usd(self) -> float | None:
        gained = self.followers_gained
        return self.spend_usd / gained if gained and gained > 0 else None

    @property
    def has_truth(self) -> bool:
        return any(a.true_value is not None for d in self.dimensions for a in d.arms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A report: one or more accounts over one period."""

    generated_at: datetime
    start: datetime
    end: datetime
    accounts: tuple[AccountReport, ...]
    title: str = "growthloop report"
    notes: tuple[str, ...] = field(default=())
    insights: tuple[InsightView, ...] = ()  # about several accounts (e.g. platform differences)

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


async def gather(
    store: Store,
    config: Config,
    *,
    start: datetime,
    end: datetime,
    accounts: Sequence[str] | None = None,
    insights: Mapping[str | None, Sequence[InsightView]] | None = None,
    truth: Truth | None = None,
    now: datetime | None = None,
    title: str = "growthloop report",
    notes: Sequence[str] = (),
) -> Report:
    """The report of ``accounts`` (config names; None: every configured account) over
    [start, end). ``insights``: per account name, what to show in its insights section (under
    None: those about several accounts, shown once at the top; :func:`insight_views` turns
    stored insights into this); ``truth``: a simulated audience's truth, beside the estimates."""
    if end <= start:
        raise ValueError("the report's period is empty (end before start)")
    names = list(accounts) if accounts is not None else [a.name for a in config.accounts]
    ids = {name: i for i, name in (await store.account_names()).items()}
    out = []
    for name in names:
        account = config.account(name)
        account_id = ids.get(name)
        out.append(
            await _account(
                store,
                config,
                name=name,
                platform=account.platform,
                account_id=account_id,
                start=start,
                end=end,
                insights=tuple((insights or {}).get(name, ())),
                truth=truth,
            )
        )
    return Report(
        generated_at=now or end,
        start=start,
        end=end,
        accounts=tuple(out),
        title=title,
        notes=tuple(notes),
        insights=tuple((insights or {}).get(None, ())),
    )


async def _account(
    store: Store,
    config: Config,
    *,
    name: str,
    platform: str,
    account_id: int | None,
    start: datetime,
    end: datetime,
    insights: tuple[InsightView, ...],
    truth: Truth | None,
) -> AccountReport:
    zone = config.cadence_for(config.account(name)).active_hours
    series: list[FollowerPoint] = []
    observations: list[Observation] = []
    stats: list[ArmStat] = []
    health_rows: list[dict[str, Any]] = []
    audience: AudienceView | None = None
    experiments: tuple[ExperimentView, ...] = ()
    if account_id is not None:  # an account in the config that never ran has no rows
        readings = await store.account_series(account_id, start, end)
        series = [FollowerPoint(at=r.taken_at, followers=r.followers) for r in readings]
        method = config.learning.attribution_method
        observations = [
            o
            for o in await store.learning_history(account_id, method=method, since=start)
            if o.posted_at < end
        ]
        stats = await store.arm_stats(account_id)
        health_rows = await store.health_hours(account_id, start, end)
        audience = await audience_view(store, config, account_id, start=start, end=end)
        experiments = await experiment_views(store, config, account_id, start=start, end=end)
    times = [p.at for p in series]
    posts = []
    for o in observations:
        local = o.posted_at.astimezone(zone.zone)
        i = bisect.bisect_right(times, o.posted_at) - 1
        posts.append(
            PostMark(
                content_id=o.content_id,
                posted_at=o.posted_at,
                local_hour=local.hour,
                weekday=local.weekday(),
                arms={d: o.arms.arm(d) for d in ("content_type", "formula", "hook", "topic")},
                engagements=o.engagements,
                followers_at=series[i].followers if i >= 0 else None,
                gained=o.followers,
            )
        )
    return AccountReport(
        name=name,
        platform=platform,
        start=start,
        end=end,
        timezone=zone.timezone,
        attribution_method=config.learning.attribution_method,
        model=stats[0].model if stats else None,
        followers=thin(series, MAX_SERIES_POINTS),
        posts=tuple(posts),
        dimensions=dimensions(stats, truth, end),
        hours=hour_cells(posts),
        days=daily(health_rows),
        health=health_view(health_rows),
        insights=insights,
        audience=audience,
        experiments=experiments,
    )


def thin(points: Sequence[FollowerPoint], limit: int) -> tuple[FollowerPoint, ...]:
    """At most ``limit`` evenly spaced points, the first and the last always kept."""
    if len(points) <= limit:
        return tuple(points)
    step = (len(points) - 1) / (limit - 1)
    return tuple(points[round(i * step)] for i in range(limit))


def dimensions(
    stats: Sequence[ArmStat], truth: Truth | None, at: datetime
) -> tuple[DimensionView, ...]:
    """The stored estimates per dimension (catalogue dimensions first), best mean first."""
    by_dim: dict[str, list[ArmStat]] = {}
    for s in stats:
        by_dim.setdefault(s.dimension, []).append(s)
    order = ["content_type", "formula", "hook", "topic", "hour"]
    out = []
    for dimension in sorted(by_dim, key=lambda d: (order.index(d) if d in order else 99, d)):
        values = truth.arm_values(dimension, at) if truth is not None else {}
        arms = sorted(by_dim[dimension], key=lambda s: (-s.mean, s.arm))
        out.append(
            DimensionView(
                dimension=dimension,
                arms=tuple(
                    ArmView(
                        arm=s.arm,
                        posts=s.posts,
                        mean=s.mean,
                        low=s.interval_low,
                        high=s.interval_high,
                        p_best=s.p_best,
                        true_value=values.get(s.arm),
                    )
                    for s in arms
                ),
            )
        )
    return tuple(out)


def hour_cells(posts: Sequence[PostMark]) -> tuple[HourCell, ...]:
    """Every (weekday, hour) with at least one post."""
    cells: dict[tuple[int, int], list[PostMark]] = {}
    for p in posts:
        cells.setdefault((p.weekday, p.local_hour), []).append(p)
    out = []
    for (weekday, hour), group in sorted(cells.items()):
        gains = [p.gained for p in group if p.gained is not None]
        out.append(
            HourCell(
                weekday=weekday,
                hour=hour,
                posts=len(group),
                attributed=len(gains),
                mean_gained=sum(gains) / len(gains) if gains else None,
            )
        )
    return tuple(out)


def daily(rows: Sequence[Mapping[str, Any]]) -> tuple[DayFigures, ...]:
    """The hourly rows summed per UTC day, oldest first."""
    days: dict[date, list[Mapping[str, Any]]] = {}
    for r in rows:
        days.setdefault(r["hour_start"].date(), []).append(r)
    return tuple(
        DayFigures(
            day=day,
            posts_attempted=sum(int(r["posts_attempted"]) for r in group),
            posts_succeeded=sum(int(r["posts_succeeded"]) for r in group),
            polls_due=sum(int(r["polls_due"]) for r in group),
            polls_done=sum(int(r["polls_done"]) for r in group),
            polls_late=sum(int(r["polls_late"]) for r in group),
            api_calls=sum(int(r["api_calls"]) for r in group),
            api_errors=sum(int(r["api_errors"]) for r in group),
            followers_gained=sum(float(r["followers_gained"]) for r in group),
            llm_spend_usd=sum(float(r["llm_spend_usd"]) for r in group),
            platform_spend_usd=sum(float(r["platform_spend_usd"]) for r in group),
        )
        for day, group in sorted(days.items())
    )


def health_view(rows: Sequence[Mapping[str, Any]]) -> HealthView:
    kinds: dict[str, int] = {}
    for r in rows:
        for kind, n in (r.get("errors_by_kind") or {}).items():
            kinds[kind] = kinds.get(kind, 0) + int(n)
    return HealthView(
        hours=len(rows),
        posts_attempted=sum(int(r["posts_attempted"]) for r in rows),
        posts_succeeded=sum(int(r["posts_succeeded"]) for r in rows),
        posts_failed=sum(int(r["posts_failed"]) for r in rows),
        polls_due=sum(int(r["polls_due"]) for r in rows),
        polls_done=sum(int(r["polls_done"]) for r in rows),
        polls_late=sum(int(r["polls_late"]) for r in rows),
        api_calls=sum(int(r["api_calls"]) for r in rows),
        api_errors=sum(int(r["api_errors"]) for r in rows),
        rate_limit_waits=sum(int(r["rate_limit_waits"]) for r in rows),
        errors_by_kind=dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
