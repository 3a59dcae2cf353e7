"""What every policy sees: the account's published posts as :class:`Outcome` values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

Catalogue = Mapping[str, Sequence[str]]
"""dimension -> the arms a post may use."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One published post as a policy sees it.

    ``reward`` is the objective's final value (None while the post is in flight);
    ``engagements`` and ``profile_clicks`` the latest counts, seen ``hours_observed`` hours after
    posting; ``audience`` the account's followers when it was posted (None: not known); ``key``
    the post's identity (its content id; None: unknown), which per-post state is kept under.
    """

    arms: Mapping[str, str]
    posted_at: datetime
    reward: float | None
    engagements: float
    hours_observed: float | None
    profile_clicks: float = 0.0
    audience: float | None = None
    key: int | None = None

    @property
    def final(self) -> bool:
        return self.reward is not None


def finished(history: Sequence[Outcome]) -> list[Outcome]:
    """The posts whose reward is final."""
    return [o for o in history if o.reward is not None]


def unit(objective: str) -> str:
    """What a reward counts, per post, for an objective (estimates' and reports' unit)."""
    return "engagements per post" if objective == "engagement" else "followers per post"
