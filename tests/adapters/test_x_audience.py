"""X's audience reads (issue 19 item 2, issue 21 item 2) through tweepy against the local X API v2
stand-in: mentions (replies and mentions with their text) swept newest first and resumed after a
crash, liking users / reposters / quotes of the recent posts, followers; every object billed at
the tier's read price; a page sized to the read budget left and refused, before any request,
when not even the smallest page fits; a 429 translated with its reset time; a page read twice
stored once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from adapters.base import Platform
from adapters.x import PRICES, XPlatform
from agent.audience_models import AudienceKind
from agent.conversation_models import AudiencePage, ConversationKind
from agent.errors import RateLimited, ReadBudgetExhausted
from agent.store.memory import MemoryStore
from tests.adapters.test_x import make_platform
from tests.adapters.x_server import USER_ID, XServer

PRICE = PRICES["pay_per_use"].read
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[XServer]:
    srv = XServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def x(server: XServer) -> AsyncIterator[XPlatform]:
    platform = make_platform(server, now=lambda: NOW)
    yield platform
    await platform.aclose()


async def sweep(
    platform: Platform, source: str, cursor: str | None, **options: object
) -> tuple[list[AudiencePage], str | None]:
    pages = []
    while True:
        page = await platform.read_audience(source, cursor, **options)  # type: ignore[arg-type]
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


def requests_to(server: XServer, suffix: str) -> int:
    return sum(1 for _, path, _ in server.requests if path.endswith(suffix))


async def test_mentions_are_swept_resumed_and_read_incrementally(
    server: XServer, x: XPlatform
) -> None:
    ours = server.add_post("our post")
    for i in range(230):
        server.mention(f"fan{i}", f"hello {i}", reply_to=ours if i % 2 == 0 else None)
    assert isinstance(x, Platform) and x.audience_sources == (
        "mentions",
        "engagements",
        "followers",
    )

    first = await x.read_audience("mentions", None)
    resumed = make_platform(server, now=lambda: NOW)  # the process died after storing first.cursor
    try:
        rest, mark = await sweep(resumed, "mentions", first.cursor)
        assert [p.reads for p in [first, *rest]] == [200, 200, 60]  # posts + their authors
        said = [c for p in [first, *rest] for c in p.conversations]
        assert len({c.platform_post_id for c in said}) == 230
        replies = [c for c in said if c.kind == ConversationKind.REPLY]
        assert len(replies) == 115 and all(c.parent_post_id == ours for c in replies)
        events = [e for p in [first, *rest] for e in p.events]
        assert len(events) == 115 and {e.kind for e in events} == {AudienceKind.REPLY}
        newest = max(said, key=lambda c: int(c.platform_post_id))
        assert (newest.author_handle, newest.text) == ("fan229", "@TweepyDev hello 229")

        server.mention("late", "one more", reply_to=ours)
        new, _ = await sweep(resumed, "mentions", mark)
    finally:
        await resumed.aclose()
    assert [c.author_handle for p in new for c in p.conversations] == ["late"]
    assert server.requests[-1][2]["since_id"] == newest.platform_post_id


async def test_engagements_of_recent_posts_are_paginated_post_by_post(
    server: XServer, x: XPlatform
) -> None:
    posts = [server.add_post(f"post {i}") for i in range(2)]
    for i in range(150):
        server.engage("like", posts[0], f"liker{i}")
    for i in range(3):
        server.engage("retweet", posts[1], f"rt{i}")
        server.engage("quote", posts[1], f"q{i}")

    pages, cursor = await sweep(x, "engagements", None, posts=posts)

    assert cursor is None and len(pages) == 7  # likes: 2 pages; then 1 per endpoint and post
    events = [e for p in pages for e in p.events]
    assert [sum(e.kind == k for e in events) for k in ("like", "repost", "quote")] == [150, 3, 3]
    assert len({e.source_id for e in events}) == 156
    like = next(e for e in events if e.kind == AudienceKind.LIKE)
    assert (like.platform_post_id, like.at, like.source_id) == (
        posts[0],
        NOW,
        f"like:{posts[0]}:{like.user_id}",
    )
    assert x.spend_usd == pytest.approx(PRICE * (150 + 3 + 3 * 2), rel=1e-9)


async def test_a_page_read_twice_is_stored_once(server: XServer, x: XPlatform) -> None:
    post = server.add_post("our post")
    for i in range(8):
        server.engage("like", post, f"liker{i}")
    store = MemoryStore()
    account = await store.ensure_account(name="main", platform="x", handle="x", now=NOW)
    for _ in range(2):
        page = await x.read_audience("engagements", None, posts=[post])
        await store.record_audience(account, page.events, now=NOW)
    assert len(await store.audience_interactions(account)) == 8


async def test_reads_are_sized_to_the_budget_and_refused_past_it(
    server: XServer, x: XPlatform
) -> None:
    post = server.add_post("our post")
    for i in range(50):
        server.engage("like", post, f"liker{i}")
        server.mention(f"fan{i}", "hi")

    small = await x.read_audience("engagements", None, posts=[post], budget_usd=12 * PRICE)
    assert len(small.events) == 12 and small.more
    assert server.requests[-1][2]["max_results"] == "12"
    calls = len(server.requests)
    spent = x.spend_usd
    with pytest.raises(ReadBudgetExhausted, match="x_budget_usd"):
        await x.read_audience("mentions", None, budget_usd=9 * PRICE)  # 5 posts + authors: 10
    with pytest.raises(ReadBudgetExhausted):
        await x.read_audience("engagements", small.cursor, posts=[post], budget_usd=PRICE / 2)
    assert len(server.requests) == calls and x.spend_usd == spent  # nothing was asked


async def test_a_429_is_rate_limited_with_its_reset(server: XServer, x: XPlatform) -> None:
    server.mention("fan", "hi")
    reset = int(time.time()) + 900
    server.fail("GET /2/users/:id/mentions", "rate_limit", reset=reset)
    await x.read_audience("followers", None)  # (learns our user id)
    with pytest.raises(RateLimited) as limited:
        await x.read_audience("mentions", None)
    assert limited.value.reset_at is not None and int(limited.value.reset_at.timestamp()) == reset
    page = await x.read_audience("mentions", None)
    assert [c.author_handle for c in page.conversations] == ["fan"]


async def test_followers_are_paginated(server: XServer, x: XPlatform) -> None:
    for i in range(1500):
        server.follow(f"f{i}")
    pages, cursor = await sweep(x, "followers", None)
    assert [len(p.followers or ()) for p in pages] == [1000, 500] and cursor is None
    assert len({f.user_id for p in pages for f in p.followers or ()}) == 1500
    assert all(path == f"/2/users/{USER_ID}/followers" for _, path, _ in server.requests[1:])
