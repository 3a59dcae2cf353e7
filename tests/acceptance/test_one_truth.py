"""One learner's truth: after ``growthloop simulate --days 30`` every place an operator reads shows
the leading arm of the model that decides.

Per seed: the CLI simulates 30 days into a SQLite file and prints its summary; ``growthloop
health`` reads that file. The leading arm of each dimension is read from the seed-named SQL views
(rank 1), from the last ``learning_updates`` row, from ``growthloop health`` and from the summary.
The deciding model's leader comes from the same run replayed in this process (the simulation is
deterministic for a seed) up to the last learning step: the configured policy, given the
account's history from the store and the state its last choice returned, estimates every arm.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from agent import learner
from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.config import load_config
from agent.simulator import run_until
from agent.store.schema import ARM_VIEWS
from tests.acceptance.conftest import cli_env, must_query, run_cli, store_time, write_config

pytestmark = pytest.mark.slow

DAYS = 30
START = datetime(2026, 1, 5, tzinfo=UTC)  # where `growthloop simulate` starts its clock
ACCOUNT = "demo"


def table_rows(out: str, title: str) -> list[list[str]]:
    """The cells of each data row of the rich table printed under ``title``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
        elif line.startswith("└"):
            break
    return rows


def summary_leaders(out: str, dimensions: list[str]) -> dict[str, str]:
    leaders = {}
    for dimension in dimensions:
        rows = table_rows(out, f"{ACCOUNT}: {dimension} - followers per post")
        assert rows and rows[0][0] == "1", (dimension, rows[:1])
        leaders[dimension] = rows[0][1]
    return leaders


def health_leaders(out: str) -> dict[str, str]:
    rows = table_rows(out, "What the deciding model believes")
    return {row[2]: row[3] for row in rows if row[0] == ACCOUNT}


def view_leaders(db: Path) -> dict[str, str]:
    leaders = {}
    for view, dimension in ARM_VIEWS.items():
        top = must_query(
            db, f"SELECT {dimension} AS arm FROM {view} WHERE account = ? AND rank = 1", (ACCOUNT,)
        )
        if top:
            leaders[dimension] = top[0]["arm"]
    return leaders


async def deciding_leaders(config: Path, seed: int, until: datetime, tmp: Path) -> dict[str, str]:
    """The run replayed up to (and including) the step at ``until``; then the configured policy's
    own estimates from the account's history and the state of its last choice."""
    cfg = load_config(config)
    clock = VirtualClock(START)
    built = await build(
        cfg,
        clock=clock,
        seed=seed,
        sqlite_path=tmp / "replay.db",
        world_in_memory=True,
        store="memory",
    )
    try:
        await run_until(built.agent, clock, until + timedelta(microseconds=1))
        agent = built.agent
        account = agent.config.accounts[0]
        account_id = agent.account_ids[account.name]
        policy = learner.build_policy(agent.config)
        past = await learner.history(agent, account_id)
        catalogue = learner.learning_catalogue(agent, account, policy, past, None)
        state = agent.learner_states[account.name]
        belief = policy.estimates(past, catalogue, until, np.random.default_rng(0), state)
        return belief.leaders()
    finally:
        await built.aclose()


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", [1, 2])
async def test_every_view_of_the_learning_shows_the_deciding_models_leader(
    tmp_path: Path, seed: int
) -> None:
    db = tmp_path / "sim.db"
    config = write_config(tmp_path / "growthloop.yaml", store={"sqlite_path": str(db)})
    simulated = run_cli(
        "simulate",
        "--days",
        str(DAYS),
        "--seed",
        str(seed),
        "--db",
        db,
        "--config",
        config,
        cwd=tmp_path,
        env=cli_env(COLUMNS="250"),
        timeout=1500,
    )
    assert simulated.returncode == 0, simulated.stderr
    health = run_cli("health", "--config", config, cwd=tmp_path, env=cli_env(COLUMNS="250"))
    assert health.returncode == 0, health.stderr

    in_views = view_leaders(db)
    [last] = must_query(
        db, "SELECT created_at, insights_summary FROM learning_updates ORDER BY id DESC LIMIT 1"
    )
    in_update = {d: v["arm"] for d, v in json.loads(last["insights_summary"])["leaders"].items()}
    in_health = health_leaders(health.stdout)
    in_summary = summary_leaders(simulated.stdout, list(in_views))
    deciding = await deciding_leaders(config, seed, store_time(last["created_at"]), tmp_path)

    # every dimension the model learns, topic and hour included
    assert set(deciding) == {"content_type", "formula", "hook", "topic", "hour"}
    assert in_views == deciding
    assert in_update == deciding
    assert in_health == deciding
    assert in_summary == deciding
