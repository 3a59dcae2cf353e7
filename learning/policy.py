"""Thompson sampling over the arm catalogue, one independent bandit per dimension.

A post is described by one arm per dimension (content type, formula, hook, ...). Each dimension
keeps its own posterior per arm (``dimension -> arm -> GammaPoisson``), and every post's reward
updates the chosen arm of *every* dimension. Choosing is Thompson sampling: per dimension, draw
``lambda_k ~ posterior_k`` for each arm ``k`` in the catalogue and play ``argmax_k lambda_k``.
The probability an arm is played therefore equals the posterior probability that it is the best,
which is what makes exploration self-tuning: a clear winner is played almost always, and an arm
is never dropped because its draw can always land on top while its posterior (or the prior, for
an arm with no data) has spread.

Known limitation: dimensions are treated as independent (no interaction such as "this hook works
only with that formula"); a joint additive model is planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learning.posteriors import GammaPoisson

Posteriors = Mapping[str, Mapping[str, GammaPoisson]]
"""dimension -> arm -> posterior."""


@dataclass(frozen=True, slots=True)
class ArmChange:
    """One arm's posterior before and after a learning step (``before`` is None for a new arm)."""

    dimension: str
    arm: str
    before: GammaPoisson | None
    after: GammaPoisson

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``learning_updates``."""
        return {
            "dimension": self.dimension,
            "arm": self.arm,
            "before": None if self.before is None else self.before.as_dict(),
            "after": self.after.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class ArmRank:
    """An arm's standing: posterior mean, credible interval ``[low, high]`` and evidence.

    ``n_effective`` is the evidence beyond the prior in (discounted, weighted) posts:
    ``max(0, rate - prior.rate)``.
    """

    arm: str
    mean: float
    low: float
    high: float
    n_effective: float


def _arm_names(dimension: str, names: Sequence[str]) -> list[str]:
    names = list(names)
    if not names:
        raise ValueError(f"dimension {dimension!r} has no arms to choose from")
    if len(set(names)) != len(names):
        raise ValueError(f"dimension {dimension!r} lists an arm twice: {names}")
    return names


def thompson_choose(
    posteriors: Posteriors,
    arms: Mapping[str, Sequence[str]],
    prior: GammaPoisson,
    rng: np.random.Generator,
) -> dict[str, str]:
    """Choose one arm per dimension of the catalogue ``arms`` by Thompson sampling.

    For each dimension (in the catalogue's order), draw one ``lambda_k`` per arm from its
    posterior (``prior`` when the arm has none yet) and return the arm with the largest draw;
    exact ties are broken uniformly at random. Arms present in ``posteriors`` but not in the
    catalogue (retired arms) are never chosen.
    """
    choice: dict[str, str] = {}
    for dimension, names in arms.items():
        names = _arm_names(dimension, names)
        known = posteriors.get(dimension, {})
        draws = np.array([known.get(arm, prior).sample(rng) for arm in names])
        best = np.flatnonzero(draws == draws.max())
        pick = best[0] if len(best) == 1 else best[rng.integers(len(best))]
        choice[dimension] = names[int(pick)]
    return choice


def update_posteriors(
    posteriors: Posteriors,
    chosen: Mapping[str, str],
    reward: float,
    *,
    prior: GammaPoisson,
    discount: float = 1.0,
    weight: float = 1.0,
) -> tuple[dict[str, dict[str, GammaPoisson]], list[ArmChange]]:
    """Learn from one post's reward; returns new posteriors and the chosen arms' changes.

    For each ``dimension -> arm`` in ``chosen``: every arm already known in that dimension is
    discounted toward the prior (``theta_0 + discount * (theta - theta_0)``; 1.0 = no
    forgetting), then the chosen arm (starting from the prior if new) gets the conjugate update
    ``Gamma(a + weight*reward, b + weight)``. Dimensions not in ``chosen`` are copied unchanged.
    The inputs are not modified. Each :class:`ArmChange` holds the stored posterior before this
    step (None for a new arm) and the one after it.
    """
    if not (0.0 < discount <= 1.0):
        raise ValueError(f"discount must be in (0, 1], got {discount!r}")
    new: dict[str, dict[str, GammaPoisson]] = {
        dimension: dict(by_arm) for dimension, by_arm in posteriors.items()
    }
    changes: list[ArmChange] = []
    for dimension, arm in chosen.items():
        by_arm = new.setdefault(dimension, {})
        if discount < 1.0:
            for name, post in by_arm.items():
                by_arm[name] = post.discounted(discount, prior)
        after = by_arm.get(arm, prior).updated(reward, weight=weight)
        by_arm[arm] = after
        before = posteriors.get(dimension, {}).get(arm)
        changes.append(ArmChange(dimension=dimension, arm=arm, before=before, after=after))
    return new, changes


def rank_arms(
    posteriors: Mapping[str, GammaPoisson],
    arms: Sequence[str],
    prior: GammaPoisson,
    level: float = 0.9,
) -> list[ArmRank]:
    """Arms of one dimension sorted by posterior mean, best first (ties keep catalogue order).

    An arm without a posterior is shown with the prior (``n_effective`` 0). ``low``/``high`` are
    the equal-tailed ``level`` credible interval (see :meth:`GammaPoisson.interval`).
    """
    ranks = []
    for arm in _arm_names("<ranked>", arms):
        post = posteriors.get(arm, prior)
        low, high = post.interval(level)
        n_eff = max(0.0, post.strength - prior.strength)
        ranks.append(ArmRank(arm=arm, mean=post.mean, low=low, high=high, n_effective=n_eff))
    return sorted(ranks, key=lambda r: -r.mean)


def prob_best(
    posteriors: Mapping[str, GammaPoisson],
    arms: Sequence[str],
    prior: GammaPoisson,
    rng: np.random.Generator,
    draws: int = 4000,
) -> dict[str, float]:
    """Monte-Carlo estimate of ``P(lambda_k = max_j lambda_j)`` for each arm of one dimension.

    ``draws`` joint samples from the (independent) posteriors; each is won by its arg-max. The
    result sums to 1 and is also the probability Thompson sampling plays each arm next.
    """
    names = _arm_names("<ranked>", arms)
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    samples = np.stack([posteriors.get(arm, prior).sample(rng, size=draws) for arm in names])
    wins = np.bincount(np.argmax(samples, axis=0), minlength=len(names))
    return {arm: float(w) / draws for arm, w in zip(names, wins, strict=True)}
