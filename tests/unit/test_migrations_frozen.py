"""Migrations are history: none imports live code (agent/, learning/, adapters/), so an old
migration never changes when the code it was written against does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
LIVE = ("agent", "learning", "adapters")


def live_imports(source: str) -> list[str]:
    """The modules of growthloop's live packages that ``source`` imports, statically or by name
    through importlib."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = ast.unparse(node.func)
            names = [str(node.args[0].value)] if called.endswith("import_module") else []
        else:
            continue
        found += [n for n in names if n.split(".")[0] in LIVE]
    return found


MIGRATIONS = sorted(VERSIONS.glob("[0-9]*.py"))


def test_there_are_migrations_to_check() -> None:
    assert len(MIGRATIONS) >= 6


@pytest.mark.parametrize("migration", MIGRATIONS, ids=[m.stem for m in MIGRATIONS])
def test_no_migration_imports_live_code(migration: Path) -> None:
    assert live_imports(migration.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from agent.store.schema import arm_view_sql",
        "import learning.policy",
        "from adapters import base",
        "import importlib\nimportlib.import_module('agent.store.schema')",
    ],
)
def test_the_check_finds_a_live_import(source: str) -> None:
    assert live_imports(source) != []


def test_the_check_allows_alembic_and_sqlalchemy() -> None:
    assert live_imports("import sqlalchemy as sa\nfrom alembic import op") == []
