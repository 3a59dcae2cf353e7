"""An experiment file (``growthloop experiments create FILE``): YAML validated by pydantic, then
checked against the config and the store, sized, and stored (agent/experiments.py runs it).

Every problem is an :class:`ExperimentError` naming its key path (``variants[1].value: unknown
hook 'x'``), which the CLI prints and exits with code 2. A file::

    account: main
    name: stat hook
    hypothesis: a surprising stat brings more engagement than a myth buster
    varies: hook          # content_type | formula | hook | topic | hour | voice | prompt
    variants:
      - {name: control, value: myth_buster, control: true}
      - {name: stat, value: surprising_stat}
    metric: engagement_rate           # followers_per_post | engagement_rate | retained_followers
    mde: 0.3                          # relative to the baseline mean: +30 %
    alpha: 0.05
    power: 0.8
    max_days: 30
    stop_rules:
      significance: true
      futility: {after_fraction: 0.5}
      poor_performer: {engagement_rate_below: 0.02, after_posts: 20}
      bayesian: {p_best: 0.95, expected_loss: 0.01}
      promote: auto

The baseline (the metric's mean and spread per post, which the MDE is relative to and the
maximum duration is sized from) is read from the account's learned posts when it has at least
``MIN_BASELINE_POSTS``, else the file gives it (``baseline: {mean: 4.0, sd: 3.5}``). The
maximum posts per variant is :func:`learning.experiments.sequential_sample_size` at the MDE
unless the file sets ``max_posts_per_variant``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.config import DEFAULT_PROMPT, Config, format_validation_error
from agent.errors import ExperimentError
from agent.experiments import ARM_DIMENSIONS
from agent.learner import catalogue_for
from agent.models import Experiment, ExperimentStatus, NewExperiment, NewVariant
from agent.retained import retained_followers
from learning.experiments import sequential_sample_size

# The baseline is read from the account's own posts once it has this many learned ones (fewer:
# the spread of a handful of skewed counts is not worth sizing an experiment on; the file gives
# it instead). The same order as learning.experiments.MIN_PER_VARIANT's reasoning, doubled.
MIN_BASELINE_POSTS = 20
__all__ = ["ExperimentError", "ExperimentSpec", "create", "parse", "read"]
HOUR_WINDOW = re.compile(r"^([01]\d|2[0-3])(-([01]\d|2[0-3]))?$")  # "09" or "09-11"
OPEN = (ExperimentStatus.DRAFT, ExperimentStatus.RUNNING)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoorPerformer(_Strict):
    engagement_rate_below: float = Field(gt=0.0, lt=1.0)
    after_posts: int = Field(default=20, ge=2)


class Bayesian(_Strict):
    p_best: float = Field(default=0.95, gt=0.5, lt=1.0)
    expected_loss: float = Field(default=0.01, gt=0.0)  # relative to the baseline mean


class Futility(_Strict):
    after_fraction: float = Field(default=0.5, gt=0.0, le=1.0)


class StopRules(_Strict):
    significance: bool = True
    futility: Futility | None = Futility()
    poor_performer: PoorPerformer | None = None
    bayesian: Bayesian | None = None
    promote: Literal["auto", "manual"] = "auto"


class VariantSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    value: str = Field(min_length=1, max_length=200)
    control: bool = False


class Baseline(_Strict):
    mean: float = Field(gt=0.0)
    sd: float = Field(gt=0.0)


class ExperimentSpec(_Strict):
    account: str
    name: str = Field(min_length=1, max_length=100)
    hypothesis: str = Field(min_length=1)
    varies: Literal["content_type", "formula", "hook", "topic", "format", "hour", "voice", "prompt"]
    variants: list[VariantSpec] = Field(min_length=2)
    metric: Literal["followers_per_post", "engagement_rate", "retained_followers"]
    mde: float = Field(gt=0.0, le=10.0)  # relative to the baseline mean
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1.0)
    max_days: float = Field(default=30.0, gt=0.0)
    max_posts_per_variant: int | None = Field(default=None, ge=2)
    baseline: Baseline | None = None
    block_size: int | None = Field(default=None, ge=2)
    seed: int = Field(default=0, ge=0)
    start: bool = True
    stop_rules: StopRules = StopRules()

    @model_validator(mode="after")
    def _variants(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: two variants have the same name")
        if len({v.value for v in self.variants}) != len(self.variants):
            raise ValueError("variants: two variants have the same value")
        if sum(v.control for v in self.variants) > 1:
            raise ValueError("variants: more than one control")
        if self.block_size is not None and self.block_size < len(self.variants):
            raise ValueError("block_size: smaller than the number of variants")
        return self


def parse(text: str, *, where: str = "experiment file") -> ExperimentSpec:
    """The spec in ``text`` (YAML), or an ExperimentError naming each bad key path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{where}: expected a mapping of keys (account, name, ...)")
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(f"{where} is not valid:\n{format_validation_error(exc)}") from None


def read(path: Path) -> ExperimentSpec:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, where=str(path))


def check_values(spec: ExperimentSpec, config: Config) -> None:
    """The account is configured and each variant's value exists for what varies."""
    accounts = {a.name: a for a in config.accounts}
    account = accounts.get(spec.account)
    if account is None:
        known = ", ".join(sorted(accounts))
        raise ExperimentError(f"account: unknown account {spec.account!r} (configured: {known})")
    if spec.varies == "format" and not config.threads.enabled:
        raise ExperimentError(
            "varies: the format (single or thread) is chosen only with threads.enabled: true"
        )
    if spec.varies in ARM_DIMENSIONS:
        known_arms = catalogue_for(config, account).get(spec.varies, [])
        for i, v in enumerate(spec.variants):
            if v.value not in known_arms:
                raise ExperimentError(
                    f"variants[{i}].value: unknown {spec.varies} {v.value!r} "
                    f"(known: {', '.join(known_arms)})"
                )
    elif spec.varies == "prompt":
        if config.generator.kind != "openai":
            raise ExperimentError(
                "varies: prompt versions are instructions to the OpenAI generator; this config "
                f"writes with {config.generator.kind!r} (set generator.kind: openai)"
            )
        known_prompts = [DEFAULT_PROMPT, *sorted(config.generator.prompts)]
        for i, v in enumerate(spec.variants):
            if v.value not in known_prompts:
                raise ExperimentError(
                    f"variants[{i}].value: unknown prompt version {v.value!r} "
                    f"(generator.prompts has: {', '.join(known_prompts)})"
                )
    elif spec.varies == "hour":
        for i, v in enumerate(spec.variants):
            if not HOUR_WINDOW.match(v.value):
                raise ExperimentError(
                    f'variants[{i}].value: an hour ("09") or an hour window ("09-11"), '
                    f"got {v.value!r}"
                )


async def baseline(
    store: Any, config: Config, account_id: int, metric: str, *, now: datetime
) -> list[float]:
    """The metric per learned post of the account so far (its history: the baseline); for
    retained followers, the posts whose figure is final at ``now``."""
    method = config.learning.attribution_method
    history = await store.learning_history(account_id, method=method)
    if metric == "followers_per_post":
        return [float(o.followers or 0.0) for o in history if o.learned]
    if metric == "engagement_rate":
        start = min((o.posted_at for o in history), default=None)
        if start is None:
            return []
        posted = await store.posted_between(account_id, start, start + timedelta(days=36_500))
        return [c.engagements / c.impressions for p, c in posted if p.learned_at and c.impressions]
    posts = [(o.content_id, o.posted_at) for o in history if o.learned]
    kept = await retained_followers(store, account_id, posts, now=now)
    return [kept[cid] for cid, _ in posts if cid in kept]


async def create(store: Any, config: Config, spec: ExperimentSpec, *, now: datetime) -> Experiment:
    """Check the spec against the config and the store, size it and store it (running unless
    ``start: false``)."""
    check_values(spec, config)
    ids = {name: i for i, name in (await store.account_names()).items()}
    account_id = ids.get(spec.account)
    if account_id is None:
        raise ExperimentError(
            f"account: {spec.account!r} has no posts yet (run the agent first: an experiment "
            "is sized on the account's own history)"
        )
    for other in await store.experiments(account_id=account_id, statuses=OPEN):
        if other.dimension == spec.varies:
            raise ExperimentError(
                f"varies: experiment {other.id} ({other.plan.name!r}, {other.status.value}) "
                f"already varies {spec.varies} on {spec.account}; stop it first"
            )
    mean, sd = await _baseline(store, config, account_id, spec, now=now)
    posts = spec.max_posts_per_variant
    if posts is None:
        posts = sequential_sample_size(sd, sd, spec.mde * mean, alpha=spec.alpha, power=spec.power)
    control = next((i for i, v in enumerate(spec.variants) if v.control), 0)
    variants = tuple(
        NewVariant(name=v.name, value=v.value, control=i == control)
        for i, v in enumerate(spec.variants)
    )
    new = NewExperiment(
        account_id=account_id,
        name=spec.name,
        hypothesis=spec.hypothesis,
        dimension=spec.varies,
        metric=spec.metric,
        mde=spec.mde,
        alpha=spec.alpha,
        power=spec.power,
        baseline_mean=mean,
        baseline_sd=sd,
        max_posts_per_variant=posts,
        max_days=spec.max_days,
        block_size=spec.block_size or 2 * len(variants),
        seed=spec.seed,
        stop_rules=spec.stop_rules.model_dump(),
        variants=variants,
    )
    made: Experiment = await store.create_experiment(new, now=now)
    if spec.start:
        await store.set_experiment_status(
            made.id, expected=[ExperimentStatus.DRAFT], status=ExperimentStatus.RUNNING, now=now
        )
        found = await store.get_experiment(made.id)
        assert found is not None
        made = found
    return made


async def _baseline(
    store: Any, config: Config, account_id: int, spec: ExperimentSpec, *, now: datetime
) -> tuple[float, float]:
    if spec.baseline is not None:
        return spec.baseline.mean, spec.baseline.sd
    values = await baseline(store, config, account_id, spec.metric, now=now)
    if len(values) < MIN_BASELINE_POSTS:
        raise ExperimentError(
            f"baseline: the account has {len(values)} learned posts with a "
            f"{spec.metric.replace('_', ' ')} (fewer than {MIN_BASELINE_POSTS}); give "
            "baseline.mean and baseline.sd"
        )
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    if not (mean > 0 and sd > 0 and math.isfinite(sd)):
        raise ExperimentError(f"baseline: the account's history gives mean {mean}, sd {sd}")
    return mean, sd
