"""The cycles end to end in virtual time: a real SQLite store, the in-memory sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.base import PublishedPost
from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles import CYCLES, reconcile_cycle
from agent.cycles.poll import poll_cycle
from agent.cycles.publish import publish_cycle
from agent.errors import DuplicateContent
from agent.generators.template import TemplateGenerator
from agent.models import PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.schema import content, follower_attributions, performance_snapshots
from agent.store.sql import SqlStore
from tests.conftest import T0, make_config
from tests.unit.vt_harness import ALWAYS, Harness, make_harness


@pytest.fixture
async def harness(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, **getattr(request, "param", {})) as h:
        yield h


async def test_three_simulated_days_plan_publish_poll_attribute_learn_and_report(
    harness: Harness,
) -> None:
    with capture_logs() as logs:
        result = await run_until(harness.agent, harness.clock, T0 + timedelta(days=3))
    events = {entry["event"] for entry in logs}
    assert {
        "post_planned",
        "post_published",
        "snapshot_taken",
        "followers_attributed",
        "posterior_updated",
        "health_written",
    } <= events
    posts = await harness.rows(content)
    posted = [p for p in posts if p.status == PostStatus.POSTED]
    assert 15 <= len(posted) <= 19  # 6 a day for 3 days, one may still be queued
    assert len(harness.world_posts()) == len(posted)  # exactly once: platform == store
    gaps = [b.posted_at - a.posted_at for a, b in pairwise(posted)]
    assert min(gaps) >= timedelta(minutes=90)
    snaps = await harness.rows(performance_snapshots)
    assert len(snaps) == 3 * len(posted)
    for snap in snaps:
        if snap.due_at.replace(tzinfo=None) < result.end.replace(tzinfo=None):
            assert snap.taken_at is not None
            assert snap.hours_since_post == pytest.approx(snap.horizon_hours, abs=0.01)
    assert result.counts["learning_updates"] >= 5  # learning steps (a batch of posts each)
    learned = [p for p in await harness.rows(content) if p.learned_at is not None]
    assert len(learned) >= 10
    assert harness.agent.stats.totals["learning_updates"] == len(learned)  # posts learned from
    stats = await harness.store.arm_stats(harness.agent.account_ids["demo"])
    # the deciding model's estimates, from every finished post (learned or attributed since)
    assert {s.model for s in stats} == {"joint"}
    assert len(learned) <= sum(s.posts for s in stats if s.dimension == "content_type")
    assert sum(s.posts for s in stats if s.dimension == "content_type") <= len(posted)
    health = await harness.store.latest_health(limit=200)
    assert len(health) >= 70  # one row per hour (per account) that ended
    assert sum(h["posts_succeeded"] for h in health) >= len(posted) - 1


async def test_every_horizon_is_taken_after_the_daemon_was_down_past_it(harness: Harness) -> None:
    await harness.run_cycles("plan", "publish")
    (post,) = [p for p in await harness.rows(content) if p.status == PostStatus.POSTED]
    harness.clock.advance_to(post.posted_at + timedelta(hours=30))  # down for 30 h
    taken = await poll_cycle(harness.agent, harness.clock.now())
    assert taken >= 3
    snaps = [s for s in await harness.rows(performance_snapshots) if s.content_id == post.id]
    assert sorted(s.horizon_hours for s in snaps) == [1.0, 4.0, 24.0]
    for snap in snaps:
        assert snap.taken_at is not None
        assert snap.hours_since_post == pytest.approx(30.0, abs=0.01)  # its real age
        assert snap.likes is not None


async def test_ambiguous_publish_is_reconciled_not_sent_twice(harness: Harness) -> None:
    harness.world.inject_fault("publish_ambiguous", count=1)
    with capture_logs() as logs:
        await harness.run_cycles("plan", "publish")
    assert any(e["event"] == "post_reconciled" and e["outcome"] == "found" for e in logs)
    posts = await harness.rows(content)
    assert [p.status for p in posts] == [PostStatus.POSTED]
    world = harness.world_posts()
    assert len(world) == 1
    assert posts[0].platform_post_id == str(world[0][0])


class AlreadyPosted(DuplicateContent):
    """An adapter's own kind of duplicate-content refusal (a subclass, as the tree allows)."""


class SentThenRefused:
    """The sandbox platform, whose create call lands but answers "duplicate" (as when a first
    send went through unseen and the same text is refused the second time)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, text: str, **kwargs: Any) -> PublishedPost:
        await self.inner.publish(text, **kwargs)
        raise AlreadyPosted("the same text was already posted")


async def test_duplicate_content_subclass_is_reconciled_not_failed_regression(
    harness: Harness,
) -> None:
    # publish.py recognised DuplicateContent by its class name, so an adapter's subclass of it
    # marked a post that was on the platform `failed` instead of reconciling it.
    harness.agent.platforms = {"demo": SentThenRefused(harness.agent.platforms["demo"])}
    with capture_logs() as logs:
        await harness.run_cycles("plan", "publish")
    assert any(e["event"] == "post_reconciled" and e["outcome"] == "found" for e in logs)
    posts = await harness.rows(content)
    assert [p.status for p in posts] == [PostStatus.POSTED]
    assert posts[0].platform_post_id == str(harness.world_posts()[0][0])


async def test_timeout_before_sending_requeues_the_same_post_and_publishes_it_once(
    harness: Harness,
) -> None:
    harness.world.inject_fault("publish_timeout_before", count=1)
    await harness.run_cycles("plan", "publish")
    (post,) = await harness.rows(content)
    assert post.status == PostStatus.PLANNED  # not on the platform: queued again
    assert harness.world_posts() == []
    harness.clock.advance_to(post.scheduled_for)
    await harness.run_cycles("publish")
    (again,) = await harness.rows(content)
    assert again.status == PostStatus.POSTED
    assert again.idempotency_key == post.idempotency_key
    assert again.publish_attempts == 2
    assert len(harness.world_posts()) == 1


async def test_restart_between_intent_and_publish_does_not_post_twice(harness: Harness) -> None:
    # a crash right after the platform accepted the post, before the store recorded it
    await harness.run_cycles("plan")
    (planned,) = await harness.rows(content)
    harness.clock.advance_to(planned.scheduled_for)
    assert await harness.store.begin_publish(planned.id, now=harness.clock.now())
    platform = harness.agent.platforms["demo"]
    published = await platform.publish(planned.text, idempotency_key=planned.idempotency_key)
    # ... process dies here; on restart reconciliation runs first
    assert await reconcile_cycle(harness.agent, harness.clock.now()) == 1
    await harness.run_cycles("publish")
    (post,) = await harness.rows(content)
    assert post.status == PostStatus.POSTED
    assert post.platform_post_id == published.platform_post_id
    assert len(harness.world_posts()) == 1


async def test_rate_limited_post_waits_for_the_reset(harness: Harness) -> None:
    harness.world.inject_fault("rate_limit", count=1)
    with capture_logs() as logs:
        await harness.run_cycles("plan", "publish")
    (post,) = await harness.rows(content)
    assert post.status == PostStatus.PLANNED
    assert post.scheduled_for.replace(tzinfo=None) > harness.clock.now().replace(tzinfo=None)
    assert any(e["event"] == "post_rescheduled" for e in logs)
    assert harness.world_posts() == []
    counters = harness.agent.stats.hours
    assert sum(c.rate_limit_waits for c in counters.values()) == 1


@pytest.mark.parametrize("harness", [{"mode": "dry_run"}], indirect=True)
async def test_dry_run_sends_nothing_but_stores_every_would_be_post(harness: Harness) -> None:
    with capture_logs() as logs:
        await run_until(harness.agent, harness.clock, T0 + timedelta(days=7))  # a simulated week
    posts = await harness.rows(content)
    would_be = [p for p in posts if p.status == PostStatus.DRY_RUN]
    assert len(would_be) >= 35  # 6 a day, less the odd draft the gate turned down
    assert {p.status for p in posts} <= {
        PostStatus.DRY_RUN,
        PostStatus.PLANNED,
        PostStatus.REJECTED,
    }
    assert all(p.text and p.generation_metadata.get("content_type") for p in would_be)
    assert harness.world_posts() == []  # nothing reached the platform
    logged = [e for e in logs if e["event"] == "post_dry_run"]
    assert len(logged) == len(would_be)


@pytest.mark.parametrize(
    "harness",
    [
        {
            "cadence": {
                "posts_per_day": 3,
                "min_gap": "2h",
                "active_hours": {"start": "09:00", "end": "17:00", "timezone": "Europe/Berlin"},
            }
        }
    ],
    indirect=True,
)
async def test_cadence_keeps_active_hours_gap_and_daily_cap(harness: Harness) -> None:
    from zoneinfo import ZoneInfo

    await run_until(harness.agent, harness.clock, T0 + timedelta(days=4))
    posted = [p for p in await harness.rows(content) if p.status == PostStatus.POSTED]
    assert len(posted) >= 9
    berlin = ZoneInfo("Europe/Berlin")
    per_day: dict[object, int] = {}
    for p in posted:
        local = p.posted_at.replace(tzinfo=T0.tzinfo).astimezone(berlin)
        assert 9 <= local.hour < 17
        per_day[local.date()] = per_day.get(local.date(), 0) + 1
    assert max(per_day.values()) <= 3
    times = sorted(p.posted_at for p in posted)
    assert min(b - a for a, b in pairwise(times)) >= timedelta(hours=2)


async def test_publish_cycle_does_nothing_before_the_scheduled_time(harness: Harness) -> None:
    await harness.run_cycles("plan", "publish")
    harness.clock.advance_to(harness.clock.now() + timedelta(minutes=1))
    await harness.run_cycles("plan")
    posts = await harness.rows(content)
    assert [p.status for p in posts] == [PostStatus.POSTED, PostStatus.PLANNED]
    assert await publish_cycle(harness.agent, harness.clock.now()) == 0


async def test_publish_left_unrecorded_by_a_database_outage_is_reconciled_without_restart(
    harness: Harness,
) -> None:
    await harness.run_cycles("plan")
    (planned,) = await harness.rows(content)
    harness.clock.advance_to(planned.scheduled_for)
    assert await harness.store.begin_publish(planned.id, now=harness.clock.now())
    await harness.agent.platforms["demo"].publish(
        planned.text, idempotency_key=planned.idempotency_key
    )
    # finish_publish never happened (the database was unreachable at that moment)
    harness.clock.advance_to(harness.clock.now() + timedelta(minutes=1))
    await harness.run_cycles("publish")
    assert (await harness.rows(content))[0].status == PostStatus.PUBLISHING  # too fresh
    harness.clock.advance_to(harness.clock.now() + timedelta(minutes=2))
    await harness.run_cycles("publish")
    (post,) = await harness.rows(content)
    assert post.status == PostStatus.POSTED
    assert len(harness.world_posts()) == 1


async def test_database_from_a_newer_release_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from agent.bootstrap import open_store
    from agent.errors import SchemaOutOfDate

    url = f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}"
    store = await open_store(url, auto_migrate=True)
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    await store.close()
    with pytest.raises(SchemaOutOfDate, match="unknown to this version"):
        await open_store(url, auto_migrate=False)


def test_the_simulator_runs_every_cycle_of_the_daemon() -> None:
    from agent.simulator import ORDER, STEP_CYCLES

    assert sorted(ORDER) == sorted(CYCLES)
    assert set().union(*STEP_CYCLES.values()) == set(CYCLES)


async def test_planner_stays_within_the_platforms_own_daily_cap(tmp_path: Path) -> None:
    scenario = Scenario.load("default")
    tight = scenario.model_copy(
        update={"platform": scenario.platform.model_copy(update={"posts_per_day": 2})}
    )
    config = make_config(cadence={"active_hours": ALWAYS, "jitter": "0s", "posts_per_day": 6})
    clock = VirtualClock(T0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cap.db'}")
    await upgrade(engine)
    store = SqlStore(engine)
    world = SandboxWorld(tight, seed=3, start=T0)
    agent = Agent(
        config=config,
        store=store,
        platforms={a.name: world.platform(a.name, now=clock.now) for a in config.accounts},
        generator=TemplateGenerator(seed=3),
        clock=clock,
        seed=3,
    )
    try:
        with capture_logs() as logs:
            await run_until(agent, clock, T0 + timedelta(hours=23))
        async with store.engine.connect() as conn:
            rows = (await conn.execute(sa.select(content.c.status))).all()
        assert sum(1 for (status,) in rows if status == PostStatus.POSTED) == 2
        assert not any(e["event"] == "post_rescheduled" for e in logs)  # never hit the wall
    finally:
        await store.close()
        world.close()


@pytest.mark.parametrize(
    ("compare", "methods"),
    [(True, {"deconvolution", "time_window"}), (False, {"time_window"})],
)
async def test_compare_attribution_off_computes_only_the_learners_method(
    tmp_path: Path, compare: bool, methods: set[str]
) -> None:
    learning = {"attribution_method": "time_window", "compare_attribution": compare}
    async with make_harness(tmp_path, learning=learning) as h:
        await run_until(h.agent, h.clock, T0 + timedelta(days=2))
        found = await h.rows(follower_attributions)
    assert found, "posts were attributed"
    assert {a.attribution_method for a in found} == methods
    per_post = {(a.content_id, a.attribution_method) for a in found}
    assert len(per_post) == len(found)  # each post once per method


async def test_each_post_knows_the_accounts_followers_when_it_was_posted(harness: Harness) -> None:
    """The learner's audience covariate: a post's audience is the last follower reading at or
    before its publication (Store.account_series)."""
    from agent import learner

    await run_until(harness.agent, harness.clock, T0 + timedelta(days=2))
    account = harness.agent.config.accounts[0]
    account_id = harness.agent.account_ids[account.name]
    past = await learner.history(harness.agent, account_id)
    readings = await harness.store.account_series(account_id, T0, harness.clock.now())
    assert len(past) >= 8 and len(readings) >= 8
    for outcome in past:
        before = [r for r in readings if r.taken_at <= outcome.posted_at] or readings[:1]
        assert outcome.audience == float(before[-1].followers)
    assert len({o.audience for o in past}) > 1  # the account grew


async def test_policy_state_is_kept_per_account_regression(harness: Harness) -> None:
    """Regression: one policy object was shared by every account, so the joint learner's
    per-history state (empirical-Bayes spreads, the changes found) mixed accounts. The policy is
    now a stateless value and its state a typed value kept per account name."""
    from agent.learner import choose_arms, policy_for
    from learning.joint_policy import JointState

    account = harness.agent.config.accounts[0]
    other = account.model_copy(update={"name": "other"})
    assert policy_for(harness.agent, account) == policy_for(harness.agent, other)
    account_id = harness.agent.account_ids[account.name]

    await choose_arms(harness.agent, account, account_id, harness.clock.now())
    first = harness.agent.learner_states[account.name]
    await choose_arms(harness.agent, account, account_id, harness.clock.now())

    assert set(harness.agent.learner_states) == {account.name}
    assert isinstance(first, JointState)
    assert isinstance(harness.agent.learner_states[account.name], JointState)
    assert "policies" not in harness.agent.caches


async def test_a_follower_reading_stored_late_by_another_worker_still_counts(
    harness: Harness,
) -> None:
    """Audience reads the follower readings incrementally; one stored after a later one (another
    worker's, with an earlier time) is still picked up."""
    from adapters.base import AccountInfo
    from agent.learner import Audience

    await run_until(harness.agent, harness.clock, T0 + timedelta(days=1))
    account_id = harness.agent.account_ids[harness.agent.config.accounts[0].name]
    audience = Audience()
    await audience.update(harness.agent, account_id, harness.clock.now())
    kept = len(audience.times)
    last = audience.times[-1]
    late = last - timedelta(minutes=7)  # between two readings this worker has seen
    info = AccountInfo(handle="demo", followers=123_456, following=1, posts=1)
    await harness.store.add_account_snapshot(account_id, info, taken_at=late)
    await audience.update(harness.agent, account_id, harness.clock.now())
    assert len(audience.times) == kept + 1
    assert audience.times == sorted(audience.times)
    assert audience.at(late + timedelta(seconds=1)) == 123_456.0
    await audience.update(harness.agent, account_id, harness.clock.now())
    assert len(audience.times) == kept + 1  # read again, kept once
