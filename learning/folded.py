"""Old posts folded into a quadratic: what keeps a plan's cost bounded as the history grows.

A Newton fit (:func:`learning.fit.fit`) needs, at every step, the score ``X' w s(theta)`` and the
information ``X' diag(w mu / scale) X`` of every post, so a plan refitting the whole history costs
in proportion to it (issue 17: a daemon that runs for a year reaches 1,500+ posts per account).
Posts long finished move the mode very little from one plan to the next, so their part of the
log-likelihood is replaced by its quadratic expansion at the mode ``theta_0`` they were folded
at::

    score_old(theta) ~ b - J theta,   J = X' diag(w j(theta_0)) X,   b = X' w s(theta_0) + J theta_0

with ``s`` the fit's score per post in ``eta`` (Huber-clipped for negative binomial counts) and
``j = -ds/deta`` its slope, the observed information (:func:`learning.fit.score_slope`): the first
order Taylor expansion of the score, so the error is second order in how far the mode moved. The
Newton steps and the posterior covariance use the expected information
``H = X' diag(w mu0 / scale0) X``, as they do for every other post. Both are exact at
``theta_0`` and cost ``O(columns^2)`` however many posts they hold; folds made at different modes
add (``H``, ``J`` and ``b`` sum). A fold also keeps
what the dispersion estimates need: the posts' weight, the negative binomial log-likelihood over
:data:`learning.fit.SHAPE_GRID` and the Pearson sum, all at ``theta_0``.

A fold is tied to the columns it was made in by their labels
(:meth:`learning.design.Design.labels`); in a design with more columns (a new posting hour, say)
the new columns are 0; a design missing one of its columns cannot take it (the caller refits the
whole history instead).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from learning.design import Design, Row


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)  # arrays: compared by identity
class Folded:
    """The quadratic of some posts' log-likelihood (see the module docstring): ``hess``
    (``H``), ``slope`` (``J``) and ``linear`` (``b``) over the columns ``labels``, before the
    dispersion ``phi`` divides them; ``n`` their weight, ``count`` how many posts;
    ``shape_loglik`` their negative binomial log-likelihood over ``SHAPE_GRID``, ``pearson``
    their Pearson sum, ``used`` which columns they switch on."""

    labels: tuple[Hashable, ...]
    hess: np.ndarray
    slope: np.ndarray
    linear: np.ndarray
    n: float
    count: int
    shape_loglik: np.ndarray
    pearson: float
    used: np.ndarray
    shape: float = math.inf  # the negative binomial shape the newest of them were folded at

    def plus(self, other: Folded) -> Folded:
        """Both folds in one (same labels)."""
        if self.labels != other.labels:
            raise ValueError("folds over different columns do not add; map one with on() first")
        return Folded(
            labels=self.labels,
            hess=self.hess + other.hess,
            slope=self.slope + other.slope,
            linear=self.linear + other.linear,
            n=self.n + other.n,
            count=self.count + other.count,
            shape_loglik=self.shape_loglik + other.shape_loglik,
            pearson=self.pearson + other.pearson,
            used=self.used | other.used,
            shape=other.shape,
        )

    def on(self, design: Design) -> Folded | None:
        """This fold over ``design``'s columns (new ones 0), or None if ``design`` lacks one of
        its columns."""
        labels = design.labels()
        if labels == self.labels:
            return self
        where = {label: i for i, label in enumerate(labels)}
        try:
            index = np.array([where[label] for label in self.labels], dtype=np.intp)
        except KeyError:
            return None
        size = len(labels)
        hess = np.zeros((size, size))
        hess[np.ix_(index, index)] = self.hess
        slope = np.zeros((size, size))
        slope[np.ix_(index, index)] = self.slope
        linear = np.zeros(size)
        linear[index] = self.linear
        used = np.zeros(size, dtype=bool)
        used[index] = self.used
        return Folded(
            labels=labels,
            hess=hess,
            slope=slope,
            linear=linear,
            n=self.n,
            count=self.count,
            shape_loglik=self.shape_loglik,
            pearson=self.pearson,
            used=used,
            shape=self.shape,
        )

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """The folded posts' score at ``theta`` (before ``phi``): ``b - J theta``."""
        return self.linear - self.slope @ theta


def fold(
    design: Design,
    rows: Sequence[Row],
    theta: np.ndarray,
    *,
    shape: float = math.inf,
) -> Folded:
    """The quadratic of ``rows``' log-likelihood at ``theta`` (negative binomial with this
    ``shape``; ``inf``: quasi-Poisson), in ``design``'s columns."""
    # imported here: learning.fit uses Folded
    from learning.fit import nb_loglik, pearson_sum, score, score_slope

    x = design.rows_layout(rows)
    y = np.array([r.value for r in rows], dtype=float)
    w = np.array([r.weight for r in rows], dtype=float)
    mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
    s, info = score(y, mu, shape)
    slope = x.gram(w * score_slope(y, mu, shape))
    return Folded(
        labels=design.labels(),
        hess=x.gram(w * info),
        slope=slope,
        linear=x.xt(w * s) + slope @ theta,
        n=float(w.sum()),
        count=len(rows),
        shape_loglik=nb_loglik(y, mu, w),
        pearson=pearson_sum(y, mu, w),
        used=x.used_mask(),
        shape=shape,
    )
