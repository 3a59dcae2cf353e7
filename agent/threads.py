"""Publishing a thread: a reply chain, every part its own publish intent (docs/threads.md).

A thread is one content row (``generation_metadata.format == "thread"``, its part texts in
``generation_metadata.parts``). The content row goes ``publishing`` as any post does
(``begin_publish``), then each part, in order, follows the exactly-once protocol of its own:

1. ``begin_part`` commits the part as ``publishing`` (its own idempotency key
   ``<content key>:<position>``, and the parent it replies to) before the platform is called;
2. the first part is a :meth:`Platform.publish`, each next one a :meth:`Platform.publish_reply`
   to the previous part (and the root, for Bluesky's reply refs);
3. success: ``finish_part`` records its platform id; the next part replies to it;
4. an ambiguous outcome leaves the part ``publishing`` and the thread is **reconciled**
   (:func:`reconcile_thread`): every ``publishing`` part is looked for among the account's
   recent posts by text hash and recorded ``posted`` when found, else put back to ``planned``
   (it is not on the platform). Then the content row is finished (all parts posted), or queued
   again to resume from the first part not on the platform (at once when part of the chain is
   already public, after ``runtime.publish_retry_after`` otherwise), or given up after
   ``MAX_ATTEMPTS`` - never re-sending a part without that look.

Once every part is posted the content row is marked ``posted`` with the first part's id (its
snapshots are polled over all parts: agent/cycles/poll.py sums them). A part the platform refuses
for good (``PermanentPlatformError``) after the first is on the platform ends the chain there: the
thread is recorded ``posted`` with the parts it has (logged ``thread_cut_short``), so no chain is
ever half-done without a record; a refused first part fails the post as a single post would.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from adapters.base import PublishedPost, ReplyTo, text_hash
from agent import breaker
from agent.core import Agent
from agent.errors import (
    AuthFailed,
    DuplicateContent,
    PermanentPlatformError,
    PlatformError,
    RateLimited,
)
from agent.logs import log
from agent.models import PartStatus, Post, ThreadPart


def part_key(post: Post, position: int) -> str:
    """The idempotency key of one part: the content row's, with the part's position."""
    return f"{post.idempotency_key}:{position}"


async def _parts(agent: Agent, post: Post) -> dict[int, ThreadPart]:
    return {p.position: p for p in await agent.store.thread_parts(post.id)}


def _next_reply(parts: Mapping[int, ThreadPart], position: int) -> ReplyTo | None:
    if position == 0:
        return None
    root, parent = parts[0].platform_post_id, parts[position - 1].platform_post_id
    assert root is not None and parent is not None  # earlier parts are posted
    return ReplyTo(root_id=root, parent_id=parent)


async def publish_thread(agent: Agent, post: Post, now: datetime, labels: dict[str, str]) -> str:
    """Send the thread's parts not yet on the platform, in order (the content row is claimed
    ``publishing`` by the caller). Returns what happened: "posted", "requeued", "rescheduled",
    "failed", "cut_short" or "deferred"."""
    texts = post.parts
    platform = agent.platform_for(post.account_id)
    parts = await _parts(agent, post)
    if any(p.status is PartStatus.PUBLISHING for p in parts.values()):
        # an interrupted attempt's part: look before sending anything
        return await reconcile_thread(agent, post, now)
    for position, text in enumerate(texts):
        if position in parts and parts[position].status is PartStatus.POSTED:
            continue
        reply_to = _next_reply(parts, position)
        key = part_key(post, position)
        if not await agent.store.begin_part(
            post.id,
            position,
            text_hash=text_hash(text),
            idempotency_key=key,
            reply_to=reply_to.parent_id if reply_to else None,
            now=now,
        ):
            return "deferred"  # another attempt holds the part; reconciliation resolves it
        try:
            async with agent.api_call(post.account_id, "publish"):
                if reply_to is None:
                    published = await platform.publish(text, idempotency_key=key, labels=labels)
                else:
                    published = await platform.publish_reply(
                        text, reply_to=reply_to, idempotency_key=key, labels=labels
                    )
        except RateLimited as exc:
            await agent.store.reset_part(post.id, position, error=str(exc), now=now)
            retry_at = max(exc.reset_at or now, now)
            # a "not now", not a failed attempt: the attempt is given back
            await agent.store.reschedule(
                post.id, scheduled_for=retry_at, error=str(exc), now=now, sent=False
            )
            log.warning(
                "thread_rescheduled", content_id=post.id, part=position + 1, retry_at=str(retry_at)
            )
            return "rescheduled"
        except PermanentPlatformError as exc:
            if isinstance(exc, DuplicateContent):  # maybe our own earlier send: look for it
                return await reconcile_thread(agent, await _reload(agent, post), now)
            await agent.store.reset_part(post.id, position, error=str(exc), now=now)
            if position == 0:
                raise  # nothing is public: the caller fails the post as a single post
            if isinstance(exc, AuthFailed):  # the account, not the part: resume once it may post
                await agent.store.reschedule(
                    post.id,
                    scheduled_for=now + agent.config.runtime.publish_retry_after,
                    error=str(exc),
                    now=now,
                    sent=False,
                )
                await breaker.publish_failed(agent, agent.account(post.account_id), exc, now)
                return "rescheduled"
            return await _cut_short(agent, post, now, f"{type(exc).__name__}: {exc}")
        except PlatformError as exc:
            log.warning(
                "thread_part_ambiguous", content_id=post.id, part=position + 1, error=str(exc)
            )
            outcome = await reconcile_thread(agent, await _reload(agent, post), now)
            found = (await _parts(agent, post)).get(position)
            if found is None or found.status is not PartStatus.POSTED:  # as a single post
                await breaker.publish_failed(agent, agent.account(post.account_id), exc, now)
            return outcome
        await agent.store.finish_part(
            post.id,
            position,
            platform_post_id=published.platform_post_id,
            posted_at=published.posted_at,
            now=now,
        )
        log.info(
            "thread_part_published",
            content_id=post.id,
            part=position + 1,
            parts=len(texts),
            post_id=published.platform_post_id,
        )
        parts = await _parts(agent, post)
    await _finish(agent, post, parts, now)
    return "posted"


async def _reload(agent: Agent, post: Post) -> Post:
    return await agent.store.get_post(post.id) or post


async def _finish(agent: Agent, post: Post, parts: Mapping[int, ThreadPart], now: datetime) -> None:
    from agent.cycles import publish as cycle

    root = parts[0]
    assert root.platform_post_id is not None and root.posted_at is not None
    published = PublishedPost(
        platform_post_id=root.platform_post_id, text=post.text, posted_at=root.posted_at
    )
    await cycle.mark_posted(agent, post, published, now)


async def _cut_short(agent: Agent, post: Post, now: datetime, reason: str) -> str:
    """Record the thread ``posted`` with the parts it has (the first one is public)."""
    parts = {p: v for p, v in (await _parts(agent, post)).items() if v.status is PartStatus.POSTED}
    posted = [parts[i] for i in range(len(parts)) if i in parts]
    log.warning(
        "thread_cut_short",
        content_id=post.id,
        posted_parts=len(posted),
        parts=len(post.parts),
        reason=reason,
    )
    await _finish(agent, post, {i: p for i, p in enumerate(posted)}, now)
    return "cut_short"


async def reconcile_thread(agent: Agent, post: Post, now: datetime) -> str:
    """Resolve a thread left ``publishing``: look for its ``publishing`` parts on the platform,
    then finish it, queue it again to resume, or give it up. Returns the outcome: "found" (all
    parts posted), "requeued", "cut_short", "failed" or "deferred" (the platform could not be
    asked; it stays ``publishing``)."""
    from agent.cycles import publish as cycle

    parts = await _parts(agent, post)
    pending = [p for p in parts.values() if p.status is PartStatus.PUBLISHING]
    if pending:
        starts = [p.publish_started_at or post.updated_at for p in pending]
        since = min(starts) - cycle.RECONCILE_MARGIN
        try:
            async with agent.api_call(post.account_id, "find_recent"):
                recent = await agent.platform_for(post.account_id).find_recent(
                    since=since, limit=100
                )
        except PlatformError as exc:
            log.warning("reconcile_deferred", content_id=post.id, error=str(exc))
            return "deferred"
        by_hash = {text_hash(p.text): p for p in recent}  # newest first: the oldest wins
        for part in pending:
            match = by_hash.get(part.text_hash)
            if match is not None:
                await agent.store.finish_part(
                    post.id,
                    part.position,
                    platform_post_id=match.platform_post_id,
                    posted_at=match.posted_at,
                    now=now,
                )
            else:
                await agent.store.reset_part(
                    post.id, part.position, error="not on the platform", now=now
                )
        parts = await _parts(agent, post)
    posted = [i for i, p in parts.items() if p.status is PartStatus.POSTED]
    if len(posted) == len(post.parts):
        await _finish(agent, post, parts, now)
        outcome = "found"
    elif post.publish_attempts >= cycle.MAX_ATTEMPTS:
        if 0 in posted:
            outcome = await _cut_short(
                agent, post, now, f"not complete after {post.publish_attempts} attempts"
            )
        else:
            await agent.store.fail_publish(
                post.id,
                error=f"not on the platform after {post.publish_attempts} attempts",
                now=now,
            )
            agent.count("posts_failed", post.account_id)
            outcome = "failed"
    else:
        # part of the chain is public: resume at once; else wait as a single post would
        at = now if posted else now + agent.config.runtime.publish_retry_after
        await agent.store.reschedule(
            post.id,
            scheduled_for=at,
            error=f"thread interrupted with {len(posted)} of {len(post.parts)} parts posted; "
            "resuming from the first part not on the platform",
            now=now,
        )
        outcome = "requeued"
    log.info(
        "thread_reconciled",
        content_id=post.id,
        outcome=outcome,
        posted_parts=len(posted),
        parts=len(post.parts),
    )
    return outcome
