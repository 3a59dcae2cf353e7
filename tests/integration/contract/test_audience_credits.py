"""The Store contract, multi-touch credits (learning/touch.py): stored per follow, model and post,
replaced for recent follows in one step, read back per model, summed by the
``post_touch_credit`` view, and gone with a forgotten person or past the retention purge. (Run
on every backend: see ``__init__.py``.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from agent.audience_models import AudienceKind
from agent.errors import ConstraintViolation
from agent.store.schema import audience_credits
from agent.store.sql import SqlStore
from learning.touch import Credit
from tests.conftest import T0
from tests.integration.contract.factories import account, count, posted, rows
from tests.integration.contract.test_audience import event

DAY = timedelta(days=1)
K = AudienceKind


async def members(store: SqlStore, account_id: int) -> dict[str, int]:
    return {m.user_id: m.id for m in await store.audience_members(account_id)}


async def test_credits_are_replaced_for_recent_follows_and_read_per_model(
    store: SqlStore,
) -> None:
    main = await account(store)
    first = await posted(store, main, posted_at=T0)
    second = await posted(store, main, posted_at=T0 + DAY)
    await store.record_audience(
        main, [event(K.FOLLOW, "ann", 2), event(K.FOLLOW, "bob", 5)], now=T0 + 6 * DAY
    )
    who = await members(store, main)
    ann = [
        Credit(
            model="linear",
            member_id=who["ann"],
            followed_at=T0 + 2 * DAY,
            content_id=first.id,
            credit=0.5,
        ),
        Credit(
            model="linear",
            member_id=who["ann"],
            followed_at=T0 + 2 * DAY,
            content_id=second.id,
            credit=0.5,
        ),
        Credit(
            model="last_touch",
            member_id=who["ann"],
            followed_at=T0 + 2 * DAY,
            content_id=second.id,
            credit=1.0,
        ),
    ]
    bob = Credit(
        model="linear",
        member_id=who["bob"],
        followed_at=T0 + 5 * DAY,
        content_id=first.id,
        credit=1.0,
    )
    assert await store.replace_audience_credits(main, [*ann, bob], since=T0) == 4

    # the next day's recomputation of follows since day 4: bob's credit changes, ann's stay
    moved = Credit(
        model="linear",
        member_id=who["bob"],
        followed_at=T0 + 5 * DAY,
        content_id=second.id,
        credit=1.0,
    )
    assert await store.replace_audience_credits(main, [moved], since=T0 + 4 * DAY) == 1

    linear = await store.audience_credits(main, model="linear")
    assert [(c.member_id, c.content_id, c.credit) for c in linear] == [
        (who["ann"], first.id, 0.5),
        (who["ann"], second.id, 0.5),
        (who["bob"], second.id, 1.0),
    ]
    assert len(await store.audience_credits(main)) == 4
    view = await rows(
        store,
        sa.text(
            "SELECT content_id, model, followers, people FROM post_touch_credit "
            "ORDER BY content_id, model"
        ),
    )
    assert [tuple(r) for r in view] == [
        (first.id, "linear", 0.5, 1),
        (second.id, "last_touch", 1.0, 1),
        (second.id, "linear", 1.5, 2),
    ]
    with pytest.raises(ValueError, match="before since"):
        await store.replace_audience_credits(main, ann, since=T0 + 4 * DAY)
    twice = [moved, moved]
    with pytest.raises(ConstraintViolation):
        await store.replace_audience_credits(main, twice, since=T0 + 4 * DAY)
    assert len(await store.audience_credits(main)) == 4  # a refused batch changes nothing


async def test_forget_and_purge_remove_credits(store: SqlStore) -> None:
    main = await account(store)
    post = await posted(store, main, posted_at=T0)
    await store.record_audience(
        main,
        [event(K.FOLLOW, "ann", 1), event(K.FOLLOW, "bob", 1), event(K.FOLLOW, "cy", 30)],
        now=T0 + 31 * DAY,
    )
    who = await members(store, main)
    credits = [
        Credit(
            model="linear",
            member_id=who[u],
            followed_at=T0 + d * DAY,
            content_id=post.id,
            credit=1.0,
        )
        for u, d in (("ann", 1), ("bob", 1), ("cy", 30))
    ]
    await store.replace_audience_credits(main, credits, since=T0)

    await store.forget_person("ann.example")
    assert {c.member_id for c in await store.audience_credits(main)} == {who["bob"], who["cy"]}
    await store.purge_audience(before=T0 + 10 * DAY)
    assert [c.member_id for c in await store.audience_credits(main)] == [who["cy"]]
    assert await count(store, audience_credits) == 1


async def test_the_lean_activity_read_is_the_interactions(store: SqlStore) -> None:
    main = await account(store)
    other = await account(store, "other")
    events = [event(K.FOLLOW, "ann", 0.25), event(K.LIKE, "ann", 1.5), event(K.REPLY, "bob", 3)]
    await store.record_audience(main, events, now=T0 + 4 * DAY)
    await store.record_audience(other, [event(K.LIKE, "cy", 2)], now=T0 + 4 * DAY)

    full = await store.audience_interactions(main)
    lean = await store.audience_activity(main)
    assert [(m, k) for m, k, _ in lean] == [(i.member_id, str(i.kind)) for i in full]
    for (_, _, seconds), i in zip(lean, full, strict=True):
        assert seconds == pytest.approx(i.at.timestamp(), abs=1e-3)
    since = await store.audience_activity(main, since=T0 + DAY)
    assert [k for _, k, _ in since] == ["like", "reply"]
    assert await store.audience_member_ids(main) == sorted(
        m.id for m in await store.audience_members(main)
    )
    assert len(await store.audience_member_ids(other)) == 1
