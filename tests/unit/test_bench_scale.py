"""The scale benchmark (bench/scale.py): its plan, its config files, and a quick real run.

The quick run starts the real daemon (bench/scale_worker.py) on a handful of sandbox accounts
and checks that every figure is measured and sane - never how fast it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_config
from bench.scale import factor_for, parse, plan
from bench.scale_case import Case, write_config
from bench.scale_store import percentile

REPO = Path(__file__).resolve().parents[2]


def test_the_default_plan_covers_every_size_backend_worker_count_and_the_burst() -> None:
    cases = plan(parse([]))
    single = [(c.backend, c.accounts) for c in cases if c.workers == 1 and "burst" not in c.phases]
    assert single == [
        (backend, n) for n in (10, 100, 1000, 10000) for backend in ("sqlite", "postgresql")
    ]
    workers = [c for c in cases if c.workers > 1]
    assert [(c.backend, c.workers, c.world) for c in workers] == [
        ("postgresql", 2, "file"),
        ("postgresql", 4, "file"),
    ]
    (burst,) = [c for c in cases if "burst" in c.phases]
    assert (burst.accounts, burst.factor, burst.latency_ms) == (1000, 1.0, 200.0)
    # more accounts, less compression: a simulated hour costs more real time
    assert [factor_for(n) for n in (10, 100, 1000, 10000)] == sorted(
        (factor_for(n) for n in (10, 100, 1000, 10000)), reverse=True
    )


def test_busy_minutes_zero_measures_the_idle_window_only() -> None:
    """Regression: ``--busy-minutes 0`` divided by zero after the idle window and left the
    daemon process running."""
    (case,) = plan(
        parse(
            [
                "--accounts",
                "10",
                "--backend",
                "sqlite",
                "--workers",
                "",
                "--burst-accounts",
                "0",
                "--busy-minutes",
                "0",
            ]
        )
    )
    assert case.phases == ("idle",)
    (case,) = plan(
        parse(
            [
                "--accounts",
                "10",
                "--backend",
                "sqlite",
                "--workers",
                "",
                "--burst-accounts",
                "0",
                "--idle-minutes",
                "0",
            ]
        )
    )
    assert case.phases == ("busy",)


def test_the_case_config_is_the_example_config_with_n_accounts_compressed(tmp_path: Path) -> None:
    case = Case(backend="sqlite", accounts=7, latency_ms=200, read_latency_ms=50)
    config = load_config(write_config(case, tmp_path, factor=60))
    assert [a.name for a in config.accounts] == [f"a{i:05d}" for i in range(7)]
    assert config.runtime.tick.total_seconds() == pytest.approx(0.5)  # 30 s / 60
    assert config.runtime.lease.total_seconds() == 120 * 60  # still two real minutes
    assert config.learning.learn_hours is False  # every first post at the same moment
    assert config.store.sqlite_path == tmp_path / "store.db"
    assert config.sandbox.world_path == tmp_path / "world-x60.db"  # one per run
    from adapters.sandbox import Scenario

    platform = Scenario.load(config.sandbox.scenario).platform
    assert platform.latency_ms == pytest.approx(200 / 60)
    assert platform.read_latency_ms == pytest.approx(50 / 60)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--accounts", "ten"], "expected numbers separated by commas"),
        (["--accounts", "0"], "every number must be at least 1"),
        (["--backend", "oracle"], "expected some of sqlite, postgresql"),
        (["--factor", "0.5"], "must be at least 1"),
        (["--latency-ms", "-1"], "must not be negative"),
    ],
)
def test_bad_options_are_one_line_errors(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def run_quick(tmp_path: Path, *argv: str) -> dict[str, Any]:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--json", str(out), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "double work" in done.stdout  # the table
    payload: dict[str, Any] = json.loads(out.read_text())
    return payload


def assert_no_double_work(result: dict[str, Any]) -> None:
    double = result["double_work"]
    assert double["none"] is True, double
    assert double["posts_published_twice"] == 0 and double["snapshots_taken_twice"] == 0
    assert double["posts_logged"] == double["posted_rows"] > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_measures_every_figure_on_sqlite(tmp_path: Path) -> None:
    payload = run_quick(tmp_path, "--burst-accounts", "2")
    single, burst = payload["results"]
    for result in (single, burst):
        assert result["ok"], result["error"]
        assert 0 < result["ready_s"] <= result["planned_s"]
        assert result["planned_ticks"] >= 0
        assert 0 < result["rss_mb_started"] <= result["rss_mb_peak"]
        assert_no_double_work(result)
    accounts = single["case"]["accounts"]
    idle, busy = single["idle"], single["busy"]
    assert idle["cpu_s_per_sim_hour"] > 0 and idle["core_pct"] > 0
    assert idle["follower_reads"] > 0
    # every account's first post fell due at once and was published, and its 1 h poll taken
    assert busy["burst_posts"] == busy["burst_published"] == accounts
    assert busy["posts_due"] == busy["posts_published"] >= accounts
    assert busy["publish_backlog"] == 0
    assert 0 <= busy["publish_late_p50_s"] <= busy["publish_late_p95_s"]
    assert busy["snapshots_due"] >= accounts and busy["snapshot_backlog"] == 0
    assert 0 <= busy["snapshot_late_p50_s"] <= busy["snapshot_late_p95_s"]
    assert busy["cpu_s_per_sim_hour"] > 0 and busy["posts_per_real_min"] > 0
    assert burst["busy"]["burst_published"] == burst["busy"]["burst_posts"] == 2
    assert burst["busy"]["publish_backlog"] == 0


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_quick_run_with_two_workers_on_postgresql_does_no_double_work(tmp_path: Path) -> None:
    payload = run_quick(
        tmp_path,
        "--accounts",
        "",
        "--workers",
        "2",
        "--workers-accounts",
        "4",
        "--burst-accounts",
        "0",
    )
    (result,) = payload["results"]
    assert result["ok"], result["error"]
    assert result["case"]["workers"] == 2 and result["case"]["world"] == "file"
    assert_no_double_work(result)
    double = result["double_work"]
    assert double["platform_posts"] == double["posted_rows"] == 4
    assert result["busy"]["burst_published"] == 4
