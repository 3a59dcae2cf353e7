"""What one post's lifecycle sends PostgreSQL, counted on the wire (bench/store_counts.py's relay):
the SQL store sends what the same statements through bare asyncpg send, round trip for round
trip (no ping before a checkout, no BEGIN/COMMIT around a single statement)."""

from __future__ import annotations

from bench.store import run_backend
from tests.conftest import require_postgres


async def test_a_lifecycle_costs_postgresql_the_round_trips_of_the_raw_driver() -> None:
    await require_postgres()

    store = await run_backend("postgresql", 2, 1, lambda: None)
    raw = await run_backend("raw-asyncpg", 2, 1, lambda: None)

    assert store.per_lifecycle == raw.per_lifecycle
    counted = store.per_lifecycle
    # finish_publish and apply_learning are the only transactions with several statements
    assert counted["transactions"] == 2
    assert counted["round_trips"] < 2 * counted["statements"]


async def test_a_pooled_connection_is_not_pinged_before_use_regression() -> None:
    # pool_pre_ping sent BEGIN, an empty query and ROLLBACK before every store call: 96 round
    # trips per lifecycle where the statements needed 51
    await require_postgres()

    counted = (await run_backend("postgresql", 1, 1, lambda: None)).per_lifecycle

    assert counted["transactions"] < counted["store_calls"]
    assert counted["round_trips"] <= counted["statements"] + 2 * counted["transactions"]
