"""``growthloop audience`` and ``growthloop audience forget`` as an operator runs them, on a SQLite
database migrated by ``growthloop migrate`` and filled through the store (as an adapter's
audience read would): the tables print, forgetting removes the person's rows and says what it
removed, an unknown handle and an unknown account get one clear line."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.audience import update_scores
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import Conversation, ConversationKind
from agent.store.engine import create_engine
from agent.store.sql import SqlStore
from tests.acceptance.conftest import run_cli, write_config
from tests.conftest import make_config

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


async def fill(db: Path) -> None:
    store = SqlStore(create_engine(f"sqlite+aiosqlite:///{db}"))
    try:
        main = await store.ensure_account(name="main", platform="sandbox", handle=None, now=NOW)
        events = [
            AudienceEvent(
                kind=AudienceKind.FOLLOW,
                user_id="u1",
                handle="@Ann",
                at=NOW - 20 * DAY,
                source_id="f1",
            ),
            AudienceEvent(
                kind=AudienceKind.FOLLOW,
                user_id="u2",
                handle="bob",
                at=NOW - 20 * DAY,
                source_id="f2",
            ),
            AudienceEvent(
                kind=AudienceKind.UNFOLLOW,
                user_id="u2",
                handle="bob",
                at=NOW - 18 * DAY,
                source_id="x2",
            ),
        ]
        events += [
            AudienceEvent(
                kind=AudienceKind.REPOST,
                user_id="u1",
                handle="Ann",
                at=NOW - DAY,
                source_id=f"r{i}",
            )
            for i in range(12)
        ]
        await store.record_audience(main, events, now=NOW)
        await store.record_conversations(
            main,
            [
                Conversation(
                    kind=ConversationKind.MENTION,
                    platform_post_id="m1",
                    parent_post_id=None,
                    author_id="u1",
                    author_handle="Ann",
                    text="@main hello from Ann",
                    at=NOW - DAY,
                )
            ],
            now=NOW,
        )
        await update_scores(store, main, make_config().audience, now=NOW)
    finally:
        await store.close()


def test_audience_tables_and_forget(tmp_path: Path) -> None:
    config = write_config(tmp_path / "growthloop.yaml", store={"sqlite_path": "data/g.db"})
    migrated = run_cli("migrate", "--config", config, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    db = tmp_path / "data" / "g.db"
    asyncio.run(fill(db))

    shown = run_cli("audience", "--config", config, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "main: 2 people seen, 1 following now" in text
    for title in ("Tiers", "Top fans", "Cohort retention", "Churn per week"):
        assert title in text
    # 12 reposts a day ago, 10 points each, halved every 90 days: 119.1, active
    (fan,) = [line for line in text.splitlines() if "Ann" in line]
    assert "119.1" in fan and "active" in fan, fan

    unknown = run_cli("audience", "--config", config, "--account", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "No account named 'nope'" in unknown.stderr

    gone = run_cli("audience", "forget", "@ann", "--config", config, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert "1 member row(s), 13 interaction(s) and 1 conversation(s) removed" in gone.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM audience_members").fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM audience_members WHERE lower(handle) = 'ann'"
        ).fetchone() == (0,)

    again = run_cli("audience", "forget", "ann", "--config", config, cwd=tmp_path)
    assert again.returncode == 0 and "nothing stored names 'ann'" in again.stdout
