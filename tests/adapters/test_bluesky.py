"""The Bluesky adapter, driven through real atproto against a fake PDS on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from adapters.base import Platform, text_hash
from adapters.bluesky import BlueskyPlatform, from_config
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from tests.adapters.bluesky_server import BlueskyServer, bluesky_harness

CLIENT_TIMEOUT_S = 0.5  # the server's "lose_response" fault answers after 2 s
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one grapheme


def fixed_now() -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[BlueskyServer]:
    srv = await BlueskyServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def make_platform(server: BlueskyServer) -> Callable[..., BlueskyPlatform]:
    def make(**overrides: object) -> BlueskyPlatform:
        assert urlsplit(server.base_url).hostname == "127.0.0.1"  # never a public address
        kwargs: dict[str, object] = {
            "handle": server.handle,
            "app_password": server.app_password,
            "base_url": server.base_url,
            "now": fixed_now,
            "request_timeout": CLIENT_TIMEOUT_S,
        }
        kwargs.update(overrides)
        return BlueskyPlatform(**kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def platform(
    make_platform: Callable[..., BlueskyPlatform],
) -> AsyncIterator[BlueskyPlatform]:
    p = make_platform()
    try:
        yield p
    finally:
        assert urlsplit(p.base_url).hostname == "127.0.0.1"  # the DID doc kept us local
        await p.aclose()


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


# -- success paths ---------------------------------------------------------------------------


async def test_construction_makes_no_request_and_satisfies_the_protocol(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    assert isinstance(platform, Platform)
    assert server.requests == []
    assert platform.limits.max_chars == 300
    assert platform.limits.posts_per_hour <= 30


async def test_publish_creates_a_post_record(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    post = await platform.publish("hello bluesky", idempotency_key="k1")
    assert post.platform_post_id.startswith(f"at://{server.did}/app.bsky.feed.post/")
    assert post.text == "hello bluesky"
    assert post.posted_at == fixed_now()
    assert server.texts() == ["hello bluesky"]
    assert platform.session_string is not None


async def test_fetch_metrics_batches_by_25_and_omits_unknown_ids(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    ids = [(await platform.publish(f"post {i}", idempotency_key=f"k{i}")).platform_post_id
           for i in range(30)]  # fmt: skip
    first = next(iter(server.posts.values()))
    first.update(likeCount=5, repostCount=2, replyCount=1, quoteCount=3)
    unknown = f"at://{server.did}/app.bsky.feed.post/3lgone"
    metrics = await platform.fetch_metrics([*ids, unknown, "not-a-uri"])
    assert set(metrics) == set(ids)
    m = metrics[ids[0]]
    assert (m.likes, m.reposts, m.replies, m.quotes) == (5, 2, 1, 3)
    assert [n for _, n in server.requests].count("app.bsky.feed.getPosts") == 2


async def test_fetch_account_reads_the_profile(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.publish("one", idempotency_key="k")
    info = await platform.fetch_account()
    assert (info.handle, info.followers, info.following, info.posts) == (
        server.handle,
        42,
        7,
        1,
    )


async def test_find_recent_returns_own_posts_since_newest_first(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    server.add_post("old", created_at=datetime.now(UTC) - timedelta(days=2))
    await platform.publish("first", idempotency_key="a")
    await platform.publish(f"second {FAMILY}", idempotency_key="b")
    found = await platform.find_recent(since=an_hour_ago())
    assert [p.text for p in found] == [f"second {FAMILY}", "first"]
    assert text_hash(found[0].text) == text_hash(f"second {FAMILY}")


async def test_find_recent_follows_the_cursor(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    for i in range(120):
        server.add_post(f"p{i}")
    found = await platform.find_recent(since=an_hour_ago(), limit=110)
    assert len(found) == 110
    assert found[0].text == "p119"


async def test_delete_removes_the_post_and_is_idempotent(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    post = await platform.publish("bye", idempotency_key="k")
    await platform.delete(post.platform_post_id)
    await platform.delete(post.platform_post_id)
    assert server.texts() == []


# -- session -----------------------------------------------------------------------------------


async def test_the_session_is_created_once_and_reused(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    post = await platform.publish("a", idempotency_key="k")
    await platform.fetch_account()
    await platform.fetch_metrics([post.platform_post_id])
    await platform.find_recent(since=an_hour_ago())
    await platform.delete(post.platform_post_id)
    assert server.create_sessions == 1
    assert server.refreshes == 0


async def test_an_access_token_near_expiry_is_refreshed_not_recreated(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    server.access_ttl = timedelta(minutes=10)  # atproto refreshes 15 minutes before expiry
    await platform.fetch_account()
    await platform.fetch_account()
    assert server.create_sessions == 1
    assert server.refreshes >= 1


async def test_an_access_token_the_pds_refuses_is_refreshed_and_the_call_repeated(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.expire_access_tokens()
    post = await platform.publish("after expiry", idempotency_key="k")
    assert server.texts() == ["after expiry"]
    assert post.text == "after expiry"
    assert (server.create_sessions, server.refreshes) == (1, 1)


async def test_a_refused_refresh_token_logs_in_again(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.expire_access_tokens()
    server.refresh_tokens.clear()
    await platform.fetch_account()
    assert server.create_sessions == 2


# -- errors ------------------------------------------------------------------------------------


async def test_429_raises_rate_limited_with_the_reset_time(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.fail("rate_limit", path="com.atproto.repo.createRecord", reset_in=timedelta(minutes=7))
    with pytest.raises(RateLimited) as info:
        await platform.publish("x", idempotency_key="k")
    assert info.value.reset_at is not None
    expected = datetime.now(UTC) + timedelta(minutes=7)
    assert abs((info.value.reset_at - expected).total_seconds()) < 5
    assert server.texts() == []


async def test_503_on_a_read_is_unavailable_then_the_next_call_succeeds(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.fail("unavailable", path="app.bsky.actor.getProfile")
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_account()
    assert (await platform.fetch_account()).followers == 42


async def test_a_wrong_app_password_is_auth_failed_naming_it(
    make_platform: Callable[..., BlueskyPlatform],
) -> None:
    p = make_platform(app_password="wrong")
    try:
        with pytest.raises(AuthFailed, match="BLUESKY_APP_PASSWORD"):
            await p.fetch_account()
    finally:
        await p.aclose()


async def test_401_on_a_call_is_auth_failed(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.fail("auth", path="com.atproto.repo.createRecord")
    with pytest.raises(AuthFailed):
        await platform.publish("x", idempotency_key="k")


async def test_too_long_is_rejected_before_any_request_counting_graphemes(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    assert platform.length(FAMILY * 300) == 300
    fits = FAMILY * 100 + "x" * 200  # 300 graphemes, 2700 bytes
    await platform.publish(fits, idempotency_key="ok")
    for too_long in ("x" * 301, FAMILY * 301, FAMILY * 121):  # graphemes; graphemes; bytes
        with pytest.raises(ContentRejected):
            await platform.publish(too_long, idempotency_key="k")
    assert server.texts() == [fits]


async def test_the_pds_refusing_the_record_is_content_rejected(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    server.max_graphemes = 10
    with pytest.raises(ContentRejected, match="graphemes"):
        await platform.publish("x" * 11, idempotency_key="k")


async def test_malformed_json_is_a_platform_error(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.fail("malformed", path="app.bsky.actor.getProfile")
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_account()
    server.fail("malformed", path="com.atproto.repo.createRecord")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("maybe", idempotency_key="k")


async def test_lost_response_is_ambiguous_and_reconcilable(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    await platform.fetch_account()
    server.fail("lose_response", path="com.atproto.repo.createRecord")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("lost", idempotency_key="k")
    found = await platform.find_recent(since=an_hour_ago())
    assert [text_hash(p.text) for p in found] == [text_hash("lost")]
    assert server.texts() == ["lost"]


async def test_connection_refused_is_unavailable_even_on_publish(
    make_platform: Callable[..., BlueskyPlatform],
) -> None:
    p = make_platform(base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(PlatformUnavailable) as info:
            await p.publish("x", idempotency_key="k")
        assert not isinstance(info.value, AmbiguousPublish)
    finally:
        await p.aclose()


# -- harness and config -----------------------------------------------------------------------


async def test_the_harness_simulates_every_failure_kind() -> None:
    async with bluesky_harness() as h:
        assert urlsplit(h.server.base_url).hostname == "127.0.0.1"
        await h.platform.publish("one", idempotency_key="a")
        for kind in ("rate_limit", "unavailable", "lose_response", "auth", "malformed"):
            assert h.supports(kind)
            h.fail_next(kind)
            with pytest.raises(PlatformError):
                await h.platform.publish(f"fail {kind}", idempotency_key=kind)
        assert h.stored_texts() == ["one", "fail lose_response", "fail malformed"]


async def test_from_config_needs_both_secrets() -> None:
    with pytest.raises(ConfigError, match="BLUESKY_APP_PASSWORD"):
        from_config(account="a", secrets={"BLUESKY_HANDLE": "h"}, base_url=None, now=fixed_now)
    p = from_config(
        account="a",
        secrets={"BLUESKY_HANDLE": "@h.test", "BLUESKY_APP_PASSWORD": "p"},
        base_url="http://127.0.0.1:9",
        now=fixed_now,
    )
    assert urlsplit(p.base_url).hostname == "127.0.0.1"
    await p.aclose()


# -- check_write_access (growthloop accounts check) ----------------------------------------------


async def test_check_write_access_reuses_the_session_without_posting(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    assert await platform.check_write_access() == "session ok (app passwords may post)"
    assert await platform.check_write_access() == "session ok (app passwords may post)"
    assert server.create_sessions == 1
    assert [nsid for _, nsid in server.requests] == [
        "com.atproto.server.createSession",
        "com.atproto.server.getSession",
        "com.atproto.server.getSession",
    ]
    assert server.posts == {}


async def test_check_write_access_with_a_refused_login_names_the_app_password(
    server: BlueskyServer, make_platform: Callable[..., BlueskyPlatform]
) -> None:
    p = make_platform(app_password="wrong")
    try:
        with pytest.raises(AuthFailed, match="BLUESKY_APP_PASSWORD"):
            await p.check_write_access()
    finally:
        await p.aclose()
    assert server.posts == {}


async def test_check_write_access_of_an_inactive_account_is_auth_failed(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    server.active, server.account_status = False, "suspended"
    with pytest.raises(AuthFailed, match="not active \\(suspended\\)"):
        await platform.check_write_access()


async def test_check_write_access_translates_other_failures(
    server: BlueskyServer, platform: BlueskyPlatform
) -> None:
    server.fail("unavailable", path="com.atproto.server.getSession")
    with pytest.raises(PlatformUnavailable):
        await platform.check_write_access()
    server.expire_access_tokens()  # refused token: refreshed once, then the call repeated
    assert await platform.check_write_access() == "session ok (app passwords may post)"
