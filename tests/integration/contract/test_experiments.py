"""The Store contract, planned experiments: created as drafts with their variants, moved through
their statuses compare-and-set, posts assigned before they are written, promotions recorded with
their learning_updates row and undone. (Run on every backend: see ``__init__.py``.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agent.errors import ConstraintViolation
from agent.models import ExperimentStatus, NewExperiment, NewVariant
from agent.store.experiment_rows import PROMOTION, PROMOTION_UNDONE
from agent.store.memory import MemoryStore
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import account, planned

HOUR = timedelta(hours=1)
RUNNING, STOPPED, COMPLETED, DRAFT = (
    ExperimentStatus.RUNNING,
    ExperimentStatus.STOPPED,
    ExperimentStatus.COMPLETED,
    ExperimentStatus.DRAFT,
)


def new_experiment(account_id: int, **overrides: Any) -> NewExperiment:
    values: dict[str, Any] = {
        "account_id": account_id,
        "name": "stat hook",
        "hypothesis": "a surprising stat brings more followers than a myth buster",
        "dimension": "hook",
        "metric": "followers_per_post",
        "mde": 0.3,
        "alpha": 0.05,
        "power": 0.8,
        "baseline_mean": 4.0,
        "baseline_sd": 3.5,
        "max_posts_per_variant": 180,
        "max_days": 60.0,
        "block_size": 4,
        "seed": 11,
        "stop_rules": {"significance": True, "poor_performer": {"below": 0.02, "after": 20}},
        "variants": (
            NewVariant(name="control", value="myth_buster", control=True),
            NewVariant(name="stat", value="surprising_stat"),
        ),
    }
    return NewExperiment(**(values | overrides))


async def learning_updates(store: Any) -> list[dict[str, Any]]:
    if isinstance(store, MemoryStore):
        from agent.store.memory_tables import exported

        return [exported("learning_updates", r) for r in store._rows["learning_updates"].values()]
    from agent.store.schema import learning_updates as table

    async with store.engine.connect() as conn:
        result = await conn.execute(sa.select(table).order_by(table.c.id))
        return [dict(r) for r in result.mappings()]


async def test_a_created_experiment_is_a_draft_with_its_variants_and_plan(store: SqlStore) -> None:
    main = await account(store)
    made = await store.create_experiment(new_experiment(main), now=T0)
    assert made.status is DRAFT and made.created_at == T0 and made.started_at is None
    assert [(v.name, v.value, v.control, v.active) for v in made.variants] == [
        ("control", "myth_buster", True, True),
        ("stat", "surprising_stat", False, True),
    ]
    assert made.plan.stop_rules == {
        "significance": True,
        "poor_performer": {"below": 0.02, "after": 20},
    }
    assert (made.plan.max_posts_per_variant, made.plan.mde, made.plan.seed) == (180, 0.3, 11)
    assert await store.get_experiment(made.id) == made
    assert await store.experiments(account_id=main) == [made]
    assert await store.experiments(statuses=[RUNNING]) == []
    assert await store.get_experiment(made.id + 100) is None


async def test_an_experiment_needs_two_distinct_variants_and_a_known_account(
    store: SqlStore,
) -> None:
    main = await account(store)
    one = (NewVariant(name="a", value="x"),)
    with pytest.raises(ValueError, match="two or more variants"):
        await store.create_experiment(new_experiment(main, variants=one), now=T0)
    with pytest.raises(ConstraintViolation):
        await store.create_experiment(new_experiment(main + 99), now=T0)
    assert await store.experiments() == []


async def test_status_moves_compare_and_set_and_records_the_decision(store: SqlStore) -> None:
    main = await account(store)
    made = await store.create_experiment(new_experiment(main), now=T0)
    assert await store.set_experiment_status(made.id, expected=[DRAFT], status=RUNNING, now=T0)
    # a second start (another worker, a repeated command) changes nothing
    assert not await store.set_experiment_status(
        made.id, expected=[DRAFT], status=RUNNING, now=T0 + HOUR
    )
    assert await store.set_experiment_status(
        made.id,
        expected=[RUNNING],
        status=COMPLETED,
        now=T0 + 2 * HOUR,
        winner="stat",
        decision="significance",
        reason="p = 0.01 <= alpha 0.05",
        evidence={"p_value": 0.01},
    )
    done = await store.get_experiment(made.id)
    assert done is not None and done.status is COMPLETED
    assert (done.started_at, done.stopped_at) == (T0, T0 + 2 * HOUR)
    assert (done.winner, done.decision, done.evidence) == (
        "stat",
        "significance",
        {"p_value": 0.01},
    )
    assert not await store.set_experiment_status(
        made.id, expected=[RUNNING], status=STOPPED, now=T0 + 3 * HOUR
    )
    assert await store.experiments(statuses=[COMPLETED]) == [done]


async def test_posts_are_assigned_in_sequence_before_they_exist_then_linked(
    store: SqlStore,
) -> None:
    main = await account(store)
    made = await store.create_experiment(new_experiment(main), now=T0)
    control, stat = made.variants
    first = await store.assign_variant(made.id, stat.id, seq=0, now=T0)
    assert first.content_id is None and first.seq == 0
    with pytest.raises(ConstraintViolation):
        await store.assign_variant(made.id, control.id, seq=0, now=T0)
    second = await store.assign_variant(made.id, control.id, seq=1, now=T0)
    post = await planned(store, main)
    await store.link_assignment(first.id, post.id)
    found = await store.assignments(made.id)
    assert [(a.seq, a.variant_id, a.content_id) for a in found] == [
        (0, stat.id, post.id),
        (1, control.id, None),
    ]
    assert second.id != first.id


async def test_a_stopped_variant_stays_stopped_and_state_is_kept(store: SqlStore) -> None:
    main = await account(store)
    made = await store.create_experiment(new_experiment(main), now=T0)
    assert await store.stop_variant(made.id, "stat", reason="engagement 1% < 2%", now=T0)
    assert not await store.stop_variant(made.id, "stat", reason="again", now=T0 + HOUR)
    assert not await store.stop_variant(made.id, "nope", reason="unknown", now=T0)
    await store.save_experiment_state(made.id, {"p": {"stat": 0.4}}, now=T0 + HOUR)
    found = await store.get_experiment(made.id)
    assert found is not None and found.state == {"p": {"stat": 0.4}}
    stat = found.variant("stat")
    assert (stat.active, stat.stopped_at, stat.stopped_reason) == (False, T0, "engagement 1% < 2%")
    assert found.variant("control").active


async def test_a_promotion_is_recorded_with_its_learning_update_and_can_be_undone(
    store: SqlStore,
) -> None:
    main = await account(store)
    made = await store.create_experiment(new_experiment(main), now=T0)
    kwargs: dict[str, Any] = {"evidence": {"p_value": 0.01}, "updates_applied": {"retired": ["x"]}}
    # not ended, no winner: refused
    assert not await store.record_promotion(made.id, undo=False, now=T0, **kwargs)
    await store.set_experiment_status(made.id, expected=[DRAFT], status=RUNNING, now=T0)
    assert await store.experiment_accounts() == {main}
    await store.set_experiment_status(
        made.id, expected=[RUNNING], status=COMPLETED, now=T0, winner="stat", decision="bayes"
    )
    assert await store.experiment_accounts() == set()
    assert not await store.record_promotion(made.id, undo=True, now=T0, **kwargs)
    assert await store.record_promotion(made.id, undo=False, now=T0 + HOUR, **kwargs)
    assert not await store.record_promotion(made.id, undo=False, now=T0 + HOUR, **kwargs)
    assert await store.experiment_accounts() == {main}
    promoted = await store.get_experiment(made.id)
    assert promoted is not None and promoted.promoted and promoted.promoted_at == T0 + HOUR
    assert await store.record_promotion(made.id, undo=True, now=T0 + 2 * HOUR, **kwargs)
    undone = await store.get_experiment(made.id)
    assert undone is not None and not undone.promoted
    assert undone.promotion_undone_at == T0 + 2 * HOUR
    rows = await learning_updates(store)
    assert [(r["update_type"], r["component"], r["created_at"]) for r in rows] == [
        (PROMOTION, "hook", T0 + HOUR),
        (PROMOTION_UNDONE, "hook", T0 + 2 * HOUR),
    ]
    assert rows[0]["evidence"] == {"experiment_id": made.id, "p_value": 0.01}
    assert rows[0]["updates_applied"] == {"retired": ["x"]}
    assert rows[0]["insights_summary"] == {"winner": "stat", "decision": "bayes"}
