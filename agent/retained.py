"""Retained followers per post: the experiments' ``retained_followers`` metric (the seed system's
``follower_retention_rate``, counted), from the audience tables (docs/audience.md).

A follow is credited to a post by last touch (:func:`learning.audience.credit_last_touch`: the
post its follow event named, else the person's latest interaction with one of our posts no more
than :data:`~learning.audience.LAST_TOUCH_WINDOW` before following). A post's retained followers
are those credited to it who followed within that window after it was posted and still followed
:data:`RETAINED_DAYS` days after following (a person who left and came back within them does
not count). The figure is final, and the post measured, once ``posted_at + LAST_TOUCH_WINDOW +
RETAINED_DAYS`` has passed: until then the post is left out of the sample (never counted as a
zero).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from agent.audience import touches_of
from agent.audience_models import AudienceKind
from learning import audience as maths

RETAINED_DAYS = 7
MEASURED_AFTER = maths.LAST_TOUCH_WINDOW + timedelta(days=RETAINED_DAYS)


def measured(posted_at: datetime, now: datetime) -> bool:
    """Whether a post's retained followers are final at ``now``."""
    return posted_at + MEASURED_AFTER <= now


async def retained_followers(
    store: Any, account_id: int, posts: Iterable[tuple[int, datetime]], *, now: datetime
) -> dict[int, float]:
    """Per measured post ``(content id, posted at)``: its retained followers (posts not
    measured yet at ``now`` are absent)."""
    due = {cid: at for cid, at in posts if measured(at, now)}
    if not due:
        return {}
    since = min(due.values())
    found = await store.audience_interactions(account_id, since=since)
    unfollows: dict[int, list[datetime]] = {}
    for i in found:
        if i.kind == AudienceKind.UNFOLLOW:
            unfollows.setdefault(i.member_id, []).append(i.at)
    for times in unfollows.values():
        times.sort()
    follows = [
        maths.Follow(
            member_id=i.member_id,
            followed_at=i.at,
            unfollowed_at=_first_after(unfollows.get(i.member_id, []), i.at),
            content_id=i.content_id,
        )
        for i in found
        if i.kind == AudienceKind.FOLLOW
    ]
    touches = touches_of(found)
    credited = maths.credit_last_touch(follows, touches)
    out = dict.fromkeys(due, 0.0)
    stay = timedelta(days=RETAINED_DAYS)
    for follow, post in zip(follows, credited, strict=True):
        posted_at = due.get(post) if post is not None else None
        if posted_at is None or follow.followed_at > posted_at + maths.LAST_TOUCH_WINDOW:
            continue
        if follow.unfollowed_at is None or follow.unfollowed_at - follow.followed_at >= stay:
            out[post] += 1.0  # type: ignore[index]
    return out


def _first_after(times: list[datetime], at: datetime) -> datetime | None:
    """The first of the sorted ``times`` after ``at`` (None: none)."""
    k = bisect.bisect_right(times, at)
    return times[k] if k < len(times) else None
