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

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from learning.drift import Change, Series, detect
from learning.joint import Fit, JointPosterior, Row, fit_joint
from learning.posteriors import GammaPoisson, prior_from_config

Catalogue = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One published post as a policy sees it.

    ``reward`` is the objective's final value (None while the post is in flight);
    ``engagements`` and ``profile_clicks`` the latest counts, seen ``hours_observed`` hours after
    posting; ``audience`` the account's followers when it was posted (None: not known).
    """

    arms: Mapping[str, str]
    posted_at: datetime
    reward: float | None
    engagements: float
    hours_observed: float | None
    profile_clicks: float = 0.0
    audience: float | None = None

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
CHANGES_PER_PLAN = 3  # at most this many splits found in one plan (a restart finds them anew)


@dataclass(frozen=True, slots=True)
class Joint:
    """Thompson sampling from :func:`learning.joint.fit_joint` (see that module for the maths).

    ``objective``: "followers" (engagement is then auxiliary evidence) or "engagement".
    ``half_life_days``: posts this old count half (None: never forget).
    ``interaction``: the pair of dimensions given a pairwise term (None: additive only).
    ``provisional``: use in-flight posts' partial engagement (scaled to its expected final).
    ``change_threshold``: split a dimension's history where one of its arms' followers per post
    dropped this clearly (:mod:`learning.drift`; None: never).
    """

    name: str = "joint"
    objective: str = "followers"
    half_life_days: float | None = None
    interaction: tuple[str, str] | None = ("formula", "hook")
    provisional: bool = True
    exploration: float = 0.6  # scale of the posterior spread in a Thompson draw (1: plain)
    change_threshold: float | None = None
    audience: bool = True  # model followers per post as growing with the account's audience
    negbin: bool = True  # negative binomial counts (variance mu + mu^2/k), else quasi-Poisson
    carry_auxiliary: bool = True  # draws carry the auxiliary model's uncertainty (JointPosterior)
    # the last fit's modes (Newton starting points; see learning.joint.fit_joint)
    warm: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # the changes found so far, in the order found (a cache of what the history shows: a new
    # policy object finds them again on its first plan)
    changes: list[Change] = field(default_factory=list, compare=False, repr=False)
    # the largest change statistic seen so far ("peak"), split or not
    watch: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    # id(outcome) -> (outcome, len(changes) when mapped, its arms with retired eras renamed)
    _eras: dict[int, tuple[Outcome, int, Mapping[str, str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def weight(self, outcome: Outcome, now: datetime) -> float:
        if self.half_life_days is None:
            return 1.0
        age = max((now - outcome.posted_at).total_seconds() / 86400.0, 0.0)
        return float(0.5 ** (age / self.half_life_days))

    def arms(self, outcome: Outcome) -> Mapping[str, str]:
        """The post's arms as the model sees them: in a dimension whose history was split, a post
        from before the latest split has its arm in a retired dimension ``"<dimension>@<era>"``
        (its own effects), so only posts since the change inform the dimension's current
        effects."""
        if not self.changes:
            return outcome.arms
        known = self._eras.get(id(outcome))
        if known is not None and known[0] is outcome and known[1] == len(self.changes):
            return known[2]
        if len(self._eras) > 4096:
            self._eras.clear()
        arms = dict(outcome.arms)
        for dimension, splits in self._splits().items():
            era = sum(1 for at in splits if at <= outcome.posted_at)
            if era < len(splits) and dimension in arms:
                arms[f"{dimension}@{era}"] = arms.pop(dimension)
        self._eras[id(outcome)] = (outcome, len(self.changes), arms)
        return arms

    def _splits(self) -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = {}
        for change in self.changes:
            out.setdefault(change.dimension, []).append(change.at)
        return {d: sorted(v) for d, v in out.items()}

    def _catalogue(self, catalogue: Catalogue) -> dict[str, Sequence[str]]:
        """The catalogue with every retired era's dimension added."""
        full = dict(catalogue)
        for dimension, splits in self._splits().items():
            for era in range(len(splits)):
                full[f"{dimension}@{era}"] = catalogue.get(dimension, ())
        return full

    def posterior(
        self, history: Sequence[Outcome], catalogue: Catalogue, now: datetime
    ) -> JointPosterior:
        for _ in range(CHANGES_PER_PLAN):
            posterior, done, rows, auxiliary_rows = self._fit(history, catalogue, now)
            change = self._detect(posterior, catalogue, done, rows, auxiliary_rows)
            if change is None:
                return replace(posterior, carry=self.carry_auxiliary)
            self.changes.append(change)
            self.warm.clear()  # the design and every cached row change
        return replace(self._fit(history, catalogue, now)[0], carry=self.carry_auxiliary)

    def _fit(
        self, history: Sequence[Outcome], catalogue: Catalogue, now: datetime
    ) -> tuple[JointPosterior, list[Outcome], list[Row], list[Row] | None]:
        """The posterior, the finished posts, and their objective and auxiliary rows."""
        done = _finished(history)
        interaction = self.interaction
        if interaction is not None and not all(d in catalogue for d in interaction):
            interaction = None
        full = self._catalogue(catalogue)
        retired = frozenset(full) - frozenset(catalogue)
        ref = self._reference(history)
        covariate = ref is not None
        if self.warm.get("reference") != ref:  # cached rows carry z relative to the reference
            self.warm.pop("rows", None)
            self.warm["reference"] = ref
        if self.objective == "engagement":
            rows = [Row(self.arms(o), o.engagements, self.weight(o, now), self._z(o)) for o in done]
            finished = list(rows)
            rows += self._provisional(history, now, _engagements)
            posterior = fit_joint(
                full,
                rows,
                None,
                interaction=interaction,
                warm=self.warm,
                covariate=covariate,
                negbin=self.negbin,
            )
            return posterior.retire(retired, self._z_now(history)), done, finished, None
        signal = auxiliary(history)
        rows, engagement = self._finished_rows(done, signal, now)
        finished_auxiliary = list(engagement)
        engagement += self._provisional(history, now, signal)
        posterior = fit_joint(
            full,
            rows,
            engagement,
            interaction=interaction,
            warm=self.warm,
            covariate=covariate,
            negbin=self.negbin,
        )
        return posterior.retire(retired, self._z_now(history)), done, rows, finished_auxiliary

    def _reference(self, history: Sequence[Outcome]) -> float | None:
        """The audience the covariate is measured from (the first post's), or None when it is
        off or some post's audience is unknown."""
        if not self.audience or not history or any(not o.audience for o in history):
            return None
        return float(history[0].audience)  # type: ignore[arg-type]

    def _z(self, o: Outcome) -> float:
        ref = self.warm.get("reference")
        return math.log(o.audience / ref) if ref and o.audience else 0.0

    def _z_now(self, history: Sequence[Outcome]) -> float:
        return self._z(history[-1]) if history else 0.0

    def _detect(
        self,
        posterior: JointPosterior,
        catalogue: Catalogue,
        done: Sequence[Outcome],
        rows: Sequence[Row],
        auxiliary_rows: Sequence[Row] | None,
    ) -> Change | None:
        """The clearest drop in one arm's posts since its dimension's last split, if any passes
        the threshold (:func:`learning.drift.detect`)."""
        if self.change_threshold is None or len(done) < 2 * MIN_CHANGE_POSTS:
            return None
        order = sorted(range(len(done)), key=lambda i: done[i].posted_at)
        times = [done[i].posted_at for i in order]
        objective = _series(posterior.fit, rows, order)
        aux = None
        if auxiliary_rows is not None and posterior.engagement is not None:
            aux = _series(posterior.engagement, auxiliary_rows, order)
        splits = self._splits()
        best: Change | None = None
        for dimension in catalogue:
            arms = [done[i].arms.get(dimension, "") for i in order]
            since = splits[dimension][-1] if dimension in splits else None
            change = detect(arms, times, dimension, objective, aux, 0.0, since)
            if change is not None and (best is None or change.statistic > best.statistic):
                best = change
        if best is not None:  # how close the history came to a split (reports, calibration)
            self.watch["peak"] = max(self.watch.get("peak", 0.0), best.statistic)
        return best if best is not None and best.statistic > self.change_threshold else None

    def _finished_rows(
        self, done: Sequence[Outcome], signal: Callable[[Outcome], float], now: datetime
    ) -> tuple[list[Row], list[Row]]:
        """The finished posts' objective rows and auxiliary rows. Without a half-life a post's
        rows never change, so they are kept (in ``warm``) for the next plan."""
        if self.half_life_days is not None:
            return (
                [
                    Row(
                        self.arms(o),
                        max(float(o.reward or 0.0), 0.0),
                        self.weight(o, now),
                        self._z(o),
                    )
                    for o in done
                ],
                [Row(self.arms(o), signal(o), self.weight(o, now), self._z(o)) for o in done],
            )
        cache: dict[int, tuple[Outcome, Callable[[Outcome], float], Row, Row]]
        cache = self.warm.setdefault("rows", {})
        if len(cache) > 4 * len(done) + 1000:
            cache.clear()
        rows, auxiliary_rows = [], []
        for o in done:
            known = cache.get(id(o))
            if known is None or known[0] is not o or known[1] is not signal:
                arms, z = self.arms(o), self._z(o)
                objective = Row(arms, max(float(o.reward or 0.0), 0.0), z=z)
                known = cache[id(o)] = (o, signal, objective, Row(arms, signal(o), z=z))
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
            rows.append(Row(self.arms(o), signal(o) / s, s * self.weight(o, now), self._z(o)))
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


MIN_CHANGE_POSTS = 8


def _series(fit: Fit, rows: Sequence[Row], order: Sequence[int]) -> Series:
    """Counts and fitted means of these rows under a fit, in ``order``, with the dispersion
    the drop test uses (for negative binomial counts, the variance's average excess over
    Poisson)."""
    mu = np.exp(np.clip(fit.design.rows_layout(rows).eta(fit.mean), -30.0, 30.0))
    y = np.array([r.value for r in rows], dtype=float)
    index = np.asarray(order, dtype=np.intp)
    phi = fit.dispersion
    if math.isfinite(fit.shape):  # negative binomial: its variance over mu, averaged by mu
        phi *= float(np.sum(mu * (1.0 + mu / fit.shape)) / max(float(np.sum(mu)), 1e-12))
    return Series(y[index], mu[index], phi)


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
