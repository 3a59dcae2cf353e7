"""Threads end to end in virtual time (docs/threads.md): the learner chooses the format, the
generators write threads within the limit, the sandbox gets reply chains, the poll sums the parts.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.base import text_hash
from agent.cycles.publish import reconcile_cycle
from agent.generators.llm import OpenAIGenerator
from agent.generators.template import TemplateGenerator
from agent.models import (
    THREAD,
    ArmChoice,
    GenerationRequest,
    NewContent,
    PartStatus,
    PostStatus,
    joined,
)
from agent.simulator import run_until
from agent.store.schema import performance_snapshots
from tests.conftest import T0
from tests.unit.openai_server import OpenAIServer
from tests.unit.vt_harness import Harness, make_harness

THREADS_ON = {"threads": {"enabled": True, "max_parts": 4}}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, **THREADS_ON) as h:
        yield h


def thread_request(max_chars: int = 280, max_parts: int = 4) -> GenerationRequest:
    arms = ArmChoice(
        content_type="how_to",
        formula="listicle",
        hook="bold_claim",
        topic="automated testing",
        format=THREAD,
    )
    return GenerationRequest(
        arms=arms,
        persona="An indie developer",
        niche="indie software",
        max_chars=max_chars,
        max_parts=max_parts,
    )


async def test_the_template_generator_writes_threads_within_the_limit_per_part() -> None:
    generator = TemplateGenerator(seed=5)
    for max_parts in (2, 3, 4):
        draft = await generator.write(thread_request(max_chars=200, max_parts=max_parts))
        assert 2 <= len(draft.parts) <= max_parts
        assert all(len(part) <= 200 for part in draft.parts)
        assert draft.text == joined(draft.parts)
        assert draft.parts[-1].endswith(f"({len(draft.parts)}/{len(draft.parts)})")


async def test_the_openai_generator_asks_for_a_thread_and_checks_every_part() -> None:
    server = OpenAIServer(thread_parts=3)
    base_url = await server.start()
    try:
        generator = OpenAIGenerator(
            api_key="k", model="gpt-4o-mini", temperature=0.5, base_url=base_url
        )
        draft = await generator.write(thread_request())
        assert len(draft.parts) == 3 and draft.text == joined(draft.parts)
        assert server.requests[0]["response_format"]["json_schema"]["name"] == "thread"
        assert "Write a thread" in server.requests[0]["messages"][1]["content"]
        server.queue("too_long")  # one part over the limit: retried, told why
        draft = await generator.write(thread_request())
        assert len(draft.parts) == 3
        assert "part 3 had 5000 characters" in server.requests[-1]["messages"][-1]["content"]
    finally:
        await server.close()


async def test_the_learner_tries_threads_and_each_is_one_reply_chain_measured_in_full(
    harness: Harness,
) -> None:
    with capture_logs() as logs:
        await run_until(harness.agent, harness.clock, T0 + timedelta(days=3))
    posted = await harness.with_status(PostStatus.POSTED)
    formats = [p.generation_metadata["format"] for p in posted]
    assert "thread" in formats and "single" in formats  # tried, not forced
    threads = [p for p in posted if p.generation_metadata["format"] == THREAD]
    world = harness.world.platform("demo", now=harness.clock.now)
    snaps = await harness.rows(performance_snapshots)
    for post in threads:
        texts = post.generation_metadata["parts"]
        assert post.text == joined(texts)
        parts = await harness.store.thread_parts(post.id)
        assert [p.status for p in parts] == [PartStatus.POSTED] * len(texts)
        assert [p.text_hash for p in parts] == [text_hash(t) for t in texts]
        assert post.platform_post_id == parts[0].platform_post_id
        assert world.replies_to(str(parts[0].platform_post_id)) is None
        for parent, part in itertools.pairwise(parts):
            assert world.replies_to(str(part.platform_post_id)) == parent.platform_post_id
        taken = [s for s in snaps if s.content_id == post.id and s.taken_at is not None]
        for snap in taken:  # the snapshot is the sum over the parts, the first part's kept too
            readings = await harness.store.part_readings(snap.id)
            assert [r["position"] for r in readings] == list(range(len(texts)))
            assert snap.impressions == sum(r["impressions"] for r in readings)
            assert snap.likes == sum(r["likes"] for r in readings)
    # every part on the platform exactly once: the world holds one post per part
    assert len(harness.world_posts()) == sum(
        len(p.generation_metadata["parts"]) if p in threads else 1 for p in posted
    )
    assert any(e["event"] == "thread_part_published" for e in logs)
    stats = await harness.store.arm_stats(harness.agent.account_ids["demo"])
    assert {s.arm for s in stats if s.dimension == "format"} <= {"single", "thread"}


async def test_threads_off_plans_single_posts_without_a_format(tmp_path: Path) -> None:
    async with make_harness(tmp_path) as harness:
        await run_until(harness.agent, harness.clock, T0 + timedelta(days=1))
        posts = await harness.posts()
        assert posts
        assert all("format" not in p.generation_metadata for p in posts)


async def test_a_part_over_the_limit_is_refused_by_the_gate_before_anything_is_sent(
    harness: Harness,
) -> None:
    from agent.cycles.plan_steps import Verdict, Written, check

    written = Written(
        when=T0,
        arms=thread_request().arms,
        text=joined(["short", "x" * 300]),
        parts=("short", "x" * 300),
        metadata={},
        recent=(),
    )
    verdict: Verdict = await check(
        written,
        gate_config=harness.agent.config.gate,
        max_chars=280,
        length=len,
        moderate=None,
        mode=harness.agent.config.mode,
    )
    assert verdict.status is PostStatus.REJECTED
    assert verdict.reason == "too long: part 2 has 300 characters, the platform allows 280"


async def test_restart_mid_thread_resumes_from_the_first_part_not_on_the_platform(
    harness: Harness,
) -> None:
    """A crash after part 2 (its record written, the process gone before part 3): the restart
    reconciles, and the chain is completed with parts 3 and 4, each sent once."""
    agent, store = harness.agent, harness.store
    await agent.setup()
    now = harness.clock.now()
    texts = [f"Part {i} of a thread {uuid.uuid4().hex[:6]}: keep it small." for i in range(4)]
    post = await store.add_content(
        NewContent(
            account_id=agent.account_ids["demo"],
            status=PostStatus.PLANNED,
            text=joined(texts),
            text_hash=text_hash(joined(texts)),
            generation_metadata={"content_type": "how_to", "format": THREAD, "parts": texts},
            scheduled_for=now,
            idempotency_key=uuid.uuid4().hex,
        ),
        now=now,
    )
    platform = agent.platforms["demo"]
    assert await store.begin_publish(post.id, now=now)
    first = await platform.publish(texts[0], idempotency_key=f"{post.idempotency_key}:0")
    assert await store.begin_part(
        post.id, 0, text_hash=text_hash(texts[0]), idempotency_key="k0", reply_to=None, now=now
    )
    assert await store.finish_part(
        post.id, 0, platform_post_id=first.platform_post_id, posted_at=now, now=now
    )
    # part 2: intent written, sent, then the process died before recording it
    assert await store.begin_part(
        post.id, 1, text_hash=text_hash(texts[1]), idempotency_key="k1", reply_to="x", now=now
    )
    from adapters.base import ReplyTo

    await platform.publish_reply(
        texts[1],
        reply_to=ReplyTo(root_id=first.platform_post_id, parent_id=first.platform_post_id),
        idempotency_key=f"{post.idempotency_key}:1",
    )
    harness.clock.advance_to(now + timedelta(minutes=5))  # past the lease: interrupted
    assert await reconcile_cycle(agent, harness.clock.now()) == 1
    parts = await store.thread_parts(post.id)
    assert [p.status for p in parts] == [PartStatus.POSTED, PartStatus.POSTED]
    await harness.run_cycles("publish")
    assert harness.world_texts() == texts  # four parts, in order, each once
    done = await store.get_post(post.id)
    assert done is not None and done.status is PostStatus.POSTED
    assert [p.status for p in await store.thread_parts(post.id)] == [PartStatus.POSTED] * 4


async def test_posts_show_says_a_thread_and_its_parts() -> None:
    from rich.console import Console

    from agent import posts
    from agent.store.memory import MemoryStore

    store = MemoryStore()
    account_id = await store.ensure_account(name="demo", platform="sandbox", handle=None, now=T0)
    texts = ["First part.", "Second part.", "Third part."]
    post = await store.add_content(
        NewContent(
            account_id=account_id,
            status=PostStatus.PLANNED,
            text=joined(texts),
            text_hash=text_hash(joined(texts)),
            generation_metadata={"format": THREAD, "parts": texts},
            scheduled_for=T0,
            idempotency_key=uuid.uuid4().hex,
        ),
        now=T0,
    )
    console = Console(record=True, width=100)
    posts.print_post(console, post, "demo")
    shown = console.export_text()
    assert "thread of 3 parts" in shown
    assert "First part.\n\nSecond part." in shown


async def test_template_threads_do_not_run_out_when_one_formula_is_exploited() -> None:
    """Regression: a short generic paragraph ("Then something clicked.") was a part of its own,
    repeated a recent part after a few threads, and every later story_lesson thread failed."""
    generator = TemplateGenerator(seed=11)
    arms = ArmChoice(
        content_type="data_point",
        formula="story_lesson",
        hook="surprising_stat",
        topic="remote deep work",
        format=THREAD,
    )
    recent: list[str] = []
    for _ in range(120):
        draft = await generator.write(
            GenerationRequest(
                arms=arms,
                persona="An indie developer",
                niche="indie software",
                max_chars=280,
                recent_texts=tuple(recent[:50]),
            )
        )
        assert all(len(part) >= 60 for part in draft.parts)
        recent.insert(0, draft.text)


async def test_template_thread_parts_never_repeat_a_part_of_a_recent_thread() -> None:
    """Regression: recent threads were split on blank lines to find their parts, but a first
    part holds a blank line itself (hook, then paragraph), so a first part was written again and
    the platform refused it as a duplicate."""
    generator = TemplateGenerator(seed=5)
    arms = ArmChoice(
        content_type="case_study",
        formula="hot_take_with_proof",
        hook="contrarian_opening",
        topic="writing documentation",
        format=THREAD,
    )
    recent: list[str] = []
    for _ in range(80):
        draft = await generator.write(
            GenerationRequest(
                arms=arms,
                persona="An indie developer",
                niche="indie software",
                max_chars=280,
                recent_texts=tuple(recent[:30]),
            )
        )
        assert not [p for p in draft.parts for earlier in recent[:30] if p in earlier]
        recent.insert(0, draft.text)
