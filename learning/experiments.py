"""Statistics for planned experiments (A/B tests): sample size and power, fixed-horizon tests, a
Bayesian probability of winning, an always-valid sequential test, multiple-variant correction and
covariate adjustment. Pure functions on counts and arrays (numpy and scipy); no I/O.

What an experiment measures per post is either a **rate** (engaged impressions out of
impressions, a post that brought a follower or not) or a **count** (followers per post: skewed and
heavy-tailed, many zeros and the odd viral post). The functions say which they take.

- **Sample size and power.** Rates: Cohen's effect size ``h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1))``
  and the normal approximation, ``n_A = (z_(1-alpha/2) + z_power)^2 (1 + 1/r) / h^2`` with
  ``n_B = r n_A`` (statsmodels' ``NormalIndPower`` gives the same). Counts: the normal
  approximation on the difference of means with the negative binomial's variance
  ``mu + mu^2 / k`` (``k`` the dispersion; Poisson as ``k -> inf``).
- **Fixed-horizon tests**, valid only when looked at once: the pooled two-proportion z-test,
  Welch's t-test (unequal variances) and the Mann-Whitney rank test (heavy-tailed counts; scipy).
- **Bayesian**: with a Beta prior on rates (Beta-Binomial) or a Gamma prior on per-post means
  (Gamma-Poisson), the posterior probability that B beats A, computed by one-dimensional
  quadrature, and the expected loss of choosing each (``E[max(other - chosen, 0)]``). Several
  variants: Monte Carlo draws (seeded) for P(best) and expected loss.
- **Always valid: mSPRT** (Johari, Koomen, Pekelis and Walsh, "Peeking at A/B tests", KDD 2017;
  the normal mixture of Robbins 1970). After ``n`` observations with the difference estimate
  ``d`` of variance ``V`` (estimated from the data), the mixture likelihood ratio against
  ``d = 0`` with a ``N(0, tau^2)`` mixing distribution is
  ``Lambda = sqrt(V / (V + tau^2)) exp(d^2 tau^2 / (2 V (V + tau^2)))`` and the always-valid
  p-value is ``p_n = min(p_(n-1), 1 / Lambda_n)``: rejecting whenever ``p_n <= alpha``, however
  often one looks, keeps the false-positive rate at most ``alpha`` (for normal data with known
  variance exactly; with the variance estimated and counts this skewed, after
  ``MIN_PER_VARIANT`` posts per variant, as ``bench/experiments.py`` measures).
- **Several variants**: Holm's step-down correction of the pairwise p-values (controls the
  family-wise error rate, never less powerful than Bonferroni).
- **Covariate adjustment** (CUPED, Deng, Xu, Kohavi and Walker, WSDM 2013; equivalently the
  regression adjustment of the difference): ``y - theta (x - mean x)`` with
  ``theta = cov(x, y) / var(x)`` pooled over both variants removes the part of each post's
  outcome the covariates predict (account size, the posting hour, the learner's own prediction
  for the post), so the same difference is measured with a smaller variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate, stats

# The mixing distribution's standard deviation, as a multiple of the minimum detectable effect:
# the mSPRT has most power near effects of size ~tau (Johari et al. 2017, section 4.1, choose
# tau^2 of the order of the squared effects one expects); 1.0 puts it at the MDE experiments are
# planned for. bench/experiments.py measures the false-positive rate and power with it.
TAU_PER_MDE = 1.0
# The sequential test looks only once each variant has this many posts: the plug-in variance of
# a handful of skewed counts is too noisy (one viral post among three), and the false-positive
# rate measured in bench/experiments.py stayed under alpha from this size on.
MIN_PER_VARIANT = 10
# Draws for P(best) and expected loss with three or more variants (standard error of a
# probability below 0.005 at 10,000 draws).
BEST_DRAWS = 10_000


@dataclass(frozen=True, slots=True)
class TestResult:
    """A comparison of B with A: ``estimate`` is B - A (a difference of rates or means) with
    its two-sided ``1 - alpha`` interval ``[low, high]``; ``p_value`` two-sided."""

    method: str
    statistic: float
    p_value: float
    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class BayesResult:
    """``p_b_better``: posterior P(B > A); ``loss_a`` / ``loss_b``: the expected loss of choosing
    A / B (in the metric's units: how much is given up, on average, if the choice is wrong)."""

    p_b_better: float
    loss_a: float
    loss_b: float


def _z(p: float) -> float:
    return float(stats.norm.ppf(p))


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")


# -- sample size and power ---------------------------------------------------------------------


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's effect size for two proportions: ``2 asin(sqrt(p2)) - 2 asin(sqrt(p1))``."""
    return 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))


def sample_size_rates(
    base: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> int:
    """Posts for variant A (B gets ``ratio`` times as many) to detect a rate moving from ``base``
    to ``base + mde`` with a two-sided test at ``alpha`` and the given ``power`` (rounded up)."""
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    _check_probability("base", base)
    _check_probability("base + mde", base + mde)
    if mde == 0 or ratio <= 0:
        raise ValueError("the minimum detectable effect must not be 0, and the ratio positive")
    h = cohens_h(base, base + mde)
    n = (_z(1 - alpha / 2) + _z(power)) ** 2 * (1 + 1 / ratio) / h**2
    return math.ceil(n - 1e-9)


def power_rates(
    base: float, mde: float, n: int, *, alpha: float = 0.05, ratio: float = 1.0
) -> float:
    """The power of the two-sided test with ``n`` posts on A (``ratio * n`` on B)."""
    h = abs(cohens_h(base, base + mde))
    shift = h * math.sqrt(n / (1 + 1 / ratio))
    crit = _z(1 - alpha / 2)
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def count_variance(mean: float, dispersion: float | None) -> float:
    """The variance of a per-post count: negative binomial ``mu + mu^2 / k``, or Poisson
    (``dispersion`` None)."""
    return mean + (mean * mean / dispersion if dispersion else 0.0)


def sample_size_counts(
    mean: float,
    mde: float,
    *,
    dispersion: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> int:
    """Posts for variant A to detect a per-post mean moving from ``mean`` to ``mean + mde``
    (counts: negative binomial with ``dispersion`` k, or Poisson), two-sided at ``alpha``."""
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if mean <= 0 or mean + mde <= 0 or mde == 0 or ratio <= 0:
        raise ValueError("the means must be positive and the minimum detectable effect not 0")
    var_a = count_variance(mean, dispersion)
    var_b = count_variance(mean + mde, dispersion)
    n = (_z(1 - alpha / 2) + _z(power)) ** 2 * (var_a + var_b / ratio) / mde**2
    return math.ceil(n - 1e-9)


# -- fixed-horizon tests -----------------------------------------------------------------------


def two_proportion_ztest(
    x_a: int, n_a: int, x_b: int, n_b: int, *, alpha: float = 0.05
) -> TestResult:
    """The pooled two-proportion z-test of B against A (two-sided), with the unpooled (Wald)
    interval of the difference."""
    if min(n_a, n_b) <= 0 or not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise ValueError("expected 0 <= successes <= trials and trials > 0 for both variants")
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    z = diff / se0 if se0 > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = _z(1 - alpha / 2) * se
    return TestResult("two-proportion z", z, p, diff, diff - half, diff + half)


def welch_ttest(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05) -> TestResult:
    """Welch's t-test of mean(B) - mean(A), unequal variances (scipy), with its interval."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(xa.size, xb.size) < 2:
        raise ValueError("Welch's t-test needs at least two observations per variant")
    result = stats.ttest_ind(xb, xa, equal_var=False)
    ci = result.confidence_interval(confidence_level=1 - alpha)
    diff = float(xb.mean() - xa.mean())
    return TestResult(
        "Welch t",
        float(result.statistic),
        float(result.pvalue),
        diff,
        float(ci.low),
        float(ci.high),
    )


def rank_test(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05) -> TestResult:
    """The Mann-Whitney U test (two-sided; scipy) for heavy-tailed counts. ``statistic`` is U of
    B; ``estimate`` the Hodges-Lehmann shift (the median of the pairwise differences B - A) with
    its distribution-free interval (the pairwise differences at U's normal-approximation
    critical ranks; Hollander and Wolfe, Nonparametric Statistical Methods, 4.3)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(xa.size, xb.size) < 1:
        raise ValueError("the rank test needs observations in both variants")
    result = stats.mannwhitneyu(xb, xa, alternative="two-sided")
    diffs = np.sort(np.subtract.outer(xb, xa).ravel())
    shift = float(np.median(diffs))
    # the interval: order statistics of the pairwise differences at U's critical values
    m, n = xb.size, xa.size
    crit = _z(1 - alpha / 2) * math.sqrt(m * n * (m + n + 1) / 12.0)
    c = min(max(1, math.floor(m * n / 2.0 - crit)), diffs.size)  # 1-based rank of the bound
    low, high = float(diffs[c - 1]), float(diffs[diffs.size - c])
    return TestResult(
        "Mann-Whitney U", float(result.statistic), float(result.pvalue), shift, low, high
    )


# -- Bayesian ------------------------------------------------------------------------------------


Partial = Callable[[float], float]  # x -> E[max(Y - x, 0)] for one posterior Y


def _two_way(
    dist_a: Any, dist_b: Any, upper: float, partial_a: Partial, partial_b: Partial
) -> BayesResult:
    """P(B > A) and the expected losses for two independent posteriors on [0, upper], by
    quadrature: ``P(B > A) = int f_B(x) F_A(x) dx`` and the loss of choosing B,
    ``E[max(A - B, 0)] = int f_B(x) E[max(A - x, 0)] dx``."""
    p_b, _ = integrate.quad(lambda x: dist_b.pdf(x) * dist_a.cdf(x), 0.0, upper, limit=200)
    loss_b, _ = integrate.quad(lambda x: dist_b.pdf(x) * partial_a(x), 0.0, upper, limit=200)
    loss_a, _ = integrate.quad(lambda x: dist_a.pdf(x) * partial_b(x), 0.0, upper, limit=200)
    return BayesResult(float(min(max(p_b, 0.0), 1.0)), float(loss_a), float(loss_b))


def _beta_partial(a: float, b: float) -> Partial:
    """``E[max(Y - x, 0)]`` for Y ~ Beta(a, b): ``E[Y 1(Y > x)] - x P(Y > x)``, where
    ``E[Y 1(Y > x)] = a / (a + b) P(Beta(a + 1, b) > x)``."""
    mean, upper, dist = a / (a + b), stats.beta(a + 1, b), stats.beta(a, b)
    return lambda x: float(mean * upper.sf(x) - x * dist.sf(x))


def _gamma_partial(shape: float, scale: float) -> Partial:
    """As :func:`_beta_partial` for Y ~ Gamma(shape, scale): ``E[Y 1(Y > x)] = shape scale
    P(Gamma(shape + 1, scale) > x)``."""
    mean = shape * scale
    upper, dist = stats.gamma(shape + 1, scale=scale), stats.gamma(shape, scale=scale)
    return lambda x: float(mean * upper.sf(x) - x * dist.sf(x))


def beta_binomial(
    x_a: int, n_a: int, x_b: int, n_b: int, *, prior: tuple[float, float] = (1.0, 1.0)
) -> BayesResult:
    """Rates with a Beta(``prior``) prior: P(B > A) and the expected loss of each choice."""
    if min(n_a, n_b) < 0 or not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise ValueError("expected 0 <= successes <= trials for both variants")
    a0, b0 = prior
    pa, pb = (a0 + x_a, b0 + n_a - x_a), (a0 + x_b, b0 + n_b - x_b)
    return _two_way(stats.beta(*pa), stats.beta(*pb), 1.0, _beta_partial(*pa), _beta_partial(*pb))


def gamma_poisson(
    total_a: float,
    n_a: int,
    total_b: float,
    n_b: int,
    *,
    prior: tuple[float, float] = (0.5, 1e-3),
) -> BayesResult:
    """Per-post means of counts with a Gamma(shape, rate) prior (default: nearly flat): the
    posterior Gamma(shape + total, rate + posts) of each variant; P(B > A) and expected losses
    in counts per post."""
    if min(n_a, n_b) < 0 or min(total_a, total_b) < 0:
        raise ValueError("expected non-negative totals and post counts")
    shape, rate = prior
    ga, gb = (shape + total_a, 1.0 / (rate + n_a)), (shape + total_b, 1.0 / (rate + n_b))
    dist_a, dist_b = stats.gamma(ga[0], scale=ga[1]), stats.gamma(gb[0], scale=gb[1])
    upper = float(max(dist_a.ppf(1 - 1e-12), dist_b.ppf(1 - 1e-12)))
    return _two_way(dist_a, dist_b, upper, _gamma_partial(*ga), _gamma_partial(*gb))


def best_of(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Several variants from posterior draws (rows: draws, columns: variants): each variant's
    P(best) and expected loss ``E[max over variants - this one]``."""
    draws = np.asarray(draws, dtype=float)
    best = draws.max(axis=1, keepdims=True)
    winners = np.argmax(draws, axis=1)
    p_best = np.bincount(winners, minlength=draws.shape[1]) / draws.shape[0]
    return p_best, (best - draws).mean(axis=0)


def beta_draws(
    successes: Sequence[int],
    trials: Sequence[int],
    rng: np.random.Generator,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int = BEST_DRAWS,
) -> np.ndarray:
    """Posterior draws of each variant's rate (columns), for :func:`best_of`."""
    a0, b0 = prior
    x, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    return rng.beta(a0 + x, b0 + n - x, size=(draws, x.size))


# -- sequential: mSPRT -------------------------------------------------------------------------


def msprt_lambda(diff: float, variance: float, tau: float) -> float:
    """The normal-mixture likelihood ratio of an estimate ``diff`` with variance ``variance``
    against no difference, mixing ``N(0, tau^2)``."""
    if variance <= 0:
        return 1.0
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + diff * diff * t2 / (
        2 * variance * (variance + t2)
    )
    return math.exp(min(log_lr, 700.0))


def msprt_boundary(variance: float, tau: float, alpha: float) -> float:
    """The smallest ``|diff| / sqrt(variance)`` (a z-score) at which ``Lambda >= 1 / alpha``."""
    t2 = tau * tau
    z2 = (variance + t2) / t2 * (2 * math.log(1 / alpha) + math.log((variance + t2) / variance))
    return math.sqrt(z2)


@dataclass
class Sequential:
    """An always-valid p-value for B - A, updated as posts come in (:func:`msprt_lambda`):
    ``update`` after each new post with every observation so far; ``p_value`` only falls."""

    tau: float
    alpha: float = 0.05
    min_per_variant: int = MIN_PER_VARIANT
    p_value: float = 1.0
    looks: int = 0

    def update(self, a: Sequence[float], b: Sequence[float]) -> float:
        xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if min(xa.size, xb.size) < max(2, self.min_per_variant):
            return self.p_value
        self.looks += 1
        variance = xa.var(ddof=1) / xa.size + xb.var(ddof=1) / xb.size
        lam = msprt_lambda(float(xb.mean() - xa.mean()), float(variance), self.tau)
        self.p_value = min(self.p_value, 1.0 / lam if lam > 0 else 1.0)
        return self.p_value

    @property
    def rejected(self) -> bool:
        return self.p_value <= self.alpha


def msprt_path(
    a: np.ndarray,
    b: np.ndarray,
    tau: float,
    *,
    min_per_variant: int = MIN_PER_VARIANT,
    x_a: np.ndarray | None = None,
    x_b: np.ndarray | None = None,
) -> np.ndarray:
    """The always-valid p-value after each pair of posts ``(a[i], b[i])``, looking after every
    pair (what :class:`Sequential` gives when updated after each), vectorised: cumulative sums
    instead of refitting. With covariates ``x_a`` / ``x_b`` (one per post), each look uses the
    CUPED-adjusted outcomes with ``theta`` fitted on every post so far (both variants)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = np.arange(1, a.size + 1, dtype=float)
    if x_a is None or x_b is None:
        mean_a, mean_b = np.cumsum(a) / n, np.cumsum(b) / n
        ss_a = np.cumsum(a * a) - n * mean_a**2
        ss_b = np.cumsum(b * b) - n * mean_b**2
    else:
        xa, xb = np.asarray(x_a, dtype=float), np.asarray(x_b, dtype=float)
        sx_a, sx_b = np.cumsum(xa), np.cumsum(xb)
        sy_a, sy_b = np.cumsum(a), np.cumsum(b)
        x_bar = (sx_a + sx_b) / (2 * n)
        y_bar = (sy_a + sy_b) / (2 * n)
        sxy = np.cumsum(xa * a) + np.cumsum(xb * b) - 2 * n * x_bar * y_bar
        sxx = np.cumsum(xa * xa) + np.cumsum(xb * xb) - 2 * n * x_bar**2
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.where(sxx > 0, sxy / sxx, 0.0)
        # adjusted y' = y - theta (x - x_bar): per variant, mean and sum of squares from sums
        mean_a = (sy_a - theta * (sx_a - n * x_bar)) / n
        mean_b = (sy_b - theta * (sx_b - n * x_bar)) / n

        def ss(y: np.ndarray, x: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
            """Sum of squares of y - theta x about its mean (a shift by theta x_bar cancels)."""
            total = np.cumsum(y * y) - 2 * theta * np.cumsum(x * y) + theta**2 * np.cumsum(x * x)
            return total - (sy - theta * sx) ** 2 / n

        ss_a, ss_b = ss(a, xa, sy_a, sx_a), ss(b, xb, sy_b, sx_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (np.maximum(ss_a, 0) / (n - 1) + np.maximum(ss_b, 0) / (n - 1)) / n
        t2 = tau * tau
        log_lr = 0.5 * np.log(variance / (variance + t2)) + (mean_b - mean_a) ** 2 * t2 / (
            2 * variance * (variance + t2)
        )
    looks = (n >= max(2, min_per_variant)) & (variance > 0) & np.isfinite(log_lr)
    p = np.where(looks, np.exp(-np.minimum(np.where(looks, log_lr, 0.0), 700.0)), 1.0)
    return np.minimum.accumulate(np.minimum(p, 1.0))


def sequential_sample_size(
    sd_a: float,
    sd_b: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    tau: float | None = None,
    limit: int = 10_000_000,
) -> int:
    """Posts per variant at which the mSPRT, looked at only then, rejects with probability
    ``power`` at an effect of ``mde`` (normal approximation; looking after every post only adds
    rejections before it). The maximum duration to plan a sequential experiment with: larger
    than :func:`sample_size_counts`' fixed-horizon size, the price of peeking safely."""
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if mde == 0 or sd_a <= 0 or sd_b <= 0:
        raise ValueError("the minimum detectable effect must not be 0 and the spreads positive")
    tau = abs(mde) * TAU_PER_MDE if tau is None else tau

    def achieved(n: int) -> float:
        variance = (sd_a**2 + sd_b**2) / n
        crit = msprt_boundary(variance, tau, alpha)
        return float(stats.norm.sf(crit - abs(mde) / math.sqrt(variance)))

    low, high = 2, 2
    while achieved(high) < power:
        high *= 2
        if high > limit:
            raise ValueError(f"more than {limit} posts per variant would be needed")
    while low < high:  # the power rises with n: the smallest n that reaches it
        mid = (low + high) // 2
        if achieved(mid) >= power:
            high = mid
        else:
            low = mid + 1
    return low


# -- several variants ----------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate), in the given order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


# -- covariate adjustment ------------------------------------------------------------------------


def cuped(y: Sequence[float], x: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outcomes with the part the covariates ``x`` (one column each) predict removed:
    ``y - (x - mean x) theta``, ``theta`` the least-squares slopes pooled over every post (both
    variants: assignment is random, so the covariates are independent of it). Returns the
    adjusted outcomes and ``theta``."""
    yv = np.asarray(y, dtype=float)
    xm = np.asarray(x, dtype=float)
    if xm.ndim == 1:
        xm = xm[:, None]
    if xm.shape[0] != yv.size:
        raise ValueError("one covariate row per outcome")
    centred = xm - xm.mean(axis=0)
    theta, *_ = np.linalg.lstsq(centred, yv - yv.mean(), rcond=None)
    return yv - centred @ theta, theta


def adjusted_difference(
    y: Sequence[float],
    variant_b: Sequence[bool],
    x: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """B - A adjusted for covariates by least squares (``y ~ 1 + B + x``): the coefficient of B
    with its classical standard error, t-test and interval (statsmodels' OLS gives the same)."""
    yv = np.asarray(y, dtype=float)
    b = np.asarray(variant_b, dtype=float)
    xm = np.asarray(x, dtype=float)
    if xm.ndim == 1:
        xm = xm[:, None]
    design = np.column_stack([np.ones_like(yv), b, xm])
    coef, *_ = np.linalg.lstsq(design, yv, rcond=None)
    resid = yv - design @ coef
    dof = yv.size - design.shape[1]
    if dof <= 0:
        raise ValueError("more parameters than posts")
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    se = math.sqrt(cov[1, 1])
    t = coef[1] / se if se > 0 else 0.0
    p = float(2 * stats.t.sf(abs(t), dof))
    half = float(stats.t.ppf(1 - alpha / 2, dof)) * se
    return TestResult(
        "regression-adjusted", float(t), p, float(coef[1]), coef[1] - half, coef[1] + half
    )
