"""The simulated platform's audience reads (issue 19 item 2, issue 21 item 2): what
:class:`adapters.sandbox.SandboxPlatform` exposes of its people (adapters/sandbox_people.py),
through the Platform protocol's ``audience_sources`` and ``read_audience``.

``notifications`` pages through every person-level event in the order it happened (the cursor is
the number of events read before it), unfollows included - unlike Bluesky's and Mastodon's - so
the simulation's truth is fully exposed; replies come with their text as conversations.
``followers`` pages through who follows now, for reconciliation. A ``read_rate_limit`` fault
raises ``RateLimited``; each object returned bills the scenario's read price.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from adapters.sandbox_model import from_us
from adapters.sandbox_people import PersonEvent
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import AudiencePage, Conversation, ConversationKind, Follower
from agent.errors import ReadBudgetExhausted

if TYPE_CHECKING:
    from adapters.sandbox import SandboxWorld

AUDIENCE_SOURCES = ("notifications", "followers")
AUDIENCE_PAGE = 100  # items per page of an audience read, as Bluesky's at most


def _audience_event(event: PersonEvent) -> AudienceEvent:
    return AudienceEvent(
        kind=AudienceKind(event.kind),
        user_id=event.person,
        handle=f"{event.person}.sim",
        at=from_us(event.at_us),
        source_id=f"n{event.seq}",
        # as on every real platform, a follow does not say which post brought it (the people
        # model knows; giving it away would hand attribution the answer)
        platform_post_id=None if event.kind in ("follow", "unfollow") else event.post_id,
    )


def _conversation(account: str, event: PersonEvent) -> Conversation:
    return Conversation(
        kind=ConversationKind.REPLY,
        platform_post_id=f"{account}-reply-{event.seq}",
        parent_post_id=event.post_id,
        author_id=event.person,
        author_handle=f"{event.person}.sim",
        text=event.text or "",
        at=from_us(event.at_us),
    )


class SandboxAudienceReads:
    """:class:`adapters.sandbox.SandboxPlatform`'s audience reads (see the module docstring)."""

    _world: SandboxWorld
    _begin: Callable[[Sequence[str]], tuple[int, Any]]
    _bill_reads: Callable[[int], None]

    async def _read_latency(self) -> None:
        raise NotImplementedError  # SandboxPlatform's

    @property
    def audience_sources(self) -> tuple[str, ...]:
        """``notifications`` (every person-level event in order, unfollows included - unlike
        Bluesky's and Mastodon's - so the simulation's truth is fully exposed) and
        ``followers`` (who follows now, for reconciliation)."""
        return AUDIENCE_SOURCES

    async def read_audience(
        self,
        source: str,
        cursor: str | None,
        *,
        posts: Sequence[str] = (),
        budget_usd: float | None = None,
    ) -> AudiencePage:
        """One page of ``source`` from ``cursor`` (the number of items read before it); a
        ``read_rate_limit`` fault raises ``RateLimited``; each object returned bills a read,
        and where reads are priced a page is sized to ``budget_usd`` (``ReadBudgetExhausted``
        before anything is read when not one object fits), as X's are."""
        if source not in AUDIENCE_SOURCES:
            raise ValueError(f"sandbox reads {', '.join(AUDIENCE_SOURCES)}, not {source!r}")
        price, size = self._world._scenario.platform.prices.read, AUDIENCE_PAGE
        if price > 0 and budget_usd is not None:
            size = min(size, math.floor(budget_usd / price + 1e-9))
            if size < 1:
                raise ReadBudgetExhausted(
                    f"sandbox: a read would pass the read budget ({budget_usd:.4f} USD left)"
                )
        await self._read_latency()
        now_us, account = self._begin(("auth_failed", "read_rate_limit"))
        world = self._world
        try:
            start = int(cursor or 0)
        except ValueError:
            start = 0
        with world._guard():
            people = world._people_of(account, now_us)
        if source == "followers":
            everyone = sorted(people.followers)
            chunk = everyone[start : start + size]
            self._bill_reads(len(chunk))
            more = start + len(chunk) < len(everyone)
            return AudiencePage(
                source=source,
                followers=tuple(Follower(user_id=p, handle=f"{p}.sim") for p in chunk),
                cursor=str(start + len(chunk)) if more else None,
                more=more,
                reads=len(chunk),
            )
        events = people.events[start : start + size]
        self._bill_reads(len(events))
        end = start + len(events)
        return AudiencePage(
            source=source,
            events=tuple(_audience_event(e) for e in events),
            conversations=tuple(
                _conversation(account.name, e) for e in events if e.kind == "reply"
            ),
            cursor=str(end),
            more=end < len(people.events),
            reads=len(events),
        )
