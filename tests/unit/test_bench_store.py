"""bench/store.py: a tiny run on SQLite completes every lifecycle, and bad options are refused."""

from __future__ import annotations

import pytest

from bench.store import STAGES, parse, run_backend, warmup_each


async def test_a_small_sqlite_run_carries_every_post_through_its_lifecycle() -> None:
    advanced: list[None] = []

    result = await run_backend("sqlite", 3, 2, lambda: advanced.append(None))

    assert len(advanced) == 3 + warmup_each(2) * 2  # timed and warm-up lifecycles
    assert (result.backend, result.posts, result.concurrency) == ("sqlite", 3, 2)
    assert result.posts_per_second > 0
    assert set(result.stage_share) == set(STAGES)
    assert sum(result.stage_share.values()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    "argv", [["--posts", "0"], ["--concurrency", "-1"], ["--posts", "many"], ["--backend", "x"]]
)
def test_bad_options_are_refused_with_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)

    assert exited.value.code == 2
    assert "error: argument" in capsys.readouterr().err
