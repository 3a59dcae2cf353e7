"""Threads' audience reads (issue 19 item 2, issue 21 item 2) through the adapter's own aiohttp
client against the fake Graph API: the replies to each recent post (``GET /{media-id}/replies``),
paginated per post and from post to post, resumed from the stored cursor after a crash, a page read
twice stored once, and a rate-limit error translated with its reset time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import Platform
from adapters.threads import ThreadsPlatform
from agent.audience_models import AudienceKind
from agent.conversation_models import AudiencePage
from agent.errors import RateLimited
from agent.store.memory import MemoryStore
from tests.adapters.threads_server import ThreadsServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def server() -> AsyncIterator[ThreadsServer]:
    srv = await ThreadsServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


def make(server: ThreadsServer) -> ThreadsPlatform:
    return ThreadsPlatform(
        access_token=server.token, base_url=server.base_url, now=lambda: T0, read_backoff=0.0
    )


def fill(server: ThreadsServer, replies: tuple[int, ...]) -> list[str]:
    """Our posts, newest first, with ``replies[i]`` replies to the i-th."""
    posts = [server.add_post(f"post {i}", created_at=T0 - i * MINUTE) for i in range(len(replies))]
    for post, count in zip(posts, replies, strict=True):
        for j in range(count):
            server.add_reply(post, f"fan{j}", f"reply {j} to {post}", at=T0 + j * MINUTE)
    return posts


async def sweep(
    platform: Platform, posts: list[str], cursor: str | None
) -> tuple[list[AudiencePage], str | None]:
    pages = []
    while True:
        page = await platform.read_audience("replies", cursor, posts=posts)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


async def test_replies_of_every_recent_post_are_paginated(server: ThreadsServer) -> None:
    posts = fill(server, (130, 0, 5))
    platform = make(server)
    assert isinstance(platform, Platform) and platform.audience_sources == ("replies",)
    try:
        pages, cursor = await sweep(platform, posts, None)
    finally:
        await platform.aclose()
    assert [p.reads for p in pages] == [100, 30, 0, 5] and cursor is None
    said = [c for p in pages for c in p.conversations]
    assert len({c.platform_post_id for c in said}) == 135
    first = said[0]
    assert (first.author_handle, first.parent_post_id, first.text) == (
        "fan0",
        posts[0],
        f"reply 0 to {posts[0]}",
    )
    assert first.at == T0
    events = [e for p in pages for e in p.events]
    assert {e.kind for e in events} == {AudienceKind.REPLY}
    assert {e.platform_post_id for e in events} == {posts[0], posts[2]}


async def test_a_crash_resumes_at_the_stored_page(server: ThreadsServer) -> None:
    posts = fill(server, (150, 3))
    first = make(server)
    page = await first.read_audience("replies", None, posts=posts)
    await first.aclose()  # the process dies here; the store kept page.cursor
    before = len(server.requests)
    again = make(server)
    try:
        rest, _ = await sweep(again, posts, page.cursor)
    finally:
        await again.aclose()
    assert len(server.requests) - before == 2  # the rest of post 0, then post 1
    ids = [c.platform_post_id for p in [page, *rest] for c in p.conversations]
    assert len(ids) == len(set(ids)) == 153


async def test_a_page_read_twice_is_stored_once(server: ThreadsServer) -> None:
    posts = fill(server, (20,))
    platform = make(server)
    store = MemoryStore()
    account = await store.ensure_account(name="main", platform="threads", handle="t", now=T0)
    try:
        for _ in range(2):
            page = await platform.read_audience("replies", None, posts=posts)
            await store.record_audience(account, page.events, now=T0)
            await store.record_conversations(account, page.conversations, now=T0)
    finally:
        await platform.aclose()
    assert len(await store.audience_interactions(account)) == 20
    assert len(await store.conversations(account)) == 20
    assert len(await store.audience_members(account)) == 20


async def test_a_rate_limit_is_translated_with_its_reset(server: ThreadsServer) -> None:
    posts = fill(server, (5,))
    server.fail("rate_limit", path="/replies", regain_minutes=20)
    platform = make(server)
    try:
        with pytest.raises(RateLimited) as limited:
            await platform.read_audience("replies", None, posts=posts)
        page = await platform.read_audience("replies", None, posts=posts)
    finally:
        await platform.aclose()
    assert limited.value.reset_at == T0 + 20 * MINUTE
    assert page.reads == 5
