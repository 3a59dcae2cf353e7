"""X's pay-per-use prices are counted per call, and the daemon books them as platform spend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.x import PRICES, TIERS, XPlatform
from tests.adapters.test_x import make_platform
from tests.adapters.x_server import XServer


@pytest.fixture
async def server() -> AsyncIterator[XServer]:
    srv = XServer()
    await srv.start()
    yield srv
    await srv.close()


async def test_pay_per_use_spend_counts_posts_urls_and_owned_reads(server: XServer) -> None:
    x: XPlatform = make_platform(server)
    try:
        price = PRICES["pay_per_use"]
        first = await x.publish("plain post, no link", idempotency_key="k1")
        assert x.spend_usd == pytest.approx(price.post)
        second = await x.publish("read this: https://example.com/guide", idempotency_key="k2")
        assert x.spend_usd == pytest.approx(price.post + price.post_with_url)
        metrics = await x.fetch_metrics([first.platform_post_id, second.platform_post_id])
        assert len(metrics) == 2
        assert x.spend_usd == pytest.approx(price.post + price.post_with_url + 2 * price.read)
    finally:
        await x.aclose()


async def test_free_tier_costs_nothing_and_caps_posts_at_17_a_day(server: XServer) -> None:
    x: XPlatform = make_platform(server, tier="free")
    try:
        await x.publish("a post on the free tier", idempotency_key="k")
        assert x.spend_usd == 0.0
        assert x.limits == TIERS["free"]
        assert x.limits.posts_per_day == 17
    finally:
        await x.aclose()


async def test_prices_follow_the_tier_and_the_account_read_is_billed_once(
    server: XServer,
) -> None:
    paid: XPlatform = make_platform(server)
    free: XPlatform = make_platform(server, tier="basic")
    try:
        assert paid.prices == PRICES["pay_per_use"]
        assert paid.prices.billed and paid.prices.read == 0.001
        assert not free.prices.billed
        await paid.fetch_account()  # one user object: one read
        assert paid.spend_usd == pytest.approx(PRICES["pay_per_use"].read)
    finally:
        await paid.aclose()
        await free.aclose()
