"""Poll: take every due performance snapshot; read follower counts every few minutes.

Snapshot rows are created (due) when a post is published, so no horizon can be missed: a daemon
that was down past a horizon takes the snapshot when it is back and records its real age in
``hours_since_post``.

Several workers: due snapshots are *claimed* (``Store.claim_snapshots``) for ``runtime.lease``,
so each is taken by one worker; a dead worker's claims expire and another takes them. Each
account's follower poll holds the lease ``followers:<account_id>`` and first looks whether
another worker has just read that count.

Concurrency: accounts are polled at once, bounded per platform (``runtime.concurrency``,
:meth:`agent.core.Agent.for_accounts`); one account's snapshots are read in turn.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from adapters.base import AccountInfo
from agent.core import Agent
from agent.cycles.health import LATE_AFTER
from agent.errors import PlatformError
from agent.logs import log
from agent.models import DueSnapshot

BATCH = 100  # ids per metrics call (X's get_tweets takes at most 100)


async def fetch_account(agent: Agent, account_id: int, now: datetime) -> AccountInfo | None:
    if agent.reads_blocked(account_id, now):
        return None
    platform = agent.platform_for(account_id)
    try:
        async with agent.api_call(account_id, "fetch_account"):
            info = await platform.fetch_account()
    except PlatformError as exc:
        log.warning("account_snapshot_failed", account_id=account_id, error=str(exc))
        return None
    await agent.store.add_account_snapshot(account_id, info, taken_at=now)
    agent.last_account_poll[account_id] = now
    log.debug("account_snapshot_taken", account_id=account_id, followers=info.followers)
    return info


async def _poll_account(
    agent: Agent, account_id: int, due: list[DueSnapshot], now: datetime
) -> int:
    platform = agent.platform_for(account_id)
    info = await fetch_account(agent, account_id, now)
    ids = sorted({d.platform_post_id for d in due})
    metrics = {}
    for start in range(0, len(ids), BATCH):
        try:
            async with agent.api_call(account_id, "fetch_metrics"):
                metrics.update(await platform.fetch_metrics(ids[start : start + BATCH]))
        except PlatformError as exc:
            log.warning("metrics_fetch_failed", account_id=account_id, error=str(exc))
            return 0  # everything stays due; the next cycle tries again
    taken = 0
    for snap in due:
        found = metrics.get(snap.platform_post_id)
        age = (now - snap.posted_at).total_seconds() / 3600
        await agent.store.record_snapshot(
            snap.id,
            found,
            taken_at=now,
            hours_since_post=age,
            followers_at=info.followers if info else None,
            error=None if found else "post not found on the platform",
        )
        taken += 1
        agent.count("snapshots_taken", account_id)
        if now - snap.due_at > LATE_AFTER:
            agent.count("snapshots_late", account_id)
        log.info(
            "snapshot_taken",
            account=agent.account(account_id).name,
            content_id=snap.content_id,
            snapshot_id=snap.id,
            post_id=snap.platform_post_id,
            horizon_hours=snap.horizon_hours,
            hours_since_post=round(age, 3),
            late_minutes=round((now - snap.due_at).total_seconds() / 60, 1),
            likes=found.likes if found else None,
        )
    return taken


async def poll_cycle(agent: Agent, now: datetime) -> int:
    by_account: dict[int, list[DueSnapshot]] = defaultdict(list)
    claimed = await agent.store.claim_snapshots(now, worker=agent.worker_id, lease=agent.lease)
    for snap in claimed:
        by_account[snap.account_id].append(snap)

    async def poll(account_id: int) -> int:
        if agent.reads_blocked(account_id, now):
            # the platform asked us to wait; the snapshots stay due (and late), claimed by this
            # worker, which claims them again on its next try
            return 0
        return await _poll_account(agent, account_id, by_account[account_id], now)

    return sum(await agent.for_accounts(list(by_account), poll))


async def followers_cycle(agent: Agent, now: datetime) -> int:
    """Read each account's follower count every ``polling.account_every``: the series
    attribution works from (publish adds a reading just before each post, poll one with every
    batch of snapshots)."""
    every = agent.config.polling.account_every
    due = [
        account_id
        for account_id in agent.account_ids.values()
        if (last := agent.last_account_poll.get(account_id)) is None or now - last >= every
    ]

    async def read(account_id: int) -> bool:
        return await _poll_followers(agent, account_id, now)

    return sum(await agent.for_accounts(due, read))


async def _poll_followers(agent: Agent, account_id: int, now: datetime) -> bool:
    async with agent.leased(f"followers:{account_id}", now) as held:
        if not held:
            return False  # another worker is reading this account right now
        if not agent.exclusive:  # another worker may have read it since our last look
            stored = await agent.store.last_account_snapshot(account_id)
            if stored is not None and now - stored.taken_at < agent.config.polling.account_every:
                agent.last_account_poll[account_id] = stored.taken_at
                return False
        return (await fetch_account(agent, account_id, now)) is not None
