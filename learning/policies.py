"""Policies: how a post's arms are chosen from the account's history.

Every policy sees the same thing: the catalogue (dimension -> arms), the account's history of
published posts as :class:`Outcome` values, the time, and a random generator; it returns one arm
per dimension. Policies are pure (numpy only) and recompute what they need from the history, so a
restart, a second worker or a changed catalogue never leaves them with stale state.

- ``joint`` (the default): Thompson sampling from the joint log-linear model of
  :mod:`learning.joint`, with engagement as auxiliary evidence, provisional updates from posts
  still in flight, and an optional half-life.
- ``independent``: the earlier learner, one Gamma-Poisson posterior per arm and dimension.
- ``uniform``: every arm equally often (a baseline).
- ``seed_selector``: the selector of the system growthloop was started from (a baseline): per
  dimension, 70% of the time the arm with the best average reward, otherwise a score-weighted
  draw among the top five; arms whose success rate fell below a threshold are dropped.
- ``beta_bernoulli``: per-dimension Thompson sampling on a binarised reward, "did the post beat
  the median so far" (a baseline).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from learning.joint import JointPosterior, Row, fit_joint
from learning.posteriors import GammaPoisson, prior_from_config

Catalogue = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One published post as a policy sees it.

    ``reward`` is the objective's final value (None while the post is in flight);
    ``engagements`` and ``profile_clicks`` the latest counts, seen ``hours_observed`` hours after
    posting.
    """

    arms: Mapping[str, str]
    posted_at: datetime
    reward: float | None
    engagements: float
    hours_observed: float | None
    profile_clicks: float = 0.0

    @property
    def final(self) -> bool:
        return self.reward is not None


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]: ...


def _finished(history: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in history if o.reward is not None]


@dataclass(frozen=True, slots=True)
class Uniform:
    name: str = "uniform"

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]:
        return {d: str(arms[int(rng.integers(len(arms)))]) for d, arms in catalogue.items()}


@dataclass(frozen=True, slots=True)
class SeedSelector:
    """70% best average / 30% score-weighted among the top five; poor performers dropped.

    An arm's success rate is the share of its posts whose reward reached the median reward of
    all posts; an arm with at least ``min_posts`` posts and a success rate below ``threshold``
    is dropped (unless that would drop every arm). Arms never tried score the overall average,
    so they are tried when the tried ones disappoint.
    """

    name: str = "seed_selector"
    exploit: float = 0.7
    top: int = 5
    threshold: float = 0.2
    min_posts: int = 5

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]:
        done = _finished(history)
        rewards = [float(o.reward) for o in done if o.reward is not None]
        overall = float(np.mean(rewards)) if rewards else 0.0
        median = float(np.median(rewards)) if rewards else 0.0
        chosen = {}
        for dimension, arms in catalogue.items():
            by_arm: dict[str | None, list[float]] = {}
            for o in done:  # one pass per dimension, not one per arm
                if o.reward is not None:
                    by_arm.setdefault(o.arms.get(dimension), []).append(float(o.reward))
            scores: dict[str, float] = {}
            for arm in arms:
                mine = by_arm.get(arm, [])
                if len(mine) >= self.min_posts:
                    success = sum(r >= median for r in mine) / len(mine)
                    if success < self.threshold:
                        continue
                scores[arm] = float(np.mean(mine)) if mine else overall
            if not scores:
                scores = {arm: overall for arm in arms}
            ranked = sorted(scores, key=lambda a: (-scores[a], a))
            if rng.random() < self.exploit:
                best = scores[ranked[0]]
                ties = [a for a in ranked if scores[a] == best]
                chosen[dimension] = ties[int(rng.integers(len(ties)))]
            else:
                top = ranked[: self.top]
                weights = np.array([max(scores[a], 0.0) for a in top]) + 1e-9
                chosen[dimension] = top[int(rng.choice(len(top), p=weights / weights.sum()))]
        return chosen


@dataclass(frozen=True, slots=True)
class BetaBernoulli:
    """Per-dimension Thompson sampling on "the reward beat the median of all rewards so far"."""

    name: str = "beta_bernoulli"

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]:
        done = _finished(history)
        median = float(np.median([o.reward for o in done])) if done else 0.0
        chosen = {}
        for dimension, arms in catalogue.items():
            posts: Counter[str | None] = Counter()
            wins: Counter[str | None] = Counter()
            for o in done:  # one pass per dimension, not one per arm
                arm = o.arms.get(dimension)
                posts[arm] += 1
                wins[arm] += o.reward is not None and o.reward > median
            draws = [rng.beta(1 + wins[arm], 1 + posts[arm] - wins[arm]) for arm in arms]
            chosen[dimension] = str(arms[int(np.argmax(draws))])
        return chosen


@dataclass(frozen=True, slots=True)
class Independent:
    """One Gamma-Poisson posterior per (dimension, arm) from the configured prior."""

    name: str = "independent"
    prior_mean: float = 2.0
    prior_strength: float = 0.1

    def posteriors(
        self, history: Sequence[Outcome], catalogue: Catalogue
    ) -> dict[str, dict[str, GammaPoisson]]:
        prior = prior_from_config(self.prior_mean, self.prior_strength)
        out: dict[str, dict[str, GammaPoisson]] = {}
        for dimension, arms in catalogue.items():
            out[dimension] = {}
            for arm in arms:
                mine = [
                    o.reward
                    for o in history
                    if o.reward is not None and o.arms.get(dimension) == arm
                ]
                out[dimension][arm] = GammaPoisson(
                    shape=prior.shape + float(sum(mine)), rate=prior.rate + len(mine)
                )
        return out

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]:
        chosen = {}
        for dimension, by_arm in self.posteriors(history, catalogue).items():
            arms = list(by_arm)
            draws = [rng.gamma(p.shape, 1.0 / p.rate) for p in by_arm.values()]
            chosen[dimension] = arms[int(np.argmax(draws))]
        return chosen


PROVISIONAL_MIN_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class Joint:
    """Thompson sampling from :func:`learning.joint.fit_joint` (see that module for the maths).

    ``objective``: "followers" (engagement is then auxiliary evidence) or "engagement".
    ``half_life_days``: posts this old count half (None: never forget).
    ``interaction``: the pair of dimensions given a pairwise term (None: additive only).
    ``provisional``: use in-flight posts' partial engagement (scaled to its expected final).
    """

    name: str = "joint"
    objective: str = "followers"
    half_life_days: float | None = None
    interaction: tuple[str, str] | None = ("formula", "hook")
    provisional: bool = True
    exploration: float = 0.5  # scale of the posterior spread in a Thompson draw (1: plain)
    # the last fit's modes (Newton starting points; see learning.joint.fit_joint)
    warm: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def weight(self, outcome: Outcome, now: datetime) -> float:
        if self.half_life_days is None:
            return 1.0
        age = max((now - outcome.posted_at).total_seconds() / 86400.0, 0.0)
        return float(0.5 ** (age / self.half_life_days))

    def posterior(
        self, history: Sequence[Outcome], catalogue: Catalogue, now: datetime
    ) -> JointPosterior:
        done = _finished(history)
        interaction = self.interaction
        if interaction is not None and not all(d in catalogue for d in interaction):
            interaction = None
        if self.objective == "engagement":
            rows = [Row(o.arms, o.engagements, self.weight(o, now)) for o in done]
            rows += self._provisional(history, now, _engagements)
            return fit_joint(catalogue, rows, None, interaction=interaction, warm=self.warm)
        signal = auxiliary(history)
        rows, engagement = self._finished_rows(done, signal, now)
        engagement += self._provisional(history, now, signal)
        return fit_joint(catalogue, rows, engagement, interaction=interaction, warm=self.warm)

    def _finished_rows(
        self, done: Sequence[Outcome], signal: Callable[[Outcome], float], now: datetime
    ) -> tuple[list[Row], list[Row]]:
        """The finished posts' objective rows and auxiliary rows. Without a half-life a post's
        rows never change, so they are kept (in ``warm``) for the next plan."""
        if self.half_life_days is not None:
            return (
                [Row(o.arms, max(float(o.reward or 0.0), 0.0), self.weight(o, now)) for o in done],
                [Row(o.arms, signal(o), self.weight(o, now)) for o in done],
            )
        cache: dict[int, tuple[Outcome, Callable[[Outcome], float], Row, Row]]
        cache = self.warm.setdefault("rows", {})
        if len(cache) > 4 * len(done) + 1000:
            cache.clear()
        rows, auxiliary_rows = [], []
        for o in done:
            known = cache.get(id(o))
            if known is None or known[0] is not o or known[1] is not signal:
                objective = Row(o.arms, max(float(o.reward or 0.0), 0.0))
                known = cache[id(o)] = (o, signal, objective, Row(o.arms, signal(o)))
            rows.append(known[2])
            auxiliary_rows.append(known[3])
        return rows, auxiliary_rows

    def _provisional(
        self,
        history: Sequence[Outcome],
        now: datetime,
        signal: Callable[[Outcome], float] | None = None,
    ) -> list[Row]:
        """In-flight posts' engagement, scaled to the final by the share seen at their age.

        The share at ``h`` hours is estimated cross-sectionally: the mean engagement of posts last
        seen at about ``h`` hours over the mean final engagement. A post counts with weight equal
        to that share (its partial count carries less information than a final one).
        """
        if not self.provisional:
            return []
        signal = signal or _engagements
        finals = [signal(o) for o in history if o.final]
        pending = [o for o in history if not o.final and o.hours_observed is not None]
        if len(finals) < 5 or not pending:
            return []
        final_mean = float(np.mean(finals))
        if final_mean <= 0:
            return []
        buckets: dict[int, list[float]] = {}
        for o in pending:
            buckets.setdefault(_bucket(o.hours_observed), []).append(signal(o))
        share = {
            b: min(max(float(np.mean(v)) / final_mean, PROVISIONAL_MIN_SHARE), 1.0)
            for b, v in buckets.items()
        }
        rows = []
        for o in pending:
            s = share[_bucket(o.hours_observed)]
            rows.append(Row(o.arms, signal(o) / s, s * self.weight(o, now)))
        return rows

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
    ) -> dict[str, str]:
        full = dict(catalogue)
        if "hour" in catalogue:  # the model knows every hour posted at; the choice is narrower
            seen = {o.arms["hour"] for o in history if "hour" in o.arms}
            full["hour"] = sorted(seen | set(catalogue["hour"]))
        posterior = self.posterior(history, full, now)
        return posterior.best(posterior.sample(rng, self.exploration), allowed=catalogue)


def _engagements(o: Outcome) -> float:
    return o.engagements


def _profile_clicks(o: Outcome) -> float:
    return o.profile_clicks


def auxiliary(history: Sequence[Outcome]) -> Callable[[Outcome], float]:
    """The auxiliary signal the follower model borrows from: profile clicks where the platform
    reports them (a visit to the profile is the step before a follow, so they track follows
    closely and come in several times the numbers), else likes + reposts + replies + quotes +
    bookmarks."""
    if any(o.profile_clicks > 0 for o in history):
        return _profile_clicks
    return _engagements


def _bucket(hours: float | None) -> int:
    """Log-spaced age buckets (0: under 2 h, 1: under 8 h, 2: older)."""
    h = hours or 0.0
    return 0 if h < 2 else (1 if h < 8 else 2)


POLICIES: dict[str, Callable[..., Policy]] = {
    "joint": Joint,
    "independent": Independent,
    "uniform": Uniform,
    "seed_selector": SeedSelector,
    "beta_bernoulli": BetaBernoulli,
}
BASELINES = ("uniform", "seed_selector", "beta_bernoulli")
