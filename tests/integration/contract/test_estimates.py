"""The store's learning writes: the deciding model's estimates, on every store.

``apply_learning`` marks a batch of posts learned, replaces the account's arm statistics by the
deciding policy's estimates and adds one ``learning_updates`` row, at once; the seed-named views
and ``arm_leaderboard`` show those estimates ranked by the model's mean.

Run on every backend of the contract suite (tests/integration/contract/__init__.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from agent.errors import ConstraintViolation
from agent.store.schema import ARM_VIEWS, arm_statistics, learning_updates
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    METHOD,
    account,
    arm_stat,
    count,
    learn,
    learned_stats,
    posted,
    rows,
    take,
)


def by_key(stats: list[Any]) -> list[Any]:
    return sorted(stats, key=lambda s: (s.dimension, s.arm))


async def test_apply_learning_writes_a_batch_once(store: SqlStore) -> None:
    acc = await account(store)
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR)
    await take(store, first.id, 24 * HOUR, T0 + 24 * HOUR)
    await take(store, second.id, 24 * HOUR, T0 + 25 * HOUR)
    learned_at = T0 + 30 * HOUR

    done = await learn(store, acc, second.id, content_ids=[first.id, second.id], now=learned_at)
    again = await learn(
        store,
        acc,
        second.id,
        content_ids=[first.id, second.id],
        stats=learned_stats(acc, posts=50),
        now=learned_at + HOUR,
    )

    assert (done, again) == (2, 0)
    assert await store.arm_stats(acc) == by_key(learned_stats(acc))
    [update] = await rows(store, sa.select(learning_updates))
    assert (update.account_id, update.content_id) == (acc, second.id)
    assert (update.created_at, update.update_type) == (learned_at, "model_estimates")
    assert update.evidence == {"reward": 2.5, "arms": {"hook": "question"}}
    assert update.updates_applied == {"model": "joint", "changes": []}
    assert update.insights_summary == {"leaders": {"hook": {"arm": "question"}}}
    for post in (first, second):
        after = await store.get_post(post.id)
        assert after is not None and after.learned_at == learned_at
    assert await store.posts_to_learn(method=METHOD, need_attribution=False) == []
    assert (await store.counts())["learning_updates"] == 1


async def test_apply_learning_replaces_the_accounts_estimates(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR)
    elsewhere = await posted(store, other, posted_at=T0)
    await learn(store, acc, first.id)
    await learn(store, other, elsewhere.id, stats=learned_stats(other))

    # the model now has a topic dimension and no longer the hook it had (a catalogue change)
    grown = [
        *learned_stats(acc, posts=2, mean=4.0, p_best=0.9)[:2],
        arm_stat(acc, "topic", "sleep", posts=2, mean=1.0),
    ]
    assert await learn(store, acc, second.id, stats=grown, now=T0 + 40 * HOUR) == 1

    assert await store.arm_stats(acc) == by_key(grown)
    assert await store.arm_stats(other) == by_key(learned_stats(other))
    assert await count(store, arm_statistics) == 6
    st = arm_statistics
    [updated_at] = await rows(
        store, sa.select(st.c.updated_at).where(st.c.account_id == acc, st.c.arm == "tip")
    )
    assert updated_at[0] == T0 + 40 * HOUR
    assert await count(store, learning_updates) == 3


async def test_apply_learning_rolls_back_when_a_write_fails(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    broken = [*learned_stats(acc), arm_stat(acc + 1000, "hook", "question")]  # no such account

    with pytest.raises(ConstraintViolation):
        await learn(store, acc, post.id, stats=broken)

    after = await store.get_post(post.id)
    assert after is not None and after.learned_at is None
    assert await count(store, arm_statistics) == 0
    assert await count(store, learning_updates) == 0
    assert await learn(store, acc, post.id) == 1


async def test_concurrent_apply_learning_applies_once(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)

    results = await asyncio.gather(*(learn(store, acc, post.id) for _ in range(4)))

    assert sorted(results) == [0, 0, 0, 1]
    assert await count(store, learning_updates) == 1
    assert await count(store, arm_statistics) == 3


async def test_views_show_the_models_estimates_ranked_by_its_mean(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    estimates = {  # dimension -> (arm, posts, mean, low, high, p_best)
        "content_type": [("tip", 4, 2.0, 1.0, 3.0, 0.2), ("story", 9, 3.5, 2.5, 4.5, 0.8)],
        "formula": [("list", 2, 0.5, 0.1, 1.5, 1.0)],
        "hook": [("question", 0, 1.0, 0.2, 2.0, 0.6), ("bold", 3, 0.9, 0.3, 1.9, 0.4)],
        "topic": [("sleep", 5, 1.2, 0.6, 2.0, 1.0)],
        "hour": [("09", 1, 0.7, 0.1, 2.2, 0.3), ("18", 6, 1.7, 1.1, 2.6, 0.7)],
    }
    stats = [
        arm_stat(acc, d, arm, posts=n, mean=m, interval_low=lo, interval_high=hi, p_best=p)
        for d, arms in estimates.items()
        for arm, n, m, lo, hi, p in arms
    ]
    assert await learn(store, acc, post.id, stats=stats, now=T0 + 30 * HOUR)

    async def view(name: str) -> list[dict[str, Any]]:
        found = await rows(store, sa.text(f"SELECT * FROM {name}"))
        return [dict(r._mapping) for r in found]

    for name, dimension in ARM_VIEWS.items():
        shown = await view(name)
        expected = sorted(estimates[dimension], key=lambda e: -e[2])
        assert [r[dimension] for r in shown] == [e[0] for e in expected], name
        assert [r["rank"] for r in shown] == list(range(1, len(expected) + 1))
        top, best = shown[0], expected[0]
        assert (top["account_id"], top["account"], top["model"]) == (acc, "main", "joint")
        assert top["posts_count"] == best[1]
        assert top["mean"] == pytest.approx(best[2])
        assert (top["interval_low"], top["interval_high"]) == pytest.approx(best[3:5])
        assert top["p_best"] == pytest.approx(best[5])
    board = await view("arm_leaderboard")
    leaders = {r["dimension"]: r["arm"] for r in board if r["rank"] == 1}
    assert leaders == {
        "content_type": "story",
        "formula": "list",
        "hook": "question",
        "topic": "sleep",
        "hour": "18",
    }
    assert len(board) == len(stats)
