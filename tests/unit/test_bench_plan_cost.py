"""bench/plan_cost.py: plan cost per history length, folded and not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import plan_cost
from learning.joint_policy import FOLD_BATCH


def test_a_small_run_reports_every_history_and_folds_only_past_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cost.json"
    argv = ["--posts", "20,150", "--plans", "3", "--window", "20", "--json", str(out)]
    assert plan_cost.main(argv) == 0
    runs = {r["posts"]: r for r in json.loads(out.read_text())}
    assert set(runs) == {20, 150}
    assert runs[20]["folded"] == 0  # never past the window + FOLD_BATCH
    assert runs[150]["folded"] >= FOLD_BATCH
    assert all(0 < r["median_ms"] <= r["refresh_ms"] * 10 for r in runs.values())
    assert "| 150 | " in capsys.readouterr().out


def test_bad_arguments_are_refused_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        plan_cost.main(["--posts", "ten"])
    assert exit_.value.code == 2
    assert "expected numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plan_cost.main(["--plans", "0"])
    assert "at least 1" in capsys.readouterr().err
