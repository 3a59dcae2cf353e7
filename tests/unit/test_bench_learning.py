"""The learning benchmark harness (bench/learning.py) on a scenario file outside the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.logs import log
from bench import learning as harness


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "extends: default\n"
        "name: tiny\n"
        "bench: {posts_per_day: 8, days: 2}\n"
        "interactions:\n"
        "  - arms: {formula: story_lesson, hook: personal_confession}\n"
        "    follow: 3.0\n"
    )
    return path


async def test_the_oracle_scores_one_and_uniform_less(scenario: Path) -> None:
    oracle = await harness.run_one(scenario, "oracle", seed=1)
    uniform = await harness.run_one(scenario, "uniform", seed=1)

    assert oracle["posts"] >= 8 and uniform["posts"] >= 8
    assert oracle["fraction_of_oracle"] == pytest.approx(1.0)
    # the interaction makes this pair the best combination: the oracle plays it every time
    assert oracle["best_arm_share_last_30d"] == {"content_type": 1.0, "formula": 1.0, "hook": 1.0}
    assert uniform["fraction_of_oracle"] < 0.8
    assert uniform["regret"] > 0
    assert uniform["timeline"][-1][1] == pytest.approx(uniform["expected_followers"], abs=0.01)
    assert {"scenario", "policy", "seed", "days", "posts_per_day", "seconds"} <= set(uniform)
    assert uniform["posts_per_day"] == 8


def test_best_arms_are_chosen_jointly_where_an_interaction_couples_them(scenario: Path) -> None:
    from adapters.sandbox import SandboxWorld  # the world the benchmark scores against
    from adapters.sandbox_model import Scenario

    world = SandboxWorld(Scenario.load(scenario), seed=1, start=harness.START)
    try:
        truth = world.ground_truth()
        catalogue = {d: list(arms) for d, arms in truth.arms.items()}
        best = harness.best_arms(truth, catalogue, 0.0, "followers")
    finally:
        world.close()

    assert (best["formula"], best["hook"]) == ("story_lesson", "personal_confession")
    assert best["content_type"] == "how_to"


def test_cli_writes_one_json_object_per_run_and_a_table(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.jsonl"
    code = harness.main(
        [
            "--scenario",
            str(scenario),
            "--policy",
            "uniform",
            "--policy",
            "joint",
            "--seeds",
            "1",
            "--days",
            "1",
            "--jobs",
            "1",
            "--json",
            str(out),
        ]
    )

    assert code == 0
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["policy"] for r in runs) == ["joint", "uniform"]
    assert all(r["days"] == 1 for r in runs)
    captured_io = capsys.readouterr()
    printed = captured_io.out
    assert "| tiny | joint | 1 |" in printed and "| tiny | uniform | 1 |" in printed
    # off a terminal, progress as plain lines on stderr (not in the table on stdout)
    progress = [line for line in captured_io.err.splitlines() if line.startswith("runs: ")]
    assert [line.split(",")[0] for line in progress] == ["runs: 50% (1/2)", "runs: 100% (2/2)"]
    assert "runs: " not in printed
    # regression (test_bench_learning_broke_capture_logs): running the harness in process must
    # not reconfigure structlog, or later tests' capture_logs() sees nothing
    with capture_logs() as captured:
        log.info("after_the_harness")
    assert [entry["event"] for entry in captured] == ["after_the_harness"]


def test_cli_refuses_an_unknown_policy_or_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness.main(["--policy", "greedy", "--seeds", "1"]) == 2
    assert "unknown policy 'greedy'" in capsys.readouterr().err
    assert harness.main(["--scenario", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert harness.main(["--kind", "drift", "--seeds", "1"]) == 2
    assert "--kind go with --worlds" in capsys.readouterr().err


def test_bench_config_reads_followers_every_30_minutes_and_attributes_once_unless_set(
    scenario: Path,
) -> None:
    loaded = harness.Scenario.load(scenario)
    default = harness.bench_config(scenario, loaded, "uniform")
    assert default.polling.account_every == harness.BENCH_ACCOUNT_POLL
    assert default.learning.compare_attribution is False
    assert default.learning.policy == "uniform"
    chosen = harness.bench_config(
        scenario,
        loaded,
        "joint",
        ("polling.account_every=10m", "learning.compare_attribution=true"),
    )
    assert chosen.polling.account_every.total_seconds() == 600
    assert chosen.learning.compare_attribution is True


def test_bench_catalogue_scenario_gives_exactly_the_named_arms_even_inside_the_catalogue(
    tmp_path: Path,
) -> None:
    body = (
        "effects:\n"
        "  content_type: {how_to: {follow: 1.5}, question: {follow: 0.8}, data_point: {}}\n"
    )
    auto, exact = tmp_path / "auto.yaml", tmp_path / "exact.yaml"
    auto.write_text(body)
    exact.write_text(body + "bench: {catalogue: scenario}\n")

    def arms(path: Path) -> dict[str, list[str]]:
        cfg = harness.bench_config(str(path), harness.Scenario.load(path), "uniform")
        return cfg.catalogues.arms()

    default = harness.load_config(None).catalogues.arms()
    assert len(default["content_type"]) > 3
    # three arms of the configured catalogue: "auto" keeps the whole catalogue ...
    assert arms(auto) == default
    # ... "scenario" gives exactly the named ones; a dimension naming none keeps the catalogue's
    assert arms(exact)["content_type"] == ["how_to", "question", "data_point"]
    assert arms(exact)["formula"] == default["formula"]
