"""The joint learner: one Bayesian log-linear model over every dimension, fit on the whole history.

For post ``i`` with arms ``a_i(d)`` in dimensions ``d`` (content type, formula, hook, topic, ...)
the expected reward is::

    E[y_i] = exp(alpha + sum_d beta[d, a_i(d)] + gamma[a_i(formula), a_i(hook)])

``gamma`` (pairwise terms: formula x hook by default, any pairs of dimensions given, see
:func:`learning.design.pair_sets`) is optional and kept small by a learned prior. The
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
from dataclasses import dataclass, replace

import numpy as np

from learning.design import Design, Layout, Pairs, Row, pair_sets
from learning.fit import Fit, fit
from learning.folded import Folded

__all__ = ["Design", "Fit", "FitState", "JointPosterior", "Layout", "Row", "fit", "fit_joint"]

TAU_DEFAULT = 0.5  # prior sd of an arm effect (log scale) before anything is learned
TAU_BOUNDS = (0.08, 1.0)  # how far follower effects may stray from the auxiliary's
RHO_BOUNDS = (0.0, 1.5)
REFRESH_POSTS = 5  # re-estimate the empirical-Bayes spreads after this many more posts ...
REFRESH_SHARE = 0.1  # ... or this share more, whichever is larger
PAIR_SD_WIDE = 0.4  # the interaction's prior sd in the first (wide) fit
PAIR_SD_BOUNDS = (0.03, 1.0)  # its empirical-Bayes range
INTERCEPT_SD = 3.0
# prior of the audience elasticity: followers per post ~ audience^b (b = 1: in proportion;
# below 1 where much of a post's reach comes from outside the audience)
COVARIATE_MEAN = 0.0
COVARIATE_SD = 1.0


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


def _centring(design: Design) -> np.ndarray:
    """The matrix ``M`` with ``M @ v == _centre(design, v)``: per dimension, its arms' columns
    minus their mean (built at once; :func:`_centre` on each unit vector cost ``size`` loops over
    the design's index for every report)."""
    out = np.zeros((design.size, design.size))
    by_dim: dict[str, list[int]] = {}
    for (dimension, _arm), col in design.index.items():
        by_dim.setdefault(dimension, []).append(col)
    for cols in by_dim.values():
        index = np.asarray(cols, dtype=np.intp)
        out[np.ix_(index, index)] = np.eye(len(cols)) - 1.0 / len(cols)
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
        carried = self.rho * (fit_.cov * fit_.precision[None, :]) @ _centring(fit_.design)
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
        sets = [
            (first, second)
            for first, second in pair_sets(design.pairs)
            if options.get(first) and options.get(second)
        ]
        paired = [d for d in options if any(d in pair for pair in sets)]
        chosen: dict[str, str] = {}
        for dimension, arms in options.items():
            if dimension in paired or not arms:
                continue
            chosen[dimension] = max(arms, key=lambda a: theta[design.index[(dimension, a)]])
        if paired:
            # jointly over the paired dimensions' arms: their effects plus every pair term,
            # broadcast over one axis per dimension (first maximum in the arms' order, as the
            # loops over pairs this replaces)
            lists = [list(options[d]) for d in paired]
            total = np.zeros([len(a) for a in lists])
            for axis, (dimension, names) in enumerate(zip(paired, lists, strict=True)):
                shape = [1] * len(paired)
                shape[axis] = len(names)
                total = total + theta[[design.index[(dimension, a)] for a in names]].reshape(shape)
            for first, second in sets:
                i, j = paired.index(first), paired.index(second)
                cols = [
                    [design.pair_index[(first, a, second, b)] for b in lists[j]] for a in lists[i]
                ]
                shape = [1] * len(paired)
                shape[i], shape[j] = len(lists[i]), len(lists[j])
                block = theta[np.asarray(cols, dtype=np.intp)]
                total = total + (block if i < j else block.T).reshape(shape)
            at = np.unravel_index(int(np.argmax(total)), total.shape)
            for dimension, names, k in zip(paired, lists, at, strict=True):
                chosen[dimension] = names[int(k)]
        return chosen

    def contrasts(self, dimension: str) -> tuple[list[str], np.ndarray]:
        """The arms of ``dimension`` and, per arm, the vector ``c`` whose ``c @ theta`` is the log
        expected reward of a post now with that arm, the other dimensions at their average
        effect (identified, unlike the arm's raw coefficient, which is only identified up to a
        constant per dimension)."""
        design = self.fit.design
        base = np.zeros(design.size)
        base[0] = 1.0
        for other, arms in design.catalogue.items():
            if other != dimension and other not in self.retired and arms:
                for a in arms:
                    base[design.index[(other, a)]] += 1.0 / len(arms)
        if design.z_col is not None:
            base[design.z_col] = self.z_now
        names = list(design.catalogue.get(dimension, ()))
        out = np.tile(base, (len(names), 1))
        for i, arm in enumerate(names):
            out[i, design.index[(dimension, arm)]] = 1.0
        return names, out

    def arm_table(
        self, dimension: str, z: float = 1.645, cov: np.ndarray | None = None
    ) -> list[tuple[str, float, float, float]]:
        """(arm, mean, low, high) of the expected reward per post, best first (ties by name).

        The mean is ``exp(c @ mode)`` for the arm's :meth:`contrasts` vector; the interval is the
        central 90% (``z`` = 1.645), under :meth:`draw_cov` (what the draws use), of that
        log-normal marginal. ``cov``: :meth:`draw_cov`, when the caller has it already.
        """
        names, vectors = self.contrasts(dimension)
        cov = self.draw_cov() if cov is None else cov
        rows = []
        for arm, c in zip(names, vectors, strict=True):
            centre = float(c @ self.fit.mean)
            sd = math.sqrt(max(float(c @ cov @ c), 0.0))
            rows.append(
                (arm, math.exp(centre), math.exp(centre - z * sd), math.exp(centre + z * sd))
            )
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def draws(self, rng: np.random.Generator, n: int, cov: np.ndarray | None = None) -> np.ndarray:
        """``n`` parameter draws (rows) from ``N(mode, draw_cov())``: the posterior the Thompson
        draws sample at ``spread`` 1 (reports: the probability an arm is best). ``cov``:
        :meth:`draw_cov`, when the caller has it already."""
        root = _chol(self.draw_cov() if cov is None else cov)
        return self.fit.mean + rng.standard_normal((n, len(self.fit.mean))) @ root.T

    def contrast_draws(
        self, vectors: np.ndarray, rng: np.random.Generator, n: int, cov: np.ndarray | None = None
    ) -> np.ndarray:
        """``n`` draws (rows) of ``vectors @ theta`` for ``theta`` from the posterior the draws
        sample (as :meth:`draws`, then times ``vectors.T``): drawn directly in that small space,
        ``N(V mode, V cov V')``, a column per vector, instead of through the whole parameter
        vector (reports: the probability an arm is best, a few times a day per account)."""
        cov = self.draw_cov() if cov is None else cov
        root = _chol(vectors @ cov @ vectors.T)
        return vectors @ self.fit.mean + rng.standard_normal((n, len(vectors))) @ root.T

    def contrast_sd(self, dimension: str, arm: str, other: str) -> float:
        """Posterior sd of the log ratio between two arms of one dimension."""
        design = self.fit.design
        c = np.zeros(design.size)
        c[design.index[(dimension, arm)]] = 1.0
        c[design.index[(dimension, other)]] = -1.0
        return math.sqrt(max(float(c @ self.fit.cov @ c), 0.0))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)  # arrays: compared by identity
class FitState:
    """What one :func:`fit_joint` call leaves for the next: the design, the previous modes
    (Newton starting points), dispersions and negative binomial shapes, and the empirical-Bayes
    hyperparameters ``(posts, rho, tau, tau_pair)`` with the number of posts they were fit on.
    ``size``: the design size the modes belong to (a design of another size starts afresh)."""

    design: Design | None = None
    size: int | None = None
    own: np.ndarray | None = None
    eng: np.ndarray | None = None
    final: np.ndarray | None = None
    phi_eng: float | None = None
    k_eng: float | None = None
    phi_final: float | None = None
    k_final: float | None = None
    hyper: tuple[int, float, float, float] | None = None


def fit_joint(
    catalogue: Mapping[str, Sequence[str]],
    objective_rows: Sequence[Row],
    engagement_rows: Sequence[Row] | None,
    *,
    interaction: Pairs | None = None,
    state: FitState | None = None,
    covariate: bool = False,
    negbin: bool = False,
    objective_folded: Folded | None = None,
    engagement_folded: Folded | None = None,
) -> tuple[JointPosterior, FitState]:
    """Fit the objective with wide priors, learn the priors' spreads (and, given engagement
    rows, their centres) by empirical Bayes, and refit under them; returns the posterior and the
    state for the next call.

    ``state``: the previous call's (None: start afresh): its modes and dispersions are the
    starting points when the design is unchanged, and its empirical-Bayes spreads are kept until
    the objective's data grew by ``REFRESH_SHARE`` (at least ``REFRESH_POSTS`` posts). One more
    post moves all of these little, so a plan costs a few Newton steps instead of three fits
    from scratch.

    ``objective_folded``, ``engagement_folded``: posts before the rows, folded into the quadratic
    of their log-likelihood (:mod:`learning.folded`; they count as posts everywhere the rows do).
    """
    state = FitState() if state is None else state
    design = state.design
    wanted = {d: list(arms) for d, arms in catalogue.items()}
    if (
        design is None
        or design.catalogue != wanted
        or design.pairs != interaction
        or design.covariate != covariate
    ):
        design = Design(wanted, interaction, covariate)
    if state.size != design.size:
        state = FitState(size=design.size)
    state = replace(state, design=design)

    zero = np.zeros(design.size)
    pair = design.is_pair()
    base_sd = np.full(design.size, TAU_DEFAULT)
    base_sd[0] = INTERCEPT_SD
    base_sd[pair] = PAIR_SD_WIDE
    if design.z_col is not None:
        base_sd[design.z_col] = COVARIATE_SD
        zero[design.z_col] = COVARIATE_MEAN
    n = len(objective_rows) + (objective_folded.count if objective_folded is not None else 0)
    hyper = state.hyper
    refresh = refresh_due(hyper, n)
    eng = None
    if engagement_rows or engagement_folded is not None:
        assert engagement_rows is not None
        eng = fit(
            design,
            engagement_rows,
            prior_mean=zero,
            prior_sd=base_sd,
            start=state.eng,
            dispersion=state.phi_eng,
            negbin=negbin,
            shape=state.k_eng,
            reestimate=refresh,
            folded=engagement_folded,
        )
        state = replace(state, eng=eng.mean, phi_eng=eng.next_dispersion, k_eng=eng.next_shape)
    if refresh:
        own = fit(
            design,
            objective_rows,
            prior_mean=zero,
            prior_sd=base_sd,
            start=state.own,
            negbin=negbin,
            folded=objective_folded,
        )
        rho, tau = _borrow(own, eng)
        tau_pair = _pair_spread(own) if pair.any() else 0.0
        hyper = (n, rho, tau, tau_pair)
        state = replace(state, own=own.mean, hyper=hyper)
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
        start=state.final if state.final is not None else state.own,
        dispersion=state.phi_final,
        negbin=negbin,
        shape=state.k_final,
        reestimate=refresh,
        folded=objective_folded,
    )
    state = replace(
        state, final=final.mean, phi_final=final.next_dispersion, k_final=final.next_shape
    )
    posterior = JointPosterior(final, rho=rho, tau=tau, engagement=eng, tau_pair=tau_pair)
    return posterior, state


def refresh_due(hyper: tuple[int, float, float, float] | None, posts: int) -> bool:
    """Whether a fit on ``posts`` posts re-estimates the empirical-Bayes spreads ``hyper`` (fit on
    ``hyper[0]`` posts): none yet, or ``REFRESH_POSTS`` / ``REFRESH_SHARE`` more posts since."""
    return hyper is None or posts >= hyper[0] + max(REFRESH_POSTS, REFRESH_SHARE * hyper[0])


def _pair_spread(own: Fit) -> float:
    """Empirical-Bayes prior sd of the interaction terms: ``g_k ~ N(0, u_k + tau_pair^2)``.

    ``g_k`` are the double-centred pair estimates of the wide-prior fit (the part of each pair no
    main effect explains) and ``u_k`` their variances; only pairs the data inform take part.
    No interaction in the data gives the floor, so the pair terms then add almost no noise to
    the Thompson draws; a real interaction widens the prior.
    """
    design = own.design
    gs, us = [], []
    for first, second in pair_sets(design.pairs):
        na = len(design.catalogue.get(first, ()))
        nb = len(design.catalogue.get(second, ()))
        if not na or not nb:
            continue
        # first-dimension-major, like kron below
        cols = np.array(
            [
                design.pair_index[(first, a, second, b)]
                for a in design.catalogue[first]
                for b in design.catalogue[second]
            ]
        )
        # double-centred pair effects: the part no main effect can explain (identified)
        centring = np.kron(np.eye(na) - 1.0 / na, np.eye(nb) - 1.0 / nb)
        gs.append(centring @ own.mean[cols])
        us.append(np.clip(np.diag(centring @ own.cov[np.ix_(cols, cols)] @ centring.T), 1e-6, None))
    if not gs:
        return PAIR_SD_BOUNDS[0]
    g, u = np.concatenate(gs), np.concatenate(us)
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
