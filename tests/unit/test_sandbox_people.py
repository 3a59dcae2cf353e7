"""The sandbox's people (adapters/sandbox_people.py) agree with its aggregate counters: at any
moment, counting the people who liked (reposted, replied to, quoted) a post gives what
``fetch_metrics`` reports, and the people following give ``fetch_account``'s followers; the same
people whether the time is read in many small steps or one."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from tests.conftest import T0

HOUR = timedelta(hours=1)
LABELS = {"content_type": "tip", "formula": "list", "hook": "question"}


async def test_people_add_up_to_the_counters_at_every_moment() -> None:
    clock = VirtualClock(T0)
    world = SandboxWorld(Scenario.load("default"), seed=11, start=T0)
    platform = world.platform("acct", now=clock.now)
    posts = []
    for i in range(4):
        clock.advance_to(T0 + i * 5 * HOUR)
        posted = await platform.publish(f"post {i}", idempotency_key=f"k{i}", labels=LABELS)
        posts.append(posted.platform_post_id)
    for hours in (1, 3, 7, 20, 30, 60, 100):
        clock.advance_to(T0 + hours * HOUR)
        people = world.people("acct", clock.now())
        acts = Counter((e.post_id, e.kind) for e in people.events if e.post_id is not None)
        metrics = await platform.fetch_metrics(posts)
        for post in posts:
            m = metrics[post]
            assert (
                acts[(post, "like")],
                acts[(post, "repost")],
                acts[(post, "reply")],
                acts[(post, "quote")],
            ) == (m.likes, m.reposts, m.replies, m.quotes), (hours, post)
        account = await platform.fetch_account()
        assert len(people.followers) == account.followers, hours
    assert sum(acts.values()) > 50 and any(e.kind == "unfollow" for e in people.events)

    clock = VirtualClock(T0)  # the same posts, the time read once at the end
    once = SandboxWorld(Scenario.load("default"), seed=11, start=T0)
    again = once.platform("acct", now=clock.now)
    for i in range(4):
        clock.advance_to(T0 + i * 5 * HOUR)
        await again.publish(f"post {i}", idempotency_key=f"k{i}", labels=LABELS)
    clock.advance_to(T0 + 100 * HOUR)
    assert once.people("acct", clock.now()).events == people.events
    world.close()
    once.close()
