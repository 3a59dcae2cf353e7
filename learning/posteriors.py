"""Conjugate posteriors over the reward of one arm, with geometric forgetting.

Two families, both immutable values with the same small interface (``mean``, ``interval``,
``sample``, ``updated``, ``discounted``, ``as_dict``/``from_dict``):

:class:`GammaPoisson` (the default)
    The reward of a post (followers attributed to it, or engagements) is modelled as a count
    ``y ~ Poisson(lambda)`` and the arm's rate has a ``Gamma(shape=a, rate=b)`` posterior
    (density proportional to ``lambda^(a-1) e^(-b lambda)``, mean ``a/b``, variance ``a/b^2``).
    Observing ``y`` with weight ``w`` multiplies the posterior by the (tempered) likelihood
    ``(lambda^y e^(-lambda))^w``, giving ``Gamma(a + w*y, b + w)``: ``b`` counts posts, ``a``
    counts reward. The update is well defined for fractional ``y`` (attributed gains such as 2.4
    followers) and fractional ``w``.

:class:`BetaBernoulli`
    A success/failure reward (e.g. "the post gained at least one follower") with a
    ``Beta(alpha, beta)`` posterior; ``s`` in ``[0, 1]`` with weight ``w`` gives
    ``Beta(alpha + w*s, beta + w*(1-s))``. Kept for a binarised baseline to compare against.

Discounting (forgetting) pulls every parameter geometrically toward the prior:
``theta <- theta_0 + f * (theta - theta_0)``. Applied once per update with factor ``f``, evidence
from ``k`` updates ago carries weight ``f^k``, so the posterior remembers about ``1 / (1 - f)``
posts, and an arm that is not played drifts back to the (wide) prior instead of freezing at a
stale, overconfident estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

GAMMA_POISSON = "gamma_poisson"
BETA_BERNOULLI = "beta_bernoulli"


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_level(level: float) -> None:
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _check_weight(weight: float) -> None:
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")


def _check_factor(factor: float) -> None:
    if not (0.0 < factor <= 1.0):
        raise ValueError(f"discount factor must be in (0, 1], got {factor!r}")


def _check_family(d: dict[str, Any], family: str) -> None:
    found = d.get("family", family)
    if found != family:
        raise ValueError(f"expected a {family!r} posterior, got family {found!r}")


@dataclass(frozen=True, slots=True)
class GammaPoisson:
    """Gamma(shape, rate) posterior over the Poisson rate of a count reward (followers per post).

    ``shape`` is the prior's pseudo-reward plus the (weighted) sum of observed rewards; ``rate``
    is the prior's pseudo-post count plus the (weighted) number of posts observed.
    """

    shape: float
    rate: float

    def __post_init__(self) -> None:
        _check_positive("shape", self.shape)
        _check_positive("rate", self.rate)

    @property
    def mean(self) -> float:
        """Posterior mean of the rate: ``shape / rate``."""
        return self.shape / self.rate

    @property
    def variance(self) -> float:
        """Posterior variance of the rate: ``shape / rate^2``."""
        return self.shape / self.rate**2

    @property
    def strength(self) -> float:
        """Pseudo-observation count (``rate``): how many posts' worth of evidence it holds."""
        return self.rate

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """Equal-tailed credible interval: the ``(1-level)/2`` and ``(1+level)/2`` quantiles.

        Quantiles of ``Gamma(shape, scale=1/rate)``: the inverse regularised incomplete gamma
        function (``scipy.special.gammaincinv``, what ``scipy.stats.gamma.ppf`` computes, without
        its per-call overhead: the learn cycle asks for several per post).
        """
        _check_level(level)
        tail = (1.0 - level) / 2.0
        low, high = special.gammaincinv(self.shape, [tail, 1.0 - tail]) / self.rate
        return float(low), float(high)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """Draw ``lambda ~ Gamma(shape, rate)``: a float, or an array of ``size`` draws."""
        draws = rng.gamma(self.shape, 1.0 / self.rate, size=size)
        return float(draws) if size is None else draws

    def updated(self, reward: float, *, weight: float = 1.0) -> GammaPoisson:
        """Conjugate update with one (possibly fractional) count: ``Gamma(a + w*y, b + w)``.

        Raises ``ValueError`` for a negative or non-finite reward or weight.
        """
        if not (math.isfinite(reward) and reward >= 0):
            raise ValueError(f"a Poisson reward must be a finite number >= 0, got {reward!r}")
        _check_weight(weight)
        return GammaPoisson(self.shape + weight * reward, self.rate + weight)

    def discounted(self, factor: float, prior: GammaPoisson) -> GammaPoisson:
        """Forget toward ``prior``: ``theta_0 + factor * (theta - theta_0)`` on shape and rate.

        ``factor`` in ``(0, 1]``; 1 returns the posterior unchanged. The result is a convex
        combination of two valid posteriors, hence valid.
        """
        _check_factor(factor)
        if factor == 1.0:
            return self
        return GammaPoisson(
            prior.shape + factor * (self.shape - prior.shape),
            prior.rate + factor * (self.rate - prior.rate),
        )

    def as_dict(self) -> dict[str, Any]:
        """``{"family": "gamma_poisson", "shape": ..., "rate": ...}`` (JSON-ready)."""
        return {"family": GAMMA_POISSON, "shape": float(self.shape), "rate": float(self.rate)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GammaPoisson:
        """Inverse of :meth:`as_dict`; a missing ``family`` is accepted, a different one is not."""
        _check_family(d, GAMMA_POISSON)
        return cls(float(d["shape"]), float(d["rate"]))


@dataclass(frozen=True, slots=True)
class BetaBernoulli:
    """Beta(alpha, beta) posterior over the success probability of a binary reward."""

    alpha: float
    beta: float

    def __post_init__(self) -> None:
        _check_positive("alpha", self.alpha)
        _check_positive("beta", self.beta)

    @property
    def mean(self) -> float:
        """Posterior mean: ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        """Posterior variance: ``alpha*beta / ((alpha+beta)^2 (alpha+beta+1))``."""
        n = self.alpha + self.beta
        return self.alpha * self.beta / (n * n * (n + 1.0))

    @property
    def strength(self) -> float:
        """Pseudo-observation count ``alpha + beta``."""
        return self.alpha + self.beta

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """Equal-tailed credible interval from ``scipy.stats.beta.ppf``."""
        _check_level(level)
        tail = (1.0 - level) / 2.0
        low, high = stats.beta.ppf([tail, 1.0 - tail], self.alpha, self.beta)
        return float(low), float(high)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """Draw probabilities ``p ~ Beta(alpha, beta)``."""
        draws = rng.beta(self.alpha, self.beta, size=size)
        return float(draws) if size is None else draws

    def updated(self, success: float, *, weight: float = 1.0) -> BetaBernoulli:
        """Conjugate update: ``Beta(alpha + w*s, beta + w*(1-s))`` for ``s`` in ``[0, 1]``."""
        if not (0.0 <= success <= 1.0):
            raise ValueError(f"a Bernoulli outcome must be in [0, 1], got {success!r}")
        _check_weight(weight)
        return BetaBernoulli(self.alpha + weight * success, self.beta + weight * (1.0 - success))

    def discounted(self, factor: float, prior: BetaBernoulli) -> BetaBernoulli:
        """Forget toward ``prior``: ``theta_0 + factor * (theta - theta_0)`` on alpha and beta."""
        _check_factor(factor)
        if factor == 1.0:
            return self
        return BetaBernoulli(
            prior.alpha + factor * (self.alpha - prior.alpha),
            prior.beta + factor * (self.beta - prior.beta),
        )

    def as_dict(self) -> dict[str, Any]:
        """``{"family": "beta_bernoulli", "alpha": ..., "beta": ...}`` (JSON-ready)."""
        return {"family": BETA_BERNOULLI, "alpha": float(self.alpha), "beta": float(self.beta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BetaBernoulli:
        """Inverse of :meth:`as_dict`."""
        _check_family(d, BETA_BERNOULLI)
        return cls(float(d["alpha"]), float(d["beta"]))


def posterior_from_dict(d: dict[str, Any]) -> GammaPoisson | BetaBernoulli:
    """Rebuild a posterior of either family from its :meth:`as_dict` form (keyed on ``family``)."""
    family = d.get("family")
    if family == GAMMA_POISSON:
        return GammaPoisson.from_dict(d)
    if family == BETA_BERNOULLI:
        return BetaBernoulli.from_dict(d)
    raise ValueError(f"unknown posterior family {family!r}")


def prior_from_config(mean: float, strength: float) -> GammaPoisson:
    """The Gamma prior with mean ``mean`` worth ``strength`` pseudo-posts.

    ``Gamma(shape = mean * strength, rate = strength)``: as if ``strength`` posts had already been
    observed with average reward ``mean``. Its variance ``mean / strength`` is what keeps an
    untried (or long-unplayed, once discounted) arm's draws spread widely enough to win sometimes.
    """
    _check_positive("prior mean", mean)
    _check_positive("prior strength", strength)
    return GammaPoisson(mean * strength, strength)
