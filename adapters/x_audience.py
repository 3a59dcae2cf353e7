"""X's audience reads, the pure part (issue 19 item 2, issue 21 item 2; docs/conversations.md):
parsing the API v2 answers into events and conversations, the cursors, and the read budget.

Sources, each metered at the tier's read price per object returned (``data`` and ``includes``
both, as :data:`adapters.x.PRICES` counts):

- ``mentions``: ``GET /2/users/{id}/mentions`` - replies (a post answering one of ours, with
  ``in_reply_to_user_id`` us) and mentions, with their text and time. The cheapest complete
  source of replies: every reply to a post carries its author's handle, so it is a mention too
  (``GET /2/tweets/search/recent?query=conversation_id:...`` would cost one search per post and
  is not used). Swept newest first with ``since_id`` = the newest of the previous sweep.
- ``engagements``: per recent post, ``GET /2/tweets/{id}/liking_users``,
  ``/retweeted_by`` and ``/quote_tweets``. Likes and reposts come without a time: they are
  dated when read (an hourly read dates them within the hour) and keyed
  ``like:<post>:<user>``, so reading them again stores nothing.
- ``followers``: ``GET /2/users/{id}/followers`` (reconciliation: the unfollows).

A page is sized to what the budget left allows (``budget_usd``): fewer objects per page, and
:class:`agent.errors.ReadBudgetExhausted` - before any request - when not even the endpoint's
smallest page fits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import Conversation, ConversationKind, Follower
from agent.errors import ReadBudgetExhausted

X_AUDIENCE_SOURCES = ("mentions", "engagements", "followers")
ENGAGEMENT_KINDS = ("liking_users", "retweeted_by", "quote_tweets")
# (smallest, largest) max_results per endpoint, from X's OpenAPI spec
PAGE_BOUNDS = {
    "mentions": (5, 100),
    "liking_users": (1, 100),
    "retweeted_by": (1, 100),
    "quote_tweets": (10, 100),
    "followers": (1, 1000),
}
# objects billed per item of a page: a post and its author's user object (expansions=author_id)
OBJECTS_PER_ITEM = {"mentions": 2, "quote_tweets": 2}


def page_size(endpoint: str, *, price: float, budget_usd: float | None) -> int:
    """``max_results`` for one page: the endpoint's largest, or what the budget left pays for;
    :class:`ReadBudgetExhausted` when not even its smallest page fits."""
    smallest, largest = PAGE_BOUNDS[endpoint]
    if price <= 0 or budget_usd is None:
        return largest
    fits = math.floor(budget_usd / (price * OBJECTS_PER_ITEM.get(endpoint, 1)) + 1e-9)
    if fits < smallest:
        raise ReadBudgetExhausted(
            f"X {endpoint}: a page of {smallest} would pass the read budget "
            f"({budget_usd:.4f} USD left this month; audience.read.x_budget_usd)"
        )
    return min(fits, largest)


def objects(body: Mapping[str, Any]) -> int:
    """The objects a response bills: its ``data`` and its ``includes``."""
    found = len(body.get("data") or ())
    for items in (body.get("includes") or {}).values():
        found += len(items)
    return found


def load_state(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def dump_state(state: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(state), sort_keys=True) if state else None


def _users(body: Mapping[str, Any]) -> dict[str, str]:
    return {str(u["id"]): str(u["username"]) for u in (body.get("includes") or {}).get("users", ())}


def _time(value: str) -> datetime:
    """X's ISO-8601 timestamps as aware UTC datetimes (as adapters.x.parse_time)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def mentions(body: Mapping[str, Any], me: str) -> tuple[list[AudienceEvent], list[Conversation]]:
    """A page of the mentions timeline: a reply answering us is a reply event and a reply
    conversation; any other post naming us is a mention conversation."""
    names = _users(body)
    events: list[AudienceEvent] = []
    said: list[Conversation] = []
    for post in body.get("data") or ():
        author = str(post["author_id"])
        at = _time(str(post["created_at"]))
        parent = next(
            (
                str(r["id"])
                for r in post.get("referenced_tweets") or ()
                if r["type"] == "replied_to"
            ),
            None,
        )
        reply = parent is not None and str(post.get("in_reply_to_user_id")) == me
        if reply:
            events.append(
                AudienceEvent(
                    kind=AudienceKind.REPLY,
                    user_id=author,
                    handle=names.get(author),
                    at=at,
                    source_id=f"reply:{post['id']}",
                    platform_post_id=parent,
                )
            )
        said.append(
            Conversation(
                kind=ConversationKind.REPLY if reply else ConversationKind.MENTION,
                platform_post_id=str(post["id"]),
                parent_post_id=parent,
                author_id=author,
                author_handle=names.get(author),
                text=str(post.get("text") or ""),
                at=at,
            )
        )
    return events, said


def engagements(
    body: Mapping[str, Any], endpoint: str, post: str, *, now: datetime
) -> list[AudienceEvent]:
    """A page of liking users, reposters (dated ``now``: X gives no time) or quote posts."""
    if endpoint == "quote_tweets":
        names = _users(body)
        return [
            AudienceEvent(
                kind=AudienceKind.QUOTE,
                user_id=str(q["author_id"]),
                handle=names.get(str(q["author_id"])),
                at=_time(str(q["created_at"])),
                source_id=f"quote:{q['id']}",
                platform_post_id=post,
            )
            for q in body.get("data") or ()
        ]
    kind = AudienceKind.LIKE if endpoint == "liking_users" else AudienceKind.REPOST
    return [
        AudienceEvent(
            kind=kind,
            user_id=str(u["id"]),
            handle=str(u["username"]),
            at=now,
            source_id=f"{kind}:{post}:{u['id']}",
            platform_post_id=post,
        )
        for u in body.get("data") or ()
    ]


def followers(body: Mapping[str, Any]) -> list[Follower]:
    return [
        Follower(user_id=str(u["id"]), handle=str(u["username"])) for u in body.get("data") or ()
    ]


def next_engagement(posts: Sequence[str], post: str, endpoint: str) -> dict[str, str] | None:
    """Where the engagements sweep goes after ``endpoint`` of ``post`` is read whole."""
    at = ENGAGEMENT_KINDS.index(endpoint)
    if at + 1 < len(ENGAGEMENT_KINDS):
        return {"post": post, "kind": ENGAGEMENT_KINDS[at + 1]}
    index = posts.index(post)
    return (
        {"post": posts[index + 1], "kind": ENGAGEMENT_KINDS[0]} if index + 1 < len(posts) else None
    )
