"""The experiment statistics benchmark: does peeking after every post stay honest?

    python -m bench.experiments [--runs N] [--seed S] [--alpha A] [--power P] [--json OUT]

Simulated experiments on per-post outcomes like the agent's (learning/experiments.py's tests on
them), for two metrics:

- **followers per post**: negative binomial counts, mean ``COUNT_MEAN``, dispersion
  ``COUNT_DISPERSION`` (a variance of ``mu + mu^2 / k``: mostly small counts and the odd burst);
- **engagement rate**: a per-post rate drawn from a Beta distribution of mean ``RATE_MEAN`` and
  standard deviation ``RATE_SD``.

Each also has a per-post covariate the agent knows before posting (``x ~ N(0, 1)``: the log of
the account's size or the learner's own prediction for the post) that multiplies the mean by
``exp(COVARIATE_EFFECT x)``. Posts alternate between the two variants (balanced pairs). Each
experiment is planned with :func:`learning.experiments.sequential_sample_size` for the minimum
detectable effect (``MDE_SHARE`` of the mean) at ``--alpha`` and ``--power`` and checked after
every pair with the mSPRT (:func:`learning.experiments.msprt_path`).

Reported per metric, over ``--runs`` simulated experiments each (with 95% Wilson intervals):

- **A/A** (no difference): the share of experiments the mSPRT ever called significant (at most
  alpha if it is honest), against Welch's t-test looked at after every pair (the inflation that
  the sequential test avoids), and the mSPRT on CUPED-adjusted outcomes;
- **A/B** at the minimum detectable effect: the share detected by the planned maximum (the
  power, against the planned one), and the median number of posts per variant to the decision,
  without and with the covariate adjustment.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from learning import experiments as ex

COUNT_MEAN = 3.0  # followers per post of a small account's typical post
COUNT_DISPERSION = 0.8  # negative binomial k: sd ~ 3.8 at a mean of 3 (heavy-tailed)
RATE_MEAN = 0.04  # engagement rate per post
RATE_SD = 0.02
MDE_SHARE = 0.2  # the minimum detectable effect: +20 % of the mean
COVARIATE_EFFECT = 0.5  # the mean multiplied by exp(0.5 x), x ~ N(0, 1)

Draw = Callable[[np.random.Generator, float, np.ndarray], np.ndarray]


def count_draw(rng: np.random.Generator, mean: float, x: np.ndarray) -> np.ndarray:
    """Negative binomial counts of mean ``mean * exp(b x) / E[exp(b x)]`` (the covariate moves
    each post's mean, not the variant's average)."""
    mu = mean * np.exp(COVARIATE_EFFECT * x - COVARIATE_EFFECT**2 / 2)
    k = COUNT_DISPERSION
    return rng.negative_binomial(k, k / (k + mu)).astype(float)


def rate_draw(rng: np.random.Generator, mean: float, x: np.ndarray) -> np.ndarray:
    """Beta rates of mean ``mean * exp(b x) / E[exp(b x)]`` (capped below 1) and sd RATE_SD."""
    mu = np.clip(mean * np.exp(COVARIATE_EFFECT * x - COVARIATE_EFFECT**2 / 2), 1e-4, 0.5)
    var = np.minimum(RATE_SD**2, mu * (1 - mu) * 0.99)
    nu = mu * (1 - mu) / var - 1
    return rng.beta(mu * nu, (1 - mu) * nu)


@dataclass
class Metric:
    name: str
    mean: float
    draw: Draw


METRICS = (
    Metric("followers per post", COUNT_MEAN, count_draw),
    Metric("engagement rate", RATE_MEAN, rate_draw),
)


@dataclass
class Share:
    value: float
    low: float
    high: float

    @classmethod
    def of(cls, hits: int, runs: int) -> Share:
        ci = stats.binomtest(hits, runs).proportion_ci(method="wilson")
        return cls(round(hits / runs, 4), round(float(ci.low), 4), round(float(ci.high), 4))

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class Figures:
    metric: str
    runs: int
    mde: float
    planned_posts_per_variant: int
    fixed_horizon_posts_per_variant: int
    aa_msprt: Share
    aa_peeking_welch: Share
    aa_msprt_cuped: Share
    power_planned: float
    power_msprt: Share
    power_msprt_cuped: Share
    median_posts_to_decision: float | None
    median_posts_to_decision_cuped: float | None


def welch_path(a: np.ndarray, b: np.ndarray, min_per_variant: int) -> np.ndarray:
    """Welch's t-test p-value after each pair (a fixed-horizon test looked at every time)."""
    n = np.arange(1, a.size + 1, dtype=float)
    ma, mb = np.cumsum(a) / n, np.cumsum(b) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        va = (np.cumsum(a * a) - n * ma**2) / (n - 1)
        vb = (np.cumsum(b * b) - n * mb**2) / (n - 1)
        se2 = va / n + vb / n
        t = (mb - ma) / np.sqrt(se2)
        dof = se2**2 / ((va / n) ** 2 / (n - 1) + (vb / n) ** 2 / (n - 1))
        p = 2 * stats.t.sf(np.abs(t), dof)
    return np.where((n >= min_per_variant) & (se2 > 0) & np.isfinite(p), p, 1.0)


def first_rejection(path: np.ndarray, alpha: float) -> int | None:
    hits = np.flatnonzero(path <= alpha)
    return int(hits[0]) + 1 if hits.size else None


def run_metric(
    metric: Metric, runs: int, alpha: float, power: float, rng: np.random.Generator
) -> Figures:
    mde = MDE_SHARE * metric.mean
    # the spread of each variant's outcomes, measured on a large sample of the world itself
    big = rng.normal(size=200_000)
    sd_a = float(metric.draw(rng, metric.mean, big).std())
    sd_b = float(metric.draw(rng, metric.mean + mde, big).std())
    planned = ex.sequential_sample_size(sd_a, sd_b, mde, alpha=alpha, power=power)
    fixed = math.ceil(
        (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 * (sd_a**2 + sd_b**2) / mde**2
    )
    tau = ex.TAU_PER_MDE * mde
    counts = {"aa": 0, "aa_welch": 0, "aa_cuped": 0, "ab": 0, "ab_cuped": 0}
    decided: list[int] = []
    decided_cuped: list[int] = []
    for _ in range(runs):
        x_a, x_b = rng.normal(size=planned), rng.normal(size=planned)
        a = metric.draw(rng, metric.mean, x_a)
        b = metric.draw(rng, metric.mean, x_b)
        counts["aa"] += bool((ex.msprt_path(a, b, tau) <= alpha).any())
        counts["aa_welch"] += bool((welch_path(a, b, ex.MIN_PER_VARIANT) <= alpha).any())
        cuped = ex.msprt_path(a, b, tau, x_a=x_a, x_b=x_b)
        counts["aa_cuped"] += bool((cuped <= alpha).any())
        b = metric.draw(rng, metric.mean + mde, x_b)
        at = first_rejection(ex.msprt_path(a, b, tau), alpha)
        at_cuped = first_rejection(ex.msprt_path(a, b, tau, x_a=x_a, x_b=x_b), alpha)
        if at is not None:
            counts["ab"] += 1
            decided.append(at)
        if at_cuped is not None:
            counts["ab_cuped"] += 1
            decided_cuped.append(at_cuped)
    return Figures(
        metric=metric.name,
        runs=runs,
        mde=round(mde, 6),
        planned_posts_per_variant=planned,
        fixed_horizon_posts_per_variant=fixed,
        aa_msprt=Share.of(counts["aa"], runs),
        aa_peeking_welch=Share.of(counts["aa_welch"], runs),
        aa_msprt_cuped=Share.of(counts["aa_cuped"], runs),
        power_planned=power,
        power_msprt=Share.of(counts["ab"], runs),
        power_msprt_cuped=Share.of(counts["ab_cuped"], runs),
        median_posts_to_decision=float(np.median(decided)) if decided else None,
        median_posts_to_decision_cuped=float(np.median(decided_cuped)) if decided_cuped else None,
    )


def markdown(results: list[Figures], alpha: float) -> str:
    lines = [
        f"| metric | runs | planned posts/variant (fixed-horizon) | A/A mSPRT (alpha {alpha}) "
        "| A/A Welch looked at every post | A/A mSPRT + CUPED | power mSPRT (planned) "
        "| power mSPRT + CUPED | median posts to decision: plain / CUPED |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.metric} | {r.runs} | {r.planned_posts_per_variant} "
            f"({r.fixed_horizon_posts_per_variant}) | {r.aa_msprt} | {r.aa_peeking_welch} "
            f"| {r.aa_msprt_cuped} | {r.power_msprt} ({r.power_planned}) "
            f"| {r.power_msprt_cuped} | {r.median_posts_to_decision} / "
            f"{r.median_posts_to_decision_cuped} |"
        )
    return "\n".join(lines)


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {number}")
    return number


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.experiments", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=positive, default=400, help="experiments per metric")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alpha", type=probability, default=0.05)
    parser.add_argument("--power", type=probability, default=0.8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    rng = np.random.default_rng(args.seed)
    results = []
    began = time.process_time()
    for metric in METRICS:
        print(f"{metric.name}: {args.runs} A/A and {args.runs} A/B experiments", file=sys.stderr)
        results.append(run_metric(metric, args.runs, args.alpha, args.power, rng))
    print(markdown(results, args.alpha))
    print(f"\n{time.process_time() - began:.1f} s of CPU, seed {args.seed}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
