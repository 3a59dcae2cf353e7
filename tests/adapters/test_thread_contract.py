"""Threads on every platform (docs/threads.md): a reply chain, each part recorded exactly once.

Each test runs against every harness of :data:`tests.adapters.harnesses.HARNESSES` (the sandbox
and each real adapter against its local test server); the lost-response test against the wire
platforms only (the sandbox's crash test is the SIGKILL one in tests/acceptance/test_threads.py).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.base import ReplyTo, text_hash
from agent.cycles.publish import publish_cycle
from agent.models import NewContent, PartStatus, PostStatus, joined
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.adapters.harness import Harness
from tests.adapters.harnesses import HARNESSES
from tests.adapters.test_contract import Daemon, by_hash, recently

PARTS = 4


@pytest.fixture(params=list(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param]() as h:
        yield h


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'growthloop.db'}")
    await upgrade(engine)
    s = SqlStore(engine)
    try:
        yield s
    finally:
        await s.close()


def thread_texts() -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"Thread {tag}, part {i + 1}/{PARTS}: ship small, measure, repeat." for i in range(4)]


async def test_a_thread_of_four_parts_posts_as_one_reply_chain(harness: Harness) -> None:
    platform = harness.platform
    texts = thread_texts()
    root = await platform.publish(texts[0], idempotency_key=uuid.uuid4().hex)
    chain = [root]
    for text in texts[1:]:
        reply_to = ReplyTo(root_id=root.platform_post_id, parent_id=chain[-1].platform_post_id)
        chain.append(
            await platform.publish_reply(text, reply_to=reply_to, idempotency_key=uuid.uuid4().hex)
        )
    assert harness.stored_texts() == texts
    assert harness.parent_of(root.platform_post_id) is None
    for parent, part in itertools.pairwise(chain):
        assert harness.parent_of(part.platform_post_id) == parent.platform_post_id
    recent = await platform.find_recent(since=recently())
    for text, part in zip(texts, chain, strict=True):  # reconciliation sees every part
        (found,) = by_hash(recent, text)
        assert found.platform_post_id == part.platform_post_id


async def queue_thread(daemon: Daemon, texts: list[str]) -> int:
    """A thread planned for now (as the planner stores one), its content id."""
    await daemon.agent.setup()
    now = daemon.clock.now()
    account_id = daemon.agent.account_ids["contract"]
    text = joined(texts)
    post = await daemon.store.add_content(
        NewContent(
            account_id=account_id,
            status=PostStatus.PLANNED,
            text=text,
            text_hash=text_hash(text),
            generation_metadata={
                "content_type": "how_to",
                "formula": "listicle",
                "hook": "question",
                "topic": "shipping side projects",
                "format": "thread",
                "parts": texts,
            },
            scheduled_for=now,
            idempotency_key=uuid.uuid4().hex,
        ),
        now=now,
    )
    return post.id


async def assert_one_chain_recorded_once(
    harness: Harness, daemon: Daemon, content_id: int, texts: list[str]
) -> None:
    assert harness.stored_texts() == texts  # exactly four parts on the platform, in order
    parts = await daemon.store.thread_parts(content_id)
    assert [p.position for p in parts] == list(range(PARTS))  # each recorded once
    assert all(p.status is PartStatus.POSTED for p in parts)
    assert [p.text_hash for p in parts] == [text_hash(t) for t in texts]
    ids = [p.platform_post_id for p in parts]
    assert len(set(ids)) == PARTS
    assert harness.parent_of(str(ids[0])) is None
    for parent, part in itertools.pairwise(ids):
        assert harness.parent_of(str(part)) == parent
    async with daemon.store.engine.connect() as conn:
        row = (await conn.execute(sa.select(content).where(content.c.id == content_id))).one()
    assert row.status == PostStatus.POSTED
    assert row.platform_post_id == ids[0]  # the thread is known by its first part


async def test_a_thread_is_published_by_the_daemon_as_one_chain(
    harness: Harness, store: SqlStore
) -> None:
    daemon = Daemon(harness, store)
    texts = thread_texts()
    content_id = await queue_thread(daemon, texts)
    assert await publish_cycle(daemon.agent, daemon.clock.now()) == 1
    await assert_one_chain_recorded_once(harness, daemon, content_id, texts)
    await publish_cycle(daemon.agent, daemon.clock.now())  # nothing is sent again
    await assert_one_chain_recorded_once(harness, daemon, content_id, texts)


@pytest.mark.parametrize("wire", [n for n in HARNESSES if n != "sandbox"])
async def test_a_lost_response_on_part_two_resumes_the_chain_each_part_once(
    wire: str, store: SqlStore
) -> None:
    async with HARNESSES[wire]() as harness:
        daemon = Daemon(harness, store)
        texts = thread_texts()
        content_id = await queue_thread(daemon, texts)
        harness.lose_response_after(1)  # part 1 goes through; part 2 is stored, its answer lost
        with capture_logs() as logs:
            await publish_cycle(daemon.agent, daemon.clock.now())
        events = [e["event"] for e in logs]
        assert "thread_part_ambiguous" in events
        assert harness.stored_texts() == texts[:2]  # the chain stopped at the lost answer
        (reconciled,) = [e for e in logs if e["event"] == "thread_reconciled"]
        assert (reconciled["outcome"], reconciled["posted_parts"]) == ("requeued", 2)
        # the next cycle resumes from part 3 (found part 2 is never sent again)
        await publish_cycle(daemon.agent, daemon.clock.now())
        await assert_one_chain_recorded_once(harness, daemon, content_id, texts)


async def test_a_rate_limit_on_part_two_waits_for_the_reset_and_resumes_the_chain(
    store: SqlStore,
) -> None:
    async with HARNESSES["x"]() as harness:
        daemon = Daemon(harness, store)
        texts = thread_texts()
        content_id = await queue_thread(daemon, texts)
        server = harness.server  # type: ignore[attr-defined]
        server.fail("POST /2/tweets", "none")
        server.fail("POST /2/tweets", "rate_limit")  # part 2: 429, reset in 15 minutes
        with capture_logs() as logs:
            await publish_cycle(daemon.agent, daemon.clock.now())
        assert "thread_rescheduled" in [e["event"] for e in logs]
        assert harness.stored_texts() == texts[:1]
        parts = await store.thread_parts(content_id)
        assert [p.status for p in parts] == [PartStatus.POSTED, PartStatus.PLANNED]
        waiting = await store.get_post(content_id)
        assert waiting is not None and waiting.status is PostStatus.PLANNED
        assert waiting.publish_attempts == 0  # a "not now" is no failed attempt
        await publish_cycle(daemon.agent, daemon.clock.now())  # before the reset: nothing
        assert harness.stored_texts() == texts[:1]
        await publish_cycle(daemon.agent, waiting.scheduled_for)  # after it: parts 2 to 4
        await assert_one_chain_recorded_once(harness, daemon, content_id, texts)
