"""The Mastodon adapter, driven through real Mastodon.py against a fake instance on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from adapters.base import Platform, text_hash
from adapters.mastodon import MastodonPlatform, from_config, html_to_text
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    PermanentPlatformError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from tests.adapters.mastodon_server import MastodonServer, to_html

CLIENT_TIMEOUT_S = 0.5  # the server's "slow" fault answers after 2 s


def fixed_now() -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[MastodonServer]:
    srv = await MastodonServer().start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def make_platform(server: MastodonServer) -> Callable[..., MastodonPlatform]:
    def make(**overrides: object) -> MastodonPlatform:
        assert urlsplit(server.base_url).hostname == "127.0.0.1"  # never a public address
        kwargs: dict[str, object] = {
            "access_token": server.token,
            "base_url": server.base_url,
            "now": fixed_now,
            "request_timeout": CLIENT_TIMEOUT_S,
        }
        kwargs.update(overrides)
        return MastodonPlatform(**kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def platform(
    make_platform: Callable[..., MastodonPlatform],
) -> AsyncIterator[MastodonPlatform]:
    p = make_platform()
    try:
        yield p
    finally:
        await p.aclose()


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


# -- success paths ---------------------------------------------------------------------------


async def test_construction_makes_no_request_and_satisfies_the_protocol(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    assert isinstance(platform, Platform)
    assert server.requests == []


async def test_publish_posts_a_public_status_and_returns_its_text(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    text = (
        "Growth tip: ship small & often.\n\nRead https://example.com/a/very/long/path/to/an/article"
    )
    post = await platform.publish(text, idempotency_key="k-1")
    assert post.platform_post_id in server.statuses
    assert server.statuses[post.platform_post_id]["visibility"] == "public"
    assert server.texts[post.platform_post_id] == text
    assert post.text == text
    assert post.posted_at.tzinfo is not None
    assert abs(post.posted_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_publishing_twice_with_the_same_key_creates_one_status(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    first = await platform.publish("Hello fediverse", idempotency_key="same-key")
    second = await platform.publish("Hello fediverse", idempotency_key="same-key")
    assert first.platform_post_id == second.platform_post_id
    assert len(server.statuses) == 1
    third = await platform.publish("Hello fediverse", idempotency_key="other-key")
    assert third.platform_post_id != first.platform_post_id
    assert len(server.statuses) == 2


async def test_fetch_metrics_maps_counters_and_omits_unknown_ids(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    status = server.add_status("measured")
    status.update(favourites_count=5, reblogs_count=3, replies_count=2)
    metrics = await platform.fetch_metrics([status["id"], "999"])
    assert set(metrics) == {status["id"]}
    m = metrics[status["id"]]
    assert (m.likes, m.reposts, m.replies) == (5, 3, 2)
    assert m.engagements == 10


async def test_fetch_account_reads_verify_credentials(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.add_status("one")
    info = await platform.fetch_account()
    assert (info.handle, info.followers, info.following, info.posts) == ("growthbot", 42, 7, 1)


async def test_find_recent_returns_own_posts_since_newest_first_as_plain_text(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    now = datetime.now(UTC)
    server.add_status("old news", created_at=now - timedelta(days=2))
    texts = [f"post {i} <b>&</b>\nline two" for i in range(45)]  # more than one page of 40
    for text in texts:
        server.add_status(text)
    found = await platform.find_recent(since=now - timedelta(hours=1), limit=100)
    assert [p.text for p in found] == list(reversed(texts))
    assert {text_hash(p.text) for p in found} == {text_hash(t) for t in texts}
    limited = await platform.find_recent(since=now - timedelta(hours=1), limit=3)
    assert [p.text for p in limited] == list(reversed(texts))[:3]


async def test_delete_removes_the_status_and_is_idempotent(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    post = await platform.publish("to be deleted", idempotency_key="k-del")
    await platform.delete(post.platform_post_id)
    assert post.platform_post_id not in server.statuses
    await platform.delete(post.platform_post_id)  # already gone: no error
    assert await platform.fetch_metrics([post.platform_post_id]) == {}


async def test_max_chars_is_read_from_the_instance_once(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.max_characters = 1000
    assert platform.limits.max_chars == 500  # default until the instance was asked
    limits = await platform.load_limits()
    assert limits.max_chars == 1000
    asked = len(server.requests)
    await platform.publish("x" * 900, idempotency_key="k-long-ok")
    assert platform.limits.max_chars == 1000
    assert [r for r in server.requests[asked:] if "instance" in r[1]] == []
    assert (platform.limits.posts_per_hour, platform.limits.posts_per_day) == (10, 100)


async def test_length_counts_urls_as_the_instance_reserves_and_remote_mentions_by_username(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    text = "Hi @alice@example.social, read https://example.com/" + "a" * 80
    assert platform.length(text) == len("Hi @alice, read ") + 23  # Mastodon's default
    server.characters_reserved_per_url = 30
    await platform.load_limits()
    assert platform.length(text) == len("Hi @alice, read ") + 30


# -- errors ----------------------------------------------------------------------------------


async def test_rate_limit_raises_rate_limited_with_the_reset_time(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.fail("rate_limit", path="/api/v1/statuses", reset_in=timedelta(seconds=600))
    expected = datetime.now(UTC) + timedelta(seconds=600)
    with pytest.raises(RateLimited) as info:
        await platform.publish("limited", idempotency_key="k-rl")
    assert info.value.reset_at is not None
    assert abs(info.value.reset_at - expected) < timedelta(seconds=10)
    assert server.statuses == {}


async def test_rate_limit_on_reads_raises_rate_limited(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.fail("rate_limit", path="/api/v1/accounts")
    with pytest.raises(RateLimited) as info:
        await platform.fetch_account()
    assert info.value.reset_at is not None and info.value.reset_at > datetime.now(UTC)


async def test_unavailable_read_raises_platform_unavailable_then_succeeds(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    status = server.add_status("hello")
    server.fail("unavailable", path="/api/v1/statuses/")
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_metrics([status["id"]])
    assert set(await platform.fetch_metrics([status["id"]])) == {status["id"]}

    server.fail("unavailable", path="/api/v1/accounts")
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_account()
    assert (await platform.fetch_account()).handle == "growthbot"


async def test_unavailable_publish_is_ambiguous(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.fail("unavailable", method="POST", path="/api/v1/statuses")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("maybe", idempotency_key="k-503")


async def test_unauthorized_publish_names_the_write_scope(
    server: MastodonServer, make_platform: Callable[..., MastodonPlatform]
) -> None:
    platform = make_platform(access_token="wrong-token")
    try:
        with pytest.raises(AuthFailed, match="write:statuses"):
            await platform.publish("hi", idempotency_key="k-401")
        with pytest.raises(AuthFailed, match="read:accounts"):
            await platform.fetch_account()
    finally:
        await platform.aclose()
    assert server.statuses == {}


async def test_token_without_write_scope_is_auth_failed(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.scopes = {"read"}
    with pytest.raises(AuthFailed, match="write:statuses"):
        await platform.publish("hi", idempotency_key="k-403")


async def test_over_long_post_is_content_rejected(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    with pytest.raises(ContentRejected, match="character limit"):
        await platform.publish("x" * 501, idempotency_key="k-422")
    assert server.statuses == {}


async def test_malformed_json_is_a_platform_error_not_a_crash(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    status = server.add_status("hello")
    server.fail("malformed", path="/api/v1/statuses/")
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_metrics([status["id"]])
    # On publish the status was stored before the unreadable answer: ambiguous, reconcilable.
    server.fail("malformed", method="POST", path="/api/v1/statuses")
    with pytest.raises(AmbiguousPublish):
        await platform.publish("garbled answer", idempotency_key="k-bad-json")
    recent = await platform.find_recent(since=an_hour_ago())
    assert [p.text for p in recent] == ["garbled answer", "hello"]


async def test_timeout_after_send_is_ambiguous_and_reconcilable(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    text = "This one times out after it was stored"
    server.fail("slow", method="POST", path="/api/v1/statuses", delay=2.0)
    with pytest.raises(AmbiguousPublish):
        await platform.publish(text, idempotency_key="k-slow")
    assert len(server.statuses) == 1
    found = await platform.find_recent(since=an_hour_ago())
    assert [text_hash(p.text) for p in found] == [text_hash(text)]
    # A resend with the same key (if reconciliation ever chose to) would not duplicate it.
    again = await platform.publish(text, idempotency_key="k-slow")
    assert again.platform_post_id == found[0].platform_post_id
    assert len(server.statuses) == 1


async def test_connection_refused_is_unavailable_not_ambiguous(
    make_platform: Callable[..., MastodonPlatform],
) -> None:
    srv = await MastodonServer().start()
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


async def test_unknown_account_statuses_is_a_permanent_error(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    await platform.fetch_account()
    server.account_id = "1"  # our cached id no longer exists on the instance
    with pytest.raises(PermanentPlatformError):
        await platform.find_recent(since=an_hour_ago())


async def test_no_vendor_exception_escapes(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    for kind in ("rate_limit", "unavailable", "unauthorized", "malformed"):
        server.fail(kind)
        with pytest.raises(PlatformError):
            await platform.fetch_account()


# -- config and helpers ----------------------------------------------------------------------


def test_from_config_requires_the_instance_url() -> None:
    with pytest.raises(ConfigError, match=r"'main'.*api_base_url"):
        from_config(
            account="main",
            secrets={"MASTODON_ACCESS_TOKEN": "t"},
            base_url=None,
            now=fixed_now,
        )


def test_from_config_requires_the_token() -> None:
    with pytest.raises(ConfigError, match="MASTODON_ACCESS_TOKEN"):
        from_config(account="main", secrets={}, base_url="http://127.0.0.1:9", now=fixed_now)


async def test_from_config_builds_a_platform(server: MastodonServer) -> None:
    platform = from_config(
        account="main",
        secrets={"MASTODON_ACCESS_TOKEN": server.token},
        base_url=server.base_url,
        now=fixed_now,
    )
    try:
        assert platform.name == "mastodon"
        assert (await platform.fetch_account()).handle == "growthbot"
    finally:
        await platform.aclose()


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "two\nlines",
        "para one\n\npara two\nwith a break",
        "escapes: <b>bold</b> & \"quotes\" 'single'",
        "link https://www.example.com/some/really/long/path?q=1&r=2 end",
        "short http://x.io",
        "ünïcödé — ok 🎉",
    ],
)
def test_html_to_text_inverts_mastodon_formatting(text: str) -> None:
    assert html_to_text(to_html(text)) == text


def test_html_to_text_on_real_mastodon_markup() -> None:
    content = (
        '<p>Hi <span class="h-card"><a href="https://m.example/@bob" class="u-url mention">'
        "@<span>bob</span></a></span> see "
        '<a href="https://example.com/x" rel="nofollow noopener" target="_blank">'
        '<span class="invisible">https://</span><span class="">example.com/x</span>'
        '<span class="invisible"></span></a></p><p>bye &amp; thanks</p>'
    )
    assert html_to_text(content) == "Hi @bob see https://example.com/x\n\nbye & thanks"


# -- check_write_access (growthloop accounts check) ----------------------------------------------


async def test_check_write_access_reads_the_app_scopes_without_posting(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    assert await platform.check_write_access() == "write:statuses granted"
    server.scopes = {"read", "write:statuses"}
    assert await platform.check_write_access() == "write:statuses granted"
    assert server.requests == [("GET", "/api/v1/apps/verify_credentials")] * 2
    assert server.statuses == {}


async def test_check_write_access_without_a_write_scope_is_auth_failed(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.scopes = {"read", "write:favourites"}
    with pytest.raises(AuthFailed, match="lacks write:statuses"):
        await platform.check_write_access()
    assert server.statuses == {}


async def test_check_write_access_is_unknown_before_mastodon_4_3(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.list_app_scopes = False
    assert await platform.check_write_access() == (
        "unknown (the instance does not list the token's scopes)"
    )


async def test_check_write_access_with_a_refused_token_is_auth_failed(
    server: MastodonServer, make_platform: Callable[..., MastodonPlatform]
) -> None:
    platform = make_platform(access_token="wrong-token")
    try:
        with pytest.raises(AuthFailed, match="write:statuses"):
            await platform.check_write_access()
    finally:
        await platform.aclose()


async def test_check_write_access_translates_other_failures(
    server: MastodonServer, platform: MastodonPlatform
) -> None:
    server.fail("unavailable", path="/api/v1/apps")
    with pytest.raises(PlatformUnavailable):
        await platform.check_write_access()
    server.fail("rate_limit", path="/api/v1/apps")
    with pytest.raises(RateLimited):
        await platform.check_write_access()
