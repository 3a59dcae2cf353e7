"""growthloop's configuration: one YAML file validated by pydantic, secrets from the environment.

The file holds everything that is not secret (accounts, arm catalogues, cadence, polling, learning,
store, mode). Secrets (API keys, ``DATABASE_URL``) come only from the environment or a ``.env``
file (see :class:`Secrets`) and are never written to the file, the logs or the database.

Every problem is reported as a :class:`~agent.errors.ConfigError` whose message names the file and
the key path (``accounts[0].cadence.posts_per_day: must be greater than 0``); unknown keys are
errors, so a typo never silently falls back to a default.

Paths. A relative path in a config file (``store.sqlite_path``, ``sandbox.world_path``,
``runtime.journal_path``, a scenario file: every :data:`ConfigPath`, and their defaults) is
relative to **the config file's folder**, so a config works whatever the working directory. The
built-in config (:data:`DEFAULT_CONFIG`, shipped in the package and used when no file is given)
keeps its data paths relative to the working directory: ``./data/`` where growthloop runs, never
inside the installed package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import time, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.scenario_files import DEFAULT_SCENARIO, checked_reference
from agent.errors import ConfigError
from agent.models import DIMENSIONS, Mode

# the commented example config, shipped in the package; used when no --config is given. In the
# repository it lives in config/ (the project's layout); agent/defaults is a link to that folder,
# so the wheel carries the files under agent/ and importlib.resources finds them installed or not
DEFAULT_CONFIG = resources.files("agent") / "defaults" / "growthloop.example.yaml"
DEFAULT_PROMPT = "default"  # the generator's built-in prompt, without extra instructions
PROMPT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
DEFAULT_POSTS_PER_DAY = 4  # per account; conservative so defaults never look like spam
DEFAULT_MIN_GAP = timedelta(minutes=90)  # between two posts of one account
DEFAULT_JITTER = timedelta(minutes=10)  # random shift added to each scheduled post, +/-
DEFAULT_HORIZONS = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
DEFAULT_ACCOUNT_POLL_EVERY = timedelta(minutes=10)  # follower-count snapshots, free reads
# follower-count snapshots where each read is billed (X pay-per-use): with the reading taken just
# before each post and the metrics at the last two horizons, 1.26x the post fee at 4 posts a day
# and the learning benchmark's score within noise of reading every 10 minutes; every 2 h with
# the last horizon only cost as much (1.30x) and lost 0.09 of the oracle (docs/costs.md)
DEFAULT_PAID_ACCOUNT_POLL_EVERY = timedelta(hours=4)
# where each read is billed and ``polling.paid_horizons`` is unset: the last this many horizons
# (the 4 h and 24 h polls of the default 1 h / 4 h / 24 h; the early ones are the learner's
# provisional evidence, which the last horizon alone left it without: docs/costs.md)
PAID_HORIZONS_KEPT = 2
DEFAULT_SQLITE_PATH = Path("data/growthloop.db")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Accept ``90m``, ``1h``, ``30s``, ``1.5d`` or a number of seconds; leave timedeltas alone."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90m, 4h or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    raise ValueError(f"expected a duration such as 90m, 4h or 1d, got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _positive(value: timedelta | None) -> timedelta | None:
    """A field validator: an interval or a period that must be longer than zero (a zero tick
    would busy-loop; a zero lease or timeout expires at once). None (unset) is left alone."""
    if value is not None and value <= timedelta(0):
        raise ValueError(
            f"must be a positive duration such as 30s, 5m or 1h, got {value.total_seconds():g} s"
        )
    return value


def _from_config_dir(value: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the config file's folder (the validation context's
    ``config_dir``; none for the built-in config, whose paths stay relative to the cwd)."""
    value = value.expanduser()
    config_dir = (info.context or {}).get("config_dir")
    return value if value.is_absolute() or config_dir is None else config_dir / value


ConfigPath = Annotated[Path, AfterValidator(_from_config_dir)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmEntry(_Section):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    description: str = Field(min_length=10)


class Catalogues(_Section):
    content_types: list[ArmEntry] = Field(min_length=2)
    formulas: list[ArmEntry] = Field(min_length=2)
    hooks: list[ArmEntry] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> Catalogues:
        for key in ("content_types", "formulas", "hooks"):
            names = [entry.name for entry in getattr(self, key)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{key}: duplicate arm names {dupes}")
        return self

    def arms(self) -> dict[str, list[str]]:
        """dimension -> arm names, in catalogue order."""
        return {
            "content_type": [e.name for e in self.content_types],
            "formula": [e.name for e in self.formulas],
            "hook": [e.name for e in self.hooks],
        }

    def description(self, dimension: str, arm: str) -> str:
        if dimension == "format":
            return FORMAT_DESCRIPTIONS.get(arm, arm)
        entries = {
            "content_type": self.content_types,
            "formula": self.formulas,
            "hook": self.hooks,
        }[dimension]
        for entry in entries:
            if entry.name == arm:
                return entry.description
        return arm.replace("_", " ")


# what the LLM prompt and the health surfaces say about each format (docs/threads.md)
FORMAT_DESCRIPTIONS = {
    "single": "One post that stands on its own.",
    "thread": "A chain of 2 to a few posts replying to each other, one idea a post.",
}
DEFAULT_THREAD_MAX_PARTS = 4  # posts in a thread at most (at least 2)


class Threads(_Section):
    """Threads as a format (docs/threads.md): with ``enabled`` the learner chooses the format of
    each post (single | thread) as one more dimension, from the same zero-centred prior as every
    arm, so threads are tried and kept only if they earn more (never forced)."""

    enabled: bool = False
    max_parts: int = Field(default=DEFAULT_THREAD_MAX_PARTS, ge=2, le=10)


class ActiveHours(_Section):
    start: time = time(8, 0)
    end: time = time(22, 0)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Cadence(_Section):
    posts_per_day: float = Field(default=DEFAULT_POSTS_PER_DAY, gt=0, le=48)
    max_posts_per_hour: int = Field(default=1, ge=1, le=10)
    min_gap: Duration = DEFAULT_MIN_GAP
    jitter: Duration = DEFAULT_JITTER
    active_hours: ActiveHours = ActiveHours()

    @field_validator("min_gap", "jitter")
    @classmethod
    def _non_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"must not be negative, got {value.total_seconds():g} s")
        return value


class Polling(_Section):
    horizons: list[Duration] = Field(default_factory=lambda: list(DEFAULT_HORIZONS), min_length=1)
    # how often the follower count is read when nothing else read it (agent/reading.py); unset:
    # 10m where reads are free, ``paid_account_every`` where the platform bills each read
    account_every: Duration | None = None
    paid_account_every: Duration = DEFAULT_PAID_ACCOUNT_POLL_EVERY
    # the horizons polled where each read is billed; unset: the last PAID_HORIZONS_KEPT of
    # ``horizons`` (agent/reading.py)
    paid_horizons: list[Duration] | None = None

    @field_validator("horizons", "paid_horizons")
    @classmethod
    def _sorted_positive(cls, value: list[timedelta] | None) -> list[timedelta] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one horizon (or leave the key out)")
        if any(h <= timedelta(0) for h in value):
            raise ValueError("every horizon must be positive")
        if len(set(value)) != len(value):
            raise ValueError("horizons must be distinct")
        return sorted(value)

    _positive_durations = field_validator("account_every", "paid_account_every")(_positive)

    @property
    def final_horizon(self) -> timedelta:
        return self.horizons[-1]


class Prior(_Section):
    mean: float = Field(default=1.0, gt=0)  # expected reward per post before any evidence
    # weight in pseudo-observations; a post adds 1/dispersion of the rewards (~0.1 for followers)
    strength: float = Field(default=0.1, gt=0)


class Learning(_Section):
    objective: Literal["followers", "engagement"] = "followers"
    prior: Prior = Prior()
    # retired with the per-arm Gamma bookkeeping (issue 14); 1.0, what old example configs carry,
    # is still accepted, anything else is refused rather than silently ignored
    discount: float = 1.0
    attribution_window: Duration | None = None  # default: the final poll horizon
    attribution_method: Literal["deconvolution", "time_window"] = "deconvolution"
    # also run the other attribution method and store its figures beside (for comparison with
    # SQL, e.g. the attribution_summary view); the learner only ever reads attribution_method's
    compare_attribution: bool = True
    # how arms are chosen: the joint model (default) or a baseline, see docs/learning.md
    policy: Literal["joint", "independent", "uniform", "seed_selector", "beta_bernoulli"] = "joint"
    half_life_days: float | None = Field(default=None, gt=0)  # joint: forget older posts
    # joint: split a dimension's history where an arm's results clearly dropped (a GLR statistic
    # over this threshold, see docs/learning.md); null: never
    change_threshold: float | None = Field(default=None, gt=0)
    # joint: once that drop statistic passes this threshold (a gate), forget older posts with a
    # half-life of forget_half_life_days from then on (docs/learning.md, "Gated forgetting"); null:
    # never
    forget_threshold: float | None = Field(default=None, gt=0)
    forget_half_life_days: float = Field(default=30.0, gt=0)
    # joint: followers per post grow with the account's followers when posted (a learned
    # elasticity), so an arm played while the account grew is not mistaken for a better one
    audience_covariate: bool = True
    # joint: counts are negative binomial (variance mu + mu^2 / k, k learned; a post's residual
    # counts at most 3 sd) instead of quasi-Poisson (variance phi * mu)
    negative_binomial: bool = True
    # joint: a Thompson draw also samples the auxiliary model's effects the follower prior is
    # centred on, so an arm tried once or twice is not given up on the auxiliary's point estimate
    carry_auxiliary: bool = True
    interaction: bool = True  # joint: pairwise terms (formula x hook by default)
    # joint: the pairs of dimensions given pairwise terms when interaction is on (docs/learning.md)
    interaction_pairs: list[tuple[str, str]] = [("formula", "hook")]
    provisional: bool = True  # joint: in-flight posts' engagement counts early
    learn_topics: bool = True  # joint: choose the topic too (else uniformly at random)
    learn_hours: bool = True  # joint: choose the posting hour within the cadence's next slot
    exploration: float = Field(default=0.6, gt=0, le=1)  # joint: posterior spread in a draw

    _positive_durations = field_validator("attribution_window")(_positive)

    @field_validator("interaction_pairs")
    @classmethod
    def _two_dimensions(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for first, second in value:
            if first == second:
                raise ValueError(f"a pair needs two different dimensions, not {first} twice")
        return value

    @field_validator("discount")
    @classmethod
    def _discount_retired(cls, value: float) -> float:
        if value != 1.0:
            raise ValueError(
                "no longer used: the deciding model forgets with learning.half_life_days "
                "(remove learning.discount)"
            )
        return value


class TokenPrice(_Section):
    input_per_million: float = Field(ge=0)  # US dollars per million prompt tokens
    output_per_million: float = Field(ge=0)  # US dollars per million completion tokens


DEFAULT_TOKEN_PRICES = {
    "gpt-4o-mini": TokenPrice(input_per_million=0.15, output_per_million=0.60),
    "gpt-4o": TokenPrice(input_per_million=2.50, output_per_million=10.00),
    "gpt-4.1-mini": TokenPrice(input_per_million=0.40, output_per_million=1.60),
}


class GeneratorSettings(_Section):
    """Who writes the posts: the offline template generator or an OpenAI-compatible model."""

    kind: Literal["template", "openai"] = "template"
    model: str = "gpt-4o-mini"
    temperature: float = Field(default=0.9, ge=0, le=2)
    base_url: str | None = None  # any OpenAI-compatible server; default: OpenAI's
    max_attempts: int = Field(default=3, ge=1, le=10)  # invalid/over-long output is retried
    timeout: Duration = timedelta(seconds=30)
    prices: dict[str, TokenPrice] = Field(default_factory=lambda: dict(DEFAULT_TOKEN_PRICES))
    # check every OpenAI-written draft with the moderation endpoint (turn off only for
    # OpenAI-compatible servers without /v1/moderations)
    moderation: bool = True
    # prompt versions: name -> instructions added to the OpenAI generator's system prompt
    # (experiments vary them: docs/experiments.md); "default" is the built-in prompt alone
    prompts: dict[str, str] = Field(default_factory=dict)
    # the version every post is written with (a promoted experiment's winner overrides it)
    prompt: str = DEFAULT_PROMPT

    _positive_durations = field_validator("timeout")(_positive)

    @model_validator(mode="after")
    def _known_prompt(self) -> GeneratorSettings:
        for name, text in self.prompts.items():
            if not PROMPT_NAME.match(name) or name == DEFAULT_PROMPT:
                raise ValueError(
                    f"prompts: {name!r} is not a usable name (letters, digits, '_', '-', '.', "
                    f"at most 40; {DEFAULT_PROMPT!r} is the built-in prompt)"
                )
            if not text.strip():
                raise ValueError(f"prompts.{name}: empty instructions")
        if self.prompt != DEFAULT_PROMPT and self.prompt not in self.prompts:
            known = ", ".join([DEFAULT_PROMPT, *sorted(self.prompts)])
            raise ValueError(f"prompt: unknown prompt version {self.prompt!r} (known: {known})")
        return self

    def instructions(self, prompt: str) -> str:
        """The extra instructions of prompt version ``prompt`` ("" for the default)."""
        return "" if prompt == DEFAULT_PROMPT else self.prompts[prompt]


class Budget(_Section):
    """Spend caps. LLM: daily; when reached, planning pauses (it does not fail). Platform: per
    account and calendar month (UTC), what the platform bills (X pay-per-use); when reached,
    reads degrade first and posts stop only when a post can no longer be paid (agent/budget.py).
    """

    llm_daily_usd_per_account: float = Field(default=1.0, ge=0)
    llm_daily_usd_total: float = Field(default=5.0, ge=0)
    # US dollars per account per calendar month (UTC); null: no cap. Free platforms never reach it
    platform_monthly_usd_per_account: float | None = Field(default=None, gt=0)


class Approval(_Section):
    draft_expiry: Duration = timedelta(hours=24)  # an unapproved draft is dropped after this

    _positive_durations = field_validator("draft_expiry")(_positive)


class Gate(_Section):
    """The quality gate every draft passes before it is queued."""

    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1)  # similarity that rejects
    recent_posts: int = Field(default=50, ge=1, le=1000)  # how many recent posts to compare with
    blocklist: list[str] = Field(default_factory=list)  # words/phrases never to post (any case)


class Store(_Section):
    # used when DATABASE_URL is not set
    sqlite_path: ConfigPath = Field(default=DEFAULT_SQLITE_PATH, validate_default=True)


class Sandbox(_Section):
    # a shipped scenario's name (adapters/scenarios/NAME.yaml) or the path of a scenario file
    scenario: str = DEFAULT_SCENARIO
    seed: int = 1
    # the simulated platform's state (real time)
    world_path: ConfigPath = Field(default=Path("data/sandbox-world.db"), validate_default=True)

    @field_validator("scenario")
    @classmethod
    def _named_or_path(cls, value: str, info: ValidationInfo) -> str:
        return checked_reference(value, base=(info.context or {}).get("config_dir"))


class Server(_Section):
    port: int = Field(default=8080, ge=0, le=65535)  # PORT in the environment wins
    host: str = "0.0.0.0"


DEFAULT_PLATFORM_CONCURRENCY = 8  # platform calls in flight at once on a platform not listed
# per platform: the simulated platform has no latency to hide; the real ones are kept well under
# their per-app request rates (each account's own limits still apply: RateLimited is respected)
DEFAULT_CONCURRENCY = {"sandbox": 64, "x": 16, "bluesky": 16, "mastodon": 16, "threads": 16}
DEFAULT_PLAN_CONCURRENCY = 8  # accounts planned at once


class Runtime(_Section):
    tick: Duration = timedelta(seconds=30)  # how often each cycle runs in real time
    shutdown_grace: Duration = timedelta(seconds=8)
    # wait before re-sending a post that reconciliation showed the platform never got
    publish_retry_after: Duration = timedelta(minutes=5)
    # posts the platform accepted while the database was unreachable wait here (agent/journal.py)
    journal_path: ConfigPath = Field(
        default=Path("data/publish-journal.jsonl"), validate_default=True
    )
    # several workers: how long a worker's snapshot claims and leases (planning, follower polls)
    # last, and after how long a post left `publishing` is presumed interrupted and reconciled
    lease: Duration = timedelta(minutes=2)
    # how often the daemon logs its one-line `status` event (accounts, next post, polls due)
    status_every: Duration = timedelta(minutes=5)
    # platform calls in flight at once per platform (publishes, metric and follower reads of all
    # its accounts together; one publish per account at a time whatever this says); a platform
    # not named here gets DEFAULT_PLATFORM_CONCURRENCY
    concurrency: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: dict(DEFAULT_CONCURRENCY)
    )
    # accounts planned at once (each plan may wait on the LLM generator)
    plan_concurrency: int = Field(default=DEFAULT_PLAN_CONCURRENCY, ge=1, le=1000)

    _positive_durations = field_validator(
        "tick", "shutdown_grace", "publish_retry_after", "lease", "status_every"
    )(_positive)

    @field_validator("concurrency")
    @classmethod
    def _known_platforms(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(PLATFORMS))
        if unknown:
            raise ValueError(
                f"unknown platform(s) {', '.join(unknown)}; expected some of {', '.join(PLATFORMS)}"
            )
        return value

    def concurrency_for(self, platform: str) -> int:
        """Platform calls in flight at once on ``platform`` (``runtime.concurrency``)."""
        default = DEFAULT_CONCURRENCY.get(platform, DEFAULT_PLATFORM_CONCURRENCY)
        return self.concurrency.get(platform, default)


DEFAULT_FAILURE_STREAK = 3  # publish failures of one kind in a row that suspend an account
DEFAULT_COOL_DOWN = timedelta(hours=1)  # how long such a streak suspends the account
DEFAULT_CREDENTIALS_CHECK = timedelta(minutes=15)  # between write-access reads while suspended


class FailSafe(_Section):
    """The circuit breaker (agent/breaker.py): when an account stops planning and publishing."""

    # publish failures of one kind in a row (ContentRejected, PlatformUnavailable...) that
    # suspend the account for ``cool_down``; 0 turns this part off (auth failures still suspend)
    failure_streak: int = Field(default=DEFAULT_FAILURE_STREAK, ge=0, le=1000)
    cool_down: Duration = DEFAULT_COOL_DOWN
    # how often a suspended account's credentials are read again (one cheap read, no post)
    credentials_check: Duration = DEFAULT_CREDENTIALS_CHECK

    _positive_durations = field_validator("cool_down", "credentials_check")(_positive)


DEFAULT_ALERT_REPEAT = timedelta(hours=1)  # one alert per kind and account at most this often
DEFAULT_STUCK_AFTER = timedelta(minutes=15)  # a post `publishing` this long is reported stuck
DEFAULT_ALERT_TIMEOUT = timedelta(seconds=5)  # for one webhook request


class AlertSettings(_Section):
    """Webhook notifications (agent/alerts.py); the URL is the secret
    GROWTHLOOP_ALERT_WEBHOOK_URL in the environment, never in this file."""

    repeat_after: Duration = DEFAULT_ALERT_REPEAT
    stuck_after: Duration = DEFAULT_STUCK_AFTER
    timeout: Duration = DEFAULT_ALERT_TIMEOUT

    _positive_durations = field_validator("repeat_after", "stuck_after", "timeout")(_positive)


# The audience (docs/audience.md); the weights' and tiers' defaults are learning/audience.py's
DEFAULT_AUDIENCE_RETENTION = timedelta(days=365)  # interactions older than this are purged daily
DEFAULT_SCORE_HALF_LIFE = timedelta(days=90)  # an act this old counts half in the score


class AudienceWeights(_Section):
    """Points per act in the engagement score (the tracking plan's; quote: as a repost)."""

    reply: float = Field(default=5.0, ge=0)
    like: float = Field(default=1.0, ge=0)
    repost: float = Field(default=10.0, ge=0)
    quote: float = Field(default=10.0, ge=0)
    bookmark: float = Field(default=8.0, ge=0)
    profile_visit: float = Field(default=3.0, ge=0)
    link_click: float = Field(default=15.0, ge=0)


class AudienceTiers(_Section):
    """The lowest score of each tier (the tracking plan's); below ``lurker``: inactive."""

    super_fan: float = Field(default=500.0, gt=0)
    active: float = Field(default=100.0, gt=0)
    lurker: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _decreasing(self) -> AudienceTiers:
        if not self.super_fan > self.active > self.lurker:
            raise ValueError(
                "must decrease: super_fan > active > lurker, got "
                f"{self.super_fan:g} / {self.active:g} / {self.lurker:g}"
            )
        return self

    def thresholds(self) -> tuple[tuple[str, float], ...]:
        """(tier, lowest score), highest first, as learning/audience.py takes them."""
        return (("super_fan", self.super_fan), ("active", self.active), ("lurker", self.lurker))


DEFAULT_AUDIENCE_READ_EVERY = timedelta(hours=1)  # between two reads of an account's sources
DEFAULT_FOLLOWERS_EVERY = timedelta(days=1)  # between two follower-list reconciliations
DEFAULT_READ_PAGES = 20  # pages per source and run (the rest waits for the next run)
DEFAULT_FOLLOWER_PAGES = 500  # pages of one follower-list read (40,000-500,000 followers)
DEFAULT_X_READ_BUDGET_USD = 5.0  # per account and month, when X's metered reads are on


class AudienceRead(_Section):
    """The audience and replies reads (docs/conversations.md): how often each account's sources
    are read, and what X's metered reads may cost."""

    every: Duration | None = DEFAULT_AUDIENCE_READ_EVERY  # null: never read
    followers_every: Duration = DEFAULT_FOLLOWERS_EVERY
    max_pages: int = Field(default=DEFAULT_READ_PAGES, gt=0)
    followers_max_pages: int = Field(default=DEFAULT_FOLLOWER_PAGES, gt=0)
    # The simulator reads the sandbox's people only when asked (benchmarks, tests): playing every
    # person costs time the aggregate simulations do not need.
    sandbox: bool = False
    # X bills reads on pay-per-use: off unless turned on, and then within x_budget_usd a month
    x_pay_per_use: bool = False
    x_budget_usd: float = Field(default=DEFAULT_X_READ_BUDGET_USD, ge=0)

    _positive_durations = field_validator("every", "followers_every")(_positive)


class Audience(_Section):
    """Who follows and engages (docs/audience.md): scoring, tiers and how long it is kept."""

    read: AudienceRead = AudienceRead()
    weights: AudienceWeights = AudienceWeights()
    tiers: AudienceTiers = AudienceTiers()
    # an act this old counts half in the engagement score; null: never decays (the plan's sum)
    score_half_life: Duration | None = DEFAULT_SCORE_HALF_LIFE
    retention: Duration = DEFAULT_AUDIENCE_RETENTION  # interactions older than this are purged
    # multi-touch attribution (learning/touch.py): how far back before a follow a touch counts,
    # and the time-decay model's half-life
    touch_window: Duration = timedelta(days=7)
    touch_half_life: Duration = timedelta(days=1)

    _positive_durations = field_validator(
        "score_half_life", "retention", "touch_window", "touch_half_life"
    )(_positive)


PLATFORMS = ("sandbox", "x", "bluesky", "mastodon", "threads")


# Sharing a report (growthloop report --upload, docs/report.md#sharing-a-report)
DEFAULT_REPORT_BUCKET = "growthloop-reports"  # the private Supabase Storage bucket, made if missing
DEFAULT_SIGNED_URL_EXPIRY = timedelta(days=7)  # how long a shared report's link works
# Our bound, not Supabase's (its API takes any whole number of seconds >= 1): a link meant to
# expire; one that works for more than a year is as good as a public one
MAX_SIGNED_URL_EXPIRY = timedelta(days=365)
# Supabase Storage's bucket names are 1-100 characters of the S3-safe set (its
# isValidBucketName); we take the subset that needs no escaping in a URL
BUCKET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def signed_url_expiry(value: timedelta) -> timedelta:
    """A signed URL's lifetime: whole seconds (Supabase's ``expiresIn``), from 1 s to
    :data:`MAX_SIGNED_URL_EXPIRY`."""
    if value < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, got {value.total_seconds():g} s")
    if value > MAX_SIGNED_URL_EXPIRY:
        raise ValueError(
            f"must be at most {MAX_SIGNED_URL_EXPIRY.days}d (a link meant to expire), got "
            f"{value.total_seconds() / 86400:g}d"
        )
    return timedelta(seconds=int(value.total_seconds()))


class ReportSettings(_Section):
    """``growthloop report``; ``--upload`` shares the HTML through Supabase Storage (the project's
    SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY come from the environment, never this file)."""

    bucket: str = DEFAULT_REPORT_BUCKET
    signed_url_expiry: Duration = DEFAULT_SIGNED_URL_EXPIRY

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not BUCKET_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a bucket name: 1-100 letters, digits, '.', '_' or '-'"
            )
        return value

    @field_validator("signed_url_expiry")
    @classmethod
    def _expiry(cls, value: timedelta) -> timedelta:
        return signed_url_expiry(value)


class Account(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    platform: Literal["sandbox", "x", "bluesky", "mastodon", "threads"]
    handle: str | None = None
    persona: str = Field(min_length=3)
    niche: str = Field(min_length=2)
    topics: list[str] = Field(min_length=1)
    cadence: Cadence | None = None  # overrides the top-level cadence for this account
    secrets_prefix: str | None = None  # env-var prefix for this account's credentials
    api_base_url: str | None = None  # the platform's API host; default: the official one
    tier: Literal["pay_per_use", "basic", "free"] | None = None  # X API access tier (X only)

    @model_validator(mode="after")
    def _tier_only_for_x(self) -> Account:
        if self.tier is not None and self.platform != "x":
            raise ValueError("tier applies to platform x only")
        return self

    @property
    def env_prefix(self) -> str:
        return self.secrets_prefix or re.sub(r"[^A-Z0-9]", "_", self.name.upper())


class Config(_Section):
    mode: Mode = Mode.LIVE
    accounts: list[Account] = Field(min_length=1)
    catalogues: Catalogues
    cadence: Cadence = Cadence()
    polling: Polling = Polling()
    learning: Learning = Learning()
    gate: Gate = Gate()
    generator: GeneratorSettings = GeneratorSettings()
    budget: Budget = Budget()
    approval: Approval = Approval()
    store: Store = Store()
    sandbox: Sandbox = Sandbox()
    server: Server = Server()
    runtime: Runtime = Runtime()
    failsafe: FailSafe = FailSafe()
    alerts: AlertSettings = AlertSettings()
    audience: Audience = Audience()
    report: ReportSettings = ReportSettings()
    threads: Threads = Threads()

    @model_validator(mode="after")
    def _unique_accounts(self) -> Config:
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"accounts: duplicate account names {dupes}")
        return self

    def cadence_for(self, account: Account) -> Cadence:
        return account.cadence or self.cadence

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    @property
    def attribution_window(self) -> timedelta:
        return self.learning.attribution_window or self.polling.final_horizon

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimensions the policy chooses (``format`` too when threads are on)."""
        return (*DIMENSIONS, "format") if self.threads.enabled else DIMENSIONS


# Which environment variables each platform needs, per account (prefix + name).
PLATFORM_SECRETS: dict[str, tuple[str, ...]] = {
    "sandbox": (),
    "x": ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"),
    "bluesky": ("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"),
    "mastodon": ("MASTODON_ACCESS_TOKEN",),
    "threads": ("THREADS_ACCESS_TOKEN",),
}


class Secrets(BaseSettings):
    """Process-wide secrets, from the environment or ``.env``. Never logged, never stored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    # Supabase's API, for Supabase Storage only (growthloop report --upload; agent/report/
    # share.py). They do not select a store: the store is DATABASE_URL or the SQLite file
    supabase_url: str | None = None
    supabase_service_role_key: SecretStr | None = None
    # where alerts are sent (a Slack or Discord incoming webhook; agent/alerts.py)
    growthloop_alert_webhook_url: SecretStr | None = None
    # the dashboard's and /metrics' tokens (agent/dashboard/access.py reads them)
    growthloop_dashboard_token: SecretStr | None = None
    growthloop_metrics_token: SecretStr | None = None


def account_secret_names(account: Account) -> list[str]:
    return [f"{account.env_prefix}_{name}" for name in PLATFORM_SECRETS[account.platform]]


def account_secrets(account: Account, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The account's credentials by their unprefixed names (``X_API_KEY``...), from the
    environment or ``.env``; check_account_secrets has already said what is missing."""
    env = dict(os.environ) if environ is None else dict(environ)
    env.update({k: v for k, v in _dotenv_values().items() if k not in env and v is not None})
    return {
        name: env[f"{account.env_prefix}_{name}"]
        for name in PLATFORM_SECRETS[account.platform]
        if env.get(f"{account.env_prefix}_{name}")
    }


def check_account_secrets(config: Config, environ: dict[str, str] | None = None) -> None:
    """Raise ConfigError naming each account whose platform credentials are missing."""
    env = dict(os.environ) if environ is None else environ
    env.update({k: v for k, v in _dotenv_values().items() if k not in env and v is not None})
    problems = []
    for index, account in enumerate(config.accounts):
        missing = [name for name in account_secret_names(account) if not env.get(name)]
        if missing:
            problems.append(
                f"accounts[{index}] ({account.name!r}, platform {account.platform}) needs "
                f"{', '.join(missing)} in the environment or .env"
            )
    if problems:
        raise ConfigError(
            "Missing secrets: " + "; ".join(problems) + ". Secrets are read only from the "
            "environment (or a .env file in the working directory), never from the config file."
        )


def with_dotenv(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the ``.env`` file's values (in the working directory) beneath it: where
    every secret is read from."""
    env = dict(environ)
    env.update({k: v for k, v in _dotenv_values().items() if k not in env and v is not None})
    return env


def _dotenv_values() -> dict[str, str | None]:
    from dotenv import dotenv_values

    path = Path(".env")
    return dict(dotenv_values(path)) if path.is_file() else {}


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before", "function-plain"} or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md)"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        lines.append(f"  {_key_path(tuple(error['loc']))}: {_describe(error)}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file (default: the built-in :data:`DEFAULT_CONFIG`); relative
    paths in a file are relative to its folder. Every problem becomes a ConfigError naming the
    key path."""
    if path is None:
        return _validate(DEFAULT_CONFIG, config_dir=None, name="built-in config")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"Config file {file} does not exist. Pass --config PATH (or set GROWTHLOOP_CONFIG), "
            "or leave both out to use the built-in example config; `growthloop config example` "
            "prints it as a commented starting point."
        )
    # the built-in file given by its path is still the built-in config: data under the cwd,
    # never inside the installed package
    built_in = isinstance(DEFAULT_CONFIG, Path) and file.resolve() == DEFAULT_CONFIG.resolve()
    config_dir = None if built_in else file.resolve().parent
    return _validate(file, config_dir=config_dir, name=f"Config file {file}")


def example_config_text() -> str:
    """The built-in example config, with its comments."""
    return DEFAULT_CONFIG.read_text(encoding="utf-8")


def _validate(file: Traversable, *, config_dir: Path | None, name: str) -> Config:
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name} is not valid YAML{where}: {problem}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name} cannot be read: {exc}.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name} must hold a mapping of keys at the top level.")
    try:
        return Config.model_validate(raw, context={"config_dir": config_dir})
    except ValidationError as exc:
        count = exc.error_count()
        raise ConfigError(
            f"{name} has {count} problem{'s' if count > 1 else ''}:\n"
            + format_validation_error(exc)
        ) from None
