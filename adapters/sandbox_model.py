"""The simulated audience behind :mod:`adapters.sandbox`: scenarios, the hidden model, ground truth.

A scenario file (shipped ones in ``adapters/scenarios/``, found by name: see
:mod:`adapters.scenario_files`) sets every number below; ``Scenario.load`` validates it
(unknown keys rejected, errors name their key path). The agent never sees this model: it only sees
what :class:`adapters.sandbox.SandboxPlatform` reports, exactly as a real platform would.

Notation. A post ``p`` is published at ``t_p`` by an account with ``f`` followers at that moment;
its arms are ``a = (a_d)`` for each dimension ``d`` in the scenario's ``effects`` (content_type,
formula, hook; topic and hour are accepted names for later). Every arm has three hidden
multipliers ``reach_d(a)``, ``engagement_d(a)`` and ``follow_d(a)`` (1.0 for arms the scenario
does not name, or when the post has no label for ``d``)::

    reach      R_p = (R0 + rho * f) * prod_d reach_d(a_d) * exp(sigma * Z - sigma^2 / 2) * V_p
    viral      V_p = 1 with probability 1 - q, else min(m * U^(-1/alpha), V_max)   (Pareto tail)
    impressions    ~ Poisson(R_p)
    likes, reposts, replies, quotes, bookmarks, url_clicks
                   ~ NegBin(mean = R_p * rate_k * prod_d engagement_d(a_d), shape = kappa_e)
    profile_clicks ~ NegBin(mean = R_p * rate_pc * prod_d follow_d(a_d), shape = kappa_e)
    follows    g_p ~ NegBin(mean = R_p * rate_follow * prod_d follow_d(a_d), shape = kappa_f)

``NegBin(mean mu, shape k)`` has variance ``mu + mu^2 / k`` (over-dispersed counts). The expected
followers a post causes, the ground truth the agent is trying to learn, is therefore::

    E[g_p] = (R0 + rho * f) * E[V] * rate_follow * prod_d reach_d(a_d) * follow_d(a_d)
    E[V]   = 1 - q + q * E[min(m * U^(-1/alpha), V_max)]

All realised totals are drawn once, at publish time, from a random stream keyed by
``(seed, account, post index)``, so nothing depends on the order of later queries.

Accrual. With sandbox age ``s`` (hours), a counter with realised total ``n`` reads
``floor(n * F(s))``, where ``F(s) = (1 - w)(1 - e^(-s/tau)) + w (1 - e^(-s/tau_slow))``;
``F`` is set to 1 past the age where ``1 - F < 1e-6``. With tau = 2.5 h and w = 5 % the 1 h
poll sees ~31 %, the 4 h poll ~77 % and the 24 h poll ~98 % of the total.

Followers. The ``g_p`` followers a post causes arrive with an Erlang(k, theta) lag
``G(s) = 1 - e^(-x) * sum_{i<k} x^i / i!`` with ``x = s / theta`` (k = 2, theta = 5 h: median ~8 h,
99 % by ~33 h), so gains of posts a few hours apart overlap. Independently of posts, organic
arrivals per sandbox hour are ``Poisson(organic_per_day / 24)`` and churn per hour is
``Poisson(f0 * churn_per_day / 24)``, drawn per (seed, account, day) and cached as cumulative
sums (``A``, ``C``; within an hour they accrue linearly)::

    followers(t) = f0 + [A(t) - A(t_c)] - [C(t) - C(t_c)] + sum_p floor(g_p * G(t - t_p))

with ``f0`` the initial followers and ``t_c`` the account's creation (its first use).

Drift. ``drift`` steps override some arms' multipliers from sandbox day ``at_day`` on (blending
linearly over ``ramp_days``). A post uses the multipliers in force when it is published.

Time. Sandbox time runs ``time_scale`` times faster than the clock passed in: an age of
``(now - posted_at) * time_scale`` seconds. Rate limits, the duplicate window and fault reset
times are also sandbox durations (``reset_at`` is converted back to the caller's clock).

Crash-test aids. ``platform.publish_delay_before_s`` and ``platform.publish_delay_after_s``
(default 0) make ``publish`` wait that many REAL seconds before it writes anything, or after the
post is durably committed but before ``publish`` returns, so a test or a demo can kill the daemon
inside the exactly-once protocol (see :class:`PlatformSpec`). Like every scenario key they are
stored in a world file when it is created. They are not part of any audience model.

Latency. ``platform.latency_ms`` (default 0) is a publish's network round trip in REAL
milliseconds: ``publish`` sleeps half of it before the post is created and half after, so a
daemon publishing one post at a time manages at most ``1000 / latency_ms`` posts a second.
``platform.read_latency_ms`` delays every read (metrics, account, recent posts) the same way.
The scale benchmark (``bench/scale.py``) sets them; with a compressed clock it divides them by
the compression, so a simulated second still holds the same number of calls.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.scenario_files import SHIPPED, is_scenario_name, scenario_file, shipped_scenario
from agent.errors import ConfigError

DIMENSIONS: tuple[str, ...] = ("content_type", "formula", "hook")  # what the policy chooses today
# accepted in scenario files ("format": single | thread, docs/threads.md)
KNOWN_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, "topic", "hour", "format")
# a later part of a thread (a reply in the chain) reaches this share of the people a post with
# the same labels would: most readers stop at the first part
REPLY_REACH = 0.2
ENGAGEMENT_KINDS: tuple[str, ...] = ("likes", "reposts", "replies", "quotes", "bookmarks")
COUNTERS: tuple[str, ...] = ("impressions", *ENGAGEMENT_KINDS, "profile_clicks", "url_clicks")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TAIL = 1e-6  # curves are set to 1 once less than this fraction is still to come
_STREAM_POST = 1
_STREAM_ORGANIC = 2
_MAX_EXTENDS = 8  # how deep ``extends:`` chains may go

Rate = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """The aware UTC datetime of :func:`to_us`' value."""
    return _EPOCH + timedelta(microseconds=us)


def stable_key(text: str) -> int:
    """A 64-bit integer for a name, stable across processes (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def stable_uniform(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from its arguments (cheap: no generator object)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


# ----------------------------------------------------------------------------------- the scenario


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountSpec(_Section):
    """How a new account starts and how it grows without posting."""

    initial_followers: int | tuple[int, int] = 1500  # or [low, high]: uniform per account
    following: int = Field(default=300, ge=0)
    organic_followers_per_day: Rate = 3.0  # arrivals that no post caused
    churn_per_day: Probability = 0.001  # fraction of the initial followers lost per day

    @field_validator("initial_followers")
    @classmethod
    def _check_followers(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        low, high = (value, value) if isinstance(value, int) else value
        if low < 0 or high < low:
            raise ValueError("must be >= 0, or [low, high] with 0 <= low <= high")
        return value


class PriceSpec(_Section):
    """What the simulated platform bills per call, in US dollars (``adapters.base.Prices``)."""

    post: Rate = 0.0
    post_with_url: Rate = 0.0
    read: Rate = 0.0  # per object returned: a post's metrics, the account, a found post


class PlatformSpec(_Section):
    """The platform's rules (durations are sandbox hours, except the ``publish_delay_*_s``).

    ``publish_delay_before_s`` and ``publish_delay_after_s`` are test and demo aids for crash
    testing, in REAL seconds (``asyncio.sleep``, not scaled by ``time_scale``, not skipped by a
    virtual clock): ``publish`` waits that long before it touches the world at all ("before"), or
    after the new post is durably committed to the world but before it returns ("after"). Killing
    the process inside either window reproduces a crash between ``publishing`` and ``posted``.
    Leave them at 0 anywhere else.
    """

    max_chars: int = Field(default=280, ge=1)
    posts_per_hour: int = Field(default=10, ge=1)  # sliding window
    posts_per_day: int = Field(default=50, ge=1)  # sliding 24 h window
    duplicate_window_hours: Rate = 168.0  # same text again within this -> DuplicateContent
    publish_delay_before_s: Rate = 0.0  # real seconds; crash-test aid (see the docstring)
    publish_delay_after_s: Rate = 0.0  # real seconds; crash-test aid (see the docstring)
    # what the platform bills, US dollars (default: nothing); e.g. X's pay-per-use:
    # {post: 0.015, post_with_url: 0.20, read: 0.001} (a read: per object returned)
    prices: PriceSpec = Field(default_factory=lambda: PriceSpec())
    # a network round trip, in REAL milliseconds (asyncio.sleep, not scaled by time_scale):
    # publish waits half before the post is created and half after; every read waits
    # read_latency_ms before it answers (the scale benchmark; 0 elsewhere)
    latency_ms: Rate = 0.0
    read_latency_ms: Rate = 0.0


class Rates(_Section):
    """Expected events per impression, before arm multipliers."""

    likes: Rate = 0.015
    reposts: Rate = 0.002
    replies: Rate = 0.0015
    quotes: Rate = 0.0003
    bookmarks: Rate = 0.0015
    profile_clicks: Rate = 0.02
    url_clicks: Rate = 0.0
    follows: Rate = 0.005


class Viral(_Section):
    """Rare reach outliers: multiplier ``min(m * U^(-1/alpha), max)`` with probability q."""

    probability: Probability = 0.01
    min_multiplier: float = Field(default=3.0, ge=1.0)
    alpha: float = Field(default=2.5, gt=0.0)  # smaller = heavier tail
    max_multiplier: float = Field(default=100.0, ge=1.0)


class Accrual(_Section):
    """The saturating curve F along which counters reach their totals."""

    tau_hours: float = Field(default=2.5, gt=0.0)
    slow_fraction: float = Field(
        default=0.05, ge=0.0, lt=1.0
    )  # long tail still arriving after a day
    slow_tau_hours: float = Field(default=24.0, gt=0.0)


class FollowerLag(_Section):
    """The Erlang lag G with which a post's followers arrive."""

    shape: int = Field(default=2, ge=1, le=20)
    scale_hours: float = Field(default=5.0, gt=0.0)


class Audience(_Section):
    non_follower_reach: Rate = 150.0  # R0: impressions from discovery
    reach_per_follower: Rate = 0.4  # rho
    reach_sigma: Rate = 0.35  # log-normal noise of reach, per post
    engagement_dispersion: float = Field(default=3.0, gt=0.0)  # kappa_e
    follow_dispersion: float = Field(default=2.0, gt=0.0)  # kappa_f
    rates: Rates = Field(default_factory=Rates)
    viral: Viral = Field(default_factory=Viral)
    accrual: Accrual = Field(default_factory=Accrual)
    follower_lag: FollowerLag = Field(default_factory=FollowerLag)


class ArmEffect(_Section):
    """Multipliers of one arm; unset means 1.0 (or, in a drift step, unchanged)."""

    reach: Rate | None = None
    engagement: Rate | None = None
    follow: Rate | None = None


def _check_dimensions(value: dict[str, dict[str, ArmEffect]]) -> dict[str, dict[str, ArmEffect]]:
    unknown = sorted(set(value) - set(KNOWN_DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r} (known: {', '.join(KNOWN_DIMENSIONS)})")
    return value


Effects = Annotated[dict[str, dict[str, ArmEffect]], AfterValidator(_check_dimensions)]


class DriftStep(_Section):
    at_day: Rate  # sandbox days since the world's start
    ramp_days: Rate = 0.0  # blend linearly from the previous multipliers over this long
    effects: Effects


class Faults(_Section):
    """Random fault rates per call (injected faults come on top, see SandboxWorld.inject_fault)."""

    publish_error_rate: Probability = 0.0  # PlatformUnavailable, nothing posted
    publish_ambiguous_rate: Probability = 0.0  # posted, then AmbiguousPublish
    publish_timeout_rate: Probability = 0.0  # AmbiguousPublish, nothing posted
    rate_limit_rate: Probability = 0.0  # RateLimited on publish
    read_rate_limit_rate: Probability = 0.0  # RateLimited on reads
    metrics_error_rate: Probability = 0.0  # PlatformUnavailable on fetch_metrics
    account_error_rate: Probability = 0.0  # PlatformUnavailable on fetch_account
    find_error_rate: Probability = 0.0  # PlatformUnavailable on find_recent
    rate_limit_reset_minutes: float = Field(default=15.0, gt=0.0)  # sandbox minutes until reset_at


class Interaction(_Section):
    """A multiplier on top of the arms' own when a post uses all of ``arms`` together."""

    arms: dict[str, str]  # dimension -> arm, e.g. {formula: listicle, hook: surprising_stat}
    reach: Rate = 1.0
    engagement: Rate = 1.0
    follow: Rate = 1.0

    @field_validator("arms")
    @classmethod
    def _two_or_more(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) < 2:
            raise ValueError("an interaction names at least two dimensions")
        _check_dimensions({d: {} for d in value})
        return value


class BenchSpec(_Section):
    """How the learning benchmark drives an agent in this world (ignored by the sandbox)."""

    posts_per_day: float = Field(default=4.0, gt=0, le=48)
    days: float = Field(default=90.0, gt=0)
    # which arms the agent gets: "auto" = the configured catalogue, unless the scenario names
    # arms outside it (then exactly the named arms of each dimension naming two or more);
    # "scenario" = always exactly the named arms (generated worlds: a catalogue of 3 arms)
    catalogue: Literal["auto", "scenario"] = "auto"


class Scenario(_Section):
    """A simulated platform and its audience, as read from a scenario file."""

    name: str = "unnamed"
    description: str = ""
    time_scale: float = Field(
        default=1.0, gt=0.0
    )  # sandbox seconds per second of the caller's clock
    account: AccountSpec = Field(default_factory=AccountSpec)
    platform: PlatformSpec = Field(default_factory=PlatformSpec)
    audience: Audience = Field(default_factory=Audience)
    effects: Effects = Field(default_factory=dict)
    drift: list[DriftStep] = Field(default_factory=list)
    faults: Faults = Field(default_factory=Faults)
    interactions: list[Interaction] = Field(default_factory=list)
    bench: BenchSpec = Field(default_factory=BenchSpec)

    @field_validator("drift")
    @classmethod
    def _check_drift_order(cls, steps: list[DriftStep]) -> list[DriftStep]:
        days = [step.at_day for step in steps]
        if days != sorted(days):
            raise ValueError("steps must be in increasing order of at_day")
        return steps

    @classmethod
    def load(cls, ref: str | Path) -> Self:
        """Read and validate a scenario: a shipped one by name (``"default"``) or a file by path;
        raise ConfigError naming the file and key path.

        A file may start from another with ``extends: NAME`` (a shipped scenario) or
        ``extends: other.yaml`` (relative to itself): mappings are merged key by key, anything
        else (numbers, lists) is replaced.
        """
        file = scenario_file(ref)
        data = _read_scenario_data(file, depth=0)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(_describe(error) for error in exc.errors())
            raise ConfigError(f"Scenario file {file} is not valid: {problems}.") from None


def _read_scenario_data(file: Traversable, *, depth: int) -> dict[str, Any]:
    if depth > _MAX_EXTENDS:
        raise ConfigError(f"Scenario file {file}: 'extends' chain is too deep (a cycle?).")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Scenario file {file} cannot be read: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Scenario file {file} is not valid YAML: {exc}".rstrip(".") + "."
        ) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"Scenario file {file}: the top level must be a mapping of keys.")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"Scenario file {file}: extends: must be a scenario name or file name.")
    if is_scenario_name(parent):
        base = shipped_scenario(parent)
    elif isinstance(file, Path):
        base = file.parent / parent
    else:  # a shipped scenario extends a sibling file
        base = SHIPPED / parent
    return _merge(_read_scenario_data(base, depth=depth + 1), data)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: Mapping[str, Any]) -> str:
    where = ""
    for part in error["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if error["type"] != "missing" and len(shown) <= 40:
        message += f" (got {shown})"
    return f"{where or '(top level)'}: {message}"


# ------------------------------------------------------------------------------------ the model

Triple = tuple[float, float, float]  # (reach, engagement, follow) multipliers
Table = dict[str, dict[str, Triple]]  # dimension -> arm -> multipliers
NEUTRAL: Triple = (1.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class PostDraw:
    """A post's realised totals (in :data:`COUNTERS` order), follows and expected follows."""

    totals: tuple[int, ...]
    follows: int
    expected_follows: float


class _OrganicSeries:
    """Cumulative organic arrivals and churn at whole sandbox hours, extended a day at a time."""

    __slots__ = ("arrivals", "churn", "cum_arrivals", "cum_churn")

    def __init__(self) -> None:
        self.arrivals: list[int] = []
        self.churn: list[int] = []
        self.cum_arrivals: list[int] = [0]
        self.cum_churn: list[int] = [0]


class AudienceModel:
    """The scenario's numbers turned into the draws and curves of the module docstring."""

    def __init__(self, scenario: Scenario, *, seed: int, start_us: int) -> None:
        self.scenario = scenario
        self.seed = seed & 0xFFFF_FFFF_FFFF_FFFF
        self.start_us = start_us
        self.time_scale = scenario.time_scale
        audience = scenario.audience
        self._acc = audience.accrual
        self._lag = audience.follower_lag
        self.accrual_horizon_hours = max(self._acc.tau_hours, self._acc.slow_tau_hours) * math.log(
            1 / _TAIL
        )
        self.lag_horizon_hours = self._lag.scale_hours * _erlang_horizon(self._lag.shape)
        self.expected_viral = _expected_viral(audience.viral)
        self.tables = self._build_tables(scenario)
        self._table_days = [at_day for at_day, _, _ in self.tables]
        self.arms = {dim: tuple(arms) for dim, arms in self.tables[0][2].items()}
        self._organic: dict[int, _OrganicSeries] = {}
        self._static_table: Table | None = None  # without drift, every day's table (read-only)

    # time
    def hours(self, moment_us: int) -> float:
        """Sandbox hours since the world's start."""
        return (moment_us - self.start_us) * self.time_scale / 3.6e9

    def real_us(self, sandbox_hours: float) -> int:
        """How many microseconds of the caller's clock a sandbox duration takes."""
        return round(sandbox_hours * 3.6e9 / self.time_scale)

    # curves
    def accrued(self, age_hours: float) -> float:
        """F: the fraction of a post's counters visible at this sandbox age."""
        if age_hours <= 0:
            return 0.0
        if age_hours >= self.accrual_horizon_hours:
            return 1.0
        acc = self._acc
        fast = 1.0 - math.exp(-age_hours / acc.tau_hours)
        slow = 1.0 - math.exp(-age_hours / acc.slow_tau_hours)
        return (1.0 - acc.slow_fraction) * fast + acc.slow_fraction * slow

    def arrived(self, age_hours: float) -> float:
        """G: the fraction of a post's followers that have arrived at this sandbox age."""
        if age_hours <= 0:
            return 0.0
        if age_hours >= self.lag_horizon_hours:
            return 1.0
        x = age_hours / self._lag.scale_hours
        term, total = 1.0, 1.0
        for i in range(1, self._lag.shape):
            term *= x / i
            total += term
        return 1.0 - math.exp(-x) * total

    # effects
    @staticmethod
    def _build_tables(scenario: Scenario) -> list[tuple[float, float, Table]]:
        """(at_day, ramp_days, full table) per epoch; every table lists every arm ever named."""
        arms: dict[str, list[str]] = {}
        for effects in [scenario.effects, *(step.effects for step in scenario.drift)]:
            for dim, named in effects.items():
                known = arms.setdefault(dim, [])
                known.extend(arm for arm in named if arm not in known)
        table: Table = {dim: dict.fromkeys(names, NEUTRAL) for dim, names in arms.items()}
        tables = []
        for at_day, ramp, effects in [
            (0.0, 0.0, scenario.effects),
            *((step.at_day, step.ramp_days, step.effects) for step in scenario.drift),
        ]:
            table = {dim: dict(row) for dim, row in table.items()}
            for dim, named in effects.items():
                for arm, effect in named.items():
                    old = table[dim][arm]
                    table[dim][arm] = (
                        old[0] if effect.reach is None else effect.reach,
                        old[1] if effect.engagement is None else effect.engagement,
                        old[2] if effect.follow is None else effect.follow,
                    )
            tables.append((at_day, ramp, table))
        return tables

    def effect(self, dim: str, arm: str | None, day: float) -> Triple:
        """The multipliers of one arm in force at sandbox ``day``."""
        index = bisect.bisect_right(self._table_days, day) - 1
        at_day, ramp, table = self.tables[max(index, 0)]
        now = table[dim].get(arm, NEUTRAL) if arm is not None else NEUTRAL
        if index <= 0 or ramp <= 0 or day >= at_day + ramp:
            return now
        before = self.tables[index - 1][2][dim].get(arm, NEUTRAL) if arm is not None else NEUTRAL
        w = (day - at_day) / ramp
        return (
            before[0] + w * (now[0] - before[0]),
            before[1] + w * (now[1] - before[1]),
            before[2] + w * (now[2] - before[2]),
        )

    def multipliers(self, labels: Mapping[str, str], day: float) -> Triple:
        reach = engagement = follow = 1.0
        for dim in self.arms:
            r, e, f = self.effect(dim, labels.get(dim), day)
            reach, engagement, follow = reach * r, engagement * e, follow * f
        for pair in self.scenario.interactions:
            if all(labels.get(d) == a for d, a in pair.arms.items()):
                reach, engagement, follow = (
                    reach * pair.reach,
                    engagement * pair.engagement,
                    follow * pair.follow,
                )
        return reach, engagement, follow

    # draws
    def base_reach(self, followers: float) -> float:
        audience = self.scenario.audience
        return audience.non_follower_reach + audience.reach_per_follower * max(followers, 0.0)

    def draw_post(
        self,
        *,
        account_key: int,
        index: int,
        labels: Mapping[str, str],
        followers: int,
        day: float,
        reach_scale: float = 1.0,
    ) -> PostDraw:
        """The realised totals of the ``index``-th post of an account (see the module docstring);
        ``reach_scale``: :data:`REPLY_REACH` for a later part of a thread."""
        audience = self.scenario.audience
        rates, viral = audience.rates, audience.viral
        reach_m, engagement_m, follow_m = self.multipliers(labels, day)
        rng = np.random.default_rng([self.seed, account_key, _STREAM_POST, index])
        z, u_viral, u_tail = rng.standard_normal(), rng.random(), rng.random()
        v = 1.0
        if u_viral < viral.probability:
            tail = viral.min_multiplier * (1.0 - u_tail) ** (-1.0 / viral.alpha)
            v = min(tail, viral.max_multiplier)
        sigma = audience.reach_sigma
        mean_reach = self.base_reach(followers) * reach_m * reach_scale
        reach = mean_reach * math.exp(sigma * z - sigma * sigma / 2) * v
        k_e = audience.engagement_dispersion
        totals = [int(rng.poisson(reach))]
        totals += [
            _negbin(rng, reach * getattr(rates, k) * engagement_m, k_e) for k in ENGAGEMENT_KINDS
        ]
        totals.append(_negbin(rng, reach * rates.profile_clicks * follow_m, k_e))
        totals.append(_negbin(rng, reach * rates.url_clicks * engagement_m, k_e))
        follows = _negbin(rng, reach * rates.follows * follow_m, audience.follow_dispersion)
        expected = mean_reach * self.expected_viral * rates.follows * follow_m
        return PostDraw(totals=tuple(totals), follows=follows, expected_follows=expected)

    def follows_given_reach(
        self, labels: Mapping[str, str], *, day: float, impressions: float
    ) -> float:
        """E[follows] of a post given its realised reach, estimated by its ``impressions``."""
        follow_m = self.multipliers(labels, day)[2]
        return impressions * self.scenario.audience.rates.follows * follow_m

    def initial_followers(self, account: str) -> int:
        spec = self.scenario.account.initial_followers
        if isinstance(spec, int):
            return spec
        low, high = spec
        return low + int(stable_uniform(self.seed, "initial_followers", account) * (high - low + 1))

    def organic(self, account_key: int, initial: int, from_hours: float, to_hours: float) -> int:
        """Net organic followers (arrivals minus churn) between two sandbox times."""
        series = self._organic.get(account_key)
        if series is None:
            series = self._organic[account_key] = _OrganicSeries()
        return self._cumulative(series, account_key, initial, to_hours) - self._cumulative(
            series, account_key, initial, from_hours
        )

    def _cumulative(self, series: _OrganicSeries, key: int, initial: int, hours: float) -> int:
        hours = max(hours, 0.0)
        whole = int(hours)
        while len(series.arrivals) <= whole:
            spec = self.scenario.account
            day = len(series.arrivals) // 24
            rng = np.random.default_rng([self.seed, key, _STREAM_ORGANIC, day])
            arrivals = rng.poisson(spec.organic_followers_per_day / 24, 24).tolist()
            churn = rng.poisson(initial * spec.churn_per_day / 24, 24).tolist()
            for a, c in zip(arrivals, churn, strict=True):
                series.arrivals.append(a)
                series.churn.append(c)
                series.cum_arrivals.append(series.cum_arrivals[-1] + a)
                series.cum_churn.append(series.cum_churn[-1] + c)
        frac = hours - whole
        arrived = series.cum_arrivals[whole] + math.floor(frac * series.arrivals[whole])
        churned = series.cum_churn[whole] + math.floor(frac * series.churn[whole])
        return arrived - churned

    # person-level draws (adapters/sandbox_people.py): the same curves and series, per event
    def organic_hour(self, account_key: int, initial: int, hour: int) -> tuple[int, int]:
        """(organic arrivals, churned followers) in whole sandbox hour ``hour`` (from 0)."""
        series = self._organic.get(account_key)
        if series is None:
            series = self._organic[account_key] = _OrganicSeries()
        self._cumulative(series, account_key, initial, hour + 1.0)
        return series.arrivals[hour], series.churn[hour]

    def first_ages(self, curve: str, total: int) -> np.ndarray:
        """For k = 1..total, the first sandbox age (hours) at which ``floor(total * curve(age))``
        reaches k: when a post's k-th like (``curve="accrued"``) or follower (``"arrived"``)
        happens, so that counting people gives exactly the aggregate counters."""
        if total <= 0:
            return np.zeros(0)
        wanted = np.arange(1, total + 1, dtype=float)
        horizon = self.accrual_horizon_hours if curve == "accrued" else self.lag_horizon_hours
        low, high = np.zeros(total), np.full(total, horizon)
        for _ in range(48):  # bisection: horizon / 2**48, well under a microsecond
            mid = (low + high) / 2
            reached = total * self._curve(curve, mid) >= wanted
            high = np.where(reached, mid, high)
            low = np.where(reached, low, mid)
        return high

    def _curve(self, curve: str, ages: np.ndarray) -> np.ndarray:
        """:meth:`accrued` or :meth:`arrived` of many ages at once."""
        if curve == "accrued":
            acc = self._acc
            fast = 1.0 - np.exp(-ages / acc.tau_hours)
            slow = 1.0 - np.exp(-ages / acc.slow_tau_hours)
            values = (1.0 - acc.slow_fraction) * fast + acc.slow_fraction * slow
            horizon = self.accrual_horizon_hours
        else:
            x = ages / self._lag.scale_hours
            term, total = np.ones_like(x), np.ones_like(x)
            for i in range(1, self._lag.shape):
                term = term * x / i
                total = total + term
            values = 1.0 - np.exp(-x) * total
            horizon = self.lag_horizon_hours
        return np.where(ages >= horizon, 1.0, np.where(ages <= 0, 0.0, values))

    # expectations (ground truth)
    def table_at(self, day: float) -> Table:
        """Every arm's multipliers in force on ``day`` (treat as read-only: it may be shared)."""
        if self.scenario.drift or self._static_table is None:
            table = {
                dim: {arm: self.effect(dim, arm, day) for arm in arms}
                for dim, arms in self.arms.items()
            }
            if self.scenario.drift:
                return table
            self._static_table = table
        return self._static_table

    def expected(
        self, arms: Mapping[str, str], *, day: float, followers: float, metric: str
    ) -> float:
        """Expected follows or engagements per post; dimensions not in ``arms`` are averaged."""
        rates = self.scenario.audience.rates
        if metric == "followers":
            base, pick = rates.follows, 2
        else:
            base, pick = sum(getattr(rates, k) for k in ENGAGEMENT_KINDS), 1
        value = self.base_reach(followers) * self.expected_viral * base
        table = self.table_at(day)
        coupled = {d for pair in self.scenario.interactions for d in pair.arms} - set(arms)
        for dim, row in table.items():
            if dim in arms:
                triple = row.get(arms[dim], NEUTRAL)
                value *= triple[0] * triple[pick]
            elif row and dim not in coupled:
                value *= sum(t[0] * t[pick] for t in row.values()) / len(row)
        if not self.scenario.interactions:
            return value
        # dimensions an interaction couples and the caller left open: average over their arms
        open_dims = sorted(d for d in coupled if table.get(d))
        total = 0.0
        combos = list(itertools.product(*(list(table[d]) for d in open_dims)))
        for combo in combos:
            labels = {**arms, **dict(zip(open_dims, combo, strict=True))}
            term = 1.0
            for dim, arm in zip(open_dims, combo, strict=True):
                triple = table[dim][arm]
                term *= triple[0] * triple[pick]
            for pair in self.scenario.interactions:
                if all(labels.get(d) == a for d, a in pair.arms.items()):
                    term *= pair.reach * (pair.follow if pick == 2 else pair.engagement)
            total += term
        return value * total / len(combos)


def _negbin(rng: np.random.Generator, mean: float, shape: float) -> int:
    if mean <= 0:
        return 0
    return int(rng.negative_binomial(shape, shape / (shape + mean)))


def _expected_viral(viral: Viral) -> float:
    """E[V] for the capped Pareto multiplier: E[min(X, c)] = m + integral_m^c (m/x)^alpha dx."""
    m, c, a = viral.min_multiplier, max(viral.max_multiplier, viral.min_multiplier), viral.alpha
    if a == 1.0:
        capped = m + m * math.log(c / m)
    else:
        capped = m + m * (1.0 - (m / c) ** (a - 1.0)) / (a - 1.0)
    return 1.0 - viral.probability + viral.probability * capped


def _erlang_horizon(shape: int) -> float:
    """The x (in units of the scale) beyond which less than _TAIL of an Erlang(shape) remains."""
    x = float(shape)
    while math.exp(-x) * sum(x**i / math.factorial(i) for i in range(shape)) > _TAIL:
        x *= 1.02
    return x


# ------------------------------------------------------------------------------ the ground truth


@dataclass(frozen=True, kw_only=True)
class GroundTruth:
    """What the simulated audience really rewards; for benchmarks, never for the agent.

    Expectations are per post, at ``reference_followers`` followers (the scenario's mean initial
    count) unless ``followers`` is given, with dimensions not named averaged uniformly over the
    scenario's arms. ``at`` defaults to the world's start (effects may drift later).
    """

    dimensions: tuple[str, ...]
    arms: Mapping[str, tuple[str, ...]]  # dimension -> the arms the scenario names
    arm_followers: Mapping[str, Mapping[str, float]]  # at the start: dimension -> arm -> E[follows]
    arm_engagements: Mapping[str, Mapping[str, float]]  # same for likes+reposts+replies+...
    followers_caused: Mapping[str, float]  # platform_post_id -> followers it really caused
    expected_followers_caused: Mapping[str, float]  # platform_post_id -> their expectation
    post_arms: Mapping[str, Mapping[str, str]]  # platform_post_id -> labels it was published with
    post_days: Mapping[str, float]  # platform_post_id -> sandbox days since the start it was posted
    # platform_post_id -> E[follows | its realised reach], the reach read from its impressions
    # (a Poisson draw around it): the most any covariate can tell about a post's gain
    followers_given_reach: Mapping[str, float]
    reference_followers: float
    _model: AudienceModel = field(repr=False, compare=False)

    def _day(self, at: datetime | None) -> float:
        return 0.0 if at is None else self.hours(at) / 24.0

    def hours(self, at: datetime) -> float:
        """Sandbox hours since the world's start at the caller's moment ``at``."""
        return self._model.hours(to_us(at))

    @property
    def model(self) -> AudienceModel:
        """The hidden model itself (benchmarks' oracles only)."""
        return self._model

    def arm_values(
        self, dimension: str, at: datetime | None = None, *, metric: str = "followers"
    ) -> dict[str, float]:
        """Expected ``metric`` ("followers" or "engagements") per post for each arm."""
        if dimension not in self._model.arms:
            return {}
        return {
            arm: self._model.expected(
                {dimension: arm},
                day=self._day(at),
                followers=self.reference_followers,
                metric=metric,
            )
            for arm in self._model.arms[dimension]
        }

    def ranking(self, dimension: str, at: datetime | None = None) -> list[str]:
        """The dimension's arms by true expected followers per post, best first."""
        values = self.arm_values(dimension, at)
        return sorted(values, key=lambda arm: (-values[arm], arm))

    def best_arm(self, dimension: str, at: datetime | None = None) -> str:
        ranking = self.ranking(dimension, at)
        if not ranking:
            raise KeyError(f"the scenario has no arms for dimension {dimension!r}")
        return ranking[0]

    def expected_on_day(
        self, arms: Mapping[str, str], day: float, *, metric: str = "followers"
    ) -> float:
        """Expected ``metric`` of one post with these arms on sandbox ``day`` (reference size)."""
        return self._model.expected(
            arms, day=day, followers=self.reference_followers, metric=metric
        )

    def coupled_dimensions(self) -> set[str]:
        """Dimensions some interaction couples (their best arms must be chosen together)."""
        return {d for pair in self._model.scenario.interactions for d in pair.arms}

    def expected_followers(
        self, arms: Mapping[str, str], at: datetime | None = None, *, followers: float | None = None
    ) -> float:
        """Expected followers caused by one post with these arms."""
        return self._model.expected(
            arms,
            day=self._day(at),
            followers=self.reference_followers if followers is None else followers,
            metric="followers",
        )

    def expected_engagements(
        self, arms: Mapping[str, str], at: datetime | None = None, *, followers: float | None = None
    ) -> float:
        """Expected engagements (likes + reposts + replies + quotes + bookmarks) of one post."""
        return self._model.expected(
            arms,
            day=self._day(at),
            followers=self.reference_followers if followers is None else followers,
            metric="engagements",
        )


def reference_followers(scenario: Scenario) -> float:
    spec = scenario.account.initial_followers
    return float(spec) if isinstance(spec, int) else (spec[0] + spec[1]) / 2.0
