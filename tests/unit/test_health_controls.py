"""`growthloop health` shows the kill switch and the LLM budget state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.console import Console

from adapters.base import text_hash
from agent.models import NewContent, PostStatus
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from agent.summary import print_controls
from tests.conftest import T0, make_config


async def test_health_shows_pause_and_budget_reached(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    try:
        account = await store.ensure_account(name="demo", platform="sandbox", handle=None, now=T0)
        for i, cost in enumerate((0.40, 0.70)):
            await store.add_content(
                NewContent(
                    account_id=account,
                    status=PostStatus.PLANNED if i else PostStatus.FAILED,
                    text=f"post {i}",
                    text_hash=text_hash(f"post {i}"),
                    generation_metadata={"cost_usd": cost},
                    scheduled_for=T0,
                    idempotency_key=f"k{i}",
                ),
                now=T0 + timedelta(minutes=i),
            )
        await store.set_paused(True, reason="maintenance", by="test", now=T0)
        config = make_config(generator={"kind": "openai"}, budget={"llm_daily_usd_per_account": 1})
        console = Console(record=True, width=120)
        await print_controls(console, store, config, now=T0 + timedelta(hours=1))
        text = console.export_text()
        assert "paused (maintenance)" in text
        assert "1.1000" in text  # today's spend, both drafts
        assert "paused (budget)" in text
    finally:
        await store.close()
