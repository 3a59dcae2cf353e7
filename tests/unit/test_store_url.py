"""Where the store lives: DATABASE_URL, else the config's SQLite file. The retired Supabase API
store's variables (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY) no longer select a store: alone they
are a ConfigError pointing to the connection string, never a silent fall back to SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.bootstrap import store_url
from agent.errors import ConfigError
from tests.conftest import make_config

SUPABASE_DB = "postgresql://postgres:pw@db.abcdefghijklmnop.supabase.co:5432/postgres"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_database_url_wins_then_the_sqlite_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = make_config(store={"sqlite_path": str(tmp_path / "data" / "g.db")})
    assert store_url(config).startswith("sqlite+aiosqlite:///")
    clean_env.setenv("DATABASE_URL", SUPABASE_DB)
    assert store_url(config).startswith("postgresql+asyncpg://postgres:pw@db.abcdefghijklmnop")
    assert store_url(config, sqlite_path=tmp_path / "sim.db").startswith("sqlite")


@pytest.mark.parametrize(
    "variables",
    [
        {"SUPABASE_URL": "https://abcdefghijklmnop.supabase.co"},
        {"SUPABASE_SERVICE_ROLE_KEY": "secret-key-value"},
        {"SUPABASE_URL": "https://abcdefghijklmnop.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "k"},
    ],
)
def test_the_supabase_api_variables_alone_are_a_config_error_naming_database_url(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str]
) -> None:
    config = make_config(store={"sqlite_path": str(tmp_path / "g.db")})
    for name, value in variables.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match="DATABASE_URL") as refused:
        store_url(config)
    assert "connection string" in str(refused.value)
    assert "secret-key-value" not in str(refused.value)
    assert not (tmp_path / "g.db").exists()


def test_with_database_url_the_supabase_api_variables_are_left_alone(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """They stay usable for what only the API does (Supabase Storage, later)."""
    clean_env.setenv("SUPABASE_URL", "https://abcdefghijklmnop.supabase.co")
    clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", "secret-key-value")
    clean_env.setenv("DATABASE_URL", SUPABASE_DB)
    assert store_url(make_config()).startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    "url", ["https://abcdefghijklmnop.supabase.co", "supabase+https://abcdefghijklmnop.supabase.co"]
)
def test_a_web_address_as_database_url_is_a_config_error_naming_the_connection_string(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    clean_env.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match="connection string"):
        store_url(make_config())
