"""Follower attribution by deconvolution: the follower series as organic growth plus each post's
lagged contribution, with an engagement-informed prior and a confidence that is a probability.

The model. Follower readings are thinned to at most one per ``BIN`` of the window (1 h for a
24 h window); between consecutive readings at ``t_{k-1}`` and ``t_k`` (``dt_k`` hours apart)
the count changes by::

    dy_k = r * dt_k  +  sum_q g_q * (G(t_k - t_q) - G(t_{k-1} - t_q))  +  eps_k
    eps_k ~ N(0, sigma^2 * dt_k)                       organic noise (arrivals, churn, rounding)
    g_q   ~ N(mu_q, s_q^2),  mu_q = beta * e_q,  s_q^2 = mu_q + mu_q^2 / k + S0

with ``g_q`` the followers post ``q`` causes (all of them, whenever they arrive), ``G`` the
cumulative lag kernel (a gamma CDF: the share of a post's followers arrived ``tau`` hours after it),
``r`` the organic rate (arrivals minus churn, followers/hour) and ``e_q`` the post's engagements
(likes + reposts + replies + quotes + bookmarks; 1 for every post when none are given). The prior
is a Gaussian with the mean and variance of a negative binomial whose mean is proportional to the
engagement: overlapping posts, which the series alone cannot tell apart, are separated by how much
engagement each drew, while the series fixes their sum and the organic rate.

Writing ``A`` for the kernel increments, ``g`` integrates out: ``dy ~ N(F theta, Sigma)`` with
``F = [dt, A e]``, ``theta = (r, beta)`` and ``Sigma = sigma^2 diag(dt) + A diag(s^2) A^T``.

**Learned hyperparameters** (empirical Bayes, all by the marginal likelihood of ``dy``):
``theta`` by generalised least squares (``beta >= 0``; ``mu`` is updated and the fit repeated),
the kernel's shape and scale from ``KERNEL_SHAPES x KERNEL_SCALES`` (hours for a 24 h window),
then the dispersion ``k`` from ``DISPERSIONS`` and the noise ``sigma^2`` from ``NOISE_PER_HOUR``.

**Posterior.** Given those, ``g`` is Gaussian with mean ``mu + S A^T Sigma^-1 (dy - F theta)``
and covariance ``S - S A^T Sigma^-1 A S`` (``S = diag(s^2)``). ``followers_gained`` is the mean
clipped at 0: the *total* followers the post caused, including those the kernel says arrive after
the attribution window (the window only decides when a post is ready to be attributed).

**Confidence, defined.** With posterior mean ``m``, standard deviation ``sd`` and the reported
``g_hat = max(m, 0)``::

    confidence = P(|g - g_hat| <= max(1, 0.25 * g_hat))     under N(m, sd^2)

"the true number of followers the post caused is within one follower or 25 % of what we report,
with this probability". ``inputs`` also holds ``interval_low``/``interval_high``, the central
``INTERVAL_LEVEL`` posterior interval (clipped at 0), and ``standard_error`` (= ``sd``).
Both would be calibrated if the model held; they are not yet: in the simulator and on
synthetic data the intervals are too narrow (80 % intervals cover 56-68 %;
``bench/attribution.py`` measures it, docs/learning.md has the figures).

The fit uses the readings from ``FIT_BEFORE`` windows before the first target until the last
one, and every post from ``TAIL`` windows before the first reading on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy import linalg, stats

from learning.attribution import AttributionEstimate, FollowerPoint, PostEvent

METHOD = "deconvolution"
# Durations are fractions of the attribution window W (with W = 24 h: 1 h, 48 h, 48 h):
BIN = 1 / 24  # readings are thinned to at most one per BIN * W
FIT_BEFORE = 2.0  # readings from FIT_BEFORE * W before the first target post
TAIL = 2.0  # posts up to TAIL * W before the first reading still move the series
KERNEL_SHAPES = (1.0, 2.0, 3.0)  # gamma shapes of the lag kernel
KERNEL_SCALES = (1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 14.0)  # x W / 24: median lag ~1 h .. ~37 h
REUSE_FITS = 10  # calls that reuse a chosen kernel and (k, noise) before choosing again
DISPERSIONS = (0.5, 1.0, 2.0, 4.0)  # k: prior variance mu + mu^2 / k
NOISE_PER_HOUR = (
    0.01,
    0.05,
    0.25,
    1.0,
    4.0,
)  # sigma^2: organic noise variance per hour (followers^2)
PRIOR_FLOOR = 0.25  # S0: prior variance that even a post with no engagement keeps
INTERVAL_LEVEL = 0.8  # of the stored posterior interval
TOLERANCE = 0.25  # relative half-width of the event the confidence gives the probability of
MIN_READINGS = 6


@dataclass(frozen=True, slots=True)
class _Fit:
    loglik: float
    theta: np.ndarray  # (r, beta)
    mu: np.ndarray
    s2: np.ndarray
    chol: tuple[np.ndarray, bool]
    alpha: np.ndarray  # Sigma^-1 (dy - F theta)


def _hours(at: datetime, ref: datetime) -> float:
    return (at - ref).total_seconds() / 3600.0


def _thin(t: np.ndarray, y: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    keep = [0]
    for i in range(1, len(t)):
        if t[i] - t[keep[-1]] >= step:
            keep.append(i)
    if keep[-1] != len(t) - 1:
        keep.append(len(t) - 1)
    return t[keep], y[keep]


def _kernel(t: np.ndarray, starts: np.ndarray, shape: float, scale: float) -> np.ndarray:
    lags = np.clip(t[:, None] - starts[None, :], 0.0, None)
    return np.diff(stats.gamma.cdf(lags, shape, scale=scale), axis=0)


def _fit(
    dy: np.ndarray,
    dt: np.ndarray,
    a: np.ndarray,
    e: np.ndarray,
    k: float,
    noise: float,
    mu0: np.ndarray,
    rounds: int = 3,
) -> _Fit | None:
    """The marginal-likelihood fit of ``theta`` for one kernel and (k, noise)."""
    f = np.column_stack([dt, a @ e])
    mu = mu0
    theta = np.zeros(2)
    chol: tuple[np.ndarray, bool] | None = None
    for _ in range(rounds):
        s2 = mu + mu * mu / k + PRIOR_FLOOR
        cov = noise * np.diag(dt) + (a * s2) @ a.T
        try:
            chol = linalg.cho_factor(cov, lower=True)
        except linalg.LinAlgError:
            return None
        fi = linalg.cho_solve(chol, f)
        theta = np.linalg.lstsq(f.T @ fi, fi.T @ dy, rcond=None)[0]
        if theta[1] < 0:  # beta >= 0: refit the rate alone
            theta = np.array([float(fi[:, 0] @ dy) / float(fi[:, 0] @ f[:, 0]), 0.0])
        new = theta[1] * e
        converged = bool(np.allclose(new, mu, rtol=1e-3, atol=1e-3))
        mu = new
        if converged:
            break
    s2 = mu + mu * mu / k + PRIOR_FLOOR
    cov = noise * np.diag(dt) + (a * s2) @ a.T
    try:
        chol = linalg.cho_factor(cov, lower=True)
    except linalg.LinAlgError:
        return None
    resid = dy - f @ theta
    alpha = linalg.cho_solve(chol, resid)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol[0]))))
    loglik = -0.5 * (float(resid @ alpha) + logdet)
    return _Fit(loglik=loglik, theta=theta, mu=mu, s2=s2, chol=chol, alpha=alpha)


def confidence(mean: float, sd: float) -> float:
    """P(|g - max(mean, 0)| <= max(1, TOLERANCE * max(mean, 0))) for g ~ N(mean, sd^2)."""
    gain = max(mean, 0.0)
    tol = max(1.0, TOLERANCE * gain)
    if not sd > 0:
        return 1.0
    p = stats.norm.cdf((gain + tol - mean) / sd) - stats.norm.cdf((gain - tol - mean) / sd)
    return float(min(1.0, max(0.0, p)))


def deconvolution(
    targets: Sequence[PostEvent],
    posts: Sequence[PostEvent],
    series: Sequence[FollowerPoint],
    *,
    window: timedelta,
    engagements: Mapping[str, float] | None = None,
    reuse: dict[str, Any] | None = None,
) -> list[AttributionEstimate]:
    """Attribute follower gains to each target post by deconvolving the follower series.

    ``posts``: all the account's posts that can have moved the series (targets are added if
    missing); ``series``: follower readings, in any order; ``engagements``: post id -> the
    post's engagements so far (posts missing from it count 0; None: no engagement prior, every
    post's prior mean is the same). Targets whose window has not closed in the series are
    omitted. Returns estimates in the order of ``targets``.

    ``reuse``: a dict the caller keeps between calls for one account. The kernel and (k, noise)
    chosen by the grid search are kept in it and reused for the next ``REUSE_FITS`` calls with
    the same window (they describe the account and change slowly), which makes a call ~30x
    cheaper; then they are chosen afresh.
    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window!r}")
    if engagements is not None:
        bad = {k: v for k, v in engagements.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"engagements must be finite numbers >= 0, got {bad!r}")
    if not targets or not series:
        return []
    width = window.total_seconds() / 3600.0
    first = min(p.posted_at for p in targets)
    since = first - FIT_BEFORE * window
    points = sorted((p for p in series if p.at >= since), key=lambda p: p.at)
    if len(points) < MIN_READINGS:
        return []
    ref = points[0].at
    t = np.array([_hours(p.at, ref) for p in points])
    y = np.array([float(p.followers) for p in points])
    keep = np.concatenate([[True], np.diff(t) > 0])  # of readings at one instant, the first
    t, y = _thin(t[keep], y[keep], BIN * width)
    if len(t) < MIN_READINGS:
        return []
    dy, dt = np.diff(y), np.diff(t)

    everyone = {p.post_id: p for p in posts} | {p.post_id: p for p in targets}
    ordered = [p for p in everyone.values() if -TAIL * width < _hours(p.posted_at, ref) < t[-1]]
    if not ordered:
        return []
    ids = [p.post_id for p in ordered]
    starts = np.array([_hours(p.posted_at, ref) for p in ordered])
    if engagements is None:
        e = np.ones(len(ids))
    else:
        e = np.array([float(engagements.get(pid, 0.0)) for pid in ids])
    mean_gain = max(float(y[-1] - y[0]), 0.0) / len(ids)
    mu0 = np.maximum(e * mean_gain / max(float(e.mean()), 1e-9), 0.05)

    reuse = {} if reuse is None else reuse
    kept = reuse.get("hyper")
    if kept is not None and kept[0] == width and reuse.get("uses", 0) < REUSE_FITS:
        _, shape, scale, k, noise = kept
        a = _kernel(t, starts, shape, scale)
        again = _fit(dy, dt, a, e, k, noise, mu0)
        if again is not None:
            reuse["uses"] = reuse.get("uses", 0) + 1
            return _estimates(
                targets,
                again,
                a,
                ids,
                starts,
                t,
                ref,
                width,
                (shape, scale, k, noise),
                e,
                engagements is not None,
            )
    # the kernel, with a provisional (k, noise); then (k, noise) for that kernel
    best: tuple[_Fit, float, float, np.ndarray] | None = None
    for shape in KERNEL_SHAPES:
        for scale in (s * width / 24.0 for s in KERNEL_SCALES):
            a = _kernel(t, starts, shape, scale)
            fit = _fit(dy, dt, a, e, 2.0, 1.0, mu0, rounds=2)
            if fit is not None and (best is None or fit.loglik > best[0].loglik):
                best = (fit, shape, scale, a)
    if best is None:
        return []
    fit, shape, scale, a = best
    chosen = (fit, 2.0, 1.0)
    for k in DISPERSIONS:
        for noise in NOISE_PER_HOUR:
            candidate = _fit(dy, dt, a, e, k, noise, fit.mu)
            if candidate is not None and candidate.loglik > chosen[0].loglik:
                chosen = (candidate, k, noise)
    fit, k, noise = chosen
    reuse["hyper"], reuse["uses"] = (width, shape, scale, k, noise), 0
    return _estimates(
        targets,
        fit,
        a,
        ids,
        starts,
        t,
        ref,
        width,
        (shape, scale, k, noise),
        e,
        engagements is not None,
    )


def _estimates(
    targets: Sequence[PostEvent],
    fit: _Fit,
    a: np.ndarray,
    ids: list[str],
    starts: np.ndarray,
    t: np.ndarray,
    ref: datetime,
    width: float,
    hyper: tuple[float, float, float, float],
    e: np.ndarray,
    engagements_known: bool,
) -> list[AttributionEstimate]:
    """Each target's posterior gain, interval and confidence from a fit."""
    shape, scale, k, noise = hyper
    sa = (a * fit.s2).T  # S A^T
    mean = fit.mu + sa @ fit.alpha
    var = fit.s2 - np.einsum("ij,ji->i", sa, linalg.cho_solve(fit.chol, sa.T))
    sd = np.sqrt(np.clip(var, 1e-12, None))
    z = float(stats.norm.ppf(0.5 + INTERVAL_LEVEL / 2.0))
    within = float(stats.gamma.cdf(width, shape, scale=scale))

    index = {pid: i for i, pid in enumerate(ids)}
    out = []
    for target in targets:
        i = index.get(target.post_id)
        t0 = _hours(target.posted_at, ref)
        if i is None or t0 + width > t[-1]:
            continue
        m, s = float(mean[i]), float(sd[i])
        neighbours = int(np.count_nonzero(np.abs(starts - t0) < width)) - 1
        out.append(
            AttributionEstimate(
                post_id=target.post_id,
                followers_gained=max(m, 0.0),
                confidence=confidence(m, s),
                method=METHOD,
                window_hours=width,
                inputs={
                    "posterior_mean": m,
                    "standard_error": s,
                    "interval_low": max(0.0, m - z * s),
                    "interval_high": max(0.0, m + z * s),
                    "interval_level": INTERVAL_LEVEL,
                    "confidence_tolerance": TOLERANCE,
                    "prior_mean": float(fit.mu[i]),
                    "prior_sd": math.sqrt(float(fit.s2[i])),
                    "engagements": float(e[i]) if engagements_known else -1.0,
                    "followers_per_engagement": float(fit.theta[1]),
                    "organic_rate_per_hour": float(fit.theta[0]),
                    "lag_shape": shape,
                    "lag_scale_hours": scale,
                    "within_window_fraction": within,
                    "dispersion": k,
                    "noise_var_per_hour": noise,
                    "readings": float(len(t)),
                    "posts_in_fit": float(len(ids)),
                    "overlapping_posts": float(neighbours),
                },
            )
        )
    return out
