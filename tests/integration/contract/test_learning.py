"""The Store contract, attribution and learning: which posts are ready, follower attributions
written once, the learning history, and a learning step applied once with the arm statistics
behind the views.
(Run on every backend: see ``__init__.py``.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from agent.errors import ConstraintViolation
from agent.models import (
    PostCounts,
)
from agent.store.schema import (
    follower_attributions,
)
from agent.store.sql import SqlStore
from tests.conftest import T0
from tests.integration.contract.factories import (
    HOUR,
    METHOD,
    account,
    attribution,
    count,
    learn,
    planned,
    posted,
    rows,
    take,
)


async def test_posts_to_attribute_lists_posts_whose_window_closed(store: SqlStore) -> None:
    acc = await account(store)
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + 2 * HOUR)
    await planned(store, acc, scheduled_for=T0)

    async def ids(closed_before: datetime, method: str = METHOD, window: float = 24.0) -> list[int]:
        posts = await store.posts_to_attribute(
            closed_before=closed_before, method=method, window_hours=window
        )
        return [p.id for p in posts]

    assert await ids(T0 + 24 * HOUR - timedelta(seconds=1)) == []
    assert await ids(T0 + 24 * HOUR) == [first.id]
    assert await ids(T0 + 26 * HOUR) == [first.id, second.id]

    await store.add_attribution(attribution(first.id), now=T0 + 26 * HOUR)

    assert await ids(T0 + 26 * HOUR) == [second.id]
    assert await ids(T0 + 26 * HOUR, method="other") == [first.id, second.id]
    assert await ids(T0 + 99 * HOUR, window=48.0) == [first.id, second.id]


async def test_add_attribution_is_unique_per_content_method_and_window(store: SqlStore) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    await store.add_attribution(attribution(post.id), now=T0 + 25 * HOUR)

    with pytest.raises(ConstraintViolation):
        await store.add_attribution(attribution(post.id, followers_gained=9.0), now=T0 + 26 * HOUR)

    fa = follower_attributions
    [row] = await rows(store, sa.select(fa))
    assert (row.content_id, row.attribution_method, row.window_hours) == (post.id, METHOD, 24.0)
    assert (row.followers_gained, row.confidence_score) == (2.5, 0.75)
    assert row.inputs == {"baseline_per_hour": 0.04, "overlapping_posts": [3, 4]}
    assert row.created_at == T0 + 25 * HOUR
    await store.add_attribution(attribution(post.id, window_hours=48.0), now=T0 + 49 * HOUR)
    await store.add_attribution(attribution(post.id, attribution_method="other"), now=T0)
    assert await count(store, fa) == 3


async def test_posted_between_returns_posts_with_their_latest_counts(store: SqlStore) -> None:
    acc = await account(store)
    other = await account(store, "second")
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + HOUR)
    await posted(store, acc, posted_at=T0 + 10 * HOUR)
    await posted(store, other, posted_at=T0)
    await take(store, first.id, 4 * HOUR, T0 + 4 * HOUR, likes=10, replies=2, quotes=1)
    # taken after the longer horizon: the longer horizon's counts still win
    await take(store, first.id, HOUR, T0 + 5 * HOUR, likes=3, reposts=1, profile_clicks=2)
    await take(
        store, first.id, 24 * HOUR, T0 + 25 * HOUR, likes=20, impressions=900, profile_clicks=6
    )
    await take(store, second.id, HOUR, T0 + 2 * HOUR, likes=1, impressions=80, profile_clicks=1)
    # (metrics() adds reposts=2 and replies=3 to every snapshot: 25 and 6 engagements)

    found = await store.posted_between(acc, T0, T0 + HOUR)  # both ends included

    assert [p.id for p, _counts in found] == [first.id, second.id]
    assert found[0][0] == first
    assert found[0][1] == PostCounts(
        engagements=25, impressions=900, profile_clicks=6, hours_observed=25.0
    )
    assert found[1][1] == PostCounts(
        engagements=6, impressions=80, profile_clicks=1, hours_observed=1.0
    )
    [(_, never_polled)] = await store.posted_between(acc, T0 + 10 * HOUR, T0 + 10 * HOUR)
    assert never_polled == PostCounts()  # no snapshot taken: zeros, not observed
    assert await store.posted_between(acc, T0 + 11 * HOUR, T0 + 12 * HOUR) == []


async def test_posts_to_learn_waits_for_the_final_snapshot_and_attribution(
    store: SqlStore,
) -> None:
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    await posted(store, acc, posted_at=T0 + HOUR)  # never polled
    await take(store, post.id, HOUR, T0 + HOUR)
    await take(store, post.id, 4 * HOUR, T0 + 4 * HOUR)

    assert await store.posts_to_learn(method=METHOD, need_attribution=False) == []

    await take(store, post.id, 24 * HOUR, T0 + 25 * HOUR, likes=40, impressions=800)
    [item] = await store.posts_to_learn(method=METHOD, need_attribution=False)
    assert item.post == await store.get_post(post.id)
    assert item.attribution is None
    assert (item.final.horizon_hours, item.final.taken_at) == (24.0, T0 + 25 * HOUR)
    assert (item.final.likes, item.final.impressions, item.final.followers_at) == (40, 800, 1000)
    assert item.final.hours_since_post == pytest.approx(25.0)
    assert item.final.engagement_rate == pytest.approx(45 / 800)
    assert await store.posts_to_learn(method=METHOD, need_attribution=True) == []

    await store.add_attribution(attribution(post.id), now=T0 + 25 * HOUR)

    [item] = await store.posts_to_learn(method=METHOD, need_attribution=True)
    assert item.post.id == post.id
    assert item.attribution == attribution(post.id)
    assert await store.posts_to_learn(method="other", need_attribution=True) == []
    assert await store.posts_to_learn(method=METHOD, need_attribution=True, limit=0) == []


async def test_learning_history_shows_each_posted_post_with_its_latest_outcome(
    store: SqlStore,
) -> None:
    acc = await account(store)
    other = await account(store, "second")
    first = await posted(store, acc, posted_at=T0)
    second = await posted(store, acc, posted_at=T0 + 2 * HOUR)
    await posted(store, other, posted_at=T0)  # another account's post is not in the history
    await take(store, first.id, HOUR, T0 + HOUR, likes=3, reposts=1, replies=0)
    await take(
        store, first.id, 24 * HOUR, T0 + 25 * HOUR, likes=30, reposts=2, replies=1, profile_clicks=7
    )
    await store.add_attribution(attribution(first.id, followers_gained=4.5), now=T0 + 25 * HOUR)
    await learn(store, acc, first.id, now=T0 + 26 * HOUR)

    old, new = await store.learning_history(acc, method=METHOD)

    assert (old.content_id, new.content_id) == (first.id, second.id)
    assert old.posted_at == T0 and old.arms == first.arms
    assert (old.engagements, old.hours_observed) == (33, pytest.approx(25.0))
    assert old.profile_clicks == 7  # of the latest snapshot, like the engagements
    assert (old.followers, old.learned) == (4.5, True)
    assert (new.engagements, new.hours_observed, new.followers, new.learned) == (
        0,
        None,
        None,
        False,
    )
    [only] = await store.learning_history(acc, method=METHOD, since=T0 + HOUR)
    assert only.content_id == second.id
    [unattributed, _] = await store.learning_history(acc, method="other")
    assert unattributed.followers is None


async def test_learning_history_read_between_changes_shows_each_change(store: SqlStore) -> None:
    """Regression (memory store's cached rows): each snapshot, attribution and learning mark
    that lands after a read shows in the next read."""
    acc = await account(store)
    post = await posted(store, acc, posted_at=T0)
    [before] = await store.learning_history(acc, method=METHOD)
    await take(store, post.id, HOUR, T0 + HOUR, likes=3, reposts=1, replies=0, profile_clicks=2)
    [polled] = await store.learning_history(acc, method=METHOD)
    await take(store, post.id, 24 * HOUR, T0 + 24 * HOUR, likes=9, reposts=1, replies=0)
    await store.add_attribution(attribution(post.id, followers_gained=2.0), now=T0 + 25 * HOUR)
    [attributed] = await store.learning_history(acc, method=METHOD)
    await learn(store, acc, post.id, now=T0 + 26 * HOUR)
    [learned] = await store.learning_history(acc, method=METHOD)

    assert (before.engagements, before.hours_observed, before.followers) == (0, None, None)
    assert (polled.engagements, polled.profile_clicks, polled.followers) == (4, 2, None)
    assert (attributed.engagements, attributed.followers, attributed.learned) == (10, 2.0, False)
    assert learned.learned and learned.followers == 2.0
