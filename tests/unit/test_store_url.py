"""Where the store lives: DATABASE_URL, else the config's SQLite file. SUPABASE_URL and
SUPABASE_SERVICE_ROLE_KEY select no store (they are for Supabase Storage: report --upload)."""

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
        {"SUPABASE_URL": "https://abcdefghijklmnop.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "k"},
    ],
)
def test_the_supabase_api_variables_select_no_store(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str]
) -> None:
    """They are for Supabase Storage (growthloop report --upload): the store stays the SQLite
    file without DATABASE_URL, and the database named by DATABASE_URL with it."""
    config = make_config(store={"sqlite_path": str(tmp_path / "g.db")})
    for name, value in variables.items():
        clean_env.setenv(name, value)
    assert store_url(config) == f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    clean_env.setenv("DATABASE_URL", SUPABASE_DB)
    assert store_url(config).startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    "url", ["https://abcdefghijklmnop.supabase.co", "supabase+https://abcdefghijklmnop.supabase.co"]
)
def test_a_web_address_as_database_url_is_a_config_error_naming_the_connection_string(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    clean_env.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match="connection string"):
        store_url(make_config())
