"""Failing safe: an account whose credentials the platform refuses stops, the others go on.

A daemon's cycles run for 30 minutes of virtual time (agent.simulator.run_until on a
VirtualClock) with two accounts: ``refused`` on X (tests/adapters/x_server.py answering as X does
for revoked credentials, for a read-only app, or refusing only the post) and ``sand`` on the
sandbox. The OpenAI generator writes every post (against tests/unit/openai_server.py, which
keeps each request), and alerts go to a local webhook (tests/unit/webhook_server.py). The
refused account gets at most one publish attempt and no LLM call; the sandbox account keeps
posting; one notification is sent; ``account_suspended`` is logged once and names the account's
own variables (``REFUSED_X_API_KEY``...).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.sandbox import SandboxWorld, Scenario
from agent.alerts import Alerts
from agent.bootstrap import build_platforms
from agent.clock import VirtualClock
from agent.config import DEFAULT_TOKEN_PRICES
from agent.core import Agent
from agent.generators.llm import OpenAIGenerator
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content
from agent.store.sql import SqlStore
from tests.adapters.x_server import XServer
from tests.conftest import T0, make_config
from tests.unit.openai_server import OpenAIServer
from tests.unit.webhook_server import WebhookServer

MARKER = "Zebracorn"  # in the refused account's persona: an LLM request for it names it
VARIABLES = [
    "REFUSED_X_API_KEY",
    "REFUSED_X_API_SECRET",
    "REFUSED_X_ACCESS_TOKEN",
    "REFUSED_X_ACCESS_TOKEN_SECRET",
]
ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
RUN_FOR = timedelta(minutes=30)


@dataclass
class Servers:
    x: XServer
    openai: OpenAIServer
    webhook: WebhookServer


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    found = Servers(x=XServer(), openai=OpenAIServer(), webhook=WebhookServer())
    await found.x.start()
    await found.openai.start()
    await found.webhook.start()
    try:
        yield found
    finally:
        await found.webhook.close()
        await found.openai.close()
        await found.x.close()


def account(name: str, platform: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "platform": platform,
        "handle": f"@{name}",
        "persona": extra.pop("persona", "A pragmatic developer who writes about shipping"),
        "niche": "developer productivity",
        "topics": ["automated testing", "code review"],
        **extra,
    }


async def run(tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Agent:
    for name in VARIABLES:
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    config = make_config(
        accounts=[
            account(
                "refused",
                "x",
                persona=f"{MARKER}, a developer whose X app lost its access",
                secrets_prefix="REFUSED",
                api_base_url=servers.x.base_url,
            ),
            account("sand", "sandbox"),
        ],
        cadence={
            "active_hours": ALWAYS,
            "jitter": "0s",
            "min_gap": "5m",
            "posts_per_day": 48,
            "max_posts_per_hour": 10,
        },
        # a follower reading within the first five minutes of the run on every platform (new
        # accounts' first readings are spread over one interval, 2 h where X bills reads)
        polling={"account_every": "5m"},
    )
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(Scenario.load("default"), seed=3, start=T0)
    generator = OpenAIGenerator(
        api_key="test",
        model="gpt-4o-mini",
        temperature=0.7,
        base_url=servers.openai.base_url,
        max_attempts=3,
        timeout=5.0,
        prices=DEFAULT_TOKEN_PRICES,
        max_retries=0,
    )
    agent = Agent(
        config=config,
        store=store,
        platforms=build_platforms(config, world, clock.now),
        generator=generator,
        clock=clock,
        seed=3,
        alerts=Alerts(url=servers.webhook.url),
    )
    try:
        await run_until(agent, clock, T0 + RUN_FOR)
        await agent.alerts.drain()
    finally:
        await agent.alerts.aclose()
        for platform in agent.platforms.values():
            await platform.aclose()
        world.close()
    return agent


def llm_requests_naming(server: OpenAIServer, marker: str) -> int:
    return sum(marker in json.dumps(body) for body in server.requests)


def publish_attempts(server: XServer) -> int:
    return sum((method, path) == ("POST", "/2/tweets") for method, path, _q in server.requests)


@pytest.mark.parametrize("refusal", ["revoked", "read_only_app", "post_refused"])
async def test_refused_credentials_suspend_the_account_and_the_others_keep_posting(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    if refusal == "revoked":  # 401 on every call
        servers.x.revoked = True
    elif refusal == "read_only_app":  # reads say x-access-level: read; a post is refused 403
        servers.x.access_level = "read"
    else:  # reads cannot tell (no x-access-level), every post is refused 403 (oauth1 permissions)
        servers.x.access_level = None
        servers.x.fail("POST /2/tweets", "read_only", times=100)

    with capture_logs() as logs:
        agent = await run(tmp_path, servers, monkeypatch)
    try:
        await check(agent, servers, logs, refusal)
    finally:
        await agent.store.close()


async def check(agent: Agent, servers: Servers, logs: list[Any], refusal: str) -> None:
    assert publish_attempts(servers.x) <= 1
    if refusal == "post_refused":
        assert publish_attempts(servers.x) == 1  # the read could not tell: the post found out
    assert llm_requests_naming(servers.openai, MARKER) <= (1 if refusal == "post_refused" else 0)
    assert llm_requests_naming(servers.openai, "lost its access") == llm_requests_naming(
        servers.openai, MARKER
    )

    store = agent.store
    async with store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (await conn.execute(sa.select(content.c.account_id, content.c.status))).all()
    sand, refused = agent.account_ids["sand"], agent.account_ids["refused"]
    sand_statuses = sorted(r.status for r in rows if r.account_id == sand)
    assert sand_statuses.count("posted") >= 1 and "planned" in sand_statuses  # it keeps going
    assert [r.status for r in rows if r.account_id == refused] in ([], ["failed"])
    assert len(servers.openai.requests) >= len(sand_statuses)  # its posts were written by it

    (held,) = await store.suspensions(now=T0 + RUN_FOR)
    assert (held.account, held.platform, held.reason, held.error_kind) == (
        "refused",
        "x",
        "auth",
        "AuthFailed",
    )
    assert held.fingerprint is not None and "value-of" not in held.fingerprint

    suspended = [e for e in logs if e["event"] == "account_suspended"]
    assert len(suspended) == 1
    assert suspended[0]["account"] == "refused" and suspended[0]["platform"] == "x"
    assert suspended[0]["variables"] == VARIABLES
    assert "Read and Write" in suspended[0]["permission"]
    assert "value-of" not in json.dumps(logs, default=str)  # no secret in any log line

    assert servers.webhook.kinds() == [("account_suspended", "refused")]
    (body,) = servers.webhook.bodies
    assert body["text"] == body["content"] and "REFUSED_X_API_KEY" in body["text"]


async def test_revoked_credentials_do_not_spin_on_reads(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with revoked credentials the follower reading failed and was asked again at
    once, 1,801 refused reads in 30 minutes (every tick in real time). A refused read now
    pauses the account's reads for failsafe.credentials_check (15 min)."""
    servers.x.revoked = True
    with capture_logs() as logs:
        agent = await run(tmp_path, servers, monkeypatch)
    try:
        reads = [path for method, path, _q in servers.x.requests if method == "GET"]
        # the start-up write-access read, one follower reading that pauses the reads, and one
        # of each again after 15 minutes
        assert 1 <= len(reads) <= 4, reads
        paused = [e for e in logs if e["event"] == "reads_paused"]
        assert paused and {e["account"] for e in paused} == {"refused"}
        assert all(e["platform"] == "x" and "REFUSED_X_" in e["error"] for e in paused)
        sand = agent.account_ids["sand"]
        assert not agent.reads_blocked(sand, T0 + RUN_FOR)  # the other account reads on
    finally:
        await agent.store.close()
