"""One contract, every platform: the sandbox and each real adapter against its local server.

Each test runs once per harness in :data:`tests.adapters.harnesses.HARNESSES`. The last ones drive
a real :class:`agent.core.Agent` (SQLite store, template generator) through a publish whose
response is lost, and check the post ends up recorded exactly once on every platform.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.base import PublishedPost, text_hash
from agent.clock import SystemClock
from agent.core import Agent
from agent.cycles import reconcile_cycle
from agent.cycles.plan import plan_cycle
from agent.cycles.publish import publish_cycle
from agent.errors import (
    AuthFailed,
    ContentRejected,
    PlatformError,
    RateLimited,
    TransientPlatformError,
)
from agent.generators.template import TemplateGenerator
from agent.models import PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.adapters.harness import Harness
from tests.adapters.harnesses import HARNESSES
from tests.conftest import make_config

ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
ACCOUNT = "contract"


@pytest.fixture(params=list(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param]() as h:
        yield h


def a_text(what: str = "post") -> str:
    """A text no earlier test posted (platforms refuse duplicates)."""
    return f"Contract {what} {uuid.uuid4().hex[:10]}: ship small, measure, repeat."


def recently() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


def by_hash(posts: list[PublishedPost], text: str) -> list[PublishedPost]:
    return [p for p in posts if text_hash(p.text) == text_hash(text)]


# -- success paths --------------------------------------------------------------------------------


async def test_published_post_is_found_by_text_hash_and_measured(harness: Harness) -> None:
    platform = harness.platform
    text = a_text()
    post = await platform.publish(text, idempotency_key=uuid.uuid4().hex)
    assert post.platform_post_id
    assert text_hash(post.text) == text_hash(text)
    assert post.posted_at.tzinfo is not None

    (found,) = by_hash(await platform.find_recent(since=recently()), text)
    assert found.platform_post_id == post.platform_post_id
    assert harness.stored_texts().count(text) == 1

    gone = await platform.publish(a_text("deleted"), idempotency_key=uuid.uuid4().hex)
    await platform.delete(gone.platform_post_id)
    metrics = await platform.fetch_metrics([post.platform_post_id, gone.platform_post_id])
    assert set(metrics) == {post.platform_post_id}  # ids the platform no longer knows: omitted
    counters = metrics[post.platform_post_id]
    assert counters.platform_post_id == post.platform_post_id
    assert min(counters.engagements, counters.impressions, counters.likes) >= 0


async def test_fetch_account_reports_a_non_negative_follower_count(harness: Harness) -> None:
    info = await harness.platform.fetch_account()
    assert info.followers >= 0
    assert info.following >= 0
    assert info.posts >= 0


async def test_delete_removes_the_post_from_find_recent(harness: Harness) -> None:
    platform = harness.platform
    text = a_text("to delete")
    post = await platform.publish(text, idempotency_key=uuid.uuid4().hex)
    assert by_hash(await platform.find_recent(since=recently()), text)
    await platform.delete(post.platform_post_id)
    assert by_hash(await platform.find_recent(since=recently()), text) == []
    assert text not in harness.stored_texts()


async def test_limits_are_sane_and_an_overlong_text_is_rejected_unsent(harness: Harness) -> None:
    limits = harness.platform.limits
    assert limits.max_chars > 0
    assert limits.posts_per_hour > 0
    assert limits.posts_per_day >= limits.posts_per_hour
    with pytest.raises(ContentRejected):
        await harness.platform.publish(
            "a" * (limits.max_chars + 1), idempotency_key=uuid.uuid4().hex
        )
    assert harness.stored_texts() == []


# -- failures -------------------------------------------------------------------------------------


async def test_rate_limited_publish_says_when_to_come_back_and_posts_nothing(
    harness: Harness,
) -> None:
    harness.fail_next("rate_limit")
    with pytest.raises(RateLimited) as info:
        await harness.platform.publish(a_text(), idempotency_key=uuid.uuid4().hex)
    assert info.value.reset_at is not None
    assert info.value.reset_at > datetime.now(UTC)
    assert harness.stored_texts() == []


async def test_refused_credentials_are_auth_failed(harness: Harness) -> None:
    harness.fail_next("auth")
    with pytest.raises(AuthFailed):
        await harness.platform.publish(a_text(), idempotency_key=uuid.uuid4().hex)
    assert harness.stored_texts() == []
    harness.fail_next("auth")
    with pytest.raises(AuthFailed):
        await harness.platform.fetch_account()


async def test_unavailable_read_is_transient_or_retried(harness: Harness) -> None:
    harness.fail_next("unavailable")
    try:
        info = await harness.platform.fetch_account()
    except TransientPlatformError:
        pass
    else:  # the adapter retried internally
        assert info.followers >= 0


async def test_unavailable_publish_is_transient_and_never_posts_twice(harness: Harness) -> None:
    text = a_text()
    harness.fail_next("unavailable")
    with pytest.raises(TransientPlatformError):
        await harness.platform.publish(text, idempotency_key=uuid.uuid4().hex)
    assert harness.stored_texts().count(text) <= 1


# The sandbox is in-process: it has no wire format to garble, so it is not a case here.
@pytest.mark.parametrize("wire_harness", [n for n in HARNESSES if n != "sandbox"])
async def test_malformed_answers_are_platform_errors(wire_harness: str) -> None:
    async with HARNESSES[wire_harness]() as harness:
        assert harness.supports("malformed")
        await _malformed_answers_are_platform_errors(harness)


async def _malformed_answers_are_platform_errors(harness: Harness) -> None:
    harness.fail_next("malformed")
    with pytest.raises(PlatformError):  # typically AmbiguousPublish: the post may exist
        await harness.platform.publish(a_text(), idempotency_key=uuid.uuid4().hex)
    harness.fail_next("malformed")
    try:
        info = await harness.platform.fetch_account()
    except PlatformError:
        pass
    else:  # the adapter retried internally
        assert info.followers >= 0


# -- exactly once, through the daemon -------------------------------------------------------------


class Daemon:
    """An Agent on one harness's platform, with a real SQLite store and the wall clock."""

    def __init__(self, harness: Harness, store: SqlStore) -> None:
        account: dict[str, Any] = {
            "name": ACCOUNT,
            "platform": harness.platform.name,
            "persona": "A pragmatic indie developer who ships small tools",
            "niche": "indie software",
            "topics": ["shipping side projects", "automated testing"],
        }
        self.clock = SystemClock()
        self.store = store
        self.agent = Agent(
            config=make_config(
                accounts=[account], cadence={"active_hours": ALWAYS, "jitter": "0s"}
            ),
            store=store,
            platforms={ACCOUNT: harness.platform},
            generator=TemplateGenerator(seed=7),
            clock=self.clock,
            seed=7,
        )

    async def rows(self) -> list[Any]:
        async with self.store.engine.connect() as conn:
            return list((await conn.execute(sa.select(content).order_by(content.c.id))).all())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'growthloop.db'}")
    await upgrade(engine)
    s = SqlStore(engine)
    try:
        yield s
    finally:
        await s.close()


async def assert_recorded_once(harness: Harness, daemon: Daemon) -> None:
    (row,) = await daemon.rows()
    assert row.status == PostStatus.POSTED
    assert harness.stored_texts() == [row.text]  # on the platform exactly once
    (found,) = by_hash(await harness.platform.find_recent(since=recently()), row.text)
    assert row.platform_post_id == found.platform_post_id


async def test_a_publish_whose_response_is_lost_is_recorded_exactly_once_after_reconciliation(
    harness: Harness, store: SqlStore
) -> None:
    daemon = Daemon(harness, store)
    await daemon.agent.setup()
    assert await plan_cycle(daemon.agent, daemon.clock.now()) == 1
    (planned,) = await daemon.rows()
    assert planned.status == PostStatus.PLANNED
    harness.fail_next("lose_response")
    with capture_logs() as logs:
        assert await publish_cycle(daemon.agent, daemon.clock.now()) == 1
    assert "post_publish_ambiguous" in {e["event"] for e in logs}  # the answer really was lost
    if (await daemon.rows())[0].status == PostStatus.PUBLISHING:  # reconciliation deferred:
        await reconcile_cycle(daemon.agent, daemon.clock.now())  # what a restart does first
    await assert_recorded_once(harness, daemon)
    # later cycles neither resend it nor change the record
    await publish_cycle(daemon.agent, daemon.clock.now())
    await reconcile_cycle(daemon.agent, daemon.clock.now())
    await assert_recorded_once(harness, daemon)


async def test_a_crash_between_publish_and_record_is_reconciled_once_on_restart(
    harness: Harness, store: SqlStore
) -> None:
    daemon = Daemon(harness, store)
    await daemon.agent.setup()
    await plan_cycle(daemon.agent, daemon.clock.now())
    (planned,) = await daemon.rows()
    assert await store.begin_publish(planned.id, now=daemon.clock.now())
    await harness.platform.publish(planned.text, idempotency_key=planned.idempotency_key)
    # ... the process dies before recording the result; a new one starts on the same store
    restarted = Daemon(harness, store)
    await restarted.agent.setup()
    assert await reconcile_cycle(restarted.agent, restarted.clock.now()) == 1
    await publish_cycle(restarted.agent, restarted.clock.now())
    await assert_recorded_once(harness, restarted)
