"""Mastodon's audience reads (issue 19 item 2, issue 21 item 2) through real Mastodon.py against
the fake instance: notifications read forwards with ``min_id`` in pages (types follow, favourite,
reblog, mention; a mention answering our status is a reply), resumed from the stored cursor after
a crash, a page read twice stored once, a 429 translated with its reset time, and the follower
list paginated by its ``Link`` header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import Platform
from adapters.mastodon import MastodonPlatform
from agent.audience_models import AudienceKind
from agent.conversation_models import AudiencePage, ConversationKind
from agent.errors import RateLimited
from agent.store.memory import MemoryStore
from tests.adapters.mastodon_server import MastodonServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
KINDS = ("follow", "favourite", "reblog", "mention", "mention-only")


@pytest.fixture
async def server() -> AsyncIterator[MastodonServer]:
    srv = await MastodonServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


def make(server: MastodonServer) -> MastodonPlatform:
    return MastodonPlatform(
        access_token=server.token, base_url=server.base_url, now=lambda: T0, request_timeout=2.0
    )


def fill(server: MastodonServer, count: int, *, start: int = 0) -> str:
    """``count`` notifications of every kind in turn; returns our status's id."""
    ours = str(server.add_status("our post", created_at=T0)["id"])
    for i in range(start, start + count):
        kind = KINDS[i % len(KINDS)]
        server.notify(
            kind.removesuffix("-only"),
            f"p{i}@example.social",
            status_id=ours,
            text=f"hi {i}",
            reply=kind == "mention",
            at=T0 + i * SECOND,
        )
    server.notify("poll", "p-x@example.social")  # a type we do not ask for
    return ours


async def drain(platform: Platform, cursor: str | None) -> tuple[list[AudiencePage], str | None]:
    pages = []
    while True:
        page = await platform.read_audience("notifications", cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


async def test_notifications_are_paginated_forwards_and_mapped(server: MastodonServer) -> None:
    ours = fill(server, 200)
    platform = make(server)
    assert isinstance(platform, Platform)
    try:
        pages, cursor = await drain(platform, None)
    finally:
        await platform.aclose()

    assert [p.reads for p in pages] == [80, 80, 40]
    events = [e for p in pages for e in p.events]
    said = [c for p in pages for c in p.conversations]
    assert len({e.source_id for e in events}) == len(events) == 160  # 40 mere mentions
    assert [p.events[-1].at for p in pages] == sorted(p.events[-1].at for p in pages)  # forwards
    by_kind = {k: [e for e in events if e.kind == k] for k in AudienceKind}
    assert [len(by_kind[k]) for k in (AudienceKind.FOLLOW, AudienceKind.LIKE)] == [40, 40]
    assert len(by_kind[AudienceKind.REPOST]) == len(by_kind[AudienceKind.REPLY]) == 40
    like = min(by_kind[AudienceKind.LIKE], key=lambda e: e.at)
    assert (like.handle, like.platform_post_id, like.at) == ("p1@example.social", ours, T0 + SECOND)
    assert by_kind[AudienceKind.FOLLOW][0].platform_post_id is None
    replies = [c for c in said if c.kind == ConversationKind.REPLY]
    mentions = [c for c in said if c.kind == ConversationKind.MENTION]
    assert len(replies) == len(mentions) == 40
    first = min(replies, key=lambda c: c.at)
    assert (first.text, first.parent_post_id) == ("@growthbot hi 3", ours)
    assert min(mentions, key=lambda c: c.at).parent_post_id is None
    assert cursor == max(n["id"] for n in server.notifications if n["type"] != "poll")


async def test_a_crash_resumes_after_the_stored_page_and_later_reads_only_new(
    server: MastodonServer,
) -> None:
    fill(server, 200)
    first = make(server)
    page = await first.read_audience("notifications", None)
    await first.aclose()  # the process dies here; the store kept page.cursor
    again = make(server)
    try:
        rest, cursor = await drain(again, page.cursor)
        said = [c.platform_post_id for p in [page, *rest] for c in p.conversations]
        events = [e.source_id for p in [page, *rest] for e in p.events]
        assert sum(p.reads for p in [page, *rest]) == 200
        assert (len(set(events)), len(set(said))) == (len(events), len(said)) == (160, 80)
        fill(server, 10, start=500)
        new, _ = await drain(again, cursor)
    finally:
        await again.aclose()
    assert sum(p.reads for p in new) == 10


async def test_a_page_read_twice_is_stored_once(server: MastodonServer) -> None:
    fill(server, 50)
    platform = make(server)
    store = MemoryStore()
    account = await store.ensure_account(name="main", platform="mastodon", handle="m", now=T0)
    try:
        for _ in range(2):
            page = await platform.read_audience("notifications", None)
            await store.record_audience(account, page.events, now=T0)
            await store.record_conversations(account, page.conversations, now=T0)
    finally:
        await platform.aclose()
    assert len(await store.audience_interactions(account)) == 40
    assert len(await store.conversations(account)) == 20


async def test_a_429_is_rate_limited_with_its_reset(server: MastodonServer) -> None:
    fill(server, 100)
    platform = make(server)
    try:
        page = await platform.read_audience("notifications", None)
        server.fail("rate_limit", path="/api/v1/notifications")
        with pytest.raises(RateLimited) as limited:
            await platform.read_audience("notifications", page.cursor)
        rest = await platform.read_audience("notifications", page.cursor)
    finally:
        await platform.aclose()
    assert limited.value.reset_at is not None and limited.value.reset_at > datetime.now(UTC)
    assert page.reads + rest.reads == 100 and not rest.more


async def test_followers_are_paginated_by_the_link_header(server: MastodonServer) -> None:
    for i in range(100):
        server.add_follower(f"f{i}@example.social")
    platform = make(server)
    try:
        first = await platform.read_audience("followers", None)
        second = await platform.read_audience("followers", first.cursor)
    finally:
        await platform.aclose()
    assert first.more and not second.more and second.cursor is None
    assert first.followers is not None and second.followers is not None
    handles = [f.handle for f in (*first.followers, *second.followers)]
    assert len(handles) == len(set(handles)) == 100 and handles[0] == "f99@example.social"
