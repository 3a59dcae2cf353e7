"""Insights in the daemon: the health cycle computes them from the stored estimates and series,
each account's once a day and after a troubled hour, each updated in place (never duplicated);
``growthloop insights`` lists them and ``growthloop insights ack N`` acknowledges one (an unknown
id: a clear error, exit 2)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agent.insights import compute, due_accounts, due_hour, insights_cycle, troubled
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
        # the health cycle wrote each account's at its daily hour; now everything, as the CLI
        # would, and computing again changes nothing
        await insights_cycle(h.agent, now)
        expected = await compute(h.agent, now)
        before = await h.rows(insights)
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


async def test_the_health_cycle_computes_each_accounts_insights_once_a_day_and_after_trouble(
    tmp_path: Path,
) -> None:
    """Regression: every account's insights every hour (61 days of posts and health rows read
    per account) cost ~15 ms of CPU per account an hour, 4 % of a core at 10,000 accounts."""
    accounts = [
        {
            "name": f"a{i}",
            "platform": "sandbox",
            "handle": f"@a{i}",
            "persona": "A pragmatic developer",
            "niche": "indie software",
            "topics": ["t1", "t2"],
        }
        for i in range(5)
    ]
    async with make_harness(tmp_path, accounts=accounts) as h:
        ids = set(h.agent.account_ids.values())
        hours = {a: due_hour(a) for a in ids}
        assert len(set(hours.values())) > 1  # spread over the day
        computed: Counter[int] = Counter()
        synced = h.agent.store.sync_insights

        async def counting(account_id: int | None, found: Any, *, now: Any) -> int:
            if account_id is not None:
                computed[account_id] += 1
            return await synced(account_id, found, now=now)

        h.agent.store.sync_insights = counting  # type: ignore[method-assign]
        await run_until(h.agent, h.clock, T0 + timedelta(days=1))
        assert set(computed) == ids and computed.total() <= 2 * len(ids)
        quiet = {
            "posts_failed": 0,
            "api_errors": 0,
            "polls_late": 0,
            "polls_due": 1,
            "polls_done": 1,
        }
        assert not troubled(quiet)
        assert troubled({**quiet, "posts_failed": 1}) and troubled({**quiet, "polls_done": 0})
        some = next(iter(ids))
        noon = T0.replace(hour=(hours[some] + 1) % 24)
        assert due_accounts(h.agent, noon, [{**quiet, "account_id": some}]) == {
            a for a in ids if hours[a] == noon.hour
        }
        assert some in due_accounts(h.agent, noon, [{**quiet, "account_id": some, "api_errors": 2}])
