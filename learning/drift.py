"""Change detection for the joint learner: has an arm stopped paying what the model expects?

Tastes change. A model that never forgets keeps playing the arm that used to be best long after
its followers per post fell, because months of old evidence outweigh weeks of new; a half-life
forgets everything at the same rate, also when nothing changed, and so explores for ever. Instead
the learner tests, plan after plan, whether one arm's recent posts fall short of what the model
predicts for them, and when one clearly does, splits that dimension's history at the change
(:class:`learning.policies.Joint`): the posts before it keep their own, "retired" effects, the
posts after it estimate new ones, and Thompson sampling explores the dimension again.

The test is a generalised likelihood ratio (GLR) for a drop. For one arm's posts ``i = 1..n``
in time order, with counts ``y_i``, the model's means ``mu_i`` and its Pearson dispersion
``phi``, the alternative gives the posts before ``k`` and from ``k`` on each their own multiplier
of the model's means (``Y_1 / M_1`` and ``Y_2 / M_2``, the sums of ``y`` and ``mu`` on each
side) instead of one for all (``Y / M``); the quasi-Poisson log-likelihood ratio is::

    G(k) = 2 / phi * (Y_1 log(Y_1 / M_1) + Y_2 log(Y_2 / M_2) - Y log(Y / M))

taken only where the later multiplier is the smaller (a drop: a rise of an arm already played is
good news, and one viral post would otherwise look like a change). Comparing the arm with itself
before and after, through the model's means, leaves out whatever the model gets wrong about the
arm at all times (its prior pulls every arm towards the engagement model's view) and what it
explains (the account's growth, through the audience covariate, and the other dimensions' arms).
The statistic is the largest ``G(k)`` over splits with at least ``MIN_POSTS`` posts on each side,
summed over the objective's model and the auxiliary (engagement or profile clicks) model, which
see the same posts with independent noise, and is compared with ``learning.change_threshold``.
Under no change each ``G`` is roughly chi-squared with one degree of freedom at a given ``k``; the
maximum over splits, arms and plans is larger, and attributed follower gains are correlated
between neighbouring posts, so the threshold is set from what unchanging worlds reach
(docs/learning.md gives the benchmark's figures, and why detection is off by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MIN_POSTS = 8  # the shortest stretch of one arm's posts that may be called changed


@dataclass(frozen=True, slots=True)
class Change:
    """A detected drop: ``arm`` of ``dimension`` fell from the post published at ``at`` on."""

    dimension: str
    arm: str
    at: datetime
    statistic: float
    ratio: float  # the objective's multiplier of the model's means after the change / before


def _xlogx(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``y * log(y / m)``, 0 where ``y`` is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.maximum(y, 1e-300) / np.maximum(m, 1e-300)), 0.0)


def drop_glr(y: np.ndarray, mu: np.ndarray, phi: float, min_posts: int = MIN_POSTS) -> np.ndarray:
    """``G(k)`` for every split point ``k`` (posts ``< k`` before, ``>= k`` after; 0 where either
    side has fewer than ``min_posts`` posts or the later side did not fall), for posts in time
    order."""
    n = len(y)
    out = np.zeros(n)
    if n < 2 * min_posts:
        return out
    y1 = np.concatenate(([0.0], np.cumsum(y)))[:-1]  # sums before k
    m1 = np.concatenate(([0.0], np.cumsum(mu)))[:-1]
    total_y, total_m = float(y.sum()), max(float(mu.sum()), 1e-12)
    y2, m2 = total_y - y1, np.maximum(total_m - m1, 1e-12)
    k = np.arange(n)
    valid = (k >= min_posts) & (n - k >= min_posts)
    m1 = np.maximum(m1, 1e-12)
    both = _xlogx(y1, m1) + _xlogx(y2, m2)
    whole = float(_xlogx(np.array([total_y]), np.array([total_m]))[0])
    g = 2.0 / max(phi, 1e-9) * (both - whole)
    fell = y2 * m1 < y1 * m2  # the later rate below the earlier one
    out[valid & fell] = np.maximum(g[valid & fell], 0.0)
    return out


@dataclass(frozen=True, slots=True)
class Series:
    """One model's view of the finished posts: counts, fitted means, dispersion."""

    y: np.ndarray
    mu: np.ndarray
    phi: float


def detect(
    arms: Sequence[str],
    times: Sequence[datetime],
    dimension: str,
    objective: Series,
    auxiliary: Series | None,
    threshold: float,
    since: datetime | None = None,
    min_posts: int = MIN_POSTS,
) -> Change | None:
    """The strongest drop among one dimension's arms, if its statistic exceeds ``threshold``.

    ``arms[i]`` and ``times[i]`` belong to the i-th finished post (time order); only posts from
    ``since`` on (the dimension's current era) are looked at.
    """
    best: Change | None = None
    start = 0
    if since is not None:
        start = next((i for i, t in enumerate(times) if t >= since), len(times))
    by_arm: dict[str, list[int]] = {}
    for i in range(start, len(arms)):
        by_arm.setdefault(arms[i], []).append(i)
    for arm, index in by_arm.items():
        if len(index) < 2 * min_posts:
            continue
        idx = np.asarray(index)
        g = drop_glr(_capped(objective, idx), objective.mu[idx], objective.phi, min_posts)
        if auxiliary is not None:
            y_aux = _capped(auxiliary, idx)
            g = g + drop_glr(y_aux, auxiliary.mu[idx], auxiliary.phi, min_posts)
        k = int(np.argmax(g))
        if g[k] <= threshold or (best is not None and g[k] <= best.statistic):
            continue
        head, tail = idx[:k], idx[k:]
        before = float(objective.y[head].sum()) / max(float(objective.mu[head].sum()), 1e-12)
        after = float(objective.y[tail].sum()) / max(float(objective.mu[tail].sum()), 1e-12)
        ratio = float(after / before) if before > 0 else 0.0
        best = Change(dimension, arm, times[int(idx[k])], float(g[k]), ratio)
    return best


CAP_SD = 3.0  # a count enters the drop test at most this many standard deviations above its mean


def _capped(series: Series, index: np.ndarray) -> np.ndarray:
    """The counts at ``index``, each capped at ``CAP_SD`` standard deviations above its mean: a
    viral post early in an arm's series would otherwise make every later stretch look like a
    drop."""
    mu = series.mu[index]
    return np.minimum(series.y[index], mu + CAP_SD * np.sqrt(series.phi * mu))
