"""A generated suite's figures (bench/suite.py) and `bench.learning --worlds`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import learning as harness
from bench import suite


def posts_switching(at: float, until: float, *, per_day: int = 2, start: float = 0.0) -> list:
    """Posts on arm "old" before ``at`` and "new" from then on; the best arm is "new" throughout."""
    out = []
    day = start
    while day < until:
        arm = "old" if day < at else "new"
        out.append((day, {"hook": arm}, {"hook": "new"}))
        day += 1.0 / per_day
    return out


def test_recovery_is_the_first_day_from_which_every_window_is_mostly_on_the_best_arm() -> None:
    posts = posts_switching(15.0, 40.0, start=10.0)
    # windows [10 + k, 17 + k): 14 posts, of which 2 * (2 + k) from day 15 on: >= 7 from k = 2
    assert suite.recovery_days(posts, "hook", 10.0, 40.0) == 2
    assert suite.window_share(posts, "hook", 10.0, 20.0) == pytest.approx(0.5)
    # a relapse in the middle: recovery counts from after it
    relapse = [
        (d, {"hook": "old"} if 25 <= d < 30 else a, b) for d, a, b in posts_switching(10, 40)
    ]
    # [10 + k, 17 + k) holds more than 7 old posts while it overlaps [25, 30) by 4 days or more
    assert suite.recovery_days(relapse, "hook", 10.0, 40.0) == 17
    # still wrong at the end: not recovered
    never = posts_switching(38.0, 40.0, start=10.0)
    assert suite.recovery_days(never, "hook", 10.0, 40.0) is None
    assert suite.recovery_days(posts_switching(0, 40), "hook", 10.0, 40.0) == 0
    assert suite.recovery_days(posts, "hook", 35.0, 40.0) is None  # no full window left


def test_changes_are_found_where_the_oracle_arm_moves() -> None:
    def best_at(day: float) -> dict[str, str]:  # hook flips at day 20; formula in a ramp at 34.3
        return {"hook": "b" if day >= 20 else "a", "formula": "y" if day >= 34.3 else "x"}

    found = suite.changes(
        [(20.0, 0.0), (30.0, 10.0), (95.0, 0.0)], ["hook", "formula"], best_at, 90
    )
    assert found == [
        {"dimension": "hook", "change_day": 20.0, "best_before": "a", "best_after": "b"},
        {"dimension": "formula", "change_day": 34.5, "best_before": "x", "best_after": "y"},
    ]
    posts = posts_switching(25.0, 90.0, start=0.0)
    report = suite.after_change(posts, [{"dimension": "hook", "change_day": 20.0}], 90.0)
    assert report[0]["posts"] == 60
    assert report[0]["best_arm_share_30d"] == pytest.approx(50 / 60)
    assert report[0]["recovery_days"] == 2  # [20 + k, 27 + k) has 2 * (2 + k) of 14 new posts


def run(world: str, policy: str, seed: int, followers: float, share: float, **extra: Any) -> dict:
    return {
        "scenario": world,
        "policy": policy,
        "seed": seed,
        "expected_followers": followers,
        "fraction_of_oracle": share,
        "scenario_description": f"kind of {world}",
        **extra,
    }


def test_suite_summary_reports_the_distribution_over_worlds() -> None:
    runs = []
    # learner / uniform per world (means over two seeds): 2.0, 1.5, 0.5
    for world, (mine, theirs) in {"w1": (200, 100), "w2": (150, 100), "w3": (50, 100)}.items():
        for seed, wobble in ((1, -10), (2, 10)):
            runs.append(run(world, "joint", seed, mine + wobble, mine / 250))
            runs.append(run(world, "uniform", seed, theirs + wobble, theirs / 250))
    summary = suite.summarise_suite(runs, learner="joint", baselines=["uniform", "seed_selector"])

    ratio = summary["ratio_over_baseline"]
    assert list(ratio) == ["uniform"]  # no seed_selector runs: no ratio
    assert ratio["uniform"]["median"] == pytest.approx(1.5)
    assert ratio["uniform"]["worst"] == pytest.approx(0.5)
    assert ratio["uniform"]["p10"] == pytest.approx(0.5 + 0.2 * (1.5 - 0.5))  # linear
    assert ratio["uniform"]["wins"] == pytest.approx(2 / 3)
    share = summary["share_of_oracle"]["joint"]
    assert share["median"] == pytest.approx(150 / 250) and share["worst"] == pytest.approx(0.2)
    assert summary["worlds"] == 3 and summary["seeds"] == 2
    table = suite.suite_markdown(summary)
    assert "| uniform | 1.50x | 0.70x | 0.50x | 67% (2/3) |" in table
    assert "| joint | 60.0% | 28.0% | 20.0% |" in table
    assert "| w3 | 20.0% | 0.50x | kind of w3 |" in table


def test_drift_summary_counts_a_run_that_never_recovers_as_infinitely_late() -> None:
    def change(share: float, days: int | None, dim: str = "hook") -> dict:
        return {"dimension": dim, "best_arm_share_30d": share, "recovery_days": days}

    runs = [
        run("w1", "joint", 1, 1, 0.5, after_change=[change(0.8, 3), change(0.2, None, "formula")]),
        run("w2", "joint", 1, 1, 0.5, after_change=[change(0.6, None)]),
        run("w3", "joint", 1, 1, 0.5, after_change=[]),
        run("w1", "uniform", 1, 1, 0.5, after_change=[change(0.1, None)]),
    ]
    drift = suite.drift_summary(runs, ["joint", "uniform"])
    assert drift["joint"]["all"] == {
        "changes": 3,
        "best_arm_share_30d_median": pytest.approx(0.6),
        "recovered": pytest.approx(1 / 3),
        "recovery_days_median": None,  # median of (3, inf, inf)
    }
    assert drift["joint"]["hook"]["recovery_days_median"] is None
    assert drift["joint"]["hook"]["best_arm_share_30d_median"] == pytest.approx(0.7)
    two = suite.drift_summary(runs[:1], ["joint"])["joint"]["hook"]
    assert two["recovery_days_median"] == 3 and two["recovered"] == 1.0
    assert drift["uniform"]["all"]["recovered"] == 0.0
    assert not math.isinf(drift["joint"]["all"]["best_arm_share_30d_median"])


def test_suite_plot_writes_a_png(tmp_path: Path) -> None:
    runs = [
        run(w, p, 1, f, f / 300) for w in ("a", "b") for p, f in (("joint", 200), ("uniform", 100))
    ]
    summary = suite.summarise_suite(runs, learner="joint", baselines=["uniform"])
    path = suite.suite_plot(summary, tmp_path / "plots" / "worlds.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def drifting(tmp_path: Path) -> Path:
    path = tmp_path / "drift.yaml"
    path.write_text(
        "extends: default\n"
        "name: drift_soon\n"
        "bench: {posts_per_day: 6, days: 9}\n"
        "drift:\n"
        "  - at_day: 1.5\n"
        "    effects:\n"
        "      content_type:\n"
        "        how_to: {reach: 1.0, engagement: 1.0, follow: 1.0}\n"
        "        question: {reach: 1.3, engagement: 1.0, follow: 1.5}\n"
    )
    return path


async def test_a_run_reports_the_change_the_oracle_follows_at_once(drifting: Path) -> None:
    oracle = await harness.run_one(str(drifting), "oracle", seed=1)

    [change] = oracle["after_change"]
    assert change["dimension"] == "content_type"
    assert change["change_day"] == 1.5
    assert (change["best_before"], change["best_after"]) == ("how_to", "question")
    # a post planned before the change and published after it is the only miss
    assert change["best_arm_share_30d"] > 0.95 and change["recovery_days"] == 0
    assert change["posts"] > 30


def test_cli_runs_a_generated_suite_and_writes_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    args = ["--worlds", "report", "--count", "1", "--seeds", "1", "--days", "1", "--jobs", "1"]
    args += ["--policy", "uniform", "--policy", "joint", "--summary-json", str(out)]
    args += ["--worlds-dir", str(tmp_path / "worlds"), "--json", str(tmp_path / "runs.jsonl")]
    assert harness.main(args) == 0

    summary = json.loads(out.read_text())
    assert summary["worlds"] == 1 and summary["seed_set"] == "report"
    assert set(summary["share_of_oracle"]) == {"joint", "uniform"}
    assert (tmp_path / "worlds" / "world_2000.yaml").is_file()
    captured = capsys.readouterr()
    assert "| uniform |" in captured.out and "world_2000" in captured.out
    assert "runs: 100% (2/2)" in captured.err


def test_cli_refuses_worlds_with_scenarios_or_a_bad_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert harness.main(["--worlds", "tune", "--scenario", "stationary"]) == 2
    assert "not both" in capsys.readouterr().err
    assert harness.main(["--worlds", "tune", "--count", "5000"]) == 2
    assert "--count must be between 1 and 1000" in capsys.readouterr().err
    assert harness.main(["--summary-json", "x.json"]) == 2
    assert "go with --worlds" in capsys.readouterr().err
