"""Poll: take every due performance snapshot; read follower counts when a reading is due.

When a reading is due is :mod:`agent.reading`'s decision (what attribution needs and what a read
costs: every 10 minutes where reads are free, only to fill long gaps where each read is billed);
a poll batch takes the count along only when one is due, never again when another reader has
just taken it.

Snapshot rows are created (due) when a post is published, so no horizon can be missed: a daemon
that was down past a horizon takes the snapshot when it is back and records its real age in
``hours_since_post``.

Several workers: due snapshots are *claimed* (``Store.claim_snapshots``) for ``runtime.lease``,
so each is taken by one worker; a dead worker's claims expire and another takes them. Each
account's periodic follower reading holds the lease ``followers:<account_id>`` (a cycle takes
all of its leases in one statement) and first looks whether another worker has just read that
count.

Concurrency: accounts are polled at once, bounded per platform (``runtime.concurrency``,
:meth:`agent.core.Agent.for_accounts`); one account's snapshots are read in turn.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from adapters.base import AccountInfo, PostMetrics
from agent.budget import Stage, account_stage
from agent.core import Agent
from agent.cycles.health import LATE_AFTER
from agent.errors import PlatformError
from agent.logs import log
from agent.models import AccountReading, DueSnapshot, PartReading
from agent.reading import first_reading_at, poll_horizons, reading_due, reading_interval
from agent.store.base import SnapshotReading

BATCH = 100  # ids per metrics call (X's get_tweets takes at most 100)
BUDGET_SKIPPED = "skipped: the monthly platform budget polls the last horizon only"


async def fetch_account(agent: Agent, account_id: int, now: datetime) -> AccountInfo | None:
    """Read the account's follower count and write it (one reading); None when it failed."""
    info = await read_account(agent, account_id, now)
    if info is not None:
        await agent.store.add_account_snapshot(account_id, info, taken_at=now)
        _taken(agent, account_id, info, now)
    return info


async def read_account(agent: Agent, account_id: int, now: datetime) -> AccountInfo | None:
    """Ask the platform for the account's counters (not written); None when reads are blocked
    or the call failed (logged)."""
    if agent.reads_blocked(account_id, now):
        return None
    platform = agent.platform_for(account_id)
    try:
        async with agent.api_call(account_id, "fetch_account"):
            return await platform.fetch_account()
    except PlatformError as exc:
        log.warning("account_snapshot_failed", account_id=account_id, error=str(exc))
        return None


def _taken(agent: Agent, account_id: int, info: AccountInfo, now: datetime) -> None:
    agent.last_account_poll[account_id] = now
    log.debug("account_snapshot_taken", account_id=account_id, followers=info.followers)


async def _poll_account(
    agent: Agent, account_id: int, due: list[DueSnapshot], now: datetime
) -> int:
    platform = agent.platform_for(account_id)
    stage = await account_stage(agent, account_id, now)
    if stage >= Stage.FINAL_HORIZON_ONLY:
        due = await _skip_early_horizons(agent, due, now)
        if not due:
            return 0
    info = None
    if stage < Stage.NO_PERIODIC_READS and follower_reading_due(agent, account_id, now):
        info = await fetch_account(agent, account_id, now)
    # a thread is measured over all its parts (docs/threads.md): its snapshot holds the sum,
    # each part's counters are kept beside it (the first part's among them)
    threads = await agent.store.thread_post_ids([d.content_id for d in due])
    ids = sorted({d.platform_post_id for d in due} | {i for p in threads.values() for i in p})
    metrics = {}
    for start in range(0, len(ids), BATCH):
        try:
            async with agent.api_call(account_id, "fetch_metrics"):
                metrics.update(await platform.fetch_metrics(ids[start : start + BATCH]))
        except PlatformError as exc:
            log.warning("metrics_fetch_failed", account_id=account_id, error=str(exc))
            return 0  # everything stays due; the next cycle tries again
    measured = {snap.id: measure(snap, metrics, threads.get(snap.content_id)) for snap in due}
    readings = [  # the account's batch, written in one transaction
        SnapshotReading(
            snapshot_id=snap.id,
            metrics=measured[snap.id],
            taken_at=now,
            hours_since_post=(now - snap.posted_at).total_seconds() / 3600,
            followers_at=info.followers if info else None,
            error=None if measured[snap.id] else "post not found on the platform",
        )
        for snap in due
    ]
    await agent.store.record_snapshots(readings)
    parts = [
        PartReading(snapshot_id=snap.id, position=position, metrics=metrics[part_id])
        for snap in due
        if measured[snap.id] is not None
        for position, part_id in enumerate(threads.get(snap.content_id, ()))
        if part_id in metrics
    ]
    await agent.store.record_part_readings(parts)
    taken = 0
    for snap in due:
        found = measured[snap.id]
        age = (now - snap.posted_at).total_seconds() / 3600
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


def measure(
    snap: DueSnapshot, metrics: dict[str, PostMetrics], parts: list[str] | None
) -> PostMetrics | None:
    """A snapshot's counters: the post's own, or for a thread the sum over its parts (None
    when the post, or a thread's first part, is not on the platform)."""
    own = metrics.get(snap.platform_post_id)
    if not parts or own is None:
        return own
    found = [metrics[p] for p in parts if p in metrics]
    return PostMetrics(
        platform_post_id=snap.platform_post_id,
        **{name: sum(getattr(m, name) for m in found) for name in COUNTER_NAMES},
    )


COUNTER_NAMES = (
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "impressions",
    "profile_clicks",
    "url_clicks",
)


async def _skip_early_horizons(
    agent: Agent, due: list[DueSnapshot], now: datetime
) -> list[DueSnapshot]:
    """The monthly platform budget polls the last horizon only: the others are recorded as
    skipped (no metrics, an error saying why); the snapshots of the last horizon are returned."""
    keep = []
    for snap in due:
        prices = agent.platform_for(snap.account_id).prices
        final = max(poll_horizons(agent.config, prices)).total_seconds() / 3600
        if snap.horizon_hours >= final:
            keep.append(snap)
            continue
        await agent.store.record_snapshot(
            snap.id,
            None,
            taken_at=now,
            hours_since_post=(now - snap.posted_at).total_seconds() / 3600,
            followers_at=None,
            error=BUDGET_SKIPPED,
        )
        log.info("snapshot_skipped_budget", content_id=snap.content_id, snapshot_id=snap.id)
    return keep


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


def reading_interval_for(agent: Agent, account_id: int) -> timedelta:
    """How long one of the account's follower readings serves (agent/reading.py)."""
    return reading_interval(agent.config, agent.platform_for(account_id).prices)


def follower_reading_due(agent: Agent, account_id: int, now: datetime) -> bool:
    """Whether the account's last follower reading is too old to serve at ``now``."""
    last = agent.last_account_poll.get(account_id)
    interval = reading_interval_for(agent, account_id)
    return reading_due(last, interval, now, first=first_reading_for(agent, account_id, interval))


def first_reading_for(agent: Agent, account_id: int, interval: timedelta) -> datetime | None:
    """When the account's first periodic reading falls due if it has none yet (spread over one
    interval from the agent's start, agent/reading.py), None before the agent is set up."""
    started = agent.stats.started_at
    return None if started is None else first_reading_at(account_id, started, interval)


async def followers_cycle(agent: Agent, now: datetime) -> int:
    """Read each account's follower count when a reading is due (agent/reading.py): the series
    attribution works from (publish adds a reading just before each post, a poll batch one when
    a reading is due). The reads run concurrently within the platform's bound; the cycle's
    readings are written in one statement, and a worker sharing the store takes the accounts'
    leases ``followers:<id>`` in one statement too (then skips those another worker has just
    read), so an idle cycle costs a few round trips, not a few per account (issue 16)."""
    due = []
    for account_id in agent.account_ids.values():
        if not follower_reading_due(agent, account_id, now):
            continue
        if await account_stage(agent, account_id, now) >= Stage.NO_PERIODIC_READS:
            continue  # the monthly platform budget: reads degrade before posts stop
        due.append(account_id)
    if not due:
        return 0
    if agent.exclusive:
        return await _read_followers(agent, due, now)
    leases = {f"followers:{account_id}": account_id for account_id in due}
    held = await agent.store.acquire_leases(
        list(leases), worker=agent.worker_id, now=now, ttl=agent.lease
    )
    try:
        mine = [leases[name] for name in leases if name in held]
        stored = await agent.store.last_account_snapshots(mine)
        fresh = {
            account_id
            for account_id, reading in stored.items()
            if not reading_due(reading.taken_at, reading_interval_for(agent, account_id), now)
        }
        for account_id in fresh:  # another worker read it since our last look
            agent.last_account_poll[account_id] = stored[account_id].taken_at
        return await _read_followers(agent, [a for a in mine if a not in fresh], now)
    finally:
        await agent.store.release_leases(held, worker=agent.worker_id)


async def _read_followers(agent: Agent, account_ids: list[int], now: datetime) -> int:
    """Read the accounts' counts concurrently, then write every reading at once."""
    infos = await agent.for_accounts(account_ids, lambda a: read_account(agent, a, now))
    readings = [
        AccountReading(account_id, info, now)
        for account_id, info in zip(account_ids, infos, strict=True)
        if info is not None
    ]
    await agent.store.add_account_snapshots(readings)
    for reading in readings:
        _taken(agent, reading.account_id, reading.info, now)
    return len(readings)
