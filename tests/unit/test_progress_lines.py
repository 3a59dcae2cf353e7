"""Progress lines for long work off a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agent.progress_lines import ProgressLines


def lines_for(updates: list[float], *, total: float = 30, every: float = 0.25) -> list[str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    ticks = iter(range(1000))
    progress = ProgressLines(
        console, label="simulating", total=total, every=every, clock=lambda: float(next(ticks))
    )
    for done in updates:
        progress.update(done, f"day {done:g}/{total:g}")
    return buffer.getvalue().splitlines()


def test_a_line_each_time_the_work_passes_a_step_and_one_at_the_end() -> None:
    printed = lines_for([1, 2, 7.5, 8, 16, 29, 30, 30])
    assert [line.split(",")[0] for line in printed] == [
        "simulating: 25% (day 7.5/30)",
        "simulating: 53% (day 16/30)",
        "simulating: 97% (day 29/30)",
        "simulating: 100% (day 30/30)",
    ]
    assert printed[-1].endswith(" s")


def test_a_jump_over_several_steps_prints_one_line() -> None:
    assert len(lines_for([29.9], every=0.05)) == 1


def test_nothing_before_the_first_step_and_bad_totals_are_refused() -> None:
    assert lines_for([0.5, 1.0]) == []
    with pytest.raises(ValueError):
        ProgressLines(Console(file=io.StringIO()), label="x", total=0)
