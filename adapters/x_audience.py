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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from adapters.base import Prices
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import AudiencePage, Conversation, ConversationKind, Follower
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


class XAudienceReads:
    """:class:`adapters.x.XPlatform`'s audience reads (the Platform protocol's
    ``audience_sources`` and ``read_audience``), kept here beside their parsing; they use the
    adapter's client, its translated and retried ``_read`` and its spend counter."""

    _prices: Prices
    _spend_usd: float
    _client: Any
    _now: Callable[[], datetime]

    async def _read(self, call: Callable[[], Awaitable[Any]]) -> Any:
        raise NotImplementedError  # XPlatform's

    def _parsed(self, parse: Callable[[Any], Any], obj: Any) -> Any:
        raise NotImplementedError  # XPlatform's

    async def _own_id(self) -> str:
        raise NotImplementedError  # XPlatform's

    # -- audience reads (issue 19 item 2, issue 21 item 2; adapters/py) --------------

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """``mentions``, ``engagements`` (liking users, reposters, quotes of recent posts) and
        ``followers``; each metered (see :mod:`adapters.x_audience`). On pay-per-use the daemon
        reads none unless ``audience.read.x_pay_per_use`` is on."""
        return X_AUDIENCE_SOURCES

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of ``source``, sized to ``budget_usd`` (``ReadBudgetExhausted`` before any
        request when not even the endpoint's smallest page fits); billed per object returned."""
        if source not in X_AUDIENCE_SOURCES:
            raise ValueError(f"X reads {', '.join(X_AUDIENCE_SOURCES)}, not {source!r}")
        price = self._prices.read
        state = load_state(cursor)
        if source == "engagements":
            return await self._read_engagements(state, list(dict.fromkeys(posts)), budget_usd)
        size = page_size(source, price=price, budget_usd=budget_usd)
        me = await self._own_id()
        if source == "followers":
            body = await self._read(
                partial(
                    self._client.get_users_followers,
                    me,
                    max_results=size,
                    pagination_token=state.get("token"),
                    user_fields=["username"],
                    user_auth=True,
                )
            )
            self._spend_usd += price * objects(body)
            people = self._parsed(followers, body)
            token = (body.get("meta") or {}).get("next_token")
            return AudiencePage(
                source=source,
                followers=tuple(people),
                cursor=dump_state({"token": token} if token else None),
                more=token is not None,
                reads=objects(body),
            )
        body = await self._read(
            partial(
                self._client.get_users_mentions,
                me,
                since_id=state.get("since"),
                pagination_token=state.get("token"),
                max_results=size,
                tweet_fields=[
                    "created_at",
                    "author_id",
                    "in_reply_to_user_id",
                    "referenced_tweets",
                ],
                expansions=["author_id"],
                user_fields=["username"],
                user_auth=True,
            )
        )
        self._spend_usd += price * objects(body)
        events, said = self._parsed(lambda b: mentions(b, me), body)
        meta = body.get("meta") or {}
        marks = (state.get("top"), meta.get("newest_id"), state.get("since"))
        newest = max((int(i) for i in marks if i), default=None)
        token = meta.get("next_token")
        following: dict[str, Any] = {}
        if token:
            following = {"since": state.get("since"), "top": str(newest), "token": token}
        elif newest is not None:  # the sweep is done: the next reads what is newer than it
            following = {"since": str(newest)}
        return AudiencePage(
            source=source,
            events=tuple(events),
            conversations=tuple(said),
            cursor=dump_state({k: v for k, v in following.items() if v}),
            more=token is not None,
            reads=objects(body),
        )

    async def _read_engagements(
        self, state: dict[str, Any], posts: list[str], budget_usd: float | None
    ) -> AudiencePage:
        """One page of one post's liking users, reposters or quotes; past the last post the
        cursor is None (the next run sweeps the recent posts again)."""
        if not posts:
            return AudiencePage(source="engagements")
        post = state["post"] if state.get("post") in posts else posts[0]
        endpoint = str(state.get("kind") or ENGAGEMENT_KINDS[0])
        price = self._prices.read
        size = page_size(endpoint, price=price, budget_usd=budget_usd)
        call = {
            "liking_users": self._client.get_liking_users,
            "retweeted_by": self._client.get_retweeters,
            "quote_tweets": self._client.get_quote_tweets,
        }[endpoint]
        extra: dict[str, Any] = {"user_fields": ["username"]}
        if endpoint == "quote_tweets":
            extra |= {"tweet_fields": ["created_at", "author_id"], "expansions": ["author_id"]}
        body = await self._read(
            partial(
                call,
                post,
                max_results=size,
                pagination_token=state.get("token") if state.get("post") == post else None,
                user_auth=True,
                **extra,
            )
        )
        self._spend_usd += price * objects(body)
        now = self._now()
        events = self._parsed(lambda b: engagements(b, endpoint, post, now=now), body)
        token = (body.get("meta") or {}).get("next_token")
        following = (
            {"post": post, "kind": endpoint, "token": token}
            if token
            else next_engagement(posts, post, endpoint)
        )
        return AudiencePage(
            source="engagements",
            events=tuple(events),
            cursor=dump_state(following),
            more=following is not None,
            reads=objects(body),
        )
