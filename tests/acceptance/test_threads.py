"""``growthloop run`` SIGKILLed in the middle of a thread (docs/threads.md).

A thread of four parts is queued in the store (as the planner stores one); the sandbox holds each
publish open after committing it (``platform.publish_delay_after_s``), so the daemon can be killed
right after part 2 reached the platform and before it was recorded. The restarted daemon
reconciles (finds part 2), resumes from part 3, and the chain ends with exactly four parts, in
order, each recorded once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import text_hash
from agent.models import NewContent, PostStatus, joined
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from tests.acceptance.conftest import (
    STORE,
    WORLD,
    Daemon,
    example_config,
    free_port,
    must_query,
    query,
    realtime_overrides,
    write_config,
    write_scenario,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Daemon]
TIMEOUT = 45  # s: bounded waits, generous for a loaded 2-core machine
PARTS = 4


async def queue_thread(cwd: Path, texts: list[str]) -> int:
    """Migrate the store the daemon will use and queue a thread for now; its content id."""
    (cwd / STORE).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{cwd / STORE}")
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        demo = example_config()["accounts"][0]
        now = datetime.now(UTC)
        account_id = await store.ensure_account(
            name=demo["name"], platform=demo["platform"], handle=demo.get("handle"), now=now
        )
        post = await store.add_content(
            NewContent(
                account_id=account_id,
                status=PostStatus.PLANNED,
                text=joined(texts),
                text_hash=text_hash(joined(texts)),
                generation_metadata={
                    "content_type": "how_to",
                    "formula": "listicle",
                    "hook": "bold_claim",
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
    finally:
        await store.close()


def world(cwd: Path) -> list[dict[str, Any]]:
    sql = "SELECT id, text, labels FROM posts ORDER BY idx"
    return query(cwd / WORLD, sql) or []


def parts(cwd: Path, content_id: int) -> list[dict[str, Any]]:
    sql = (
        "SELECT position, status, platform_post_id, text_hash FROM thread_parts"
        " WHERE content_id = ? ORDER BY position"
    )
    return query(cwd / STORE, sql, (content_id,)) or []


def test_sigkill_after_part_two_resumes_the_thread_each_part_once(
    tmp_path: Path, daemons: Start
) -> None:
    tag = uuid.uuid4().hex[:6]
    texts = [f"Thread {tag} part {i + 1}: one small step, measured." for i in range(PARTS)]
    content_id = asyncio.run(queue_thread(tmp_path, texts))
    scenario = write_scenario(tmp_path / "scenario.yaml", platform={"publish_delay_after_s": 2.0})
    overrides = realtime_overrides(scenario, free_port())
    overrides["threads"] = {"enabled": True}
    config = write_config(tmp_path / "growthloop.yaml", **overrides)

    first = daemons(config, label="killed")
    first.wait_started()
    first.wait(
        lambda: [p["text"] for p in world(tmp_path)] == texts[:2],
        timeout=TIMEOUT,
        what="parts 1 and 2 on the platform",
    )
    first.kill()  # part 2 is committed on the platform; its publish has not returned
    recorded = parts(tmp_path, content_id)
    assert [(p["position"], p["status"]) for p in recorded] == [(0, "posted"), (1, "publishing")]

    second = daemons(config, label="restarted")
    assert second.wait_started()["reconciled"] == 1

    def done() -> bool:
        rows = must_query(
            tmp_path / STORE, "SELECT status FROM content WHERE id = ?", (content_id,)
        )
        return rows[0]["status"] == "posted"

    second.wait(done, timeout=TIMEOUT, what="the thread to be posted")
    on_platform = world(tmp_path)
    assert [p["text"] for p in on_platform] == texts  # exactly four parts, in order
    recorded = parts(tmp_path, content_id)
    assert [p["status"] for p in recorded] == ["posted"] * PARTS  # each recorded once
    assert [p["platform_post_id"] for p in recorded] == [p["id"] for p in on_platform]
    assert [p["text_hash"] for p in recorded] == [text_hash(t) for t in texts]
    parents = [json.loads(p["labels"]).get("reply_to") for p in on_platform]
    assert parents == [None, *[p["id"] for p in on_platform[:-1]]]  # one reply chain
    outcomes = [(e["content_id"], e["outcome"]) for e in second.events("thread_reconciled")]
    assert outcomes[0] == (content_id, "requeued")
    assert second.terminate() == 0
