"""Attribute: credit follower gains to posts once each post's attribution window has closed.

Two methods run side by side and both are stored in ``follower_attributions`` (so they can be
compared with SQL); ``learning.attribution_method`` says which one the learner uses:

- ``time_window``: the seed system's method, done carefully (``learning/attribution.py``);
- ``deconvolution``: the follower series explained as organic growth plus every post's lagged
  contribution, with a learned lag kernel and a prior from each post's latest counts
  (profile clicks, impressions and engagements, from ``Store.posted_between``; those the
  platform does not report are 0 and left out) (``learning/deconvolution.py``).

Several workers: when there is something to attribute, a worker takes the lease
``attribute:<method>`` and reads the posts again under it, so a post is attributed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.core import Agent
from agent.logs import log
from agent.models import Attribution, Post, PostCounts
from learning.attribution import AttributionEstimate, FollowerPoint, PostEvent, time_window
from learning.deconvolution import deconvolution, prior_covariates

LOOKBACK = timedelta(days=3)  # of follower history used around the posts

Method = Callable[
    [
        Sequence[PostEvent],
        Sequence[PostEvent],
        Sequence[FollowerPoint],
        timedelta,
        Mapping[str, PostCounts],
        dict[str, Any],
    ],
    list[AttributionEstimate],
]


def _time_window(
    targets: Sequence[PostEvent],
    posts: Sequence[PostEvent],
    series: Sequence[FollowerPoint],
    window: timedelta,
    counts: Mapping[str, PostCounts],  # unused: sharing by engagement misattributed (see below)
    reuse: dict[str, Any],  # unused: nothing to carry between calls
) -> list[AttributionEstimate]:
    return time_window(targets, posts, series, window=window, baseline_lookback=LOOKBACK)


def _deconvolution(
    targets: Sequence[PostEvent],
    posts: Sequence[PostEvent],
    series: Sequence[FollowerPoint],
    window: timedelta,
    counts: Mapping[str, PostCounts],
    reuse: dict[str, Any],
) -> list[AttributionEstimate]:
    covariates = prior_covariates(
        engagements={pid: float(c.engagements) for pid, c in counts.items()},
        impressions={pid: float(c.impressions) for pid, c in counts.items()},
        profile_clicks={pid: float(c.profile_clicks) for pid, c in counts.items()},
    )
    return deconvolution(targets, posts, series, window=window, covariates=covariates, reuse=reuse)


METHODS: dict[str, Method] = {"time_window": _time_window, "deconvolution": _deconvolution}


async def attribute_cycle(agent: Agent, now: datetime) -> int:
    learning = agent.config.learning
    methods = list(METHODS) if learning.compare_attribution else [learning.attribution_method]
    written = 0
    for method in methods:
        written += await _attribute(agent, now, method)
    return written


async def _attribute(agent: Agent, now: datetime, method: str) -> int:
    window = agent.config.attribution_window
    window_hours = window.total_seconds() / 3600
    targets = await agent.store.posts_to_attribute(
        closed_before=now, method=method, window_hours=window_hours
    )
    if not targets:
        return 0
    async with agent.leased(f"attribute:{method}", now) as held:
        if not held:
            return 0  # another worker is attributing
        if not agent.exclusive:  # what is left once the previous holder is done
            targets = await agent.store.posts_to_attribute(
                closed_before=now, method=method, window_hours=window_hours
            )
        return await _attribute_posts(agent, now, method, targets)


async def _attribute_posts(agent: Agent, now: datetime, method: str, targets: list[Post]) -> int:
    window = agent.config.attribution_window
    window_hours = window.total_seconds() / 3600
    by_account: dict[int, list[Post]] = defaultdict(list)
    for post in targets:
        by_account[post.account_id].append(post)
    written = 0
    for account_id, posts in by_account.items():
        last = await agent.store.last_account_snapshot(account_id)
        if last is None:
            continue
        # a window is closed only when a follower reading exists at or after its end
        ready = [p for p in posts if p.posted_at and p.posted_at + window <= last.taken_at]
        if not ready:
            continue
        first = min(p.posted_at for p in ready if p.posted_at)
        series = await agent.store.account_series(account_id, first - LOOKBACK, now)
        around = await agent.store.posted_between(account_id, first - 2 * LOOKBACK, now)
        # Equal weights when sharing overlapping gains: weighting by engagement credited
        # high-engagement, low-follow posts (questions) with other posts' followers.
        events = [
            PostEvent(post_id=str(p.id), posted_at=p.posted_at, weight=1.0)
            for p, _counts in around
            if p.posted_at is not None
        ]
        ready_ids = {str(p.id) for p in ready}
        estimates = METHODS[method](
            [e for e in events if e.post_id in ready_ids],
            events,
            [FollowerPoint(at=s.taken_at, followers=s.followers) for s in series],
            window,
            {str(p.id): counts for p, counts in around},
            agent.caches.setdefault(f"{method}:{account_id}", {}),  # kept between cycles
        )
        for est in estimates:
            await agent.store.add_attribution(
                Attribution(
                    content_id=int(est.post_id),
                    attribution_method=est.method,
                    window_hours=window_hours,
                    followers_before=est.inputs.get("followers_before"),
                    followers_after=est.inputs.get("followers_after"),
                    followers_gained=est.followers_gained,
                    confidence_score=est.confidence,
                    inputs=dict(est.inputs),
                ),
                now=now,
            )
            written += 1
            log.info(
                "followers_attributed",
                account=agent.account(account_id).name,
                content_id=int(est.post_id),
                followers_gained=round(est.followers_gained, 3),
                confidence=round(est.confidence, 3),
                method=est.method,
            )
    return written
