"""Insights in the daemon: the health cycle computes them from the stored estimates and series,
once per hour, each updated in place (never duplicated); ``growthloop insights`` lists them and
``growthloop insights ack N`` acknowledges one (an unknown id: a clear error, exit 2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from agent.insights import compute, insights_cycle
from agent.models import NewInsight
from agent.simulator import run_until
from agent.store.insight_rows import insight_key
from agent.store.schema import insights
from tests.acceptance.conftest import cli_env, run_cli
from tests.conftest import T0
from tests.unit.vt_harness import make_harness


async def test_health_cycle_writes_insights_once_per_key_and_the_cli_lists_and_acks(
    tmp_path: Path,
) -> None:
    async with make_harness(tmp_path) as h:
        await run_until(h.agent, h.clock, T0 + timedelta(days=2))
        now = h.clock.now()
        expected = await compute(h.agent, now)
        before = await h.rows(insights)
        # the hour's insights were written by the health cycle; computing again changes nothing
        assert {r.key for r in before if r.resolved_at is None} == {
            insight_key(a, i.kind.value, i.subject) for a, found in expected.items() for i in found
        }
        assert await insights_cycle(h.agent, now) == 0
        assert await h.rows(insights) == before
        assert len({r.key for r in before}) == len(before)
        # an anomaly (as the cycle would write it) to list and acknowledge
        account_id = h.agent.account_ids[h.agent.config.accounts[0].name]
        anomaly = NewInsight(
            key=insight_key(account_id, "publish_failures", "publish"),
            account_id=account_id,
            kind="publish_failures",
            subject="publish",
            severity="critical",
            recommendation=False,
            statement="publish failures rising: 5 of 6 (83%) in the last day",
            value=0.83,
            low=0.5,
            high=0.96,
            probability=0.999,
            unit="share failed",
        )
        found = [*(await h.agent.store.insights(account_id=account_id)), anomaly]
        await h.agent.store.sync_insights(account_id, found, now=now)  # type: ignore[arg-type]
        async with h.store.engine.connect() as conn:
            anomaly_id = await conn.scalar(
                sa.select(insights.c.id).where(insights.c.key == anomaly.key)
            )
    env = cli_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", COLUMNS="200")
    listed = run_cli("insights", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "publish failures rising" in listed.stdout and "critical" in listed.stdout
    acked = run_cli("insights", "ack", str(anomaly_id), cwd=tmp_path, env=env)
    assert acked.returncode == 0, acked.stderr
    everything = run_cli("insights", "--all", cwd=tmp_path, env=env)
    assert "publish failures rising" in everything.stdout and "acknowledged" in everything.stdout
    unknown = run_cli("insights", "ack", "999", cwd=tmp_path, env=env)
    assert unknown.returncode == 2
    assert "no insight with id 999" in unknown.stderr and "Traceback" not in unknown.stderr
    nobody = run_cli("insights", "--account", "nobody", cwd=tmp_path, env=env)
    assert nobody.returncode == 2 and "no account 'nobody'" in nobody.stderr
