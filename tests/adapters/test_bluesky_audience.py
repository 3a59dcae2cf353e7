"""Bluesky's audience reads (issue 19 item 2, issue 21 item 2) through real atproto against the
fake PDS: listNotifications swept newest-first and paginated, resumed from the stored cursor after
a crash, incremental (the next sweep stops at the previous one's newest), a page read twice stored
once, a 429 translated with its reset time, and getFollowers paginated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import Platform
from adapters.bluesky import BlueskyPlatform
from agent.audience_models import AudienceKind
from agent.conversation_models import AudiencePage, ConversationKind
from agent.errors import RateLimited
from agent.store.memory import MemoryStore
from tests.adapters.bluesky_server import BlueskyServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = ("follow", "like", "repost", "reply", "quote", "mention")


@pytest.fixture
async def server() -> AsyncIterator[BlueskyServer]:
    srv = await BlueskyServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


def make(server: BlueskyServer) -> BlueskyPlatform:
    return BlueskyPlatform(
        handle=server.handle,
        app_password=server.app_password,
        base_url=server.base_url,
        now=lambda: T0,
        request_timeout=2.0,
    )


def fill(server: BlueskyServer, count: int, *, start: int = 0) -> str:
    """``count`` notifications of every kind in turn, a second apart; returns our post's uri."""
    post = server.add_post("our post", created_at=T0)["uri"]
    for i in range(start, start + count):
        kind = KINDS[i % len(KINDS)]
        server.notify(kind, f"p{i}.bsky.social", subject=post, text=f"hi {i}", at=T0 + i * SECOND)
    return str(post)


SECOND = timedelta(seconds=1)


async def sweep(platform: Platform, cursor: str | None) -> tuple[list[AudiencePage], str | None]:
    pages = []
    while True:
        page = await platform.read_audience("notifications", cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


async def test_notifications_are_paginated_and_mapped(server: BlueskyServer) -> None:
    post = fill(server, 250)
    platform = make(server)
    assert isinstance(platform, Platform)
    assert platform.audience_sources == ("notifications", "followers")
    try:
        pages, _ = await sweep(platform, None)
    finally:
        await platform.aclose()

    assert [len(p.events) + sum(c.kind == "mention" for c in p.conversations) for p in pages] == [
        100,
        100,
        50,
    ]
    events = [e for p in pages for e in p.events]
    said = [c for p in pages for c in p.conversations]
    assert len({e.source_id for e in events}) == len(events) == 250 - 41  # mentions are no event
    kinds = {e.kind for e in events}
    assert kinds == {
        AudienceKind.FOLLOW,
        AudienceKind.LIKE,
        AudienceKind.REPOST,
        AudienceKind.REPLY,
        AudienceKind.QUOTE,
    }
    like = next(e for e in events if e.source_id.endswith("/3n00000000001"))
    assert (like.user_id, like.handle, like.platform_post_id) == (
        "did:plc:p1",
        "p1.bsky.social",
        post,
    )
    assert like.at == T0 + SECOND
    assert next(e for e in events if e.kind == AudienceKind.FOLLOW).platform_post_id is None
    replies = [c for c in said if c.kind == ConversationKind.REPLY]
    mentions = [c for c in said if c.kind == ConversationKind.MENTION]
    assert (len(replies), len(mentions)) == (42, 41)
    assert replies[-1].text == "hi 3" and replies[-1].parent_post_id == post
    assert mentions[-1].parent_post_id is None and mentions[-1].author_id == "did:plc:p5"


async def test_a_crash_resumes_at_the_stored_page_and_the_next_sweep_reads_only_new(
    server: BlueskyServer,
) -> None:
    fill(server, 250)
    first = make(server)
    page = await first.read_audience("notifications", None)
    await first.aclose()  # the process dies here; the store kept page.cursor
    calls = len([r for r in server.requests if "listNotifications" in r[1]])
    again = make(server)
    try:
        rest, mark = await sweep(again, page.cursor)
        assert len([r for r in server.requests if "listNotifications" in r[1]]) == calls + 2
        seen = {e.source_id for p in [page, *rest] for e in p.events}
        assert len(seen) == 250 - 41

        fill(server, 12, start=1000)  # new activity: a later sweep reads only it
        before = len([r for r in server.requests if "listNotifications" in r[1]])
        new, _ = await sweep(again, mark)
    finally:
        await again.aclose()
    assert len([r for r in server.requests if "listNotifications" in r[1]]) == before + 1
    fresh = {e.source_id for p in new for e in p.events} - seen
    assert len(fresh) == 10  # 12 minus two mentions
    assert {e.source_id for p in new for e in p.events} <= seen | fresh


async def test_a_page_read_twice_is_stored_once(server: BlueskyServer) -> None:
    fill(server, 60)
    platform = make(server)
    store = MemoryStore()
    account = await store.ensure_account(name="main", platform="bluesky", handle="b", now=T0)
    try:
        for _ in range(2):  # the cursor was lost before it was stored: the page comes again
            page = await platform.read_audience("notifications", None)
            await store.record_audience(account, page.events, now=T0)
            await store.record_conversations(account, page.conversations, now=T0)
    finally:
        await platform.aclose()
    assert len(await store.audience_interactions(account)) == 60 - 10
    assert len(await store.conversations(account)) == 20


async def test_a_429_is_rate_limited_with_its_reset_and_the_cursor_still_works(
    server: BlueskyServer,
) -> None:
    fill(server, 150)
    platform = make(server)
    try:
        page = await platform.read_audience("notifications", None)
        server.fail("rate_limit", path="app.bsky.notification.listNotifications")
        with pytest.raises(RateLimited) as limited:
            await platform.read_audience("notifications", page.cursor)
        rest = await platform.read_audience("notifications", page.cursor)
    finally:
        await platform.aclose()
    assert limited.value.reset_at is not None and limited.value.reset_at > datetime.now(UTC)
    assert len(page.events) + len(rest.events) == 150 - 25 and not rest.more


async def test_followers_are_paginated(server: BlueskyServer) -> None:
    for i in range(130):
        server.add_follower(f"f{i}.bsky.social")
    platform = make(server)
    try:
        first = await platform.read_audience("followers", None)
        second = await platform.read_audience("followers", first.cursor)
    finally:
        await platform.aclose()
    assert first.more and not second.more and second.cursor is None
    assert first.followers is not None and second.followers is not None
    everyone = [f.user_id for f in (*first.followers, *second.followers)]
    assert len(everyone) == len(set(everyone)) == 130
    assert first.followers[0].handle == "f129.bsky.social"
