"""One count model's Laplace posterior: the posterior mode by Newton's method and its covariance.

The likelihood is negative binomial (variance ``mu + mu^2 / k``, ``k`` by maximum likelihood over
a grid) with a Huber score, or quasi-Poisson (Poisson deviance over the Pearson dispersion); see
:mod:`learning.joint` for the model and how its priors are set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from learning.design import Design, Layout, Row
from learning.folded import Folded

NEWTON_STEPS = 25
# negative binomial counts: a post's Pearson residual counts at most this many standard deviations
# in the fit (Huber), so one viral outlier cannot crown its arms
HUBER_C = 3.0


@dataclass(frozen=True, slots=True)
class Fit:
    """A Laplace posterior ``N(mean, cov)`` over the design's columns."""

    design: Design
    mean: np.ndarray
    cov: np.ndarray
    dispersion: float
    n: float  # effective (weighted) number of posts
    next_dispersion: float = 1.0  # the Pearson estimate at this fit's mode (for the next fit)
    shape: float = math.inf  # the negative binomial's k (inf: quasi-Poisson)
    next_shape: float = math.inf  # its estimate at this fit's mode (for the next fit)
    precision: np.ndarray | None = None  # the prior precision (diagonal) the fit used

    def effect(self, dimension: str, arm: str) -> tuple[float, float]:
        """Posterior mean and sd of one arm's log effect."""
        col = self.design.index[(dimension, arm)]
        return float(self.mean[col]), float(math.sqrt(max(self.cov[col, col], 0.0)))

    def effects(self) -> np.ndarray:
        """The mean vector without the intercept (for the engagement prior)."""
        return self.mean


def fit(
    design: Design,
    rows: Sequence[Row],
    *,
    prior_mean: np.ndarray,
    prior_sd: np.ndarray,
    start: np.ndarray | None = None,
    dispersion: float | None = None,
    negbin: bool = False,
    shape: float | None = None,
    reestimate: bool = True,
    folded: Folded | None = None,
) -> Fit:
    """Posterior mode and Laplace covariance of the log-linear count model.

    Quasi-Poisson (``negbin`` false): ``dispersion``: use this ``phi`` (a previous fit's
    estimate: one Newton run) instead of fitting with ``phi = 1``, estimating it, and fitting
    again. Negative binomial (``negbin``): the variance is ``mu + mu^2 / k``; ``shape``: use this
    ``k`` (one Newton run) instead of fitting with ``SHAPE_START``, estimating ``k`` by maximum
    likelihood at that mode, and fitting again. The returned fit carries the ``phi`` and ``k``
    it used and the estimates at its mode (``next_dispersion``, ``next_shape``) for the next call;
    ``reestimate`` false keeps a given ``k`` as the next one (its estimate costs a likelihood
    over a grid of ``k``, and one more post moves it little). ``folded``: older posts as the
    quadratic of their log-likelihood (:mod:`learning.folded`), added to ``rows``' terms.
    """
    x = design.rows_layout(rows)
    y = np.array([r.value for r in rows], dtype=float)
    w = np.array([r.weight for r in rows], dtype=float)
    precision = 1.0 / np.square(prior_sd)
    theta = prior_mean.copy() if start is None else start.copy()
    if len(rows) and start is None:
        theta[0] = math.log(max(float(np.average(y, weights=w)) if w.sum() > 0 else 0.0, 0.05))
    given = shape if negbin else dispersion
    phi = 1.0 if (negbin or dispersion is None) else dispersion
    k = (SHAPE_START if shape is None else shape) if negbin else math.inf
    if folded is not None:
        folded = folded.on(design)
        if folded is None:
            raise ValueError("the folded posts have a column this design lacks: refit them all")
    any_rows = len(rows) > 0 or (folded is not None and folded.count > 0)
    hess: np.ndarray | None = None  # at the current theta
    for _round in range(1 if given is not None else 2):
        hess = None
        for _ in range(NEWTON_STEPS):
            mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
            s, info = score(y, mu, k)
            data_grad = x.xt(w * s)
            data_hess = x.gram(w * info)
            if folded is not None:  # the old posts' quadratic (learning.folded)
                data_grad += folded.gradient(theta)
                data_hess += folded.hess
            grad = data_grad / phi - precision * (theta - prior_mean)
            hess = data_hess / phi + np.diag(precision)
            step = np.linalg.solve(hess, grad)
            theta = theta + np.clip(step, -2.0, 2.0)
            if float(np.max(np.abs(step))) < 1e-4:
                break  # theta moved by < 1e-4: the Hessian just computed is the Hessian there
            hess = None
        if not any_rows or given is not None or _round == 1:
            break
        if negbin:
            k = _nb_shape(x, y, w, theta, k, folded)
        else:
            phi = _pearson(x, y, w, theta, folded)
    if hess is None:
        mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
        data_hess = x.gram(w * score(y, mu, k)[1])
        if folded is not None:
            data_hess += folded.hess
        hess = data_hess / phi + np.diag(precision)
    cov = np.linalg.inv(hess)
    cov = (cov + cov.T) / 2.0
    if negbin:
        again = any_rows and (shape is None or reestimate)
        next_phi, next_k = 1.0, _nb_shape(x, y, w, theta, k, folded) if again else k
    else:
        next_phi, next_k = (_pearson(x, y, w, theta, folded) if any_rows else 1.0), math.inf
    return Fit(
        design=design,
        mean=theta,
        cov=cov,
        dispersion=phi,
        n=float(w.sum()) + (folded.n if folded is not None else 0.0),
        next_dispersion=next_phi,
        shape=k,
        next_shape=next_k,
        precision=precision,
    )


SHAPE_START = 3.0  # the negative binomial's shape before one is estimated
SHAPE_GRID = np.geomspace(0.3, 300.0, 31)


def score(y: np.ndarray, mu: np.ndarray, shape: float) -> tuple[np.ndarray, np.ndarray]:
    """Per post, the fit's score in ``eta`` and its information: ``(y - mu) / scale`` and
    ``mu / scale`` with ``scale = 1 + mu / shape`` (the variance's excess over Poisson; 1 for
    quasi-Poisson, ``shape`` inf). Negative binomial counts have the score Huber-clipped: a post's
    residual counts at most ``HUBER_C`` standard deviations."""
    scale = 1.0 + mu / shape
    if math.isinf(shape):
        return y - mu, mu
    sd = np.sqrt(mu * scale)
    return np.clip((y - mu) / sd, -HUBER_C, HUBER_C) * sd / scale, mu / scale


def score_slope(y: np.ndarray, mu: np.ndarray, shape: float) -> np.ndarray:
    """Per post, minus the derivative of :func:`score` in ``eta`` (the observed information,
    where :func:`score` gives the expected one): ``mu (1 + y / k) / scale^2`` unclipped; for a
    clipped residual, minus the derivative of ``+-HUBER_C sqrt(mu / scale)``."""
    if math.isinf(shape):
        return mu
    scale = 1.0 + mu / shape
    sd = np.sqrt(mu * scale)
    r = (y - mu) / sd
    inside = mu * (1.0 + y / shape) / np.square(scale)
    clipped = -np.sign(r) * HUBER_C * np.sqrt(mu * scale) / (2.0 * np.square(scale))
    out: np.ndarray = np.where(np.abs(r) > HUBER_C, clipped, inside)
    return out


def nb_loglik(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted negative binomial log-likelihood at means ``mu``, for every ``k`` of
    ``SHAPE_GRID``."""
    if len(y) == 0:
        return np.zeros(len(SHAPE_GRID))
    m = mu[None, :]
    k = SHAPE_GRID[:, None]
    yy = y[None, :]
    loglik = gammaln(yy + k) - gammaln(k) + k * np.log(k / (k + m)) + yy * np.log(m / (k + m))
    out: np.ndarray = loglik @ w
    return out


def pearson_sum(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    """``sum w (y - mu)^2 / mu``."""
    return float(np.sum(w * np.square(y - mu) / np.maximum(mu, 1e-9)))


def _nb_shape(
    x: Layout,
    y: np.ndarray,
    w: np.ndarray,
    theta: np.ndarray,
    default: float,
    folded: Folded | None = None,
) -> float:
    """The negative binomial shape ``k`` maximising the weighted likelihood at the means of
    ``theta`` (a log grid from 0.3 to 300; ``default`` with too few posts to tell); ``folded``
    posts count at the means they were folded at."""
    total = float(w.sum()) + (folded.n if folded is not None else 0.0)
    if total <= 10:
        return default
    mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
    loglik = nb_loglik(y, mu, w)
    if folded is not None:
        loglik = loglik + folded.shape_loglik
    return float(SHAPE_GRID[int(np.argmax(loglik))])


def _pearson(
    x: Layout, y: np.ndarray, w: np.ndarray, theta: np.ndarray, folded: Folded | None = None
) -> float:
    """The Pearson estimate of the dispersion (>= 1; 1 with too few posts to tell); ``folded``
    posts count at the means they were folded at."""
    total = float(w.sum()) + (folded.n if folded is not None else 0.0)
    if total <= 5:
        return 1.0
    mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
    pearson = pearson_sum(y, mu, w)
    used = x.used()
    if folded is not None:
        pearson += folded.pearson
        used = int(np.count_nonzero(folded.used | x.used_mask()))
    dof = max(total - float(used), 1.0)
    return max(1.0, pearson / dof)
