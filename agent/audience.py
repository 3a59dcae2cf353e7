"""The audience around the store (docs/audience.md): scoring the members of an account from their
interactions, purging past the retention period (the daily upkeep of agent/cycles/audience.py),
and the figures ``growthloop audience`` shows (tiers, top fans, cohort retention, churn, the
followers each arm brought and kept). The arithmetic is learning/audience.py's; this module reads
the store and hands it the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from agent.audience_models import (
    AudienceInteraction,
    AudienceKind,
    AudienceMember,
    MemberScore,
    Purged,
    Tier,
)
from agent.config import Audience
from agent.store.base import Store
from learning import audience as maths
from learning import touch

SECONDS_PER_DAY = 86_400.0
TIER_ORDER = (Tier.SUPER_FAN, Tier.ACTIVE, Tier.LURKER, Tier.INACTIVE)


def scores_of(
    settings: Audience,
    members: list[AudienceMember],
    interactions: list[tuple[int, str, datetime]],
    *,
    now: datetime,
) -> list[MemberScore]:
    """Every member's score and tier from their interactions ``(member id, kind, at)``."""
    return scores_at(
        settings,
        [m.id for m in members],
        [(m, str(k), at.timestamp()) for m, k, at in interactions],
        now=now,
    )


async def update_scores(store: Store, account_id: int, settings: Audience, *, now: datetime) -> int:
    """Recompute and write the account's engagement scores and tiers; the members written."""
    members = await store.audience_member_ids(account_id)
    if not members:
        return 0
    found = await store.audience_activity(account_id)
    scores = scores_at(settings, members, found, now=now)
    return await store.set_audience_scores(account_id, scores, now=now)


def scores_at(
    settings: Audience,
    members: list[int],
    activity: list[tuple[int, str, float]],
    *,
    now: datetime,
) -> list[MemberScore]:
    """Every member's score and tier from ``(member id, kind, seconds since the epoch)``: the
    same as :func:`scores_of`, from the store's lean read."""
    half_life = settings.score_half_life
    reference = now.timestamp()
    scores = maths.engagement_scores(
        [m for m, _, _ in activity],
        [k for _, k, _ in activity],
        [(reference - t) / SECONDS_PER_DAY for _, _, t in activity],
        weights=settings.weights.model_dump(),
        half_life_days=half_life.total_seconds() / SECONDS_PER_DAY if half_life else None,
    )
    values = [scores.get(m, 0.0) for m in members]
    tiers = maths.tiers_of(values, settings.tiers.thresholds())
    return [
        MemberScore(member_id=m, score=v, tier=Tier(t))
        for m, v, t in zip(members, values, tiers, strict=True)
    ]


async def update_credits(
    store: Store, account_id: int, settings: Audience, *, now: datetime
) -> int:
    """Recompute the multi-touch credits (every model of learning/touch.py) of the account's
    follows in the last two touch windows, from the stored interactions, and store them in
    place of the old ones (a touch or follow read late changes them); the credit rows stored.
    Older follows keep theirs."""
    window = settings.touch_window
    since = now - 2 * window
    found = await store.audience_interactions(account_id, since=since - window)
    follows = [
        maths.Follow(member_id=i.member_id, followed_at=i.at, content_id=i.content_id)
        for i in found
        if i.kind == AudienceKind.FOLLOW and i.at >= since
    ]
    touches = touches_of(found)
    credits = touch.credit(follows, touches, window=window, half_life=settings.touch_half_life)
    return await store.replace_audience_credits(account_id, credits, since=since)


async def purge(store: Store, settings: Audience, *, now: datetime) -> Purged:
    """Remove what is older than the retention period (``audience.retention``)."""
    return await store.purge_audience(before=now - settings.retention)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceReport:
    """What ``growthloop audience`` shows for one account."""

    members: int
    followers: int
    tiers: dict[Tier, int]  # members per tier (followers or not)
    top: list[AudienceMember]  # current followers by score, highest first
    cohorts: list[maths.Cohort]
    churn: list[maths.WeekChurn]
    by_arm: dict[tuple[str, str], maths.Kept]


def touches_of(found: Iterable[AudienceInteraction]) -> list[maths.Touch]:
    """The interactions with one of our posts (not follows or unfollows), as touches."""
    return [
        maths.Touch(member_id=i.member_id, content_id=i.content_id, at=i.at)
        for i in found
        if i.content_id is not None and i.kind not in (AudienceKind.FOLLOW, AudienceKind.UNFOLLOW)
    ]


def spans_of(members: list[AudienceMember]) -> list[maths.Span]:
    return [
        maths.Span(followed_at=m.followed_at, unfollowed_at=m.unfollowed_at)
        for m in members
        if m.followed_at is not None
    ]


async def report(
    store: Store, account_id: int, *, now: datetime, top: int = 10, weeks: int = 12
) -> AudienceReport:
    """The account's audience figures at ``now`` (scores and tiers as last written)."""
    members = await store.audience_members(account_id)
    found = await store.audience_interactions(account_id)
    followers = [m for m in members if m.following]
    spans = spans_of(members)
    by_id = {m.id: m for m in members}
    follows = [
        maths.Follow(
            member_id=i.member_id,
            followed_at=by_id[i.member_id].followed_at or i.at,
            unfollowed_at=by_id[i.member_id].unfollowed_at,
            content_id=i.content_id,
        )
        for i in found
        if i.kind == AudienceKind.FOLLOW and by_id[i.member_id].followed_at == i.at
    ]
    touches = touches_of(found)
    kept = maths.followers_kept(follows, maths.credit_last_touch(follows, touches), now=now)
    arms: dict[int, dict[str, str]] = {}
    for content_id in kept:
        post = await store.get_post(content_id)
        if post is not None:
            meta = post.generation_metadata
            arms[content_id] = {
                d: str(meta.get(d, "")) for d in ("content_type", "formula", "hook", "topic")
            }
    tiers = Counter(m.tier for m in members)
    return AudienceReport(
        members=len(members),
        followers=len(followers),
        tiers={t: tiers.get(t, 0) for t in TIER_ORDER},
        top=sorted(followers, key=lambda m: (-m.engagement_score, m.id))[:top],
        cohorts=maths.cohort_retention(spans, now=now),
        churn=maths.weekly_churn(spans, now=now, weeks=weeks),
        by_arm=maths.kept_by_arm(kept, arms),
    )
