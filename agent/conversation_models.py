"""Value objects of the replies inbox (issue 21 item 2) and of the audience reads that fill it and
the audience tables (issue 19 item 2, docs/conversations.md).

An adapter answers ``read_audience(source, cursor)`` with one :class:`AudiencePage`: the
:class:`~agent.audience_models.AudienceEvent` s it read (follows, likes, reposts, replies,
quotes), the replies and mentions among them as :class:`Conversation` s (with their text), a
page of the follower list when the source is ``followers``, and the cursor to resume from. The
daemon stores the page, then the cursor (agent/cycles/audience.py), so a crash re-reads at most
one page, and the unique keys store what it re-reads once.

Like :mod:`agent.audience_models` this module imports nothing of growthloop's, so the adapters
can build its values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from agent.audience_models import AudienceEvent


class ConversationKind(StrEnum):
    """A reply to one of the account's posts, or a post naming the account."""

    REPLY = "reply"
    MENTION = "mention"


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """A reply or mention as an adapter read it: public identifiers and the public text only.

    ``platform_post_id`` is the reply's own id on the platform (unique per account: read twice,
    stored once); ``parent_post_id`` the post it answers (ours or someone's), None for a mention
    that answers nothing.
    """

    kind: ConversationKind
    platform_post_id: str
    parent_post_id: str | None
    author_id: str
    author_handle: str | None
    text: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredConversation:
    """One row of ``conversations``; ``content_id`` is our post it answers, when it is ours."""

    id: int
    account_id: int
    kind: ConversationKind
    platform_post_id: str
    parent_post_id: str | None
    content_id: int | None
    author_id: str
    author_handle: str | None
    text: str
    at: datetime
    read_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationsRecorded:
    """What ``record_conversations`` did with a batch."""

    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadCursor:
    """Where an audience source of an account is read from next, and when it was last read."""

    cursor: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Follower:
    """One entry of a follower list (reconciliation: who follows now)."""

    user_id: str
    handle: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudiencePage:
    """One page of an audience source.

    ``cursor`` is where the next read of this source starts (None: from the beginning, as a
    follower list does once complete); the daemon stores it after the page is stored. ``more``
    says another page is ready now (read it in this run); False means the source is drained
    until new activity. ``followers`` is set only by the ``followers`` source.
    """

    source: str
    events: tuple[AudienceEvent, ...] = ()
    conversations: tuple[Conversation, ...] = ()
    followers: tuple[Follower, ...] | None = None
    cursor: str | None = None
    more: bool = False
    reads: int = field(default=0)  # objects the platform returned (what a metered read bills)
