"""bench/experiments.py: a small seeded run measures what it says (figures sane, not fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import experiments as bx


def test_a_small_run_shows_the_sequential_test_honest_and_peeking_inflated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exp.json"
    bx.main(["--runs", "200", "--seed", "3", "--json", str(out)])
    figures = json.loads(out.read_text())
    assert [f["metric"] for f in figures] == ["followers per post", "engagement rate"]
    for f in figures:
        assert f["planned_posts_per_variant"] > f["fixed_horizon_posts_per_variant"]
        assert f["aa_msprt"]["low"] <= 0.05  # alpha within the simulation's interval
        assert f["aa_peeking_welch"]["value"] > 2 * max(f["aa_msprt"]["value"], 0.05)
        assert f["power_msprt"]["high"] >= 0.8 - 0.1
        assert f["median_posts_to_decision"] <= f["planned_posts_per_variant"]
    assert "| followers per post | 200 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--runs", "0"], "at least 1"), (["--alpha", "2"], "between 0 and 1")],
)
def test_bad_options_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        bx.parse(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
