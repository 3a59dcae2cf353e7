"""The best a linear deconvolution can do: an oracle bound for ``bench.attribution``.

The oracle knows what no attribution method can know:

- every post's expected gain given its realised reach, ``mu_q = E[g_q | reach]``
  (:attr:`GroundTruth.followers_given_reach`: its impressions x the follow rate x its arms' hidden
  follow multipliers), i.e. the most any covariate (impressions, profile clicks, engagement)
  could tell about the post;
- the true lag kernel ``G`` (:meth:`AudienceModel.arrived`), the organic rate (arrivals minus
  churn) and that rate's noise.

It sees the same follower readings the agent stored (thinned to one an hour) and treats the
posts' gains as the sandbox draws them, negative binomial with shape ``k``, approximated by a
Gaussian with its mean and variance, ``g_q ~ N(mu_q, mu_q + mu_q^2 / k)``. The readings are
linear in ``g``: between readings ``t_{j-1}`` and ``t_j`` the count changes by::

    dy_j = r dt_j + sum_q g_q (G(t_j - t_q) - G(t_{j-1} - t_q)) + e_j - e_{j-1} + o_j

with ``o_j`` the organic noise (variance ``v_o dt_j``) and ``e_j`` the level's rounding (every
post still arriving adds ``-U``, ``U`` uniform on [0, 1): mean ``-n_j / 2``, variance
``n_j / 12``). The oracle's estimate is the exact posterior mean of ``g`` clipped at 0::

    m = mu + S A^T Sigma^-1 (dy - E[dy]),   Sigma = D + A S A^T

(``S = diag(mu + mu^2 / k)``, ``D`` the tridiagonal covariance of the noise). Its error is what
a deconvolution with a perfect prior and a perfect kernel would still make: the part of a post's
gain that neither its covariates nor the series reveal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import linalg

from adapters.sandbox_model import GroundTruth

STEP_HOURS = 1.0  # readings thinned to one per hour, as the deconvolution does


def thin(points: Sequence[tuple[float, float]], step: float = STEP_HOURS) -> np.ndarray:
    """(hours, followers) readings, sorted, at least ``step`` hours apart (the first kept)."""
    kept: list[tuple[float, float]] = []
    for hours, followers in sorted(points):
        if not kept or hours >= kept[-1][0] + step - 1e-9:
            kept.append((hours, followers))
    return np.asarray(kept, dtype=float).reshape(-1, 2)


def oracle_estimates(
    truth: GroundTruth,
    readings: Sequence[tuple[float, float]],
    *,
    initial_followers: float,
) -> dict[str, float]:
    """platform_post_id -> the oracle's posterior mean of the followers it caused (>= 0)."""
    model = truth.model
    scenario = model.scenario
    series = thin(readings)
    if len(series) < 2:
        return {}
    t, y = series[:, 0], series[:, 1]
    ids = [pid for pid in truth.post_days if pid in truth.followers_given_reach]
    starts = np.array([truth.post_days[pid] * 24.0 for pid in ids])
    mu = np.array([truth.followers_given_reach[pid] for pid in ids])
    shape = scenario.audience.follow_dispersion
    s2 = mu + mu * mu / shape

    arrived = np.vectorize(model.arrived, otypes=[float])
    ages = t[:, None] - starts[None, :]
    g_cum = arrived(ages)  # share of each post's followers arrived by each reading
    a = np.diff(g_cum, axis=0)
    still = ((g_cum > 0.0) & (g_cum < 1.0)).sum(axis=1).astype(float)  # posts still arriving

    account = scenario.account
    arrivals = account.organic_followers_per_day / 24.0
    churn = initial_followers * account.churn_per_day / 24.0
    dt = np.diff(t)
    expected = (arrivals - churn) * dt + a @ mu - np.diff(still) / 2.0
    level_var = still / 12.0
    noise = np.diag((arrivals + churn) * dt + level_var[1:] + level_var[:-1])
    off = -level_var[1:-1]
    noise += np.diag(off, 1) + np.diag(off, -1)
    sigma = noise + (a * s2) @ a.T
    chol = linalg.cho_factor(sigma, lower=True, check_finite=False)
    weights = linalg.cho_solve(chol, np.diff(y) - expected, check_finite=False)
    mean = mu + s2 * (a.T @ weights)
    return {pid: max(float(m), 0.0) for pid, m in zip(ids, mean, strict=True)}
