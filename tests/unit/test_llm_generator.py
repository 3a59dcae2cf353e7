"""The OpenAI generator against a local OpenAI-compatible server (never a public address)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from structlog.testing import capture_logs

from adapters.sandbox import SandboxWorld, Scenario
from agent.bootstrap import build_generator
from agent.clock import VirtualClock
from agent.config import DEFAULT_TOKEN_PRICES
from agent.core import Agent
from agent.cycles.plan import plan_account
from agent.errors import ConfigError, GenerationError
from agent.generators.llm import MODERATION_MODEL, PROMPT_VERSION, OpenAIGenerator
from agent.models import ArmChoice, GenerationRequest, PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.acceptance.conftest import cli_env, write_config
from tests.conftest import T0, make_config
from tests.unit.openai_server import COMPLETION_TOKENS, PROMPT_TOKENS, OpenAIServer

ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
MODEL = "gpt-4o-mini"
PRICE = DEFAULT_TOKEN_PRICES[MODEL]
ONE_CALL_USD = (
    PROMPT_TOKENS * PRICE.input_per_million + COMPLETION_TOKENS * PRICE.output_per_million
) / 1_000_000


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.close()


def generator(server: OpenAIServer, **overrides: Any) -> OpenAIGenerator:
    options: dict[str, Any] = {
        "api_key": "test",
        "model": MODEL,
        "temperature": 0.7,
        "base_url": server.base_url,
        "max_attempts": 3,
        "timeout": 5.0,
        "prices": DEFAULT_TOKEN_PRICES,
        "max_retries": 0,
    }
    return OpenAIGenerator(**{**options, **overrides})


def request(**overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "arms": ArmChoice(
            content_type="how_to", formula="listicle", hook="bold_claim", topic="code review"
        ),
        "persona": "A staff engineer who mentors juniors",
        "niche": "software engineering careers",
        "max_chars": 280,
        "descriptions": {
            "content_type": "step-by-step advice",
            "formula": "a numbered list of points",
            "hook": "open with a confident claim",
        },
        "recent_texts": ("My last post about pairing.", "An older post on estimates."),
    }
    return GenerationRequest(**{**values, **overrides})


async def test_valid_answer_gives_a_draft_with_tokens_cost_model_and_prompt_version(
    server: OpenAIServer,
) -> None:
    draft = await generator(server).write(request())
    assert draft.text and len(draft.text) <= 280
    assert draft.generator == "openai" and draft.model == MODEL
    assert draft.prompt_version == PROMPT_VERSION
    assert (draft.tokens_in, draft.tokens_out) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert draft.cost_usd == pytest.approx(ONE_CALL_USD)
    assert draft.extra["rationale"] == "Specific and short."


async def test_prompt_carries_persona_niche_arm_descriptions_limit_and_recent_posts(
    server: OpenAIServer,
) -> None:
    await generator(server).write(request())
    (body,) = server.requests
    prompt = "\n".join(m["content"] for m in body["messages"])
    for expected in (
        "A staff engineer who mentors juniors",
        "software engineering careers",
        "how_to (step-by-step advice)",
        "listicle (a numbered list of points)",
        "bold_claim (open with a confident claim)",
        "code review",
        "at most 280 characters",
        "My last post about pairing.",
    ):
        assert expected in prompt
    assert body["model"] == MODEL and body["temperature"] == 0.7
    schema = body["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["strict"] is True
    assert schema["json_schema"]["schema"]["required"] == ["text", "rationale"]


async def test_over_long_text_is_retried_then_accepted_and_both_calls_are_billed(
    server: OpenAIServer,
) -> None:
    server.queue("too_long", "valid")
    draft = await generator(server).write(request())
    assert len(server.requests) == 2
    assert len(draft.text) <= 280
    assert draft.tokens_in == 2 * PROMPT_TOKENS
    assert draft.cost_usd == pytest.approx(2 * ONE_CALL_USD)
    retry_prompt = server.requests[1]["messages"][-1]["content"]
    assert "5000 characters, the limit is 280" in retry_prompt


async def test_malformed_answers_are_retried_up_to_max_attempts_then_fail(
    server: OpenAIServer,
) -> None:
    server.queue("malformed", "malformed", "malformed")
    with pytest.raises(GenerationError, match=r"after 3 attempts.*not valid JSON"):
        await generator(server).write(request())
    assert len(server.requests) == 3


async def test_refusal_ends_in_a_generation_error(server: OpenAIServer) -> None:
    server.queue("refusal")
    with pytest.raises(GenerationError, match="refused"):
        await generator(server, max_attempts=1).write(request())


async def test_a_repeat_of_a_recent_post_is_rejected(server: OpenAIServer) -> None:
    first = await generator(server).write(request())
    server._counter = iter([1, 1, 1])  # type: ignore[assignment]  # the same text three times
    with pytest.raises(GenerationError, match="repeated a recent post"):
        await generator(server).write(request(recent_texts=(first.text,)))


@pytest.mark.parametrize(
    ("mode", "message"),
    [("rate_limit", r"rate limited \(HTTP 429\); retry after 20s"), ("server_error", "HTTP 500")],
)
async def test_api_errors_become_generation_errors(
    server: OpenAIServer, mode: str, message: str
) -> None:
    server.queue(mode)
    with pytest.raises(GenerationError, match=message):
        await generator(server).write(request())
    assert len(server.requests) == 1, "an API error is not retried by the generator"


async def test_unreachable_server_is_a_generation_error() -> None:
    gen = OpenAIGenerator(
        api_key="test",
        model=MODEL,
        temperature=0.5,
        base_url="http://127.0.0.1:9/v1",
        timeout=2.0,
        max_retries=0,
    )
    with pytest.raises(GenerationError, match=re.escape("cannot reach http://127.0.0.1:9/v1")):
        await gen.write(request())


async def test_unknown_model_costs_nothing_and_says_why(server: OpenAIServer) -> None:
    draft = await generator(server, model="local-llama").write(request())
    assert draft.cost_usd == 0.0 and draft.tokens_in == PROMPT_TOKENS
    assert "no price configured" in draft.extra["cost_note"]


async def test_moderation_of_a_clean_text_is_none(server: OpenAIServer) -> None:
    server.flag_word = "forbidden"
    assert await generator(server).moderate("Ship small batches.") is None
    (body,) = server.moderation_requests
    assert body == {"model": MODERATION_MODEL, "input": "Ship small batches."}


async def test_moderation_of_a_flagged_text_names_its_categories(server: OpenAIServer) -> None:
    server.flag_word = "forbidden"
    server.flag_categories = ("violence", "harassment/threatening")
    reason = await generator(server).moderate("A FORBIDDEN thought.")
    assert reason == "flagged by moderation: harassment/threatening, violence"


async def test_moderation_outage_is_a_generation_error(server: OpenAIServer) -> None:
    server.moderation_error = True
    with pytest.raises(GenerationError, match=r"openai: moderation: server error \(HTTP 500\)"):
        await generator(server).moderate("Ship small batches.")


def test_openai_generator_without_api_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        build_generator(make_config(generator={"kind": "openai"}))
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    assert isinstance(build_generator(make_config(generator={"kind": "openai"})), OpenAIGenerator)


# --- in the plan cycle --------------------------------------------------------------------------


async def make_agent(tmp_path: Path, server: OpenAIServer, **overrides: Any) -> Agent:
    config = make_config(
        cadence={"active_hours": ALWAYS, "jitter": "0s"},
        generator={"kind": "openai", "base_url": server.base_url},
        **overrides,
    )
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=7, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={a.name: world.platform(a.name, now=clock.now) for a in config.accounts},
        generator=generator(server),
        clock=clock,
        seed=7,
    )
    agent._test_world = world  # type: ignore[attr-defined]  # closed by close_agent
    await agent.setup()
    return agent


async def close_agent(agent: Agent) -> None:
    await agent.store.close()  # type: ignore[attr-defined]
    agent._test_world.close()  # type: ignore[attr-defined]


async def content_rows(agent: Agent) -> list[Any]:
    async with agent.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return list((await conn.execute(sa.select(content).order_by(content.c.id))).all())


async def test_api_error_stores_a_failed_row(tmp_path: Path, server: OpenAIServer) -> None:
    agent = await make_agent(tmp_path, server)
    try:
        server.queue("server_error")
        account = agent.config.accounts[0]
        assert await plan_account(agent, account, T0) is False
        (row,) = await content_rows(agent)
        assert row.status == PostStatus.FAILED.value
        assert "HTTP 500" in row.error
    finally:
        await close_agent(agent)


async def test_budget_pauses_planning_for_the_rest_of_the_utc_day(
    tmp_path: Path, server: OpenAIServer
) -> None:
    budget = 2.5 * ONE_CALL_USD  # three posts' worth of calls reach it
    agent = await make_agent(tmp_path, server, budget={"llm_daily_usd_per_account": budget})
    clock: VirtualClock = agent.clock  # type: ignore[assignment]
    try:
        with capture_logs() as logs:
            await run_until(agent, clock, T0 + timedelta(hours=17))  # until 23:00 UTC
        rows = await content_rows(agent)
        spent = sum(r.generation_metadata.get("cost_usd", 0) for r in rows)
        assert len(rows) == 3 and spent == pytest.approx(3 * ONE_CALL_USD)
        paused = [e for e in logs if e["event"] == "planning_paused_budget"]
        assert paused, "planning paused once the budget was spent"
        assert paused[0]["account"] == agent.config.accounts[0].name
        assert paused[0]["budget"] == budget and paused[0]["spent"] >= budget

        await run_until(agent, clock, T0 + timedelta(hours=30))  # a new UTC day: budget renewed
        assert len(await content_rows(agent)) > 3
    finally:
        await close_agent(agent)


async def published(agent: Agent) -> list[Any]:
    return [r for r in await content_rows(agent) if r.status == PostStatus.POSTED.value]


async def test_flagged_draft_is_rejected_with_the_categories_and_never_published(
    tmp_path: Path, server: OpenAIServer
) -> None:
    server.flag_word = " "  # every post has a space: every draft is flagged
    agent = await make_agent(tmp_path, server)
    clock: VirtualClock = agent.clock  # type: ignore[assignment]
    try:
        with capture_logs() as logs:
            await run_until(agent, clock, T0 + timedelta(hours=6))
        rows = await content_rows(agent)
        assert rows and all(r.status == PostStatus.REJECTED.value for r in rows)
        assert all(r.error == "flagged by moderation: harassment, violence" for r in rows)
        assert len(server.moderation_requests) == len(rows)
        assert {b["input"] for b in server.moderation_requests} == {r.text for r in rows}
        assert not await published(agent) and agent.stats.totals["posts_published"] == 0
        rejected = [e for e in logs if e["event"] == "post_rejected"]
        assert len(rejected) == len(rows) and "harassment" in rejected[0]["reason"]
    finally:
        await close_agent(agent)


async def test_clean_draft_passes_moderation_and_is_published(
    tmp_path: Path, server: OpenAIServer
) -> None:
    server.flag_word = "forbidden"  # never in the server's posts
    agent = await make_agent(tmp_path, server)
    clock: VirtualClock = agent.clock  # type: ignore[assignment]
    try:
        await run_until(agent, clock, T0 + timedelta(hours=6))
        rows = await content_rows(agent)
        assert server.moderation_requests
        assert not [r for r in rows if r.status == PostStatus.REJECTED.value]
        assert await published(agent)
    finally:
        await close_agent(agent)


async def test_moderation_outage_stores_a_failed_row_and_publishes_nothing(
    tmp_path: Path, server: OpenAIServer
) -> None:
    server.moderation_error = True
    agent = await make_agent(tmp_path, server)
    clock: VirtualClock = agent.clock  # type: ignore[assignment]
    try:
        account = agent.config.accounts[0]
        assert await plan_account(agent, account, T0) is False
        (row,) = await content_rows(agent)
        assert row.status == PostStatus.FAILED.value
        assert row.error.startswith("moderation failed: openai: moderation: server error")
        assert "HTTP 500" in row.error
        await run_until(agent, clock, T0 + timedelta(hours=6))
        rows = await content_rows(agent)
        assert len(rows) > 1 and all(r.status == PostStatus.FAILED.value for r in rows)
        assert not await published(agent) and agent.stats.totals["posts_published"] == 0
    finally:
        await close_agent(agent)


# --- the CLI ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_simulate_with_the_openai_generator_records_model_and_cost(
    tmp_path: Path, server: OpenAIServer
) -> None:
    config = write_config(tmp_path / "growthloop.yaml", generator={"base_url": server.base_url})
    db = tmp_path / "sim.db"
    env = cli_env(OPENAI_API_KEY="test")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "simulate",
        "--days",
        "0.5",
        "--generator",
        "openai",
        "--db",
        str(db),
        "--config",
        str(config),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode()
    assert server.requests, "the simulation asked the local server for posts"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT json_extract(generation_metadata, '$.model'),"
            " json_extract(generation_metadata, '$.cost_usd') FROM content"
        ).fetchall()
    assert rows and all(model == MODEL and cost > 0 for model, cost in rows)
    assert yaml.safe_load(config.read_text())["generator"]["base_url"] == server.base_url


async def test_a_prompt_version_adds_its_instructions_and_names_itself(
    server: OpenAIServer,
) -> None:
    draft = await generator(server).write(
        request(prompt="concrete", instructions="Give one concrete number in every post.")
    )
    plain = await generator(server).write(request())
    first, second = server.requests
    system = first["messages"][0]["content"]
    assert system.endswith(
        "Also follow these instructions:\nGive one concrete number in every post."
    )
    assert "Also follow" not in second["messages"][0]["content"]
    assert draft.prompt_version == f"{PROMPT_VERSION}+concrete"
    assert plain.prompt_version == PROMPT_VERSION
