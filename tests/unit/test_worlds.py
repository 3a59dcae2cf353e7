"""The world generator (adapters/worlds.py) and its CLI (bench/worlds.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from adapters import worlds
from adapters.sandbox import SandboxWorld
from adapters.sandbox_model import DIMENSIONS, Scenario
from bench import learning as harness
from bench import worlds as cli

SUITE = [*worlds.TUNE.seeds(40), *worlds.REPORT.seeds(40)]


@pytest.fixture(scope="module")
def generated() -> list[worlds.World]:
    return [worlds.generate(seed) for seed in SUITE]


def test_the_same_seed_gives_the_same_file_byte_for_byte_even_in_another_process() -> None:
    text = worlds.generate(2003).text
    assert worlds.generate(2003).text == text
    assert worlds.generate(2004).text != text
    other = subprocess.run(
        [sys.executable, "-m", "bench.worlds", "--seed", "2003"],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other.stdout == text


def test_tune_and_report_seed_sets_are_disjoint_and_fixed() -> None:
    tune = set(worlds.TUNE.seeds(worlds.TUNE.size))
    report = set(worlds.REPORT.seeds(worlds.REPORT.size))
    assert not tune & report
    assert worlds.REPORT.seeds(3) == [2000, 2001, 2002]
    assert worlds.TUNE.seeds(worlds.DEFAULT_COUNT)[-1] == 1039
    with pytest.raises(ValueError, match="--count must be between 1 and 1000"):
        worlds.REPORT.seeds(0)
    with pytest.raises(ValueError, match="--count"):
        worlds.TUNE.seeds(worlds.TUNE.size + 1)


def test_written_worlds_are_valid_scenario_files_within_the_distribution(tmp_path: Path) -> None:
    paths = worlds.write_worlds(worlds.REPORT.seeds(40), tmp_path)
    for seed, path in zip(worlds.REPORT.seeds(40), paths, strict=True):
        assert path.read_text() == worlds.generate(seed).text
        scenario = Scenario.load(path)
        assert scenario.name == f"world_{seed}"
        low, high = worlds.ARMS_PER_DIMENSION
        assert all(low <= len(scenario.effects[d]) <= high for d in DIMENSIONS)
        assert scenario.bench.posts_per_day in worlds.POSTS_PER_DAY
        assert scenario.bench.days == worlds.BENCH_DAYS
        for step in scenario.drift:  # the change ends a full report window before the run does
            assert step.at_day + step.ramp_days <= worlds.BENCH_DAYS - worlds.AFTER_CHANGE_DAYS


def test_the_suite_covers_every_kind_of_world(generated: list[worlds.World]) -> None:
    structures = Counter(w.structure for w in generated)
    drifts = Counter(w.drift for w in generated)
    assert set(structures) == {s for s, _ in worlds.STRUCTURES}
    assert set(drifts) == {d for d, _ in worlds.DRIFT_KINDS}
    assert any(len(w.drift_dimensions) >= 2 for w in generated)  # several dimensions at once
    assert {d for w in generated for d in w.drift_dimensions} == set(DIMENSIONS)
    followers = [w.data["account"]["initial_followers"] for w in generated]
    assert min(followers) < 200 and max(followers) > 5000
    assert len({w.data["bench"]["posts_per_day"] for w in generated}) >= 4
    assert len({w.data["audience"]["follower_lag"]["shape"] for w in generated}) >= 3
    assert any(w.clashes for w in generated)
    # a dimension that does not matter exists in the main worlds too
    assert any(w.structure == "main" and len(w.matters) < 3 for w in generated)


def test_pair_only_worlds_have_average_parts_and_a_best_pair(
    generated: list[worlds.World],
) -> None:
    pair_only = [w for w in generated if w.structure == "pairs_only"]
    assert pair_only
    bound = math.exp(2 * 4 * worlds.NEGLIGIBLE_SCALE[1])  # reach x follow, |z| < 4
    for world in pair_only:
        effects, pairs = world.data["effects"], world.data["interactions"]
        for dim in DIMENSIONS:
            for triple in effects[dim].values():
                assert 1 / bound < triple["reach"] * triple["follow"] < bound
        assert pairs and all(p["follow"] >= worlds.PAIR_FOLLOW[0] for p in pairs)
        best = worlds.oracle_arms(effects, pairs)
        assert any(all(best[d] == a for d, a in p["arms"].items()) for p in pairs)
        assert world.drift == "none"


def test_each_drift_changes_the_true_best_arm_of_exactly_its_dimensions(
    generated: list[worlds.World], tmp_path: Path
) -> None:
    drifting = [w for w in generated if w.drift != "none"]
    assert any(w.drift == "gradual" for w in drifting)
    for world in drifting:
        path = tmp_path / f"{world.name}.yaml"
        path.write_text(world.text)
        scenario = Scenario.load(path)
        step = scenario.drift[0]
        assert (step.ramp_days > 0) == (world.drift == "gradual")
        sandbox = SandboxWorld(scenario, seed=1, start=harness.START)
        try:
            truth = sandbox.ground_truth()
            catalogue = {d: list(arms) for d, arms in truth.arms.items()}
            before = harness.best_arms(truth, catalogue, step.at_day - 0.01, "followers")
            after = harness.best_arms(
                truth, catalogue, step.at_day + step.ramp_days + 0.01, "followers"
            )
        finally:
            sandbox.close()
        changed = tuple(d for d in DIMENSIONS if before[d] != after[d])
        assert changed == world.drift_dimensions, world.seed


def test_cli_lists_or_writes_worlds_and_refuses_a_bad_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--seed-set", "tune", "--count", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 worlds" in printed and "1000: " in printed and "1001: " in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world_1000.yaml", "world_1001.yaml"]
    assert cli.main(["--seed-set", "report", "--count", "0"]) == 2
    assert "--count must be between 1 and 1000" in capsys.readouterr().err


def test_a_kind_selects_the_first_drifting_or_stationary_worlds_of_a_set() -> None:
    drifting = worlds.TUNE.seeds(5, "drift")
    stationary = worlds.TUNE.seeds(5, "stationary")
    assert not set(drifting) & set(stationary)
    assert all(worlds.generate(s).drift != "none" for s in drifting)
    assert all(worlds.generate(s).drift == "none" for s in stationary)
    # the first ones: every world skipped before the last one taken is of the other kind
    skipped = set(range(worlds.TUNE.first, drifting[-1])) - set(drifting)
    assert skipped and all(worlds.generate(s).drift == "none" for s in skipped)
    assert worlds.TUNE.seeds(3, "all") == [1000, 1001, 1002]
    with pytest.raises(ValueError, match="--kind must be one of all, drift, stationary"):
        worlds.TUNE.seeds(3, "gradual")
    tiny = worlds.SeedSet(name="tiny", first=1000, size=3)
    with pytest.raises(ValueError, match="the tiny set has only"):
        tiny.seeds(3, "drift")


def test_cli_lists_only_the_kind_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--seed-set", "report", "--count", "3", "--kind", "drift"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split(":")[0]) for line in lines] == worlds.REPORT.seeds(3, "drift")
    assert all("no drift" not in line for line in lines)
