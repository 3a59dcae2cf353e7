"""The Store contract, leases and the kill switch: named leases with expiry (one planner per
account across workers) and the paused flag every worker reads before publishing.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from agent.store.schema import (
    leases,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    LEASE,
    count,
    rows,
)


async def test_publishing_is_not_paused_until_someone_pauses_it(store: SqlStore) -> None:
    assert await store.paused() == (False, None)


async def test_set_paused_then_resume_keeps_one_row_with_who_and_when(store: SqlStore) -> None:
    from agent.store.schema import runtime_state

    await store.set_paused(True, reason="maintenance", by="cli:ops@host", now=T0)
    assert await store.paused() == (True, "maintenance")

    later = T0 + HOUR
    await store.set_paused(True, reason="still broken", by="cli:ops@host", now=later)
    assert await store.paused() == (True, "still broken")

    await store.set_paused(False, reason="resumed", by="cli:other@host", now=later + HOUR)
    assert await store.paused() == (False, None)

    (row,) = await rows(store, sa.select(runtime_state))
    assert row.key == "paused"
    assert row.value == {"paused": False, "reason": "resumed"}
    assert row.updated_by == "cli:other@host"
    assert row.updated_at == later + HOUR


async def test_concurrent_pauses_leave_one_consistent_row(store: SqlStore) -> None:
    await asyncio.gather(
        *(store.set_paused(True, reason=f"r{i}", by="w", now=T0) for i in range(5))
    )
    paused, reason = await store.paused()
    assert paused and reason in {f"r{i}" for i in range(5)}


async def test_acquire_lease_new_renew_and_refuse(store: SqlStore) -> None:
    assert await store.acquire_lease("plan:1", worker="w1", now=T0, ttl=LEASE)
    assert not await store.acquire_lease("plan:1", worker="w2", now=T0 + LEASE / 2, ttl=LEASE)
    assert await store.acquire_lease("plan:2", worker="w2", now=T0, ttl=LEASE)  # another name
    renewed_at = T0 + LEASE / 2
    assert await store.acquire_lease("plan:1", worker="w1", now=renewed_at, ttl=LEASE)

    # the renewal moved the expiry: still held at the first expiry, not after the second
    assert not await store.acquire_lease("plan:1", worker="w2", now=T0 + LEASE, ttl=LEASE)
    assert not await store.acquire_lease("plan:1", worker="w2", now=renewed_at + LEASE, ttl=LEASE)
    [row] = await rows(store, sa.select(leases).where(leases.c.name == "plan:1"))
    assert (row.holder, row.expires_at, row.acquired_at) == ("w1", renewed_at + LEASE, T0)


async def test_an_expired_lease_is_taken_over(store: SqlStore) -> None:
    assert await store.acquire_lease("followers:1", worker="dead", now=T0, ttl=LEASE)
    later = T0 + LEASE + HOUR / 60
    assert await store.acquire_lease("followers:1", worker="alive", now=later, ttl=LEASE)
    [row] = await rows(store, sa.select(leases).where(leases.c.name == "followers:1"))
    assert (row.holder, row.expires_at, row.acquired_at) == ("alive", later + LEASE, later)
    assert not await store.acquire_lease("followers:1", worker="dead", now=later, ttl=LEASE)


async def test_release_lease_only_by_its_holder(store: SqlStore) -> None:
    assert await store.acquire_lease("learn", worker="w1", now=T0, ttl=LEASE)
    await store.release_lease("learn", worker="w2")  # not w2's: a no-op
    assert not await store.acquire_lease("learn", worker="w2", now=T0, ttl=LEASE)
    await store.release_lease("learn", worker="w1")
    assert await count(store, leases) == 0
    assert await store.acquire_lease("learn", worker="w2", now=T0, ttl=LEASE)
    await store.release_lease("nothing-held", worker="w2")  # unknown: a no-op
    assert await count(store, leases) == 1


async def test_concurrent_acquire_lease_has_one_winner(store: SqlStore) -> None:
    won = await asyncio.gather(
        *(store.acquire_lease("plan:7", worker=f"w{i}", now=T0, ttl=LEASE) for i in range(6))
    )
    assert sum(won) == 1
    [row] = await rows(store, sa.select(leases))
    assert row.holder == f"w{won.index(True)}"


async def test_acquire_leases_takes_the_free_and_expired_ones_in_one_call(store: SqlStore) -> None:
    assert await store.acquire_lease("followers:1", worker="other", now=T0, ttl=LEASE)
    assert await store.acquire_lease("followers:2", worker="dead", now=T0 - 2 * LEASE, ttl=LEASE)
    assert await store.acquire_lease("followers:3", worker="w1", now=T0 - LEASE / 2, ttl=LEASE)
    names = [f"followers:{i}" for i in range(1, 7)] + ["followers:4"]  # a repeat is one lease

    held = await store.acquire_leases(names, worker="w1", now=T0, ttl=LEASE)

    # 1 is another worker's, unexpired; 2 expired (taken over); 3 ours (renewed); 4-6 new
    assert held == {f"followers:{i}" for i in range(2, 7)}
    table = {r.name: r for r in await rows(store, sa.select(leases))}
    assert table["followers:1"].holder == "other"
    assert {table[n].holder for n in held} == {"w1"}
    assert {table[n].expires_at for n in held} == {T0 + LEASE}
    assert table["followers:3"].acquired_at == T0 - LEASE / 2  # a renewal keeps its start
    assert table["followers:2"].acquired_at == T0
    assert await store.acquire_leases([], worker="w1", now=T0, ttl=LEASE) == set()


async def test_release_leases_gives_up_only_the_holders_leases(store: SqlStore) -> None:
    held = await store.acquire_leases(["a", "b", "c"], worker="w1", now=T0, ttl=LEASE)
    assert await store.acquire_lease("d", worker="w2", now=T0, ttl=LEASE)

    await store.release_leases([*held, "d", "unknown"], worker="w1")
    await store.release_leases([], worker="w1")

    assert [r.name for r in await rows(store, sa.select(leases))] == ["d"]  # w2's stays


async def test_acquire_leases_in_more_than_one_chunk(store: SqlStore) -> None:
    from agent.store.claims import LEASE_CHUNK

    names = [f"followers:{i}" for i in range(LEASE_CHUNK + 5)]
    assert await store.acquire_lease(names[-1], worker="w2", now=T0, ttl=LEASE)

    held = await store.acquire_leases(names, worker="w1", now=T0, ttl=LEASE)

    assert held == set(names[:-1])
    await store.release_leases(names, worker="w1")
    assert await count(store, leases) == 1


async def test_concurrent_acquire_leases_split_the_names_without_overlap(store: SqlStore) -> None:
    names = [f"followers:{i}" for i in range(40)]
    won = await asyncio.gather(
        *(store.acquire_leases(names, worker=f"w{i}", now=T0, ttl=LEASE) for i in range(4))
    )
    assert set().union(*won) == set(names)
    assert sum(len(w) for w in won) == len(names)  # each lease has one holder
    table = {r.name: r.holder for r in await rows(store, sa.select(leases))}
    for i, names_won in enumerate(won):
        assert all(table[n] == f"w{i}" for n in names_won)
