"""The audience upkeep: once a day, every account's engagement scores and tiers are recomputed
from the stored interactions (scores decay with age, so they change even when nothing new was
read), the multi-touch credits of recent follows are recomputed (learning/touch.py), and what is
older than ``audience.retention`` is purged (docs/audience.md).

It runs from the health cycle (agent/cycles/health.py) when that writes the health rows of a UTC
day's last hour (23:00-24:00), so once a day shortly after midnight UTC, also after an outage
(the health cycle back-fills the hours it missed). Several workers may each run it: both steps
are idempotent (the same rows give the same scores; a purge past the cut-off finds nothing the
second time).

The reads (:func:`audience_read_cycle`, the daemon's ``audience`` cycle) fill those tables and
``conversations`` from each platform's audience sources (docs/conversations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.audience import purge, update_credits, update_scores
from agent.audience_models import AudienceEvent, AudienceKind
from agent.conversation_models import Follower, ReadCursor
from agent.core import Agent
from agent.errors import PlatformError, ReadBudgetExhausted, TransientPlatformError
from agent.logs import log
from agent.models import PostStatus

DAY_LAST_HOUR = 23  # the health row whose writing triggers the upkeep: the day's last UTC hour


def is_upkeep_hour(hour_start: datetime) -> bool:
    """Whether the health row of the hour starting at ``hour_start`` (UTC) triggers the
    upkeep."""
    return hour_start.hour == DAY_LAST_HOUR


async def audience_upkeep(agent: Agent, now: datetime) -> int:
    """Score every account's audience and purge past the retention period; members scored."""
    settings = agent.config.audience
    scored = credited = 0
    kept = await agent.store.audience_accounts()
    for account in agent.config.accounts:
        account_id = agent.account_ids[account.name]
        if account_id in kept:
            scored += await update_scores(agent.store, account_id, settings, now=now)
            credited += await update_credits(agent.store, account_id, settings, now=now)
    purged = await purge(agent.store, settings, now=now)
    log.info(
        "audience_upkeep",
        members_scored=scored,
        touch_credits=credited,
        interactions_purged=purged.interactions,
        members_purged=purged.members,
        retention_days=settings.retention.total_seconds() / 86_400,
    )
    return scored


# -- the audience and replies reads (issue 19 item 2, issue 21 item 2; docs/conversations.md) ----

RECENT_POSTS = 20  # newest posts whose per-post sources are read (X's liking users, Threads')
SPEND_SOURCE = "spend:{month}"  # the read_cursors row keeping a month's metered read spend (USD)


def reads_allowed(agent: Agent, account_id: int) -> bool:
    """Whether the account's audience is read at all: not when ``audience.read.every`` is null,
    not on the sandbox unless ``audience.read.sandbox``, not where reads are billed (X
    pay-per-use) unless ``audience.read.x_pay_per_use``."""
    settings = agent.config.audience.read
    platform = agent.platform_for(account_id)
    if settings.every is None or not platform.audience_sources:
        return False
    if platform.name == "sandbox" and not settings.sandbox:
        return False
    return platform.prices.read <= 0 or settings.x_pay_per_use


async def audience_read_cycle(agent: Agent, now: datetime) -> int:
    """Read each account's audience sources that are due (``audience.read.every``; the follower
    list every ``audience.read.followers_every``): store every page's events in
    ``audience_members``/``audience_interactions`` and its replies and mentions in
    ``conversations``, then the page's cursor, so a crash re-reads one page at most and the
    unique keys store it once. Returns the items stored."""
    stored = 0
    for account_id in agent.account_ids.values():
        if not reads_allowed(agent, account_id):
            continue
        blocked = agent.reads_blocked_until.get(account_id)
        if blocked is not None and blocked > now:
            continue  # a rate limit (or refused credentials) said to wait
        async with agent.leased(f"audience:{account_id}", now) as held:
            if held:
                stored += await read_account_audience(agent, account_id, now)
    return stored


async def read_account_audience(agent: Agent, account_id: int, now: datetime) -> int:
    """Read the account's due sources, page after page (at most ``audience.read.max_pages``
    each); stops at a rate limit, an exhausted read budget or an unreachable platform."""
    settings = agent.config.audience.read
    platform = agent.platform_for(account_id)
    stored = 0
    posts: list[str] | None = None
    for source in platform.audience_sources:
        every = settings.followers_every if source == "followers" else settings.every
        assert every is not None
        at = await agent.store.read_cursor(account_id, source)
        if at is not None and now - at.updated_at < every:
            continue
        if posts is None:
            posts = await recent_post_ids(agent, account_id)
        try:
            stored += await read_source(agent, account_id, source, at, posts, now)
        except ReadBudgetExhausted as exc:
            log.warning("audience_read_budget_exhausted", account_id=account_id, error=str(exc))
            return stored
        except TransientPlatformError as exc:
            log.warning(
                "audience_read_paused",
                account_id=account_id,
                source=source,
                error=str(exc),
                error_type=type(exc).__name__,
            )
            return stored
        except PlatformError as exc:
            log.warning(
                "audience_read_failed", account_id=account_id, source=source, error=str(exc)
            )
    return stored


async def recent_post_ids(agent: Agent, account_id: int) -> list[str]:
    """The platform ids of the account's newest posts (for the sources read per post)."""
    posts = await agent.store.list_posts(
        account_id=account_id, statuses=[PostStatus.POSTED], newest_first=True, limit=RECENT_POSTS
    )
    return [p.platform_post_id for p in posts if p.platform_post_id]


async def read_source(
    agent: Agent,
    account_id: int,
    source: str,
    at: ReadCursor | None,
    posts: Sequence[str],
    now: datetime,
) -> int:
    """Read one source from its cursor: each page stored, then its cursor. A follower list is
    read whole (from its start) and then reconciled; one longer than ``followers_max_pages`` is
    not reconciled (logged) and read again from its start after ``followers_every``."""
    settings = agent.config.audience.read
    platform = agent.platform_for(account_id)
    metered = platform.prices.read > 0
    month = SPEND_SOURCE.format(month=now.strftime("%Y-%m"))
    cursor = None if source == "followers" or at is None else at.cursor
    followers: list[Follower] = []
    stored = 0
    pages = settings.followers_max_pages if source == "followers" else settings.max_pages
    for _ in range(pages):
        budget = None
        if metered:
            spent = await agent.store.read_cursor(account_id, month)
            budget = settings.x_budget_usd - (float(spent.cursor or 0) if spent else 0.0)
            if budget <= 0:  # spent: not even asked (no API call, no error counted)
                raise ReadBudgetExhausted(f"the month's read budget is spent ({month})")
        before = platform.spend_usd
        async with agent.api_call(account_id, f"audience_{source}"):
            page = await platform.read_audience(source, cursor, posts=posts, budget_usd=budget)
        if metered:
            spent = await agent.store.read_cursor(account_id, month)
            total = float(spent.cursor or 0) if spent else 0.0
            total += platform.spend_usd - before
            await agent.store.set_read_cursor(account_id, month, f"{total:.6f}", now=now)
        if page.events:
            done = await agent.store.record_audience(account_id, page.events, now=now)
            stored += done.stored
        if page.conversations:
            said = await agent.store.record_conversations(account_id, page.conversations, now=now)
            stored += said.stored
        followers.extend(page.followers or ())
        cursor = page.cursor
        if source != "followers":
            await agent.store.set_read_cursor(account_id, source, cursor, now=now)
        if not page.more:
            break
    else:
        if source == "followers":
            log.warning("audience_followers_unfinished", account_id=account_id, pages=pages)
            await agent.store.set_read_cursor(account_id, source, None, now=now)
            return stored
    if source == "followers":
        stored += await reconcile_followers(agent, account_id, followers, now)
        await agent.store.set_read_cursor(account_id, source, None, now=now)
    log.info("audience_read", account_id=account_id, source=source, stored=stored)
    return stored


async def reconcile_followers(
    agent: Agent, account_id: int, followers: Sequence[Follower], now: datetime
) -> int:
    """Record an unfollow, at ``now``, for each member the store has as following who is not
    in the platform's complete follower list (no platform notifies unfollows). People in the
    list the store does not know are left alone: when they followed is unknown, and a follow
    dated ``now`` would put them in a cohort they do not belong to."""
    listed = {f.user_id for f in followers}
    gone = [
        AudienceEvent(
            kind=AudienceKind.UNFOLLOW,
            user_id=m.user_id,
            handle=m.handle,
            at=now,
            source_id=f"reconciled-unfollow:{m.user_id}:{m.follow_changed_at or m.followed_at}",
        )
        for m in await agent.store.audience_members(account_id)
        if m.following and m.user_id not in listed
    ]
    if not gone:
        return 0
    return (await agent.store.record_audience(account_id, gone, now=now)).stored
