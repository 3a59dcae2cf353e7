"""Publish: the exactly-once protocol.

1. ``begin_publish`` commits the post as ``publishing`` (with its idempotency key) before the
   platform is called.
2. The adapter publishes, passing the idempotency key where the platform takes one.
3. Success: ``finish_publish`` marks it ``posted`` with the platform id and creates its due
   snapshot rows, in one transaction.
4. A definite failure marks it ``failed``; a rate limit puts it back to ``planned`` after the
   reset. An ambiguous outcome (timeout after sending, server error, "duplicate", a crash) leaves
   it ``publishing`` and it is **reconciled**: looked for among the account's recent posts by text
   hash, then marked ``posted`` - or, when the platform does not have it, queued again (the same
   idempotency key) up to ``MAX_ATTEMPTS`` times. Nothing is ever re-sent without that look.
5. On start, every ``publishing`` row is reconciled before anything else runs.

When step 3 cannot be written because the database is unreachable, the publish is appended to
the local journal (:mod:`agent.journal`) and written from it when the database answers again:
the journal is replayed at the start of every publish cycle and before the start-up
reconciliation.

The kill switch: ``growthloop pause`` (a row in the store, seen by every worker) or
``GROWTHLOOP_NO_PUBLISH=1`` in a worker's environment stops the publish cycle from sending
anything; queued posts stay ``planned`` and in-flight posts are still reconciled (which only
looks, never sends).

Concurrency: the cycle publishes every due post at once, bounded per platform
(``runtime.concurrency``, :meth:`agent.core.Agent.for_accounts`); an account's own due posts go
out one after the other, so no account ever has two publishes in flight. A ``RateLimited`` puts
that one post back until the reset the platform gave; the other accounts go on.

The circuit breaker (:mod:`agent.breaker`): a suspended account's due posts wait (nothing is
sent); an ``AuthFailed`` suspends the account at once, a streak of one kind of failure after
``failsafe.failure_streak``. A post left ``publishing`` longer than ``alerts.stuck_after`` is
alerted (agent/alerts.py), as is the kill switch.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from adapters.base import PublishedPost, text_hash
from agent import breaker, threads
from agent.alerts import AlertKind
from agent.core import Agent
from agent.errors import (
    DuplicateContent,
    PermanentPlatformError,
    PlatformError,
    RateLimited,
    StoreError,
)
from agent.journal import JournalEntry, PublishJournal
from agent.logs import log
from agent.models import Post, PostStatus
from agent.reading import poll_horizons

# due posts one publish cycle takes (soonest first): in practice all of them; the bound keeps a
# backlog after a long outage from being read into memory at once
DUE_BATCH = 10_000
MAX_ATTEMPTS = 3  # publish attempts of one post before it is marked failed
RECONCILE_MARGIN = timedelta(minutes=10)  # look this far before the attempt for the post
STALE_AFTER = timedelta(minutes=2)  # the default runtime.lease: publishing longer = interrupted
NO_PUBLISH_ENV = "GROWTHLOOP_NO_PUBLISH"  # set to 1 to keep this worker from publishing
_TRUE = {"1", "true", "yes", "on"}


def env_pause_reason() -> str | None:
    """The reason when this worker's environment forbids publishing (read on every call)."""
    if os.environ.get(NO_PUBLISH_ENV, "").strip().lower() in _TRUE:
        return f"{NO_PUBLISH_ENV} is set"
    return None


async def pause_reason(agent: Agent) -> str | None:
    """Why publishing is stopped right now (the environment, then the store), or None."""
    if (reason := env_pause_reason()) is not None:
        return reason
    paused, reason = await agent.store.paused()
    if paused:
        return reason or "paused"
    return None


async def _account_snapshot(agent: Agent, post: Post, now: datetime) -> None:
    """Followers just before the post: the 'before' point of its attribution window."""
    if agent.reads_blocked(post.account_id, now):
        return
    platform = agent.platform_for(post.account_id)
    try:
        async with agent.api_call(post.account_id, "fetch_account"):
            info = await platform.fetch_account()
    except PlatformError as exc:
        log.warning("account_snapshot_failed", account_id=post.account_id, error=str(exc))
        return
    await agent.store.add_account_snapshot(post.account_id, info, taken_at=now)
    agent.last_account_poll[post.account_id] = now


def horizons_for(agent: Agent, account_id: int) -> list[timedelta]:
    """The horizons the account's posts are polled at (fewer where reads are billed)."""
    return poll_horizons(agent.config, agent.platform_for(account_id).prices)


async def mark_posted(agent: Agent, post: Post, published: PublishedPost, now: datetime) -> None:
    """Step 3: record the post ``posted`` (journaled when the database cannot be written)."""
    try:
        done = await agent.store.finish_publish(
            post.id,
            platform_post_id=published.platform_post_id,
            posted_at=published.posted_at,
            horizons=horizons_for(agent, post.account_id),
            now=now,
        )
    except StoreError:
        if agent.journal is None:
            raise
        _journal(agent, agent.journal, post, published, now)
        raise  # the database is down: this cycle stops here; the journal is replayed later
    if done:
        breaker.publish_succeeded(agent, post.account_id)
        agent.count("posts_published", post.account_id)
        log.info(
            "post_published",
            account=agent.account(post.account_id).name,
            platform=agent.platform_for(post.account_id).name,
            content_id=post.id,
            post_id=published.platform_post_id,
            content_type=post.generation_metadata.get("content_type"),
            formula=post.generation_metadata.get("formula"),
            hook=post.generation_metadata.get("hook"),
        )


def _journal(
    agent: Agent, journal: PublishJournal, post: Post, published: PublishedPost, now: datetime
) -> None:
    """The platform has the post but the store could not record it: keep it in the journal."""
    account = agent.account(post.account_id)
    entry = JournalEntry(
        content_id=post.id,
        account=account.name,
        platform=account.platform,
        platform_post_id=published.platform_post_id,
        posted_at=published.posted_at,
        horizons_s=tuple(h.total_seconds() for h in horizons_for(agent, post.account_id)),
        idempotency_key=post.idempotency_key,
        text_hash=post.text_hash,
        written_at=now,
    )
    try:
        journal.append(entry)
    except OSError as exc:
        # nothing more can be done locally; the post stays `publishing` and reconciliation
        # finds it on the platform once the database is back
        log.error("journal_write_failed", content_id=post.id, error=str(exc))
        return
    agent.stats.totals["posts_journaled"] += 1
    log.warning(
        "post_journaled",
        account=account.name,
        content_id=post.id,
        post_id=published.platform_post_id,
        path=str(journal.path),
    )


async def replay_journal(agent: Agent, now: datetime) -> int:
    """Write the journaled publishes to the store (a StoreError while it is still down)."""
    if agent.journal is None:
        return 0
    replayed = await agent.journal.replay(agent.store, now=now)
    if replayed.applied or replayed.rejected:
        for name in replayed.accounts:  # /healthz's totals and the Prometheus counters
            if name in agent.account_ids:
                agent.count("posts_published", agent.account_ids[name])
            else:  # an account no longer configured
                agent.stats.totals["posts_published"] += 1
        log.info(
            "journal_replayed",
            applied=replayed.applied,
            rejected=replayed.rejected,
            torn=replayed.torn,
        )
    return replayed.applied


async def reconcile_post(agent: Agent, post: Post, now: datetime) -> str:
    """Resolve a ``publishing`` post by looking for it on the platform. Returns the outcome."""
    if post.parts:  # a thread: each of its parts is looked for (agent/threads.py)
        return await threads.reconcile_thread(agent, post, now)
    platform = agent.platform_for(post.account_id)
    since = (post.publish_started_at or post.updated_at) - RECONCILE_MARGIN
    try:
        async with agent.api_call(post.account_id, "find_recent"):
            recent = await platform.find_recent(since=since, limit=100)
    except PlatformError as exc:
        log.warning("reconcile_deferred", content_id=post.id, error=str(exc))
        return "deferred"  # stays publishing; the next cycle tries again
    match = next((p for p in recent if text_hash(p.text) == post.text_hash), None)
    if match is not None:
        await mark_posted(agent, post, match, now)
        outcome = "found"
    elif post.publish_attempts >= MAX_ATTEMPTS:
        await agent.store.fail_publish(
            post.id, error=f"not on the platform after {post.publish_attempts} attempts", now=now
        )
        agent.count("posts_failed", post.account_id)
        outcome = "failed"
    else:
        await agent.store.reschedule(
            post.id,
            scheduled_for=now + agent.config.runtime.publish_retry_after,
            error="not on the platform after an interrupted publish; queued again",
            now=now,
        )
        outcome = "requeued"
    log.info("post_reconciled", content_id=post.id, outcome=outcome)
    return outcome


async def reconcile_cycle(agent: Agent, now: datetime) -> int:
    """Resolve every in-flight post (run on start, before anything else); the journal first,
    so a post it holds is recorded from it rather than looked for."""
    await replay_journal(agent, now)
    posts = await agent.store.in_flight()
    if not agent.exclusive:  # another live worker may be publishing some of them right now
        posts = [p for p in posts if interrupted(agent, p, now)]
    for post in posts:
        await reconcile_interrupted(agent, post, now)
    return len(posts)


def interrupted(agent: Agent, post: Post, now: datetime) -> bool:
    """A post ``publishing`` for longer than ``runtime.lease``: its worker was interrupted."""
    return now - (post.publish_started_at or post.updated_at) >= agent.lease


async def reconcile_interrupted(agent: Agent, post: Post, now: datetime) -> None:
    """Reconcile an interrupted publish under the lease ``reconcile:<content_id>``, so that of
    several workers only one looks for it and resolves it (and only if it is still that same
    interrupted attempt)."""
    async with agent.leased(f"reconcile:{post.id}", now) as held:
        if not held:
            return
        if not agent.exclusive:
            current = await agent.store.get_post(post.id)
            if current is None or (current.status, current.publish_started_at) != (
                PostStatus.PUBLISHING,
                post.publish_started_at,
            ):
                return  # resolved by another worker meanwhile
            post = current
        await reconcile_post(agent, post, now)


async def publish_post(agent: Agent, post: Post, now: datetime) -> None:
    account = agent.account(post.account_id)
    if agent.config.mode.value == "dry_run":
        await agent.store.fail_publish(
            post.id, error="dry run: not sent", now=now, status=PostStatus.DRY_RUN
        )
        log.info("post_dry_run", account=account.name, content_id=post.id, text=post.text)
        agent.stats.totals["posts_dry_run"] += 1
        return
    await _account_snapshot(agent, post, now)
    # claimed only while still planned and due: another worker, a cancel or a move (`growthloop
    # posts`) since the due list was read wins
    if not await agent.store.begin_publish(post.id, now=now, due_by=now):
        return
    platform = agent.platforms[account.name]
    arms = post.arms
    labels = {
        "content_type": arms.content_type,
        "formula": arms.formula,
        "hook": arms.hook,
        "topic": arms.topic,
        "format": arms.format,
    }
    try:
        if post.parts:  # a thread: a reply chain, each part its own intent (agent/threads.py)
            await threads.publish_thread(agent, post, now, labels)
            return
        async with agent.api_call(post.account_id, "publish"):
            published = await platform.publish(
                post.text, idempotency_key=post.idempotency_key, labels=labels
            )
    except RateLimited as exc:
        retry_at = max(exc.reset_at or now, now) + abs(agent.jitter(timedelta(minutes=2)))
        await agent.store.reschedule(
            post.id, scheduled_for=retry_at, error=str(exc), now=now, sent=False
        )
        log.warning("post_rescheduled", content_id=post.id, retry_at=retry_at.isoformat())
    except PermanentPlatformError as exc:
        if isinstance(exc, DuplicateContent):  # maybe our own earlier send: look for it
            await reconcile_post(agent, await _reload(agent, post), now)
            return
        await agent.store.fail_publish(post.id, error=f"{type(exc).__name__}: {exc}", now=now)
        agent.count("posts_failed", post.account_id)
        log.error(
            "post_publish_failed",
            account=account.name,
            platform=account.platform,
            content_id=post.id,
            error_type=type(exc).__name__,
            error=str(exc),
        )
        await breaker.publish_failed(agent, account, exc, now)
    except PlatformError as exc:
        log.warning("post_publish_ambiguous", content_id=post.id, error=str(exc))
        outcome = await reconcile_post(agent, await _reload(agent, post), now)
        if outcome != "found":
            await breaker.publish_failed(agent, account, exc, now)
    else:
        await mark_posted(agent, post, published, now)


async def _reload(agent: Agent, post: Post) -> Post:
    return await agent.store.get_post(post.id) or post


async def publish_cycle(agent: Agent, now: datetime) -> int:
    await replay_journal(agent, now)
    paused = await pause_reason(agent)
    # A publish whose result could not be recorded (the database was down, say) stays
    # `publishing`; once the store answers again it is reconciled here, not only at start.
    # Reconciling only looks at the platform, so it runs while paused too.
    for stale in await agent.store.in_flight():
        _alert_if_stuck(agent, stale, now)
        if interrupted(agent, stale, now):
            await reconcile_interrupted(agent, stale, now)
    posts = await agent.store.due_posts(now, limit=DUE_BATCH)
    if paused is not None:
        log.info("publishing_paused", reason=paused, due=len(posts))
        agent.alerts.notify(AlertKind.KILL_SWITCH, f"publishing is paused: {paused}", now=now)
        return 0
    suspended = await breaker.suspended_ids(agent, now)
    agent.breaker.tripped.clear()
    by_account: dict[int, list[Post]] = {}
    for post in posts:  # soonest first; an account's posts go out in turn, one at a time
        by_account.setdefault(post.account_id, []).append(post)

    async def publish_account(account_id: int) -> int:
        sent = 0
        for post in by_account[account_id]:
            if account_id in suspended or account_id in agent.breaker.tripped:
                break  # the circuit breaker holds the account: its posts wait
            await publish_post(agent, post, now)
            sent += 1
        return sent

    return sum(await agent.for_accounts(list(by_account), publish_account))


def _alert_if_stuck(agent: Agent, post: Post, now: datetime) -> None:
    """Alert when a post has been ``publishing`` longer than ``alerts.stuck_after``."""
    since = post.publish_started_at or post.updated_at
    if now - since < agent.config.alerts.stuck_after:
        return
    try:
        account = agent.account(post.account_id).name
    except KeyError:  # an account no longer configured
        account = f"id {post.account_id}"
    agent.alerts.notify(
        AlertKind.STUCK_PUBLISHING,
        f"post {post.id} of account {account!r} has been publishing since {since.isoformat()}",
        now=now,
        account=account,
    )
