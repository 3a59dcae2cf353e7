"""Multi-touch attribution of follows (issue 19 item 5): each new follower's credit, one follower,
shared among the posts they touched (liked, reposted, replied to, quoted, bookmarked...) before
following. Pure Python: the callers read the rows and pass them in.

The touches of a follow are the person's interactions with our posts at or before the follow and
no more than ``window`` before it (default :data:`~learning.audience.LAST_TOUCH_WINDOW`, 7 days),
oldest first; a follow whose event names a post (Bluesky and Mastodon do not, X does not, but a
sandbox or a future source may) counts that post as its last touch. A follow with no touch is
credited to no post. The models (as in the seed's attribution plan and common analytics tools):

- ``last_touch``: all of it to the last touch (learning/audience.py's rule, kept for comparison);
- ``linear``: ``1/n`` to each of the ``n`` touches;
- ``time_decay``: touch ``i`` weighs ``0.5 ** (age_i / half_life)`` (its age at the follow),
  normalised to one; default half-life 1 day;
- ``position_based``: 40% to the first touch, 40% to the last, 20% shared equally by those in
  between; one touch takes all of it, two take half each.

Several touches on one post add up. Every model hands out exactly one follower per follow with a
touch, so summed over posts the credit equals the follows with a touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from learning.audience import LAST_TOUCH_WINDOW, Follow, Touch

MODELS = ("last_touch", "linear", "time_decay", "position_based")
DEFAULT_HALF_LIFE = timedelta(days=1)
FIRST_SHARE = LAST_SHARE = 0.4  # position based: the rest (0.2) to the touches in between


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """One follow's credit to one post under one model."""

    model: str
    member_id: int
    followed_at: datetime
    content_id: int
    credit: float


def weights(model: str, ages: Sequence[float], *, half_life_seconds: float) -> list[float]:
    """The shares of ``n`` touches, oldest first (``ages``: seconds before the follow)."""
    n = len(ages)
    if n == 0:
        return []
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "time_decay":
        if half_life_seconds <= 0:
            raise ValueError("the time-decay half-life must be positive")
        raw = [0.5 ** (age / half_life_seconds) for age in ages]
        total = sum(raw)
        return [r / total for r in raw]
    if model == "position_based":
        if n == 1:
            return [1.0]
        if n == 2:
            return [0.5, 0.5]
        middle = (1.0 - FIRST_SHARE - LAST_SHARE) / (n - 2)
        return [FIRST_SHARE, *([middle] * (n - 2)), LAST_SHARE]
    raise ValueError(f"unknown attribution model {model!r} (known: {', '.join(MODELS)})")


def touches_before(
    follow: Follow, touches: Sequence[Touch], *, window: timedelta = LAST_TOUCH_WINDOW
) -> list[Touch]:
    """The member's touches in ``[followed_at - window, followed_at]``, oldest first (the
    caller passes this member's touches, sorted by time), with the post the follow event named
    as the last touch."""
    found = [t for t in touches if follow.followed_at - window <= t.at <= follow.followed_at]
    if follow.content_id is not None:
        found.append(
            Touch(member_id=follow.member_id, content_id=follow.content_id, at=follow.followed_at)
        )
    return found


def credit(
    follows: Iterable[Follow],
    touches: Iterable[Touch],
    *,
    models: Sequence[str] = MODELS,
    window: timedelta = LAST_TOUCH_WINDOW,
    half_life: timedelta = DEFAULT_HALF_LIFE,
) -> list[Credit]:
    """Every follow's credit per post under each model (one row per follow, model and post)."""
    for model in models:
        weights(model, [0.0], half_life_seconds=1.0)  # unknown names fail before any work
    by_member: dict[int, list[Touch]] = {}
    for t in sorted(touches, key=lambda t: t.at):
        by_member.setdefault(t.member_id, []).append(t)
    seconds = half_life.total_seconds()
    out: list[Credit] = []
    for follow in follows:
        found = touches_before(follow, by_member.get(follow.member_id, []), window=window)
        if not found:
            continue
        ages = [(follow.followed_at - t.at).total_seconds() for t in found]
        for model in models:
            shares: dict[int, float] = {}
            for t, w in zip(found, weights(model, ages, half_life_seconds=seconds), strict=True):
                shares[t.content_id] = shares.get(t.content_id, 0.0) + w
            out.extend(
                Credit(
                    model=model,
                    member_id=follow.member_id,
                    followed_at=follow.followed_at,
                    content_id=content_id,
                    credit=share,
                )
                for content_id, share in sorted(shares.items())
                if share > 0.0
            )
    return out


def per_post(credits: Iterable[Credit], model: str) -> dict[int, float]:
    """Followers credited to each post under ``model``."""
    out: dict[int, float] = {}
    for c in credits:
        if c.model == model:
            out[c.content_id] = out.get(c.content_id, 0.0) + c.credit
    return out


def mae(estimate: Mapping[int, float], truth: Mapping[int, float]) -> float:
    """Mean absolute error per post over the posts of either (a post missing counts 0)."""
    posts = set(estimate) | set(truth)
    if not posts:
        return 0.0
    return sum(abs(estimate.get(p, 0.0) - truth.get(p, 0.0)) for p in posts) / len(posts)
