"""bench/store.py: a tiny run on SQLite completes every lifecycle, the raw-driver baselines send
exactly what the store sends, and bad options are refused."""

from __future__ import annotations

import pytest

from bench.store import STAGES, Result, add_ratios, parse, run_backend, warmup_each


async def test_a_small_sqlite_run_carries_every_post_through_its_lifecycle() -> None:
    advanced: list[None] = []

    result = await run_backend("sqlite", 3, 2, lambda: advanced.append(None))

    assert len(advanced) == 3 + warmup_each(2) * 2  # timed and warm-up lifecycles
    assert (result.backend, result.posts, result.concurrency) == ("sqlite", 3, 2)
    assert result.posts_per_second > 0
    assert result.cpu_ms_per_lifecycle > 0
    assert set(result.stage_share) == set(STAGES)
    assert sum(result.stage_share.values()) == pytest.approx(1.0, abs=0.01)


async def test_the_raw_sqlite_baselines_run_the_stores_statements_in_its_transactions() -> None:
    store = await run_backend("sqlite", 2, 1, lambda: None)
    raw = [await run_backend(name, 2, 1, lambda: None) for name in ("raw-aiosqlite", "raw-sqlite3")]

    # counted by sqlite3's trace callback, on the same lifecycles
    for baseline in raw:
        assert baseline.per_lifecycle == store.per_lifecycle
    counted = store.per_lifecycle
    assert counted["store_calls"] == 15
    # sqlite3 opens a transaction only before a write: the reads run outside one
    assert 0 < counted["transactions"] < counted["store_calls"] < counted["statements"]
    assert "round_trips" not in counted  # SQLite is in the process


def test_the_cpu_ratio_is_the_stores_over_each_raw_driver_of_its_database() -> None:
    def result(name: str, cpu: float) -> Result:
        return Result(name, 1, 1, 1.0, 1.0, 1.0, cpu, 1.0, 1.0, 1.0, {}, {})

    results = [result("sqlite", 6.0), result("raw-aiosqlite", 2.0), result("raw-sqlite3", 0.5)]
    results += [result("postgresql", 3.0), result("raw-asyncpg", 2.0)]

    add_ratios(results)

    assert results[0].cpu_ratio == {"raw-aiosqlite": 3.0, "raw-sqlite3": 12.0}
    assert results[3].cpu_ratio == {"raw-asyncpg": 1.5}
    assert results[1].cpu_ratio == results[4].cpu_ratio == {}


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
