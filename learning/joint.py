"""The joint learner: one Bayesian log-linear model over every dimension, fit on the whole history.

For post ``i`` with arms ``a_i(d)`` in dimensions ``d`` (content type, formula, hook, topic, ...)
the expected reward is::

    E[y_i] = exp(alpha + sum_d beta[d, a_i(d)] + gamma[a_i(formula), a_i(hook)])

``gamma`` (the pairwise formula x hook term) is optional and kept small by a tight prior. The
likelihood is negative binomial (``negbin``; variance ``mu + mu^2 / k``, ``k`` by maximum
likelihood) with a Huber score, so a viral outlier counts at most ``HUBER_C`` standard
deviations, or quasi-Poisson: Poisson deviance weighted by ``1 / phi``, with ``phi`` (>= 1) the
Pearson dispersion. Each post also has weight ``w_i = 0.5 ** (age_i / half_life)``, which
forgets old posts when a half-life is set. The fit is the posterior mode under a Gaussian prior
(Newton's method), the posterior is its Laplace approximation ``N(theta_hat, H^-1)``, and a
Thompson draw samples ``theta`` from it (and the auxiliary effects the prior is centred on, see
:meth:`JointPosterior.sample`) and plays the arms that maximise the sampled reward (per
dimension, since the model is additive in the log; over formula x hook pairs when ``gamma`` is on).

Engagement as auxiliary evidence: likes, reposts and replies arrive in far larger numbers than
follows and from the first hour on. An engagement model of the same form is fit first, on the
final posts and (provisionally) on posts still in flight, whose partial counts are scaled up by
the learned share of the final engagement seen by then and down-weighted by that share. The
follower effects' prior is then centred on the engagement effects times a learned ``rho``, with a
learned residual spread ``tau`` (empirical Bayes: a weighted regression of the follower effects on
the engagement effects, and the method of moments for ``tau``). Where follows and engagement move
together the follower posterior starts near the right answer; where they disagree (a contrarian
take: many replies, few follows) ``tau`` grows and the followers' own evidence wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import gammaln

NEWTON_STEPS = 25
TAU_DEFAULT = 0.5  # prior sd of an arm effect (log scale) before anything is learned
TAU_BOUNDS = (0.08, 1.0)  # how far follower effects may stray from the auxiliary's
RHO_BOUNDS = (0.0, 1.5)
REFRESH_POSTS = 5  # re-estimate the empirical-Bayes spreads after this many more posts ...
REFRESH_SHARE = 0.1  # ... or this share more, whichever is larger
PAIR_SD_WIDE = 0.4  # the interaction's prior sd in the first (wide) fit
PAIR_SD_BOUNDS = (0.03, 1.0)  # its empirical-Bayes range
INTERCEPT_SD = 3.0
# negative binomial counts: a post's Pearson residual counts at most this many standard deviations
# in the fit (Huber), so one viral outlier cannot crown its arms
HUBER_C = 3.0
# prior of the audience elasticity: followers per post ~ audience^b (b = 1: in proportion;
# below 1 where much of a post's reach comes from outside the audience)
COVARIATE_MEAN = 0.0
COVARIATE_SD = 1.0


@dataclass(frozen=True, slots=True)
class Row:
    """One post as the joint model sees it."""

    arms: Mapping[str, str]
    value: float  # the count being modelled (followers or engagements)
    weight: float = 1.0  # discount x provisional share
    z: float = 0.0  # the audience covariate: log of the account's followers when posted, centred


@dataclass(frozen=True, slots=True)
class Layout:
    """A 0/1 design matrix by the columns of its 1s: ``cols[i]`` lists row i's, padded with
    ``size`` (a column that does not exist). Every post has at most one 1 per dimension, so the
    products the Newton steps need are sums over a few columns per row instead of dense
    matrix products over all of them."""

    cols: np.ndarray  # (n, width) of column numbers, ``size`` for padding
    size: int
    # one continuous column (the audience covariate): its number and its values (None: none)
    z_col: int | None = None
    z: np.ndarray | None = None

    def eta(self, theta: np.ndarray) -> np.ndarray:
        """``X @ theta``."""
        out = np.append(theta, 0.0)[self.cols].sum(axis=1)
        if self.z is not None:
            out += theta[self.z_col] * self.z
        return out

    def _ones_t(self, r: np.ndarray) -> np.ndarray:
        """``X01.T @ r`` over the 0/1 columns only."""
        width = self.cols.shape[1]
        sums = np.bincount(self.cols.ravel(), np.repeat(r, width), minlength=self.size + 1)
        return sums[: self.size]

    def xt(self, r: np.ndarray) -> np.ndarray:
        """``X.T @ r``."""
        sums = self._ones_t(r)
        if self.z is not None:
            sums[self.z_col] += float(r @ self.z)
        return sums

    def gram(self, v: np.ndarray) -> np.ndarray:
        """``X.T @ diag(v) @ X``."""
        width = self.cols.shape[1]
        side = self.size + 1
        cells = (self.cols[:, :, None] * side + self.cols[:, None, :]).ravel()
        sums = np.bincount(cells, np.repeat(v, width * width), minlength=side * side)
        gram = sums.reshape(side, side)[: self.size, : self.size]
        if self.z is not None:
            cross = self._ones_t(v * self.z)
            cross[self.z_col] = float(v @ np.square(self.z))
            gram[self.z_col, :] = cross
            gram[:, self.z_col] = cross
        return gram

    def used(self) -> int:
        """How many columns have a non-zero in some row."""
        ones = int(np.count_nonzero(np.bincount(self.cols.ravel(), minlength=self.size + 1)[:-1]))
        return ones + int(self.z is not None and bool(np.any(self.z != 0)))

    def dense(self) -> np.ndarray:
        x = np.zeros((len(self.cols), self.size + 1))
        x[np.arange(len(self.cols))[:, None], self.cols] = 1.0
        if self.z is not None:
            x[:, self.z_col] = self.z
        return x[:, : self.size]


@dataclass(slots=True)
class Design:
    """Columns of the model: an intercept, one per (dimension, arm), one per (formula, hook)."""

    catalogue: Mapping[str, Sequence[str]]
    pairs: tuple[str, str] | None = None
    covariate: bool = False  # a last column for the audience covariate (Row.z)
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    pair_index: dict[tuple[str, str], int] = field(default_factory=dict)
    size: int = 1
    z_col: int | None = None
    # id(arms) -> (arms, its columns): a history's arm mappings are the same objects plan after
    # plan (agent.learner.history keeps them), so each post's columns are looked up once
    _columns: dict[int, tuple[Mapping[str, str], list[int]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # the last few layouts built: (ids of their rows' arms, those arms (kept alive, so the ids
    # stay theirs), the layout's columns); a history only grows at its end, so most of a new
    # layout is a prefix of an earlier one
    _recent: list[tuple[np.ndarray, list[Mapping[str, str]], np.ndarray]] = field(
        default_factory=list, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        col = 1
        for dimension, arms in self.catalogue.items():
            for arm in arms:
                self.index[(dimension, arm)] = col
                col += 1
        if self.pairs is not None:
            first, second = self.pairs
            for a in self.catalogue.get(first, ()):
                for b in self.catalogue.get(second, ()):
                    self.pair_index[(a, b)] = col
                    col += 1
        self.z_col = None
        if self.covariate:
            self.z_col = col
            col += 1
        self.size = col

    def columns(self, arms: Mapping[str, str]) -> list[int]:
        """The columns that are 1 for a post with these arms (the intercept included)."""
        cols = [0]
        for dimension, arm in arms.items():
            col = self.index.get((dimension, arm))
            if col is not None:
                cols.append(col)
        if self.pairs is not None:
            col = self.pair_index.get((arms.get(self.pairs[0], ""), arms.get(self.pairs[1], "")))
            if col is not None:
                cols.append(col)
        return cols

    def layout(self, rows: Sequence[Mapping[str, str]]) -> Layout:
        """The design matrix of these posts' arms (row i: ``rows[i]``), as its 1s' columns."""
        width = 2 + len(self.catalogue)  # intercept, a column per dimension, the pair
        ids = np.fromiter((id(arms) for arms in rows), dtype=np.int64, count=len(rows))
        cols = np.full((len(rows), width), self.size, dtype=np.intp)
        start = 0
        for old_ids, _arms, old_cols in self._recent:
            n = min(len(old_ids), len(ids))
            differ = np.flatnonzero(old_ids[:n] != ids[:n])
            same = int(differ[0]) if len(differ) else n
            if same > start and old_cols.shape[1] == width:
                cols[:same] = old_cols[:same]
                start = same
        cache = self._columns
        if len(cache) > 4 * len(rows) + 1000:  # forget arms no longer asked about
            cache.clear()
        for i in range(start, len(rows)):
            arms = rows[i]
            known = cache.get(id(arms))
            if known is None or known[0] is not arms:
                known = cache[id(arms)] = (arms, self.columns(arms))
            cols[i, : len(known[1])] = known[1]
        cols.flags.writeable = False  # kept for the next call: read-only
        self._recent = [(ids, list(rows), cols), *self._recent[:2]]
        return Layout(cols, self.size)

    def rows_layout(self, rows: Sequence[Row]) -> Layout:
        """The design matrix of these rows: their arms' 1s and, with the covariate, their z."""
        x = self.layout([r.arms for r in rows])
        if self.z_col is None:
            return x
        return Layout(x.cols, x.size, self.z_col, np.array([r.z for r in rows], dtype=float))

    def is_pair(self) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for col in self.pair_index.values():
            mask[col] = True
        return mask


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
) -> Fit:
    """Posterior mode and Laplace covariance of the log-linear count model.

    Quasi-Poisson (``negbin`` false): ``dispersion``: use this ``phi`` (a previous fit's
    estimate: one Newton run) instead of fitting with ``phi = 1``, estimating it, and fitting
    again. Negative binomial (``negbin``): the variance is ``mu + mu^2 / k``; ``shape``: use this
    ``k`` (one Newton run) instead of fitting with ``SHAPE_START``, estimating ``k`` by maximum
    likelihood at that mode, and fitting again. The returned fit carries the ``phi`` and ``k``
    it used and the estimates at its mode (``next_dispersion``, ``next_shape``) for the next call;
    ``reestimate`` false keeps a given ``k`` as the next one (its estimate costs a likelihood
    over a grid of ``k``, and one more post moves it little).
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
    hess: np.ndarray | None = None  # at the current theta
    for _round in range(1 if given is not None else 2):
        hess = None
        for _ in range(NEWTON_STEPS):
            mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
            scale = 1.0 + mu / k  # the variance's excess over Poisson (1 for quasi-Poisson)
            score = (y - mu) / scale
            if negbin:  # Huber: a post's residual counts at most HUBER_C standard deviations
                sd = np.sqrt(mu * scale)
                score = np.clip((y - mu) / sd, -HUBER_C, HUBER_C) * sd / scale
            grad = x.xt(w * score) / phi - precision * (theta - prior_mean)
            hess = x.gram(w * mu / scale) / phi + np.diag(precision)
            step = np.linalg.solve(hess, grad)
            theta = theta + np.clip(step, -2.0, 2.0)
            if float(np.max(np.abs(step))) < 1e-4:
                break  # theta moved by < 1e-4: the Hessian just computed is the Hessian there
            hess = None
        if len(rows) == 0 or given is not None or _round == 1:
            break
        if negbin:
            k = _nb_shape(x, y, w, theta, k)
        else:
            phi = _pearson(x, y, w, theta)
    if hess is None:
        mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
        hess = x.gram(w * mu / (1.0 + mu / k)) / phi + np.diag(precision)
    cov = np.linalg.inv(hess)
    cov = (cov + cov.T) / 2.0
    if negbin:
        again = len(rows) and (shape is None or reestimate)
        next_phi, next_k = 1.0, _nb_shape(x, y, w, theta, k) if again else k
    else:
        next_phi, next_k = (_pearson(x, y, w, theta) if len(rows) else 1.0), math.inf
    return Fit(
        design=design,
        mean=theta,
        cov=cov,
        dispersion=phi,
        n=float(w.sum()),
        next_dispersion=next_phi,
        shape=k,
        next_shape=next_k,
        precision=precision,
    )


SHAPE_START = 3.0  # the negative binomial's shape before one is estimated
SHAPE_GRID = np.geomspace(0.3, 300.0, 31)


def _nb_shape(x: Layout, y: np.ndarray, w: np.ndarray, theta: np.ndarray, default: float) -> float:
    """The negative binomial shape ``k`` maximising the weighted likelihood at the means of
    ``theta`` (a log grid from 0.3 to 300; ``default`` with too few posts to tell)."""
    if w.sum() <= 10:
        return default
    mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))[None, :]
    k = SHAPE_GRID[:, None]
    yy = y[None, :]
    loglik = (
        gammaln(yy + k) - gammaln(k) + k * np.log(k / (k + mu)) + yy * np.log(mu / (k + mu))
    ) @ w
    return float(SHAPE_GRID[int(np.argmax(loglik))])


def _pearson(x: Layout, y: np.ndarray, w: np.ndarray, theta: np.ndarray) -> float:
    """The Pearson estimate of the dispersion (>= 1; 1 with too few posts to tell)."""
    if w.sum() <= 5:
        return 1.0
    mu = np.exp(np.clip(x.eta(theta), -30.0, 30.0))
    dof = max(float(w.sum()) - float(x.used()), 1.0)
    pearson = float(np.sum(w * np.square(y - mu) / np.maximum(mu, 1e-9)))
    return max(1.0, pearson / dof)


def _centred(fit_: Fit) -> np.ndarray:
    """Arm effects centred within each dimension (the intercept and pairs set to 0)."""
    return _centre(fit_.design, fit_.mean)


def _centre(design: Design, vector: np.ndarray) -> np.ndarray:
    """``vector``'s arm entries centred within each dimension; every other entry 0."""
    out = np.zeros_like(vector)
    by_dim: dict[str, list[int]] = {}
    for (dimension, _arm), col in design.index.items():
        by_dim.setdefault(dimension, []).append(col)
    for cols in by_dim.values():
        values = vector[cols]
        out[cols] = values - values.mean()
    return out


def _chol(cov: np.ndarray) -> np.ndarray:
    """A square root of a covariance (Cholesky; eigenvalues clipped at 0 if not positive)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


@dataclass(frozen=True, slots=True)
class JointPosterior:
    """The follower (objective) model, with how its prior was borrowed from engagement."""

    fit: Fit
    rho: float
    tau: float
    engagement: Fit | None
    tau_pair: float = 0.0
    # dimensions of the design that no new post has: the retired eras of a dimension whose
    # history was split at a change (learning.drift); chosen and reported never
    retired: frozenset[str] = frozenset()
    z_now: float = 0.0  # the audience covariate now (reports are for a post published now)
    carry: bool = True  # draws carry the auxiliary model's uncertainty (see sample)

    def retire(self, dimensions: frozenset[str], z_now: float = 0.0) -> JointPosterior:
        """This posterior with ``dimensions`` marked retired and the audience now ``z_now``."""
        return replace(self, retired=frozenset(dimensions), z_now=z_now)

    def dimensions(self) -> list[str]:
        """The dimensions a new post has (the design's, without retired eras)."""
        return [d for d in self.fit.design.catalogue if d not in self.retired]

    def sample(self, rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
        """A parameter draw from the posterior, its deviation from the mode scaled by ``spread``
        (1: a plain Thompson draw; below 1 explores less, see docs/learning.md).

        The follower prior is centred on ``rho`` times the auxiliary model's effects, which are
        uncertain too: the draw adds that uncertainty, carried through the fit (a draw ``e`` of
        the auxiliary effects moves the follower mode by ``cov @ P @ rho (e - e_hat)``, with
        ``P`` the prior precision). An arm with many posts of its own hardly moves; an arm
        tried once or twice is as uncertain as the auxiliary model says, so it is tried again
        before it is given up.
        """
        fit_ = self.fit
        deviation = _chol(fit_.cov) @ rng.standard_normal(len(fit_.mean))
        eng = self.engagement
        if self.carry and eng is not None and self.rho > 0 and fit_.precision is not None:
            shift = _centre(fit_.design, _chol(eng.cov) @ rng.standard_normal(len(eng.mean)))
            deviation += fit_.cov @ (fit_.precision * (self.rho * shift))
        return fit_.mean + spread * deviation

    def draw_cov(self) -> np.ndarray:
        """The covariance of a draw's deviation from the mode (at ``spread`` 1): the fit's, plus,
        with the carry, the auxiliary model's carried through ``G = cov @ P``. Reports use it, so
        an interval is as wide as the learner's own uncertainty when it chooses."""
        fit_ = self.fit
        eng = self.engagement
        if not (self.carry and eng is not None and self.rho > 0 and fit_.precision is not None):
            return fit_.cov
        design = fit_.design
        centring = np.stack([_centre(design, unit) for unit in np.eye(design.size)], axis=1)
        carried = self.rho * (fit_.cov * fit_.precision[None, :]) @ centring
        return fit_.cov + carried @ eng.cov @ carried.T

    def best(
        self, theta: np.ndarray, allowed: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, str]:
        """The arms maximising the reward under parameters ``theta`` (among ``allowed``)."""
        design = self.fit.design
        options = {
            d: (allowed or {}).get(d, arms)
            for d, arms in design.catalogue.items()
            if d not in self.retired
        }
        chosen: dict[str, str] = {}
        for dimension, arms in options.items():
            if design.pairs is not None and dimension in design.pairs:
                continue
            chosen[dimension] = max(arms, key=lambda a: theta[design.index[(dimension, a)]])
        if design.pairs is not None:
            first, second = design.pairs
            best_pair, best_value = None, -math.inf
            for a in options.get(first, ()):
                for b in options.get(second, ()):
                    value = theta[design.index[(first, a)]] + theta[design.index[(second, b)]]
                    value += theta[design.pair_index[(a, b)]]
                    if value > best_value:
                        best_pair, best_value = (a, b), value
            if best_pair is not None:
                chosen[first], chosen[second] = best_pair
        return chosen

    def arm_table(self, dimension: str, z: float = 1.645) -> list[tuple[str, float, float, float]]:
        """(arm, mean, low, high) of the expected reward per post, best first.

        Other dimensions are held at their average effect. The interval is the central 90%
        (``z`` = 1.645), under :meth:`draw_cov` (what the draws use), of the log-normal
        marginal of that identified combination (intercept +
        the arm + the other dimensions' average), not of the arm's raw coefficient, which alone
        is only identified up to a constant per dimension.
        """
        design = self.fit.design
        base = np.zeros(design.size)
        base[0] = 1.0
        for other, arms in design.catalogue.items():
            if other != dimension and other not in self.retired and arms:
                for a in arms:
                    base[design.index[(other, a)]] += 1.0 / len(arms)
        if design.z_col is not None:
            base[design.z_col] = self.z_now
        cov = self.draw_cov()
        rows = []
        for arm in design.catalogue.get(dimension, ()):
            c = base.copy()
            c[design.index[(dimension, arm)]] = 1.0
            centre = float(c @ self.fit.mean)
            sd = math.sqrt(max(float(c @ cov @ c), 0.0))
            rows.append(
                (arm, math.exp(centre), math.exp(centre - z * sd), math.exp(centre + z * sd))
            )
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def contrast_sd(self, dimension: str, arm: str, other: str) -> float:
        """Posterior sd of the log ratio between two arms of one dimension."""
        design = self.fit.design
        c = np.zeros(design.size)
        c[design.index[(dimension, arm)]] = 1.0
        c[design.index[(dimension, other)]] = -1.0
        return math.sqrt(max(float(c @ self.fit.cov @ c), 0.0))


def fit_joint(
    catalogue: Mapping[str, Sequence[str]],
    objective_rows: Sequence[Row],
    engagement_rows: Sequence[Row] | None,
    *,
    interaction: tuple[str, str] | None = None,
    warm: dict[str, Any] | None = None,
    covariate: bool = False,
    negbin: bool = False,
) -> JointPosterior:
    """Fit the objective with wide priors, learn the priors' spreads (and, given engagement
    rows, their centres) by empirical Bayes, and refit under them.

    ``warm``: state kept between calls (updated in place): the previous modes and dispersions,
    used as starting points when the design is unchanged, and the empirical-Bayes spreads, which
    are re-estimated only when the objective's data grew by ``REFRESH_SHARE`` (at least
    ``REFRESH_POSTS`` posts) since. One more post moves all of these little, so a plan costs a
    few Newton steps instead of three fits from scratch.
    """
    warm = {} if warm is None else warm
    design = warm.get("design")
    wanted = {d: list(arms) for d, arms in catalogue.items()}
    if (
        design is None
        or design.catalogue != wanted
        or design.pairs != interaction
        or design.covariate != covariate
    ):
        design = Design(wanted, interaction, covariate)
    if warm.get("size") != design.size:
        warm.clear()
        warm["size"] = design.size
    warm["design"] = design

    zero = np.zeros(design.size)
    pair = design.is_pair()
    base_sd = np.full(design.size, TAU_DEFAULT)
    base_sd[0] = INTERCEPT_SD
    base_sd[pair] = PAIR_SD_WIDE
    if design.z_col is not None:
        base_sd[design.z_col] = COVARIATE_SD
        zero[design.z_col] = COVARIATE_MEAN
    n = len(objective_rows)
    hyper = warm.get("hyper")
    refresh = hyper is None or n >= hyper[0] + max(REFRESH_POSTS, REFRESH_SHARE * hyper[0])
    eng = None
    if engagement_rows:
        eng = fit(
            design,
            engagement_rows,
            prior_mean=zero,
            prior_sd=base_sd,
            start=warm.get("eng"),
            dispersion=warm.get("phi_eng"),
            negbin=negbin,
            shape=warm.get("k_eng"),
            reestimate=refresh,
        )
        warm["eng"], warm["phi_eng"] = eng.mean, eng.next_dispersion
        warm["k_eng"] = eng.next_shape
    if refresh:
        own = fit(
            design,
            objective_rows,
            prior_mean=zero,
            prior_sd=base_sd,
            start=warm.get("own"),
            negbin=negbin,
        )
        warm["own"] = own.mean
        rho, tau = _borrow(own, eng)
        tau_pair = _pair_spread(own) if pair.any() else 0.0
        warm["hyper"] = hyper = (n, rho, tau, tau_pair)
    assert hyper is not None  # refreshed above when there was none
    _, rho, tau, tau_pair = hyper
    prior_mean = zero.copy()
    if eng is not None:
        prior_mean = rho * _centred(eng)
        prior_mean[0] = 0.0
        if design.z_col is not None:
            prior_mean[design.z_col] = COVARIATE_MEAN
    prior_sd = np.full(design.size, tau)
    prior_sd[0] = INTERCEPT_SD
    prior_sd[pair] = tau_pair
    if design.z_col is not None:
        prior_sd[design.z_col] = COVARIATE_SD
    final = fit(
        design,
        objective_rows,
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        start=warm.get("final", warm.get("own")),
        dispersion=warm.get("phi_final"),
        negbin=negbin,
        shape=warm.get("k_final"),
        reestimate=refresh,
    )
    warm["final"], warm["phi_final"] = final.mean, final.next_dispersion
    warm["k_final"] = final.next_shape
    return JointPosterior(final, rho=rho, tau=tau, engagement=eng, tau_pair=tau_pair)


def _pair_spread(own: Fit) -> float:
    """Empirical-Bayes prior sd of the interaction terms: ``g_k ~ N(0, u_k + tau_pair^2)``.

    ``g_k`` are the double-centred pair estimates of the wide-prior fit (the part of each pair no
    main effect explains) and ``u_k`` their variances; only pairs the data inform take part.
    No interaction in the data gives the floor, so the pair terms then add almost no noise to
    the Thompson draws; a real interaction widens the prior.
    """
    design = own.design
    assert design.pairs is not None
    na = len(design.catalogue.get(design.pairs[0], ()))
    nb = len(design.catalogue.get(design.pairs[1], ()))
    cols = np.array(list(design.pair_index.values()))  # first-dimension-major, like kron below
    # double-centred pair effects: the part no main effect can explain (identified)
    centring = np.kron(np.eye(na) - 1.0 / na, np.eye(nb) - 1.0 / nb)
    g = centring @ own.mean[cols]
    u = np.clip(np.diag(centring @ own.cov[np.ix_(cols, cols)] @ centring.T), 1e-6, None)
    keep = u < 0.5 * PAIR_SD_WIDE**2
    if int(keep.sum()) < 5:
        return PAIR_SD_BOUNDS[0]
    g, u = g[keep], u[keep]
    best = (-math.inf, PAIR_SD_BOUNDS[0])
    for tau in np.geomspace(PAIR_SD_BOUNDS[0], PAIR_SD_BOUNDS[1], 24):
        total = u + tau * tau
        loglik = float(-0.5 * np.sum(np.log(total) + g * g / total))
        if loglik > best[0]:
            best = (loglik, float(tau))
    return best[1]


def _centred_cov_diag(fit_: Fit) -> np.ndarray:
    """Variances of the arm effects centred within their dimension (identified contrasts)."""
    out = np.zeros_like(fit_.mean)
    by_dim: dict[str, list[int]] = {}
    for (dimension, _arm), col in fit_.design.index.items():
        by_dim.setdefault(dimension, []).append(col)
    for cols in by_dim.values():
        n = len(cols)
        centring = np.eye(n) - np.full((n, n), 1.0 / n)
        block = fit_.cov[np.ix_(cols, cols)]
        out[cols] = np.diag(centring @ block @ centring.T)
    return out


def _borrow(own: Fit, eng: Fit | None) -> tuple[float, float]:
    """Empirical-Bayes ``rho`` and ``tau``: how far follower effects follow engagement effects.

    Model: centred follower effect ``f_k ~ N(rho * e_k, v_k + tau^2)``, with ``f_k`` and ``v_k``
    from a follower fit under a wide prior and ``e_k`` the centred engagement effects. Only arms
    whose follower estimate is at least as informative as that prior take part. ``tau`` maximises
    the marginal likelihood on a grid; ``rho`` is the weighted least-squares slope for that tau.
    """
    cols = np.array(sorted(own.design.index.values()))
    f = _centred(own)[cols]
    e = np.zeros_like(f) if eng is None else _centred(eng)[cols]
    v = np.clip(_centred_cov_diag(own)[cols], 1e-6, None)
    keep = v < 0.5 * TAU_DEFAULT**2
    if own.n < 8 or int(keep.sum()) < 3:
        return 0.0, TAU_DEFAULT
    f, e, v = f[keep], e[keep], v[keep]
    best = (-math.inf, 0.0, TAU_DEFAULT)
    for tau in np.geomspace(TAU_BOUNDS[0], TAU_BOUNDS[1], 24):
        total = v + tau * tau
        wts = 1.0 / total
        denom = float(np.sum(wts * e * e))
        rho = float(np.sum(wts * e * f) / denom) if denom > 1e-12 else 0.0
        rho = min(max(rho, RHO_BOUNDS[0]), RHO_BOUNDS[1])
        resid = f - rho * e
        loglik = float(-0.5 * np.sum(np.log(total) + resid * resid / total))
        if loglik > best[0]:
            best = (loglik, rho, float(tau))
    return best[1], best[2]
