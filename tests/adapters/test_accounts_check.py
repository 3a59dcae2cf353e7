"""`growthloop accounts check` against the sandbox and a local X server, without posting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.accounts import check_accounts
from agent.config import Config
from tests.adapters.x_server import XServer
from tests.conftest import example_raw


@pytest.fixture
async def server() -> AsyncIterator[XServer]:
    srv = XServer()
    await srv.start()
    yield srv
    await srv.close()


def config(server: XServer) -> Config:
    raw = example_raw()
    base = raw["accounts"][0]
    raw["accounts"] = [
        base,
        {**base, "name": "first_x", "platform": "x", "api_base_url": server.base_url},
        {**base, "name": "second_x", "platform": "x", "api_base_url": server.base_url},
    ]
    return Config.model_validate(raw)


async def test_accounts_check_reads_each_account_and_names_the_one_that_fails(
    server: XServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for account in ("FIRST_X", "SECOND_X"):
        for name in ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"):
            monkeypatch.setenv(f"{account}_X_{name}", "secret-value")
    cfg = config(server)
    server.fail("GET /2/users/me", "unauthorized", times=1)  # the first X account asked fails
    results = {r.account: r for r in await check_accounts(cfg)}
    assert results["demo"].ok and results["demo"].followers == 1500
    failed = [r for r in results.values() if not r.ok]
    assert [r.account for r in failed] == ["first_x"]  # accounts are checked in config order
    assert "AuthFailed" in (failed[0].problem or "")
    assert results["second_x"].ok and results["second_x"].limits is not None
    assert results["second_x"].write_access.startswith("read-write")
    assert results["second_x"].limits.max_chars == 280
    assert not [r for r in server.responses if r[0].startswith("POST")]  # nothing was posted
