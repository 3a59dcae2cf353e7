"""The Store contract, the audience (docs/audience.md): batches of events recorded once by source
id, the member's follow state (re-follow included, whatever order events arrive in), scores and
tiers, forgetting a person everywhere, and the retention purge. (Run on every backend: see
``__init__.py``.) Rows are counted in the database itself, and for ``forget_person`` every audience
table and view is searched for the person.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agent.audience_models import AudienceEvent, AudienceKind, MemberScore, Tier
from agent.conversation_models import Conversation, ConversationKind
from agent.errors import ConstraintViolation
from agent.store.schema import AUDIENCE_VIEWS, audience_interactions, audience_members
from agent.store.sql import SqlStore
from learning.audience import RETENTION_WEEKS, Span, cohort_retention
from tests.conftest import T0
from tests.integration.contract.factories import account, count, inspected, posted

DAY = timedelta(days=1)
K = AudienceKind


def event(kind: AudienceKind, user: str, at_day: float, **overrides: Any) -> AudienceEvent:
    values: dict[str, Any] = {
        "kind": kind,
        "user_id": user,
        "handle": f"@{user}.example",
        "at": T0 + at_day * DAY,
        "source_id": f"{kind}:{user}:{at_day}",
    }
    return AudienceEvent(**(values | overrides))


def said(reply_id: str, user: str, handle: str | None, parent: str | None) -> Conversation:
    """A reply (a mention when ``parent`` is None) by ``user``, whose text names ``user`` too."""
    return Conversation(
        kind=ConversationKind.REPLY if parent else ConversationKind.MENTION,
        platform_post_id=reply_id,
        parent_post_id=parent,
        author_id=user,
        author_handle=handle,
        text=f"thanks from {user}",
        at=T0 + DAY,
    )


async def test_a_batch_is_stored_once_by_source_id(store: SqlStore) -> None:
    main = await account(store)
    batch = [event(K.FOLLOW, "ann", 0), event(K.LIKE, "ann", 1), event(K.LIKE, "bob", 1)]

    first = await store.record_audience(main, batch, now=T0 + 2 * DAY)
    again = await store.record_audience(main, [*batch, batch[1]], now=T0 + 3 * DAY)

    assert (first.stored, first.duplicates, first.new_members) == (3, 0, 2)
    assert (again.stored, again.duplicates, again.new_members) == (0, 4, 0)
    assert await count(store, audience_interactions) == 3
    assert await count(store, audience_members) == 2
    members = {m.user_id: m for m in await store.audience_members(main)}
    assert members["ann"].handle == "ann.example"  # stored without the "@"
    assert members["ann"].following and not members["bob"].following
    assert members["bob"].first_seen_at == T0 + DAY


async def test_a_duplicate_inside_one_batch_is_stored_once(store: SqlStore) -> None:
    main = await account(store)
    like = event(K.LIKE, "ann", 1)
    done = await store.record_audience(main, [like, like], now=T0)
    assert (done.stored, done.duplicates) == (1, 1)
    assert await count(store, audience_interactions) == 1


async def test_source_ids_are_per_account(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    like = event(K.LIKE, "ann", 1)
    await store.record_audience(main, [like], now=T0)
    done = await store.record_audience(other, [like], now=T0)
    assert done.stored == 1
    assert len(await store.audience_members(other)) == 1


async def test_unfollow_then_refollow_whatever_the_order_of_reading(store: SqlStore) -> None:
    main = await account(store)
    follow, unfollow, refollow = (
        event(K.FOLLOW, "ann", 0),
        event(K.UNFOLLOW, "ann", 10),
        event(K.FOLLOW, "ann", 20),
    )
    await store.record_audience(main, [follow], now=T0)
    await store.record_audience(main, [refollow], now=T0 + 21 * DAY)
    await store.record_audience(main, [unfollow], now=T0 + 22 * DAY)  # older, read late

    (ann,) = await store.audience_members(main)
    assert ann.followed_at == T0  # the first follow anchors the cohort
    assert ann.cohort == "2026-03-02"  # T0 is a Monday
    assert ann.unfollowed_at is None and ann.following
    assert ann.follow_changed_at == T0 + 20 * DAY

    await store.record_audience(main, [event(K.UNFOLLOW, "ann", 30)], now=T0 + 30 * DAY)
    (ann,) = await store.audience_members(main)
    assert ann.unfollowed_at == T0 + 30 * DAY and not ann.following


async def test_a_follow_read_late_moves_the_first_follow_and_the_cohort(store: SqlStore) -> None:
    main = await account(store)
    await store.record_audience(main, [event(K.FOLLOW, "ann", 9)], now=T0 + 9 * DAY)
    await store.record_audience(main, [event(K.FOLLOW, "ann", 1, source_id="early")], now=T0)
    (ann,) = await store.audience_members(main)
    assert (ann.followed_at, ann.cohort) == (T0 + DAY, "2026-03-02")


async def test_an_event_names_our_post_by_its_platform_id(store: SqlStore) -> None:
    main = await account(store)
    post = await posted(store, main, posted_at=T0)
    assert post.platform_post_id is not None
    await store.record_audience(
        main,
        [
            event(K.REPLY, "ann", 1, platform_post_id=post.platform_post_id),
            event(K.LIKE, "ann", 2, platform_post_id="not-ours"),
            event(K.REPOST, "bob", 2, content_id=post.id),
        ],
        now=T0 + 3 * DAY,
    )
    found = await store.audience_interactions(main)
    assert [(i.kind, i.content_id) for i in found] == [
        (K.REPLY, post.id),
        (K.LIKE, None),
        (K.REPOST, post.id),
    ]
    assert found[1].platform_post_id == "not-ours"
    since = await store.audience_interactions(
        main, since=T0 + 2 * DAY, member_id=found[0].member_id
    )
    assert [i.kind for i in since] == [K.LIKE]


async def test_an_event_of_an_unknown_account_or_post_is_refused(store: SqlStore) -> None:
    main = await account(store)
    with pytest.raises(ConstraintViolation):
        await store.record_audience(999, [event(K.LIKE, "ann", 1)], now=T0)
    with pytest.raises(ConstraintViolation):
        await store.record_audience(main, [event(K.LIKE, "ann", 1, content_id=4242)], now=T0)


async def test_an_event_without_a_source_id_is_refused(store: SqlStore) -> None:
    main = await account(store)
    with pytest.raises(ValueError, match="source_id"):
        await store.record_audience(main, [event(K.LIKE, "ann", 1, source_id="")], now=T0)


async def test_scores_and_tiers_are_written_for_the_accounts_members_only(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    await store.record_audience(main, [event(K.LIKE, "ann", 1)], now=T0)
    await store.record_audience(other, [event(K.LIKE, "bob", 1)], now=T0)
    (ann,) = await store.audience_members(main)
    (bob,) = await store.audience_members(other)
    assert (ann.engagement_score, ann.tier) == (0.0, Tier.INACTIVE)

    written = await store.set_audience_scores(
        main,
        [
            MemberScore(member_id=ann.id, score=512.5, tier=Tier.SUPER_FAN),
            MemberScore(member_id=bob.id, score=99.0, tier=Tier.LURKER),  # not main's
        ],
        now=T0 + 2 * DAY,
    )

    assert written == 1
    (ann,) = await store.audience_members(main)
    (bob,) = await store.audience_members(other)
    assert (ann.engagement_score, ann.tier, ann.updated_at) == (512.5, Tier.SUPER_FAN, T0 + 2 * DAY)
    assert (bob.engagement_score, bob.tier) == (0.0, Tier.INACTIVE)
    assert await store.audience_accounts() == {main, other}


async def rows_naming(store: SqlStore, *names: str) -> dict[str, int]:
    """Per audience table and view, the rows any of whose text columns holds one of ``names``
    (any case)."""
    found: dict[str, int] = {}
    async with inspected(store) as engine, engine.connect() as conn:
        relations = ["audience_members", "audience_interactions", "conversations", *AUDIENCE_VIEWS]
        for relation in relations:
            rows = (await conn.execute(sa.text(f"SELECT * FROM {relation}"))).all()
            found[relation] = sum(
                1
                for row in rows
                if any(n.lower() in str(value).lower() for value in row for n in names)
            )
    return found


async def test_forget_leaves_no_row_naming_the_person(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    post = await posted(store, main, posted_at=T0)
    ann = [
        event(K.FOLLOW, "ann", 0, content_id=post.id),
        event(K.LIKE, "ann", 1, content_id=post.id),
        event(K.REPLY, "ann", 2, content_id=post.id),
    ]
    await store.record_audience(main, [*ann, event(K.LIKE, "bob", 1, content_id=post.id)], now=T0)
    await store.record_audience(other, [event(K.FOLLOW, "ann", 3)], now=T0)
    await store.record_conversations(
        main,
        [
            said("r1", "ann", "@Ann.example", post.platform_post_id),
            said("r2", "bob", "bob.x", None),
        ],
        now=T0,
    )
    await store.record_conversations(other, [said("m1", "ann", None, None)], now=T0)
    assert sum((await rows_naming(store, "ann.example", "ann")).values()) > 0

    gone = await store.forget_person("@ANN.example")

    assert (gone.members, gone.interactions, gone.conversations) == (2, 4, 2)
    assert await rows_naming(store, "ann.example", "ann") == dict.fromkeys(
        ["audience_members", "audience_interactions", "conversations", *AUDIENCE_VIEWS], 0
    )
    assert [c.author_id for c in await store.conversations(main)] == ["bob"]
    assert [m.user_id for m in await store.audience_members(main)] == ["bob"]
    assert await count(store, audience_interactions) == 1


async def test_forget_in_one_account_or_by_user_id_and_an_unknown_person(store: SqlStore) -> None:
    main = await account(store, "main")
    other = await account(store, "other")
    await store.record_audience(main, [event(K.LIKE, "ann", 1)], now=T0)
    await store.record_audience(other, [event(K.LIKE, "ann", 1)], now=T0)

    nobody = await store.forget_person("nobody")
    in_main = await store.forget_person("ann.example", account_id=main)
    by_id = await store.forget_person("ann")  # the platform user id

    assert (nobody.members, nobody.interactions) == (0, 0)
    assert (in_main.members, in_main.interactions) == (1, 1)
    assert (by_id.members, by_id.interactions) == (1, 1)
    assert await count(store, audience_members) == 0


async def test_purge_removes_old_interactions_and_members_left_without_any(store: SqlStore) -> None:
    main = await account(store)
    await store.record_audience(
        main,
        [
            event(K.LIKE, "old", 0),  # a lurker from long ago: gone with their like
            event(K.FOLLOW, "fan", 0),  # still follows: kept, their follow row purged
            event(K.LIKE, "fan", 0),
            event(K.LIKE, "fan", 50),
            event(K.FOLLOW, "gone", 0),  # unfollowed long ago
            event(K.UNFOLLOW, "gone", 5),
            event(K.FOLLOW, "left", 0),  # unfollowed recently: kept
            event(K.UNFOLLOW, "left", 45),
        ],
        now=T0 + 50 * DAY,
    )

    purged = await store.purge_audience(before=T0 + 40 * DAY)

    assert (purged.interactions, purged.members) == (6, 2)
    left = {m.user_id for m in await store.audience_members(main)}
    assert left == {"fan", "left"}
    found = await store.audience_interactions(main)
    assert sorted((i.kind, i.at) for i in found) == [
        (K.LIKE, T0 + 50 * DAY),
        (K.UNFOLLOW, T0 + 45 * DAY),
    ]
    again = await store.purge_audience(before=T0 + 40 * DAY)
    assert (again.interactions, again.members) == (0, 0)
    # a purged notification read again is stored again (the retention period starts over)
    assert (await store.record_audience(main, [event(K.LIKE, "old", 0)], now=T0)).stored == 1


async def test_views_count_tiers_followers_and_post_audience(store: SqlStore) -> None:
    main = await account(store)
    post = await posted(store, main, posted_at=T0)
    await store.record_audience(
        main,
        [
            event(K.FOLLOW, "ann", 0, content_id=post.id),
            event(K.LIKE, "ann", 0.5, content_id=post.id),
            event(K.FOLLOW, "bob", 0, content_id=post.id),
            event(K.UNFOLLOW, "bob", 3),
            event(K.REPLY, "cat", 1, content_id=post.id),
        ],
        now=T0 + 4 * DAY,
    )
    members = {m.user_id: m for m in await store.audience_members(main)}
    await store.set_audience_scores(
        main,
        [MemberScore(member_id=members["ann"].id, score=150.0, tier=Tier.ACTIVE)],
        now=T0 + 4 * DAY,
    )
    async with inspected(store) as engine, engine.connect() as conn:
        tiers = {
            r.tier: (r.members, r.followers)
            for r in await conn.execute(sa.text("SELECT * FROM audience_tiers"))
        }
        top = (await conn.execute(sa.text("SELECT * FROM top_engaged_followers"))).all()
        post_row = (await conn.execute(sa.text("SELECT * FROM post_audience"))).one()
        cohort = (await conn.execute(sa.text("SELECT * FROM cohort_retention"))).one()
    assert tiers == {"active": (1, 1), "inactive": (2, 0)}
    assert [(r.handle, r.rank) for r in top] == [("ann.example", 1)]
    assert (post_row.content_id, post_row.people, post_row.likes, post_row.replies) == (
        post.id,
        3,
        1,
        1,
    )
    assert (post_row.follows, post_row.followers_kept) == (2, 1)
    # T0 is in the past: both are older than 12 weeks; bob stayed 3 days only
    assert (cohort.cohort, cohort.followers, cohort.still_following) == ("2026-03-02", 2, 1)
    assert cohort.retained_1w == pytest.approx(0.5)
    assert cohort.retained_12w == pytest.approx(0.5)


async def test_the_cohort_retention_view_matches_learning_audience(store: SqlStore) -> None:
    """The view (computed by the database at query time) and learning/audience.py agree on a
    random audience; times sit half a day from every checkpoint, so the seconds between the two
    readings of "now" cannot move anyone across one."""
    rng = random.Random(19)
    now = datetime.now(UTC).replace(microsecond=0)
    main = await account(store)
    events, spans = [], []
    for person in range(80):
        followed = now - (rng.randrange(0, 120) + 0.5) * DAY
        stayed = rng.choice([None, rng.randrange(0, 100) + 0.5])
        left = (
            followed + stayed * DAY
            if stayed is not None and followed + stayed * DAY < now
            else None
        )
        user = f"p{person}"
        events.append(event(K.FOLLOW, user, 0, at=followed, source_id=f"f{person}"))
        if left is not None:
            events.append(event(K.UNFOLLOW, user, 0, at=left, source_id=f"u{person}"))
        spans.append(Span(followed_at=followed, unfollowed_at=left))
    await store.record_audience(main, events, now=now)

    async with inspected(store) as engine, engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM cohort_retention ORDER BY cohort"))).all()
    expected = cohort_retention(spans, now=now)
    assert len(rows) == len(expected) > 10
    for row, cohort in zip(rows, expected, strict=True):
        assert (row.cohort, row.followers, row.still_following) == (
            cohort.week,
            cohort.followers,
            cohort.still_following,
        )
        for n in RETENTION_WEEKS:
            found, wanted = getattr(row, f"retained_{n}w"), cohort.retained[n]
            assert (found is None) == (wanted is None), (cohort.week, n)
            if wanted is not None:
                assert found == pytest.approx(wanted), (cohort.week, n)


async def test_two_batches_naming_a_new_person_at_once_both_count(store: SqlStore) -> None:
    """Two workers read the same new person at the same moment (their follow in one batch,
    their unfollow in the other): one member row, both events, the unfollow's state."""
    main = await account(store)
    await asyncio.gather(
        store.record_audience(main, [event(K.FOLLOW, "ann", 0)], now=T0),
        store.record_audience(main, [event(K.UNFOLLOW, "ann", 5)], now=T0),
    )
    (ann,) = await store.audience_members(main)
    assert (ann.followed_at, ann.unfollowed_at) == (T0, T0 + 5 * DAY)
    assert await count(store, audience_interactions) == 2
