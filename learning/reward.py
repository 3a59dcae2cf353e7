"""The reward a post earns, by objective.

``followers``: the followers attributed to the post (fractional, see :mod:`learning.attribution`).
``engagement``: the post's engagements (likes + reposts + replies + ... at the final horizon).

Both are counts for the Gamma-Poisson posterior, so the reward is clamped to ``>= 0``: an
attributed loss (net unfollows during the window) is treated as "gained nothing".
"""

from __future__ import annotations

import math

OBJECTIVES = ("followers", "engagement")


def reward(objective: str, *, followers_gained: float, engagements: float) -> float:
    """``max(0, followers_gained)`` or ``max(0, engagements)`` depending on ``objective``.

    Raises ``ValueError`` for an unknown objective or a non-finite value.
    """
    if objective == "followers":
        value = followers_gained
    elif objective == "engagement":
        value = engagements
    else:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if not math.isfinite(value):
        raise ValueError(f"reward for {objective!r} must be finite, got {value!r}")
    return max(0.0, float(value))
