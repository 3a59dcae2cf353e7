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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import stats

from learning.estimates import (
    DRAWS,
    LEVEL,
    ArmEstimate,
    Estimates,
    p_best,
    posts_per_arm,
    ranked,
    sample_interval,
)
from learning.joint_policy import Joint, JointState, auxiliary
from learning.outcomes import Catalogue, Outcome, finished
from learning.posteriors import GammaPoisson, prior_from_config

__all__ = [
    "BASELINES",
    "POLICIES",
    "BetaBernoulli",
    "Catalogue",
    "Independent",
    "Joint",
    "JointState",
    "Outcome",
    "Policy",
    "SeedSelector",
    "Uniform",
    "auxiliary",
]

REWARD_UNIT = "reward per post"  # a baseline's unit: whatever the objective's reward counts


class Policy(Protocol):
    """How a post's arms are chosen, and what the chooser believes.

    ``state`` is what the policy carries from one call to the next (None: nothing yet; the
    baselines carry nothing): ``choose`` takes it and returns the next one with its choice;
    ``estimates`` reads it without advancing it. ``rng`` is the generator a call may draw from:
    the decision stream's for ``choose``, a separate one for ``estimates``.
    """

    @property
    def name(self) -> str: ...

    @property
    def learns_hours(self) -> bool:
        """Whether it chooses the topic and the posting hour too (else the planner draws the
        topic at random and posts when the cadence says)."""
        ...

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> tuple[dict[str, str], Any]: ...

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates: ...


def _by_arm(done: Sequence[Outcome], dimension: str) -> dict[str | None, list[float]]:
    """The final rewards of these posts per arm of ``dimension``."""
    out: dict[str | None, list[float]] = {}
    for o in done:
        if o.reward is not None:
            out.setdefault(o.arms.get(dimension), []).append(float(o.reward))
    return out


def _sample_estimates(
    name: str,
    history: Sequence[Outcome],
    catalogue: Catalogue,
    chance: Callable[[str, list[float]], dict[str, float]],
) -> Estimates:
    """Estimates from each arm's sample mean (a normal 90% interval): the belief of a policy
    without a model; ``chance(dimension, overall rewards)`` gives its probability per arm."""
    done = finished(history)
    dimensions = {}
    for dimension, arms in catalogue.items():
        rewards = _by_arm(done, dimension)
        share = chance(dimension, [float(o.reward) for o in done if o.reward is not None])
        estimates = []
        for arm in arms:
            mean, low, high = sample_interval(rewards.get(arm, []))
            estimates.append(
                ArmEstimate(
                    arm=arm,
                    posts=len(rewards.get(arm, [])),
                    mean=mean,
                    low=low,
                    high=high,
                    p_best=share.get(arm, 0.0),
                )
            )
        dimensions[dimension] = ranked(estimates)
    return Estimates(model=name, unit=REWARD_UNIT, dimensions=dimensions)


@dataclass(frozen=True, slots=True)
class Uniform:
    name: str = "uniform"
    learns_hours: ClassVar[bool] = False

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> tuple[dict[str, str], None]:
        return {d: str(arms[int(rng.integers(len(arms)))]) for d, arms in catalogue.items()}, None

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates:
        """Sample means; every arm is equally likely to be played (it believes none is best)."""

        def chance(dimension: str, _rewards: list[float]) -> dict[str, float]:
            return {a: 1.0 / len(catalogue[dimension]) for a in catalogue[dimension]}

        return _sample_estimates(self.name, history, catalogue, chance)


@dataclass(frozen=True, slots=True)
class SeedSelector:
    """70% best average / 30% score-weighted among the top five; poor performers dropped.

    An arm's success rate is the share of its posts whose reward reached the median reward of
    all posts; an arm with at least ``min_posts`` posts and a success rate below ``threshold``
    is dropped (unless that would drop every arm). Arms never tried score the overall average,
    so they are tried when the tried ones disappoint.
    """

    name: str = "seed_selector"
    learns_hours: ClassVar[bool] = False
    exploit: float = 0.7
    top: int = 5
    threshold: float = 0.2
    min_posts: int = 5

    def scores(
        self, done: Sequence[Outcome], dimension: str, arms: Sequence[str]
    ) -> dict[str, float]:
        """Each arm's score (its average reward; the overall average if untried), without the
        arms dropped for a low success rate (all arms if that would drop every one)."""
        rewards = [float(o.reward) for o in done if o.reward is not None]
        overall = float(np.mean(rewards)) if rewards else 0.0
        median = float(np.median(rewards)) if rewards else 0.0
        by_arm = _by_arm(done, dimension)  # one pass per dimension, not one per arm
        scores: dict[str, float] = {}
        for arm in arms:
            mine = by_arm.get(arm, [])
            if len(mine) >= self.min_posts:
                success = sum(r >= median for r in mine) / len(mine)
                if success < self.threshold:
                    continue
            scores[arm] = float(np.mean(mine)) if mine else overall
        return scores or {arm: overall for arm in arms}

    def _top(self, scores: dict[str, float]) -> tuple[list[str], list[str], np.ndarray]:
        """The tied best arms, the top few and their draw weights."""
        order = sorted(scores, key=lambda a: (-scores[a], a))
        ties = [a for a in order if scores[a] == scores[order[0]]]
        top = order[: self.top]
        weights = np.array([max(scores[a], 0.0) for a in top]) + 1e-9
        return ties, top, weights / weights.sum()

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> tuple[dict[str, str], None]:
        done = finished(history)
        chosen = {}
        for dimension, arms in catalogue.items():
            ties, top, weights = self._top(self.scores(done, dimension, arms))
            if rng.random() < self.exploit:
                chosen[dimension] = ties[int(rng.integers(len(ties)))]
            else:
                chosen[dimension] = top[int(rng.choice(len(top), p=weights))]
        return chosen, None

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates:
        """Sample means; as the probability of being best, the chance the selector plays the
        arm next (its belief is its scores, and it plays the best score most)."""
        done = finished(history)

        def chance(dimension: str, _rewards: list[float]) -> dict[str, float]:
            ties, top, weights = self._top(self.scores(done, dimension, catalogue[dimension]))
            share = dict.fromkeys(catalogue[dimension], 0.0)
            for arm in ties:
                share[arm] += self.exploit / len(ties)
            for arm, weight in zip(top, weights, strict=True):
                share[arm] += (1.0 - self.exploit) * float(weight)
            return share

        return _sample_estimates(self.name, history, catalogue, chance)


@dataclass(frozen=True, slots=True)
class BetaBernoulli:
    """Per-dimension Thompson sampling on "the reward beat the median of all rewards so far"."""

    name: str = "beta_bernoulli"
    learns_hours: ClassVar[bool] = False

    def beliefs(
        self, done: Sequence[Outcome], dimension: str, arms: Sequence[str]
    ) -> list[tuple[float, float]]:
        """Each arm's Beta(a, b) posterior of "beats the median" (from a uniform prior)."""
        median = float(np.median([o.reward for o in done])) if done else 0.0
        posts: Counter[str | None] = Counter()
        wins: Counter[str | None] = Counter()
        for o in done:  # one pass per dimension, not one per arm
            arm = o.arms.get(dimension)
            posts[arm] += 1
            wins[arm] += o.reward is not None and o.reward > median
        return [(1.0 + wins[arm], 1.0 + posts[arm] - wins[arm]) for arm in arms]

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> tuple[dict[str, str], None]:
        done = finished(history)
        chosen = {}
        for dimension, arms in catalogue.items():
            draws = [rng.beta(a, b) for a, b in self.beliefs(done, dimension, arms)]
            chosen[dimension] = str(arms[int(np.argmax(draws))])
        return chosen, None

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates:
        """Per arm, the posterior of the chance a post beats the median: its mean, 90% interval,
        and the probability (over ``DRAWS`` draws from ``rng``) that the arm's chance is best."""
        done = finished(history)
        posted = [o.arms for o in done]
        dimensions = {}
        for dimension, arms in catalogue.items():
            beliefs = self.beliefs(done, dimension, arms)
            draws = np.stack([rng.beta(a, b, size=DRAWS) for a, b in beliefs], axis=1)
            best = p_best(draws)
            posts = posts_per_arm(posted, dimension, arms)
            tail = (1.0 - LEVEL) / 2.0
            dimensions[dimension] = ranked(
                [
                    ArmEstimate(
                        arm=arm,
                        posts=posts[arm],
                        mean=a / (a + b),
                        low=float(stats.beta.ppf(tail, a, b)),
                        high=float(stats.beta.ppf(1.0 - tail, a, b)),
                        p_best=float(best[i]),
                    )
                    for i, (arm, (a, b)) in enumerate(zip(arms, beliefs, strict=True))
                ]
            )
        return Estimates(
            model=self.name, unit="share of posts above the median", dimensions=dimensions
        )


@dataclass(frozen=True, slots=True)
class Independent:
    """One Gamma-Poisson posterior per (dimension, arm) from the configured prior."""

    name: str = "independent"
    learns_hours: ClassVar[bool] = False
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
        state: Any = None,
    ) -> tuple[dict[str, str], None]:
        chosen = {}
        for dimension, by_arm in self.posteriors(history, catalogue).items():
            arms = list(by_arm)
            draws = [rng.gamma(p.shape, 1.0 / p.rate) for p in by_arm.values()]
            chosen[dimension] = arms[int(np.argmax(draws))]
        return chosen, None

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates:
        """Each arm's Gamma posterior: mean, 90% interval, and the probability (over ``DRAWS``
        draws from ``rng``) that its rate is the dimension's highest."""
        posted = [o.arms for o in finished(history)]
        dimensions = {}
        for dimension, by_arm in self.posteriors(history, catalogue).items():
            arms = list(by_arm)
            draws = np.stack([rng.gamma(p.shape, 1.0 / p.rate, DRAWS) for p in by_arm.values()])
            best = p_best(draws.T)
            posts = posts_per_arm(posted, dimension, arms)
            estimates = []
            for i, (arm, posterior) in enumerate(by_arm.items()):
                low, high = posterior.interval(LEVEL)
                estimates.append(
                    ArmEstimate(
                        arm=arm,
                        posts=posts[arm],
                        mean=posterior.mean,
                        low=low,
                        high=high,
                        p_best=float(best[i]),
                    )
                )
            dimensions[dimension] = ranked(estimates)
        return Estimates(model=self.name, unit=REWARD_UNIT, dimensions=dimensions)


POLICIES: dict[str, Callable[..., Policy]] = {
    "joint": Joint,
    "independent": Independent,
    "uniform": Uniform,
    "seed_selector": SeedSelector,
    "beta_bernoulli": BetaBernoulli,
}
BASELINES = ("uniform", "seed_selector", "beta_bernoulli")
