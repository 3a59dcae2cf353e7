"""What does an account's audience cost to keep? Rows, bytes and the daily update's time and memory
for an account with many followers and a year of their interactions (issue 19).

    python -m bench.audience_scale [--backend sqlite,postgresql] [--followers 100000]
                                   [--per-follower 20] [--days 365] [--posts-per-day 4]
                                   [--seed 1] [--json OUT]

For each backend, a new migrated database (bench/store.py's ``fresh_database``) gets one account
with ``--posts-per-day`` published posts a day over ``--days`` days, then its audience is
recorded through ``Store.record_audience`` in time order, in batches of one simulated day (the
way the adapters' reads arrive): ``--followers`` people follow at a uniformly random time of the
year (10% of them unfollow later), and each makes ``--per-follower`` interactions on average
(Poisson; likes 70%, replies 15%, reposts 10%, quotes 5%) with posts published before, spread
over the year after their follow; a third of the follows are preceded by a touch of a post the
day before. Then the **daily update** the health cycle runs (agent/cycles/audience.py
``audience_upkeep``: engagement scores and tiers of every member, the multi-touch credits of
recent follows, the retention purge) and the figures ``growthloop audience`` prints
(``agent.audience.report``) are timed: wall time, CPU time of this process (the PostgreSQL
server's is not in it) and the process's peak RSS growth (``ru_maxrss``: the peak of the whole
run so far, so each step reports it after itself).

Bytes: SQLite, the database file (after a checkpoint); PostgreSQL, ``pg_total_relation_size``
of the audience tables (indexes and TOAST included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from agent.audience import report as audience_report
from agent.audience import update_credits, update_scores
from agent.audience_models import AudienceEvent, AudienceKind
from agent.config import Audience
from agent.models import NewContent, PostStatus
from agent.store.engine import create_engine
from agent.store.sql import SqlStore
from bench.store import fresh_database

START = datetime(2026, 1, 5, tzinfo=UTC)
TABLES = ("audience_members", "audience_interactions", "audience_credits")
KINDS = (AudienceKind.LIKE, AudienceKind.REPLY, AudienceKind.REPOST, AudienceKind.QUOTE)
KIND_SHARES = (0.70, 0.15, 0.10, 0.05)
UNFOLLOW_SHARE = 0.10
TOUCHED_FOLLOW_SHARE = 1 / 3
DAY = timedelta(days=1)


def rss_mb() -> float:
    """The process's peak resident set so far, MB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(step: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, float]]:
    wall, cpu, before = time.perf_counter(), time.process_time(), rss_mb()
    value = await step()
    return value, {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_rss_mb": round(rss_mb(), 1),
        "peak_rss_growth_mb": round(rss_mb() - before, 1),
    }


async def publish_posts(store: SqlStore, account_id: int, days: int, per_day: int) -> np.ndarray:
    """``days * per_day`` published posts; their content ids and times (seconds from START)."""
    ids, times = [], []
    for n in range(days * per_day):
        at = START + timedelta(hours=24 * n / per_day + 1)
        post = await store.add_content(
            NewContent(
                account_id=account_id,
                status=PostStatus.PLANNED,
                text=f"post {n}",
                text_hash=f"h{n}",
                generation_metadata={"content_type": "a", "formula": "b", "hook": "c"},
                scheduled_for=at,
                idempotency_key=f"k{n}",
            ),
            now=at,
        )
        await store.begin_publish(post.id, now=at)
        await store.finish_publish(
            post.id, platform_post_id=f"p{n}", posted_at=at, horizons=(), now=at
        )
        ids.append(post.id)
        times.append((at - START).total_seconds())
    return np.array([ids, times])


def events_by_day(
    rng: np.random.Generator, posts: np.ndarray, followers: int, per_follower: float, days: int
) -> list[list[AudienceEvent]]:
    """The year's events, one list per day, in time order."""
    ids, times = posts
    span = days * 86_400.0
    first_post = times[0]
    out: list[list[tuple[float, AudienceEvent]]] = [[] for _ in range(days)]

    def add(at: float, event: AudienceEvent) -> None:
        out[min(int(at // 86_400), days - 1)].append((at, event))

    def post_before(at: float) -> int | None:
        k = int(np.searchsorted(times, at, side="right"))
        return None if k == 0 else int(ids[rng.integers(max(0, k - 40), k)])

    follow_at = rng.uniform(first_post, span, followers)
    counts = rng.poisson(per_follower, followers)
    for person in range(followers):
        user, handle = f"u{person}", f"person{person}.example"
        at = float(follow_at[person])
        if rng.random() < TOUCHED_FOLLOW_SHARE:
            touched = post_before(at - 86_400)
            if touched is not None:
                add(at - 86_400, event(AudienceKind.LIKE, user, handle, at - 86_400, touched, 0))
        add(at, event(AudienceKind.FOLLOW, user, handle, at, None, 0))
        if rng.random() < UNFOLLOW_SHARE:
            gone = float(rng.uniform(at, span))
            add(gone, event(AudienceKind.UNFOLLOW, user, handle, gone, None, 0))
        kinds = rng.choice(len(KINDS), size=counts[person], p=KIND_SHARES)
        for n, (when, kind) in enumerate(zip(rng.uniform(at, span, counts[person]), kinds), 1):
            post = post_before(float(when))
            if post is not None:
                add(float(when), event(KINDS[kind], user, handle, float(when), post, n))
    return [[e for _, e in sorted(day, key=lambda x: x[0])] for day in out]


def event(
    kind: AudienceKind, user: str, handle: str, at: float, post: int | None, n: int
) -> AudienceEvent:
    return AudienceEvent(
        kind=kind,
        user_id=user,
        handle=handle,
        at=START + timedelta(seconds=at),
        source_id=f"{kind}:{user}:{n}:{at:.0f}",
        content_id=post,
    )


async def size_bytes(store: SqlStore, backend: str, url: str) -> int:
    async with store.engine.connect() as conn:
        if backend == "sqlite":
            await conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
            database = sa.engine.make_url(url).database or ""
            return Path(database).stat().st_size
        total = 0
        for table in TABLES:
            total += int(
                await conn.scalar(sa.text(f"SELECT pg_total_relation_size('{table}')")) or 0
            )
        return total


async def run_backend(backend: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    async with fresh_database(backend) as url:
        store = SqlStore(create_engine(url))
        try:
            account_id = await store.ensure_account(
                name="big", platform="sandbox", handle=None, now=START
            )
            posts = await publish_posts(store, account_id, args.days, args.posts_per_day)
            days = events_by_day(rng, posts, args.followers, args.per_follower, args.days)
            console.print(f"{backend}: {sum(map(len, days)):,} events over {args.days} days")

            async def ingest() -> int:
                stored = 0
                for n, batch in enumerate(days):
                    done = await store.record_audience(account_id, batch, now=START + (n + 1) * DAY)
                    stored += done.stored
                return stored

            stored, ingest_cost = await timed(ingest)
            now = START + args.days * DAY
            settings = Audience()
            scored, scores_cost = await timed(
                lambda: update_scores(store, account_id, settings, now=now)
            )
            credited, credits_cost = await timed(
                lambda: update_credits(store, account_id, settings, now=now)
            )
            purged, purge_cost = await timed(
                lambda: store.purge_audience(before=now - settings.retention)
            )
            found, report_cost = await timed(lambda: audience_report(store, account_id, now=now))
            rows = {}
            async with store.engine.connect() as conn:
                for table in TABLES:
                    rows[table] = int(
                        await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0
                    )
            size = await size_bytes(store, backend, url)
        finally:
            await store.close()
    daily = {
        k: round(scores_cost[k] + credits_cost[k] + purge_cost[k], 2) for k in ("wall_s", "cpu_s")
    }
    return {
        "backend": backend,
        "followers": found.followers,
        "members": found.members,
        "interactions_stored": stored,
        "rows": rows,
        "bytes": size,
        "bytes_per_interaction": round(size / max(rows["audience_interactions"], 1), 1),
        "ingest": ingest_cost,
        "ingest_events_per_s": round(stored / max(ingest_cost["wall_s"], 1e-9)),
        "daily_update": {"scores": scores_cost, "credits": credits_cost, "purge": purge_cost},
        "daily_update_total": daily,
        "members_scored": scored,
        "credit_rows": credited,
        "purged": {"interactions": purged.interactions, "members": purged.members},
        "audience_report": report_cost,
    }


def table(results: list[dict[str, Any]]) -> Table:
    out = Table(title="audience of one account: storage and the daily update")
    for column in (
        "backend",
        "members",
        "interactions",
        "MB",
        "B/interaction",
        "ingest /s",
        "daily update (wall, CPU)",
        "peak RSS MB",
        "audience report",
    ):
        out.add_column(column, justify="right")
    for r in results:
        out.add_row(
            r["backend"],
            f"{r['members']:,}",
            f"{r['rows']['audience_interactions']:,}",
            f"{r['bytes'] / 1e6:,.0f}",
            f"{r['bytes_per_interaction']:,.0f}",
            f"{r['ingest_events_per_s']:,}",
            f"{r['daily_update_total']['wall_s']} s, {r['daily_update_total']['cpu_s']} s",
            f"{max(s['peak_rss_mb'] for s in r['daily_update'].values()):,.0f}",
            f"{r['audience_report']['wall_s']} s",
        )
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.audience_scale", description=__doc__)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--per-follower", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--posts-per-day", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        parser.error(f"--backend: sqlite and/or postgresql, got {args.backend!r}")
    if args.followers < 1 or args.days < 2 or args.posts_per_day < 1 or args.per_follower < 0:
        parser.error("--followers, --days (>= 2), --posts-per-day must be positive")
    args.backends = backends
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console = Console()
    results = [asyncio.run(run_backend(b, args, console)) for b in args.backends]
    console.print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        console.print(f"wrote {args.json}")
    sys.exit(0)


if __name__ == "__main__":
    main()
