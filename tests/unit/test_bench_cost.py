"""bench/cost.py: before and after in one run, on a sandbox billing X's pay-per-use prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cost


def test_one_day_costs_less_per_post_after_than_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.jsonl"
    assert cost.main(["--days", "1.5", "--seeds", "1", "--json", str(out)]) == 0
    runs = {r["setting"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(runs) == {"before", "after"}
    assert runs["after"]["posts"] == runs["before"]["posts"] > 0
    assert runs["after"]["readings_per_day"] < runs["before"]["readings_per_day"] / 10
    assert runs["after"]["cost_per_post_usd"] < runs["before"]["cost_per_post_usd"] / 2
    table = capsys.readouterr().out
    assert "| before |" in table and "| after |" in table


def test_bad_arguments_are_refused_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--days", "0"]) == 2
    assert "error:" in capsys.readouterr().err
