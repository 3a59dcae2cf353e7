"""Retained followers per post (agent/retained.py), the experiments' ``retained_followers``
metric, on a hand-built audience history whose answer is counted by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agent.audience_models import AudienceEvent, AudienceKind
from agent.experiments import Sample, decide
from agent.models import PostStatus
from agent.retained import MEASURED_AFTER, measured, retained_followers
from tests.report_sim import simulate
from tests.unit.test_experiments import experiment


def ev(kind: AudienceKind, who: str, at: Any, **post: Any) -> AudienceEvent:
    return AudienceEvent(
        kind=kind, user_id=who, handle=None, at=at, source_id=f"{kind}:{who}:{at:%s}", **post
    )


async def test_retained_followers_count_who_a_post_brought_and_kept_a_week(tmp_path: Path) -> None:
    sim = await simulate(tmp_path, days=1)
    try:
        store = sim.store
        (account_id,) = (await store.account_names()).keys()
        posted = await store.list_posts(statuses=(PostStatus.POSTED,), limit=10)
        first, second = sorted(posted, key=lambda p: p.posted_at)[:2]
        t1, t2 = first.posted_at, second.posted_at
        h = timedelta(hours=1)
        events = [
            # ann touched the first post, then followed: retained
            ev(AudienceKind.LIKE, "ann", t1 + h, content_id=first.id),
            ev(AudienceKind.FOLLOW, "ann", t1 + 2 * h),
            # bob too, but left after two days: not retained
            ev(AudienceKind.LIKE, "bob", t1 + h, content_id=first.id),
            ev(AudienceKind.FOLLOW, "bob", t1 + 3 * h),
            ev(AudienceKind.UNFOLLOW, "bob", t1 + timedelta(days=2)),
            # cat's follow names the first post itself: retained
            ev(AudienceKind.FOLLOW, "cat", t1 + timedelta(days=1), content_id=first.id),
            # dan liked it but followed eight days later: past the last-touch window
            ev(AudienceKind.LIKE, "dan", t1 + h, content_id=first.id),
            ev(AudienceKind.FOLLOW, "dan", t1 + timedelta(days=8)),
            # eve's touch is on the second post, which is not final yet
            ev(AudienceKind.REPLY, "eve", t2 + h, content_id=second.id),
            ev(AudienceKind.FOLLOW, "eve", t2 + 2 * h),
        ]
        await store.record_audience(account_id, events, now=t1 + timedelta(days=9))
        now = t1 + MEASURED_AFTER
        assert measured(t1, now) and not measured(t2, now)
        kept = await retained_followers(
            store, account_id, [(first.id, t1), (second.id, t2)], now=now
        )
        assert kept == {first.id: 2.0}
        later = await retained_followers(
            store, account_id, [(first.id, t1), (second.id, t2)], now=t2 + MEASURED_AFTER
        )
        assert later == {first.id: 2.0, second.id: 1.0}
    finally:
        await sim.built.aclose()


def test_retained_followers_are_decided_by_the_same_rules_as_other_metrics() -> None:
    """Regression: the metric was accepted but never measured (only the maximum duration could
    end such an experiment)."""
    rng = np.random.default_rng(6)
    e = experiment(metric="retained_followers", max_posts_per_variant=50)
    huge = {
        "a": Sample(values=tuple(rng.poisson(1, 40).astype(float))),
        "b": Sample(values=tuple(rng.poisson(9, 40).astype(float))),
    }
    d = decide(e, huge, days=2, rng=np.random.default_rng(0))
    assert (d.rule, d.winner) == ("significance", "b")
