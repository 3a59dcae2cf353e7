"""The daemon builds real adapters from the config and the environment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.mastodon import MastodonPlatform
from adapters.x import XPlatform
from agent.bootstrap import build_platforms
from agent.errors import ConfigError
from tests.conftest import example_raw


def config_with(accounts: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    from agent.config import Config

    raw = example_raw()
    base = raw["accounts"][0]
    raw["accounts"] = [{**base, **a} for a in accounts]
    return Config.model_validate(raw)


def now() -> datetime:
    return datetime(2026, 1, 5, tzinfo=UTC)


async def test_x_and_mastodon_accounts_get_their_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(f"ON_X_X_{name}", f"value-{name}")
    monkeypatch.setenv("ON_MASTO_MASTODON_ACCESS_TOKEN", "token")
    config = config_with(
        [
            {"name": "on_x", "platform": "x", "api_base_url": "http://127.0.0.1:9"},
            {"name": "on_masto", "platform": "mastodon", "api_base_url": "http://127.0.0.1:9"},
        ]
    )
    platforms = build_platforms(config, world=None, now=now)
    assert isinstance(platforms["on_x"], XPlatform)
    assert isinstance(platforms["on_masto"], MastodonPlatform)
    for platform in platforms.values():
        await platform.aclose()


def test_mastodon_without_an_instance_url_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("M_MASTODON_ACCESS_TOKEN", "token")
    config = config_with([{"name": "m", "platform": "mastodon"}])
    with pytest.raises(ConfigError, match="'m'"):
        build_platforms(config, world=None, now=now)


def test_a_platform_without_an_adapter_module_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent import bootstrap

    monkeypatch.setitem(bootstrap.ADAPTER_MODULES, "threads", "adapters.not_written_yet")
    monkeypatch.setenv("T_THREADS_ACCESS_TOKEN", "token")
    config = config_with([{"name": "t", "platform": "threads"}])
    with pytest.raises(ConfigError, match="threads adapter is not part of this release"):
        build_platforms(config, world=None, now=now)


async def test_x_auth_error_names_the_accounts_prefixed_variables_not_bare_x_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: X's 401 message said "check X_API_KEY, ..." where the account reads
    ``<PREFIX>_X_API_KEY``; an operator looked for a variable that does not exist."""
    import re

    from agent.errors import AuthFailed
    from tests.adapters.x_server import XServer

    server = XServer(revoked=True)
    await server.start()
    for name in ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(f"BRAND_X_{name}", f"value-{name}")
    config = config_with(
        [
            {
                "name": "main",
                "platform": "x",
                "secrets_prefix": "BRAND",
                "api_base_url": server.base_url,
            }
        ]
    )
    platform = build_platforms(config, world=None, now=now)["main"]
    try:
        with pytest.raises(AuthFailed) as refused:
            await platform.publish("hello", idempotency_key="k1")
        with pytest.raises(AuthFailed) as read:
            await platform.check_write_access()
    finally:
        await platform.aclose()
        await server.close()
    for message in (str(refused.value), str(read.value)):
        assert "BRAND_X_API_KEY" in message and "BRAND_X_ACCESS_TOKEN_SECRET" in message
        assert not re.search(r"(?<![A-Z_])X_API_KEY", message)


@pytest.mark.parametrize(
    ("platform", "variable"),
    [
        ("x", "BRAND_X_API_KEY"),
        ("bluesky", "BRAND_BLUESKY_APP_PASSWORD"),
        ("threads", "BRAND_THREADS_ACCESS_TOKEN"),
    ],
)
def test_a_missing_secret_is_named_with_the_accounts_prefix(platform: str, variable: str) -> None:
    import importlib

    module = importlib.import_module(f"adapters.{platform}")
    secrets = {"BLUESKY_HANDLE": "h.test"} if platform == "bluesky" else {}
    with pytest.raises(ConfigError, match=variable):
        module.from_config(
            account="main", secrets=secrets, base_url=None, now=now, env_prefix="BRAND"
        )
