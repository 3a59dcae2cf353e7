"""The monthly platform budget (agent/budget.py): reads degrade before posts stop, once alerted,
nothing changes on free platforms, and the spend survives a restart (the store's ledger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console
from structlog.testing import capture_logs

from adapters.base import FREE
from adapters.x import PRICES
from agent.budget import Stage, account_stage, book, posts_left_in_month, stage_for
from agent.config import example_config_text, load_config
from agent.cycles.poll import BUDGET_SKIPPED
from agent.errors import ConfigError
from agent.metrics import refresh
from agent.simulator import run_until
from agent.summary import print_platform_costs
from tests.conftest import T0, make_config
from tests.unit.test_reading import priced_agent

X = PRICES["pay_per_use"]


@pytest.mark.parametrize(
    ("remaining", "stage"),
    [
        (30 * 4 * (0.015 + 4 * 0.001) + 0.01, Stage.FULL),
        (30 * 4 * (0.015 + 3 * 0.001), Stage.NO_PERIODIC_READS),
        (30 * 4 * (0.015 + 1 * 0.001), Stage.FINAL_HORIZON_ONLY),
        (0.015 + 0.001, Stage.NO_POSTS),
    ],
)
def test_reads_degrade_before_posts_stop(remaining: float, stage: Stage) -> None:
    assert stage_for(budget=10.0, spent=10.0 - remaining, posts_left=120, prices=X, horizons=3) == (
        stage
    )


def test_posts_left_count_the_rest_of_the_utc_month() -> None:
    assert posts_left_in_month(4, datetime(2026, 2, 28, 12, tzinfo=UTC)) == pytest.approx(2.0)
    assert posts_left_in_month(4, datetime(2026, 3, 1, tzinfo=UTC)) == pytest.approx(124.0)


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        make_config(budget={"platform_monthly_usd_per_account": 0})


def test_budget_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = example_config_text() + "\nbudget:\n  platform_monthly_usd_per_account: -1\n"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"budget\.platform_monthly_usd_per_account"):
        load_config(path)


async def test_no_budget_or_a_free_platform_is_never_checked() -> None:
    async with priced_agent(FREE, budget={"platform_monthly_usd_per_account": 0.01}) as (agent, _):
        account_id = next(iter(agent.account_ids.values()))
        assert await account_stage(agent, account_id, T0) == Stage.FULL
    async with priced_agent(X) as (agent, _):
        account_id = next(iter(agent.account_ids.values()))
        assert await account_stage(agent, account_id, T0) == Stage.FULL


async def test_a_small_budget_thins_polls_then_stops_posts_and_alerts_each_stage_once() -> None:
    # 4 posts a day at ~$0.019 each: $0.30 lasts a few days of a month that has 30 left
    budget = {"platform_monthly_usd_per_account": 0.30}
    polling = {"paid_horizons": ["1h", "4h", "24h"]}  # every horizon, so some can be skipped
    async with priced_agent(X, budget=budget, polling=polling) as (agent, clock):
        with capture_logs() as logs:
            await run_until(agent, clock, T0 + timedelta(days=8))
        account_id = next(iter(agent.account_ids.values()))
        stages = [e["stage"] for e in logs if e["event"] == "platform_budget_stage"]
        assert stages == ["final_horizon_only", "no_posts"] or stages == [
            "no_periodic_reads",
            "final_horizon_only",
            "no_posts",
        ]
        spent = await agent.store.platform_spend(account_id, at=clock.now())
        assert spent.spend_usd <= 0.30 + X.post + 4 * X.read  # at most the post then queued
        assert spent.posts >= 10
        skipped = [e for e in logs if e["event"] == "snapshot_skipped_budget"]
        assert skipped
        published = [e["content_id"] for e in logs if e["event"] == "post_published"]
        last_stage_at = max(i for i, e in enumerate(logs) if e["event"] == "platform_budget_stage")
        after = [e for e in logs[last_stage_at:] if e["event"] == "post_published"]
        assert len(after) <= 1  # a post already queued may still go out
        assert len(published) == spent.posts
        taken = await agent.store.due_snapshots(clock.now() + timedelta(days=2))
        assert all(s.horizon_hours == 24 for s in taken)  # only the last horizon is still due
        assert BUDGET_SKIPPED.startswith("skipped")


async def test_spend_survives_a_restart_in_the_store() -> None:
    async with priced_agent(X) as (agent, clock):
        await run_until(agent, clock, T0 + timedelta(days=1))
        account_id = next(iter(agent.account_ids.values()))
        agent_spend = agent.platform_for(account_id).spend_usd
        await book(agent, account_id, clock.now())
        month = await agent.store.platform_spend(account_id, at=clock.now())
        assert month.spend_usd == pytest.approx(agent_spend)
        assert month.posts == (await agent.store.counts())["posted"]


async def test_health_and_metrics_show_the_cost_per_post_per_platform() -> None:
    async with priced_agent(X) as (agent, clock):
        await run_until(agent, clock, T0 + timedelta(days=2))  # no budget: booked hourly
        account_id = next(iter(agent.account_ids.values()))
        month = await agent.store.platform_spend(account_id, at=clock.now())
        assert month.cost_per_post_usd is not None
        assert month.spend_usd == pytest.approx(agent.platform_for(account_id).spend_usd, abs=0.01)

        console = Console(record=True, width=200)
        await print_platform_costs(console, agent.store, now=clock.now())
        text = console.export_text()
        assert "Platform cost" in text
        assert f"{month.cost_per_post_usd:.4f}" in text

        await refresh(agent, clock.now())
        name, platform = agent.account(account_id).name, "sandbox"
        gauge = agent.metrics.registry.get_sample_value(
            "growthloop_platform_cost_per_post_usd", {"account": name, "platform": platform}
        )
        assert gauge == pytest.approx(month.cost_per_post_usd)


async def test_free_platform_prints_no_cost_table() -> None:
    async with priced_agent(FREE) as (agent, clock):
        await run_until(agent, clock, T0 + timedelta(hours=6))
        console = Console(record=True, width=200)
        await print_platform_costs(console, agent.store, now=clock.now())
        assert "Platform cost" not in console.export_text()
