"""The Threads adapter, driven over real HTTP against a fake Graph API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from adapters.base import Platform, text_hash
from adapters.length import threads_length
from adapters.threads import ThreadsPlatform, from_config
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from tests.adapters.harness import FAILURE_KINDS, Harness
from tests.adapters.threads_server import ThreadsServer, threads_harness

CLIENT_TIMEOUT_S = 0.5  # the server's slow lose_response answers after 2 s
PUBLISH_FLOW = [
    "GET /v1.0/me/threads_publishing_limit",
    "POST /v1.0/me/threads",
    "POST /v1.0/me/threads_publish",
]


def fixed_now() -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
async def server() -> AsyncIterator[ThreadsServer]:
    srv = await ThreadsServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def make_platform(server: ThreadsServer) -> Callable[..., ThreadsPlatform]:
    def make(**overrides: object) -> ThreadsPlatform:
        kwargs: dict[str, object] = {
            "access_token": server.token,
            "base_url": server.base_url,
            "now": fixed_now,
            "timeout": CLIENT_TIMEOUT_S,
            "read_backoff": 0.0,
        }
        kwargs.update(overrides)
        assert urlsplit(str(kwargs["base_url"])).hostname == "127.0.0.1"  # never a public address
        return ThreadsPlatform(**kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def platform(
    make_platform: Callable[..., ThreadsPlatform],
) -> AsyncIterator[ThreadsPlatform]:
    p = make_platform()
    try:
        yield p
    finally:
        await p.aclose()


# -- success paths ---------------------------------------------------------------------------


async def test_construction_makes_no_request_and_satisfies_the_protocol(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    assert isinstance(platform, Platform)
    assert server.requests == []
    limits = platform.limits
    assert (limits.max_chars, limits.posts_per_hour, limits.posts_per_day) == (500, 25, 250)


async def test_publish_checks_the_quota_then_creates_and_publishes_a_container(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    text = "Growth tip: ship small & often 🚀\nsecond line"
    post = await platform.publish(text, idempotency_key="k-1")
    assert server.paths() == PUBLISH_FLOW
    assert post.platform_post_id in server.posts
    assert server.posts[post.platform_post_id]["text"] == text
    assert len(server.containers) == 1 and server.published == set(server.containers)
    assert post.text == text
    assert post.posted_at == fixed_now()
    assert server.quota_usage == 1


async def test_fetch_metrics_maps_insights_and_omits_unknown_ids(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    media_id = server.add_post("measured")
    server.insights[media_id].update(views=120, likes=5, replies=2, reposts=3, quotes=1, shares=9)
    metrics = await platform.fetch_metrics([media_id, "999"])
    assert set(metrics) == {media_id}
    m = metrics[media_id]
    assert (m.impressions, m.likes, m.replies, m.reposts, m.quotes) == (120, 5, 2, 3, 1)
    assert m.bookmarks == 0  # shares are deliberately not bookmarks
    assert m.engagements == 11


async def test_fetch_account_reads_profile_and_followers(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    info = await platform.fetch_account()
    assert (info.handle, info.followers, info.following, info.posts) == ("growthbot", 42, 0, 0)
    assert server.paths() == ["GET /v1.0/me", "GET /v1.0/me/threads_insights"]


async def test_find_recent_pages_through_own_posts_since_newest_first(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    now = datetime.now(UTC)
    server.add_post("old news", created_at=now - timedelta(days=2))
    texts = [f"post {i}" for i in range(150)]  # more than one page of 100
    for i, text in enumerate(texts):
        server.add_post(text, created_at=now - timedelta(minutes=30) + timedelta(seconds=i))
    found = await platform.find_recent(since=now - timedelta(hours=1), limit=200)
    assert [p.text for p in found] == list(reversed(texts))
    assert server.paths().count("GET /v1.0/me/threads") == 2
    limited = await platform.find_recent(since=now - timedelta(hours=1), limit=3)
    assert [p.text for p in limited] == list(reversed(texts))[:3]
    assert all(p.posted_at.tzinfo is not None for p in found)


async def test_delete_removes_the_post_and_is_idempotent(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    post = await platform.publish("to be deleted", idempotency_key="k-del")
    await platform.delete(post.platform_post_id)
    assert post.platform_post_id not in server.posts
    await platform.delete(post.platform_post_id)  # already gone: no error
    assert await platform.fetch_metrics([post.platform_post_id]) == {}


# -- publishing errors -----------------------------------------------------------------------


async def test_exhausted_publishing_quota_is_rate_limited_without_a_container(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.quota_usage = 250
    with pytest.raises(RateLimited) as info:
        await platform.publish("one too many", idempotency_key="k-quota")
    assert info.value.reset_at is not None and info.value.reset_at > fixed_now()
    assert server.containers == {} and server.posts == {}
    assert server.paths() == PUBLISH_FLOW[:1]


@pytest.mark.parametrize("status", [400, 429])
async def test_rate_limit_code_4_gives_reset_at_from_the_usage_header(
    server: ThreadsServer, platform: ThreadsPlatform, status: int
) -> None:
    server.fail("rate_limit", path="/threads_publish", status=status, regain_minutes=17)
    with pytest.raises(RateLimited) as info:
        await platform.publish("limited", idempotency_key="k-rl")
    assert info.value.reset_at == fixed_now() + timedelta(minutes=17)
    assert server.posts == {}


async def test_rate_limit_on_reads_is_rate_limited(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("rate_limit", path="/v1.0/me", regain_minutes=5)
    with pytest.raises(RateLimited) as info:
        await platform.fetch_account()
    assert info.value.reset_at == fixed_now() + timedelta(minutes=5)


async def test_auth_failure_names_the_permissions(
    server: ThreadsServer, make_platform: Callable[..., ThreadsPlatform]
) -> None:
    platform = make_platform(access_token="wrong-token")
    try:
        with pytest.raises(AuthFailed, match="threads_content_publish") as info:
            await platform.publish("hi", idempotency_key="k-190")
        assert "threads_manage_insights" in str(info.value)
        assert "wrong-token" not in str(info.value)
        with pytest.raises(AuthFailed, match="threads_basic"):
            await platform.fetch_account()
    finally:
        await platform.aclose()
    assert server.posts == {}


async def test_http_401_code_190_is_auth_failed(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("auth", path="/threads")
    with pytest.raises(AuthFailed, match="threads_content_publish"):
        await platform.publish("expired token", idempotency_key="k-401")
    assert server.posts == {}


async def test_too_long_is_content_rejected_before_any_request(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    with pytest.raises(ContentRejected, match="500"):
        await platform.publish("x" * 501, idempotency_key="k-long")
    with pytest.raises(ContentRejected):
        await platform.publish("🎉" * 126, idempotency_key="k-emoji")  # 4 bytes each: 504
    assert server.requests == []


async def test_container_refused_by_threads_is_content_rejected(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.max_chars = 10  # Threads counting differently from us: its code 100 refusal
    with pytest.raises(ContentRejected, match="code 100"):
        await platform.publish("eleven char", idempotency_key="k-100")
    assert server.containers == {} and server.posts == {}


async def test_malformed_json_is_a_platform_error(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("malformed", path="/threads_insights", times=3)  # every read attempt
    with pytest.raises(PlatformError):
        await platform.fetch_account()
    server.fail("malformed", path="/threads_publishing_limit", times=3)
    with pytest.raises(PlatformUnavailable) as info:
        await platform.publish("not yet", idempotency_key="k-bad-json")
    assert not isinstance(info.value, AmbiguousPublish)
    assert server.posts == {}


async def test_malformed_publish_answer_is_ambiguous_and_reconcilable(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("malformed", path="/threads_publish")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("garbled answer", idempotency_key="k-garbled")
    assert [p.text for p in await platform.find_recent(since=an_hour_ago())] == ["garbled answer"]


@pytest.mark.parametrize("delay", [0.0, 2.0], ids=["dropped", "timeout"])
async def test_lost_publish_response_is_ambiguous_and_reconcilable(
    server: ThreadsServer, platform: ThreadsPlatform, delay: float
) -> None:
    text = "This answer never arrives"
    server.fail("lose_response", method="POST", path="/threads_publish", delay=delay)
    with pytest.raises(AmbiguousPublish):
        await platform.publish(text, idempotency_key="k-lost")
    assert len(server.posts) == 1
    found = await platform.find_recent(since=an_hour_ago())
    assert [text_hash(p.text) for p in found] == [text_hash(text)]
    assert server.paths().count("POST /v1.0/me/threads_publish") == 1  # never re-sent


@pytest.mark.parametrize("kind", ["unavailable", "lose_response"])
async def test_failure_creating_the_container_is_definite(
    server: ThreadsServer, platform: ThreadsPlatform, kind: str
) -> None:
    server.fail(kind, method="POST", path="/me/threads")
    with pytest.raises(PlatformUnavailable) as info:
        await platform.publish("step one fails", idempotency_key="k-step1")
    assert not isinstance(info.value, AmbiguousPublish)
    assert server.posts == {}
    assert "POST /v1.0/me/threads_publish" not in server.paths()


async def test_5xx_on_threads_publish_is_ambiguous(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("unavailable", path="/threads_publish")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("maybe", idempotency_key="k-503")


async def test_connection_refused_is_unavailable_not_ambiguous(
    make_platform: Callable[..., ThreadsPlatform],
) -> None:
    srv = await ThreadsServer().start()
    base_url = srv.base_url
    await srv.stop()
    platform = make_platform(base_url=base_url)
    try:
        with pytest.raises(PlatformUnavailable) as info:
            await platform.publish("nobody home", idempotency_key="k-refused")
        assert not isinstance(info.value, AmbiguousPublish)
        with pytest.raises(PlatformUnavailable):
            await platform.fetch_account()
    finally:
        await platform.aclose()


# -- read retries ----------------------------------------------------------------------------


async def test_503_then_success_on_a_read_is_retried(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    media_id = server.add_post("hello")
    server.fail("unavailable", path="/insights")
    assert set(await platform.fetch_metrics([media_id])) == {media_id}
    assert server.paths().count(f"GET /v1.0/{media_id}/insights") == 2


async def test_read_retries_are_bounded(
    server: ThreadsServer, make_platform: Callable[..., ThreadsPlatform]
) -> None:
    platform = make_platform(read_attempts=3)
    server.fail("unavailable", path="/v1.0/me", times=5)
    try:
        with pytest.raises(PlatformUnavailable):
            await platform.fetch_account()
    finally:
        await platform.aclose()
    assert server.paths().count("GET /v1.0/me") == 3


async def test_no_vendor_exception_escapes(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    for kind in ("rate_limit", "unavailable", "auth", "malformed"):
        server.fail(kind, times=5)
        with pytest.raises(PlatformError):
            await platform.fetch_account()
        server.faults.clear()


# -- harness, config -------------------------------------------------------------------------


async def test_harness_faults_surface_through_the_platform() -> None:
    async with threads_harness() as harness:
        h: Harness = harness
        assert urlsplit(harness.server.base_url).hostname == "127.0.0.1"
        assert all(h.supports(kind) for kind in FAILURE_KINDS)
        h.fail_next("unavailable")
        with pytest.raises(PlatformUnavailable):
            await h.platform.fetch_account()
        h.fail_next("lose_response")
        with pytest.raises(AmbiguousPublish):
            await h.platform.publish("kept", idempotency_key="k-h")
        assert h.stored_texts() == ["kept"]


def test_from_config_requires_the_token() -> None:
    with pytest.raises(ConfigError, match="THREADS_ACCESS_TOKEN"):
        from_config(account="main", secrets={}, base_url=None, now=fixed_now)


async def test_from_config_defaults_to_graph_threads_net(server: ThreadsServer) -> None:
    default = from_config(
        account="main", secrets={"THREADS_ACCESS_TOKEN": "t"}, base_url=None, now=fixed_now
    )
    assert default.base_url == "https://graph.threads.net"  # built, never contacted
    await default.aclose()
    platform = from_config(
        account="main",
        secrets={"THREADS_ACCESS_TOKEN": server.token},
        base_url=server.base_url,
        now=fixed_now,
    )
    try:
        assert platform.name == "threads"
        assert (await platform.fetch_account()).handle == "growthbot"
    finally:
        await platform.aclose()


@pytest.mark.parametrize(
    ("text", "length"),
    [("plain", 5), ("ünïcödé", 7), ("🎉", 4), ("👍🏽", 8), ("a☃b", 5), ("日本語", 3)],
)
def test_threads_length_counts_emojis_as_utf8_bytes(text: str, length: int) -> None:
    assert threads_length(text) == length


# -- check_write_access (growthloop accounts check) ----------------------------------------------


async def test_check_write_access_reads_the_publishing_limit_without_posting(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.quota_usage = 3
    assert await platform.check_write_access() == (
        "threads_content_publish granted (247 of 250 posts left today)"
    )
    assert server.paths() == ["GET /v1.0/me/threads_publishing_limit"]
    assert server.containers == {} and server.posts == {}


@pytest.mark.parametrize("code", [10, 200])
async def test_check_write_access_without_the_publish_permission_is_auth_failed(
    server: ThreadsServer, platform: ThreadsPlatform, code: int
) -> None:
    server.publish_denied_code = code
    with pytest.raises(AuthFailed, match="threads_content_publish") as info:
        await platform.check_write_access()
    assert f"code {code}" in str(info.value)
    assert server.token not in str(info.value)
    with pytest.raises(AuthFailed, match="threads_content_publish"):
        await platform.publish("refused", idempotency_key="k-denied")
    assert server.containers == {} and server.posts == {}


async def test_check_write_access_with_a_refused_token_is_auth_failed(
    server: ThreadsServer, make_platform: Callable[..., ThreadsPlatform]
) -> None:
    platform = make_platform(access_token="wrong-token")
    try:
        with pytest.raises(AuthFailed, match="threads_content_publish"):
            await platform.check_write_access()
    finally:
        await platform.aclose()


async def test_check_write_access_translates_other_failures(
    server: ThreadsServer, platform: ThreadsPlatform
) -> None:
    server.fail("rate_limit", path="/threads_publishing_limit")
    with pytest.raises(RateLimited):
        await platform.check_write_access()
    server.fail("unavailable", path="/threads_publishing_limit", times=3)  # every attempt
    with pytest.raises(PlatformUnavailable):
        await platform.check_write_access()
    server.quota_usage = 250  # used up: still writable, nothing left today
    assert await platform.check_write_access() == (
        "threads_content_publish granted (0 of 250 posts left today)"
    )
