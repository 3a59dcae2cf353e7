"""What a policy believes about every arm: the values it writes and reports.

Every policy (:mod:`learning.policies`) answers ``estimates(...)`` with an :class:`Estimates`: per
learned dimension, per arm, the posts it learned from, its mean reward per post (in the
objective's unit), a 90% interval and the probability the arm is the best of its dimension.
The learn cycle writes these to ``arm_statistics`` (the seed-named views read them),
``learning_updates`` and the log, and ``growthloop health`` and the simulation summary show them,
so everything an operator reads describes the model that decides.

Probabilities of being best come from posterior draws made with a generator the caller passes,
never the one the policy decides with, so reporting cannot change a choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL = 0.9  # the intervals' coverage
Z_90 = 1.6448536269514722  # the standard normal's 95% quantile: a central 90% interval
DRAWS = 2000  # posterior draws behind a probability of being best


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmEstimate:
    """One arm's standing: ``posts`` learned from, mean reward per post and its 90% interval
    ``[low, high]``, and ``p_best``, the probability that it is the best arm of its dimension."""

    arm: str
    posts: int
    mean: float
    low: float
    high: float
    p_best: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``learning_updates``, logs)."""
        return {
            "arm": self.arm,
            "posts": self.posts,
            "mean": round(self.mean, 4),
            "interval_90": [round(self.low, 4), round(self.high, 4)],
            "p_best": round(self.p_best, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimates:
    """A policy's belief: ``dimensions`` maps each learned dimension to its arms, best first
    (by mean; ties by arm name). ``model`` names the policy; ``unit`` is what ``mean`` counts."""

    model: str
    unit: str
    dimensions: Mapping[str, tuple[ArmEstimate, ...]]

    def leader(self, dimension: str) -> ArmEstimate:
        """The arm with the highest mean in ``dimension``."""
        return self.dimensions[dimension][0]

    def leaders(self) -> dict[str, str]:
        """dimension -> leading arm."""
        return {d: arms[0].arm for d, arms in self.dimensions.items() if arms}


def ranked(arms: Sequence[ArmEstimate]) -> tuple[ArmEstimate, ...]:
    """Arms best first: by mean, ties by name (the order the views and reports use)."""
    return tuple(sorted(arms, key=lambda a: (-a.mean, a.arm)))


def p_best(draws: np.ndarray) -> np.ndarray:
    """Share of draws (rows) in which each column is the largest (ties go to the first)."""
    if draws.size == 0:
        return np.zeros(draws.shape[1] if draws.ndim == 2 else 0)
    wins = np.bincount(np.argmax(draws, axis=1), minlength=draws.shape[1])
    return wins / float(draws.shape[0])


def posts_per_arm(
    arms_of_posts: Sequence[Mapping[str, str]], dimension: str, arms: Sequence[str]
) -> dict[str, int]:
    """How many of these posts used each arm of ``dimension``."""
    counts = dict.fromkeys(arms, 0)
    for post in arms_of_posts:
        arm = post.get(dimension)
        if arm in counts:
            counts[arm] += 1
    return counts


def sample_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and normal-approximation 90% interval of a sample's mean (NaN-free: an empty sample
    gives zeros, one value a zero-width interval)."""
    if not values:
        return 0.0, 0.0, 0.0
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    half = Z_90 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half
