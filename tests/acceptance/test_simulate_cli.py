"""``growthloop simulate``: days of simulated time in seconds, a summary, and a database to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    EXAMPLE_CONFIG,
    REPO,
    must_query,
    run_cli,
    write_config,
)

pytestmark = pytest.mark.slow


def test_simulate_two_days_prints_a_summary_and_fills_the_database(tmp_path: Path) -> None:
    config = write_config(tmp_path / "growthloop.yaml")  # the example config
    db = tmp_path / "out" / "sim.db"
    result = run_cli(
        "simulate", "--days", "2", "--seed", "3", "--db", db, "--config", config, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # stderr is a pipe here: progress as plain lines, every 5 % and at the end
    progress = [line for line in result.stderr.splitlines() if line.startswith("simulating: ")]
    assert len(progress) >= 10, result.stderr
    assert progress[-1].startswith("simulating: 100% (day 2/2)")
    out = result.stdout
    assert "Simulated 2 days" in out
    assert "posts" in out and "true ranking" in out
    for dimension in ("content_type", "formula", "hook"):
        assert f"demo: {dimension}" in out

    posted = must_query(db, "SELECT COUNT(*) AS n FROM content WHERE status = 'posted'")
    assert posted[0]["n"] >= 2
    learned = must_query(db, "SELECT COUNT(*) AS n FROM learning_updates")
    assert learned[0]["n"] >= 1
    unpolled = must_query(
        db,
        "SELECT COUNT(*) AS n FROM performance_snapshots s JOIN content c ON c.id = s.content_id"
        " WHERE s.taken_at IS NULL AND s.due_at <= (SELECT MAX(taken_at) FROM account_snapshots)",
    )
    assert unpolled[0]["n"] == 0, "every snapshot due before the end of the run was taken"
    assert not (tmp_path / "data").exists(), "simulate writes only to --db"

    # it ends by writing the report beside --db, with the truth beside the estimates
    (html,) = (tmp_path / "out" / "report").glob("report-all-*.html")
    (markdown,) = (tmp_path / "out" / "report").glob("report-all-*.md")
    assert f"Report: {html}" in out.replace("\n", "")
    page = html.read_text()
    assert "growthloop simulation report" in page and "<th>true value</th>" in page
    assert page.count('<svg class="chart"') >= 5 + 3  # five charts and one per dimension
    assert "| true best |" in markdown.read_text()


def test_simulate_from_a_checkout_uses_the_example_config(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    result = run_cli("simulate", "--days", "0.5", "--seed", "3", "--db", db, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "true ranking" in result.stdout
    assert must_query(db, "SELECT COUNT(*) AS n FROM content")[0]["n"] >= 1


def test_simulate_with_a_missing_scenario_file_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "simulate",
        "--days",
        "1",
        "--scenario",
        tmp_path / "nowhere.yaml",
        "--db",
        tmp_path / "sim.db",
        "--config",
        EXAMPLE_CONFIG,
        cwd=tmp_path,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "nowhere.yaml" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "sim.db").exists()


def test_simulate_with_a_broken_scenario_file_exits_2(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text(
        "extends: default\nplatform:\n  posts_per_hour: 0\n",
        encoding="utf-8",
    )
    result = run_cli(
        "simulate",
        "--days",
        "1",
        "--scenario",
        scenario,
        "--db",
        tmp_path / "sim.db",
        "--config",
        EXAMPLE_CONFIG,
        cwd=tmp_path,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "broken.yaml" in result.stderr and "platform.posts_per_hour" in result.stderr
