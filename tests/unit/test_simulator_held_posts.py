"""The simulator's clock with a queued post it may not publish (suspended account, paused)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from agent.models import PostStatus
from agent.simulator import run_until
from tests.integration.contract.factories import suspend
from tests.unit.vt_harness import make_harness


async def test_held_post_of_a_suspended_account_does_not_step_the_clock_by_seconds(
    tmp_path: Path,
) -> None:
    """Regression: a due post of a suspended account woke the simulator every MIN_STEP (one
    simulated second), 86,400 steps a day, until the suspension ended."""
    async with make_harness(tmp_path) as h:
        agent = h.agent
        await agent.setup()
        await h.run_cycles("plan")
        (queued,) = await h.with_status(PostStatus.PLANNED)
        now = h.clock.now()
        assert await suspend(
            agent.store,
            queued.account_id,
            reason="failures",
            error_kind="PlatformUnavailable",
            now=now,
            until=now + timedelta(hours=6),
        )
        result = await run_until(agent, h.clock, now + timedelta(hours=12))
        # held for 6 hours, then published at the next event (the hour) and planning resumed
        assert result.steps < 200
        posted = await h.with_status(PostStatus.POSTED)
        assert queued.id in {p.id for p in posted}
        first = next(p for p in posted if p.id == queued.id)
        assert first.posted_at >= now + timedelta(hours=6)
