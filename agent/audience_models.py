"""Value objects of the audience (issue 19): who follows, who engages, who stays.

An adapter hands the store a batch of :class:`AudienceEvent` (one per follow, unfollow, like,
repost, reply, quote, bookmark, profile visit or link click it read, each with the platform's own
id for it, so reading a notification twice stores it once); the store keeps one
:class:`AudienceMember` per person and account and one :class:`AudienceInteraction` per event.
Only public identifiers are kept (the platform user id and the public handle); see
docs/audience.md.

This module imports nothing of growthloop's, so the adapters can build events with it as they
raise :mod:`agent.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AudienceKind(StrEnum):
    """What a person did. ``follow`` and ``unfollow`` change the member's follow state; the
    others are engagement, weighted by ``audience.weights`` into the engagement score."""

    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    LIKE = "like"
    REPOST = "repost"
    REPLY = "reply"
    QUOTE = "quote"
    BOOKMARK = "bookmark"
    PROFILE_VISIT = "profile_visit"
    LINK_CLICK = "link_click"


FOLLOW_KINDS = frozenset({AudienceKind.FOLLOW, AudienceKind.UNFOLLOW})


class Tier(StrEnum):
    """Engagement tiers of the tracking plan, from the score (thresholds: ``audience.tiers``)."""

    SUPER_FAN = "super_fan"
    ACTIVE = "active"
    LURKER = "lurker"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceEvent:
    """One thing a person did, as an adapter read it.

    ``source_id`` is the platform's id for the event (a notification's id or URI), unique per
    account; where the platform gives none, the adapter builds one that is stable across reads
    (``"like:<post id>:<user id>"``). ``content_id`` (ours) or ``platform_post_id`` names the
    post when the event is about one; the store finds the content id from the platform id.
    """

    kind: AudienceKind
    user_id: str  # the platform's id of the person (X user id, Bluesky DID, Mastodon account id)
    handle: str | None  # their public handle, when the source gives it
    at: datetime
    source_id: str
    platform_post_id: str | None = None
    content_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceRecorded:
    """What ``record_audience`` did with a batch."""

    stored: int  # interactions written
    duplicates: int  # events already stored (same source id), skipped
    new_members: int  # people seen for the first time


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceMember:
    """One person of one account's audience.

    ``followed_at`` is their first follow (the cohort's anchor; ``cohort`` is the Monday of its
    UTC week, ``YYYY-MM-DD``); ``unfollowed_at`` is set while they do not follow (cleared by a
    follow after it); ``follow_changed_at`` is the time of the latest follow or unfollow applied,
    so an older event read late never overrides a newer one.
    """

    id: int
    account_id: int
    user_id: str
    handle: str | None
    first_seen_at: datetime
    followed_at: datetime | None
    unfollowed_at: datetime | None
    follow_changed_at: datetime | None
    cohort: str | None
    engagement_score: float
    tier: Tier
    updated_at: datetime

    @property
    def following(self) -> bool:
        return self.followed_at is not None and self.unfollowed_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceInteraction:
    """One stored event."""

    id: int
    account_id: int
    member_id: int
    kind: AudienceKind
    at: datetime
    source_id: str
    content_id: int | None
    platform_post_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberScore:
    """A member's engagement score and tier, as the daily audience upkeep computed them."""

    member_id: int
    score: float
    tier: Tier


@dataclass(frozen=True, slots=True, kw_only=True)
class Forgotten:
    """What ``forget_person`` removed."""

    members: int
    interactions: int
    conversations: int = 0  # replies and mentions they wrote (docs/conversations.md)


@dataclass(frozen=True, slots=True, kw_only=True)
class Purged:
    """What ``purge_audience`` removed."""

    interactions: int
    members: int
