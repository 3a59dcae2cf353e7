"""The CLI on PostgreSQL (DATABASE_URL), as an operator uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.store.migrate import head_revision
from tests.acceptance.conftest import cli_env, run_cli, write_config
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.slow


async def test_run_refuses_an_unmigrated_postgres_then_migrate_health_and_sql(
    tmp_path: Path,
) -> None:
    async with fresh_pg_database() as url:
        config = write_config(tmp_path / "c.yaml")
        env = cli_env(DATABASE_URL=url)

        refused = run_cli("run", "--config", config, cwd=tmp_path, env=env)
        assert refused.returncode == 2, refused.stderr
        assert "growthloop migrate" in refused.stderr
        assert "Traceback" not in refused.stderr

        migrated = run_cli("migrate", "--config", config, cwd=tmp_path, env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert f"revision {head_revision()}" in migrated.stdout

        health = run_cli("health", "--config", config, cwd=tmp_path, env=env)
        assert health.returncode == 0, health.stderr
        assert "Pending work" in health.stdout

        sql = run_cli("migrate", "--sql", "--config", config, cwd=tmp_path, env=env)
        assert sql.returncode == 0, sql.stderr
        assert "CREATE TABLE content" in sql.stdout
        assert "CREATE VIEW content_type_performance" in sql.stdout
        assert url.split("@")[-1] not in sql.stdout  # no connection details in the script


async def test_unreachable_postgres_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    env = cli_env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    result = run_cli("health", "--config", config, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "database could not be used" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_supabase_api_variables_leave_the_store_on_the_sqlite_file(tmp_path: Path) -> None:
    """SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are for report --upload (Supabase Storage):
    without DATABASE_URL the commands use the config's SQLite file, and never print the key."""
    config = write_config(tmp_path / "c.yaml")
    env = cli_env(
        SUPABASE_URL="https://abcdefghijklmnop.supabase.co",
        SUPABASE_SERVICE_ROLE_KEY="secret-key-value",
    )
    for command in ("migrate", "health"):
        result = run_cli(command, "--config", config, cwd=tmp_path, env=env)
        assert result.returncode == 0, (command, result.stderr)
        assert "secret-key-value" not in result.stdout + result.stderr
