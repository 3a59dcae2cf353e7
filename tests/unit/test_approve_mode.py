"""Approve mode in virtual time: drafts wait for a person, then go out (or never do).

The cycles run on a real SQLite store and the in-memory sandbox, as in ``test_cycles.py``; the
last tests drive ``growthloop drafts`` as a user would, in a subprocess.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs
from typer.testing import CliRunner

from adapters.base import text_hash
from agent import drafts
from agent.cli import app
from agent.models import NewContent, PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.acceptance.conftest import cli_env, run_cli, write_config
from tests.conftest import T0, example_raw
from tests.unit.vt_harness import Harness, make_harness

SECOND_ACCOUNT = {
    **example_raw()["accounts"][0],
    "name": "demo2",
    "handle": "@growthloop_demo2",
}
EDITED = "Edited by a person: ship the smallest useful version first, then listen to the users."


@pytest.fixture
async def harness(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, mode="approve", **getattr(request, "param", {})) as h:
        yield h


TWO_ACCOUNTS = {"accounts": [example_raw()["accounts"][0], SECOND_ACCOUNT]}


async def test_nothing_is_published_over_a_day_while_drafts_wait(harness: Harness) -> None:
    with capture_logs() as logs:
        await run_until(harness.agent, harness.clock, T0 + timedelta(hours=23))
    posts = await harness.posts()
    assert [p.status for p in posts] == [PostStatus.DRAFT]  # one draft, and planning waits on it
    assert harness.world_texts() == []
    events = {entry["event"] for entry in logs}
    assert "draft_written" in events
    assert not events & {"post_planned", "post_published"}


@pytest.mark.parametrize("harness", [TWO_ACCOUNTS], indirect=True)
async def test_approving_a_draft_publishes_it_and_only_it(harness: Harness) -> None:
    await harness.run_cycles("plan")
    first, second = await harness.store.drafts()
    assert first.account_id != second.account_id

    approved = await drafts.approve(harness.store, first.id, now=harness.clock.now())
    assert approved.status is PostStatus.PLANNED
    assert approved.scheduled_for == max(harness.clock.now(), first.scheduled_for)
    await harness.publish_when_due(approved)
    harness.clock.advance_to(harness.clock.now() + timedelta(hours=6))
    await harness.run_cycles("publish")

    assert harness.world_texts() == [first.text]
    assert [p.id for p in await harness.with_status(PostStatus.POSTED)] == [first.id]
    assert [p.id for p in await harness.store.drafts()] == [second.id]


async def test_rejecting_a_draft_lets_the_next_one_be_planned(harness: Harness) -> None:
    await harness.run_cycles("plan")
    (first,) = await harness.store.drafts()
    await harness.run_cycles("plan")
    assert [p.id for p in await harness.store.drafts()] == [first.id]  # waits on the first

    rejected = await drafts.reject(harness.store, first.id, reason="off topic", now=T0)
    assert (rejected.status, rejected.error) == (PostStatus.REJECTED, "off topic")
    await harness.run_cycles("plan")
    (second,) = await harness.store.drafts()
    assert second.id != first.id
    assert harness.world_texts() == []


async def test_an_edited_draft_is_published_with_the_edited_text(harness: Harness) -> None:
    await harness.run_cycles("plan")
    (draft,) = await harness.store.drafts()
    config = harness.agent.config
    edited = await drafts.edit(harness.store, config, draft.id, text=EDITED, now=T0)
    assert (edited.status, edited.text, edited.text_hash) == (
        PostStatus.DRAFT,
        EDITED,
        text_hash(EDITED),
    )
    approved = await drafts.approve(harness.store, draft.id, now=T0)
    await harness.publish_when_due(approved)
    assert harness.world_texts() == [EDITED]
    (posted,) = await harness.with_status(PostStatus.POSTED)
    assert posted.text == EDITED


async def test_an_edit_the_gate_refuses_keeps_the_draft_as_it_was(harness: Harness) -> None:
    await harness.run_cycles("plan")
    (draft,) = await harness.store.drafts()
    config = harness.agent.config
    with pytest.raises(drafts.DraftRefused, match="too long"):
        await drafts.edit(harness.store, config, draft.id, text="x" * 1000, now=T0)
    with pytest.raises(drafts.DraftRefused, match="empty"):
        await drafts.edit(harness.store, config, draft.id, text="   ", now=T0)
    assert (await drafts.get_draft(harness.store, draft.id)).text == draft.text


async def test_unknown_or_non_draft_ids_are_refused(harness: Harness) -> None:
    await harness.run_cycles("plan")
    (draft,) = await harness.store.drafts()
    await drafts.approve(harness.store, draft.id, now=T0)
    for content_id in (draft.id, 9999):
        with pytest.raises(drafts.UnknownDraft):
            await drafts.approve(harness.store, content_id, now=T0)
        with pytest.raises(drafts.UnknownDraft):
            await drafts.reject(harness.store, content_id, now=T0)
        with pytest.raises(drafts.UnknownDraft):
            await drafts.edit(harness.store, harness.agent.config, content_id, text=EDITED, now=T0)


async def test_an_unapproved_draft_expires_and_is_never_published(harness: Harness) -> None:
    expiry = harness.agent.config.approval.draft_expiry
    await harness.run_cycles("plan")
    (draft,) = await harness.store.drafts()
    harness.clock.advance_to(T0 + expiry - timedelta(minutes=1))
    await harness.run_cycles("plan", "publish")
    assert [p.id for p in await harness.store.drafts()] == [draft.id]  # not yet

    harness.clock.advance_to(T0 + expiry + timedelta(minutes=1))
    with capture_logs() as logs:
        await harness.run_cycles("plan", "publish")
    assert {"event": "draft_expired", "count": 1, "log_level": "info"} in logs
    expired = await harness.store.get_post(draft.id)
    assert expired is not None
    assert (expired.status, expired.error) == (PostStatus.REJECTED, "expired unapproved")
    with pytest.raises(drafts.UnknownDraft):
        await drafts.approve(harness.store, draft.id, now=harness.clock.now())
    (fresh,) = await harness.store.drafts()  # planning resumed with a new draft
    assert fresh.id != draft.id

    await run_until(harness.agent, harness.clock, harness.clock.now() + timedelta(days=2))
    assert draft.text not in harness.world_texts()
    assert harness.world_texts() == []


# -- the command line -----------------------------------------------------------------------


async def _seed_drafts(db: Path, texts: list[str]) -> list[int]:
    db.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        account_id = await store.ensure_account(
            name="demo", platform="sandbox", handle="@growthloop_demo", now=T0
        )
        ids = []
        for text in texts:
            post = await store.add_content(
                NewContent(
                    account_id=account_id,
                    status=PostStatus.DRAFT,
                    text=text,
                    text_hash=text_hash(text),
                    generation_metadata={"content_type": "tip", "formula": "list", "hook": "x"},
                    scheduled_for=T0,
                    idempotency_key=uuid.uuid4().hex,
                ),
                now=T0,
            )
            ids.append(post.id)
        return ids
    finally:
        await store.close()


async def _status(db: Path, content_id: int) -> tuple[str, str | None]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(content.c.status, content.c.error).where(content.c.id == content_id)
                )
            ).one()
            return str(row.status), row.error
    finally:
        await engine.dispose()


async def test_drafts_cli_lists_approves_rejects_and_refuses_unknown_ids(tmp_path: Path) -> None:
    db = tmp_path / "data" / "growthloop.db"
    first, second = await _seed_drafts(
        db,
        [
            "Ship the smallest useful version first; everything else is a guess.",
            "Tests that need the network are tests of the network.",
        ],
    )
    cfg = write_config(tmp_path / "g.yaml", mode="approve", store={"sqlite_path": str(db)})

    runner = CliRunner()
    env = cli_env()

    async def cli(*args: str | Path) -> Any:
        """The command in this process (Typer's runner, on a thread: it runs its own loop)."""
        return await asyncio.to_thread(runner.invoke, app, [str(a) for a in args], env=env)

    listed = await cli("drafts", "list", "--config", cfg)
    assert listed.exit_code == 0, listed.output
    assert "Drafts waiting for approval (2)" in listed.stdout
    assert "demo" in listed.stdout and "Ship the smallest" in listed.stdout

    shown = await cli("drafts", "show", str(second), "--config", cfg)
    assert shown.exit_code == 0, shown.stderr
    assert "Tests that need the network are tests of the network." in shown.stdout

    approved = await cli("drafts", "approve", str(first), "--config", cfg)
    assert approved.exit_code == 0, approved.stderr
    assert f"approved draft {first}" in approved.stdout
    assert await _status(db, first) == ("planned", None)

    refused = await cli("drafts", "edit", str(second), "--text", " ", "--config", cfg)
    assert refused.exit_code == 2
    assert "quality gate refused" in refused.stderr and "empty text" in refused.stderr

    rejected = await cli("drafts", "reject", str(second), "--reason", "off topic", "--config", cfg)
    assert rejected.exit_code == 0, rejected.stderr
    assert await _status(db, second) == ("rejected", "off topic")

    for content_id in (first, 999):  # no longer a draft; never existed
        unknown = await cli("drafts", "approve", str(content_id), "--config", cfg)
        assert unknown.exit_code == 2
        assert "Traceback" not in unknown.stderr
        assert str(content_id) in unknown.stderr
    assert "no drafts waiting" in (await cli("drafts", "list", "--config", cfg)).stdout
    # the installed command refuses the same way: exit 2, no traceback
    real = run_cli("drafts", "approve", "999", "--config", cfg, cwd=tmp_path)
    assert real.returncode == 2 and "999" in real.stderr and "Traceback" not in real.stderr
