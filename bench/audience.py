"""Audience reads and storage, measured (issue 19: person-level truth, memory; docs/benchmarks.md).

``--kind reads`` (default): the daemon's cycles for ``--days`` simulated days on the sandbox with
the audience reads on (``audience.read.sandbox``), then every person-level event the sandbox
exposes is compared with what the store holds: stored exactly once (by source id; none missing,
none extra), every reply once in ``conversations``, each follower's first follow and unfollow, and
the cohort retention table from the store against the one from the truth.

``--kind memory``: the audience of one account with ``--followers`` followers and a year of
interactions (sized by the sandbox's default rates at that follower count, see :func:`year`)
on SQLite (a file) or PostgreSQL (``--url``): the year loaded in bulk as the store's rows, then
one more day stored through ``record_audience``; reports rows, bytes on disk, the time to store
that day's events and the daily upkeep (scores and tiers of every member,
agent/cycles/audience.py).

    python -m bench.audience --kind reads --days 60
    python -m bench.audience --kind memory --followers 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from adapters.sandbox import SandboxWorld, Scenario
from adapters.sandbox_people import PersonEvent
from agent.audience import spans_of, update_scores
from agent.audience_models import AudienceEvent, AudienceKind
from agent.clock import VirtualClock
from agent.config import DEFAULT_CONFIG, Config
from agent.core import Agent
from agent.cycles.audience import audience_read_cycle
from agent.generators.template import TemplateGenerator
from agent.logs import configure_logging
from agent.simulator import run_until
from agent.store.audience_rows import by_user, chunks, merged_member
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.memory import MemoryStore
from agent.store.migrate import upgrade
from agent.store.schema import audience_interactions, audience_members
from agent.store.sql import SqlStore
from learning.audience import Span, cohort_retention

START = datetime(2026, 3, 2, 6, tzinfo=UTC)  # a Monday
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def config() -> Config:
    """The built-in config (one sandbox account, ``demo``) with the sandbox's people read."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["cadence"] = {
        **raw["cadence"],
        "active_hours": {"start": "00:00", "end": "00:00", "timezone": "UTC"},
        "jitter": "0s",
    }
    raw["audience"] = {**(raw.get("audience") or {}), "read": {"sandbox": True}}
    return Config.model_validate(raw)


def truth_spans(events: Sequence[PersonEvent]) -> dict[str, Span]:
    """Each person's first follow and, when their latest follow change is an unfollow, when."""
    first: dict[str, int] = {}
    last: dict[str, tuple[int, str]] = {}
    for e in events:
        if e.kind in ("follow", "unfollow"):
            if e.kind == "follow":
                first.setdefault(e.person, e.at_us)
            last[e.person] = (e.at_us, e.kind)
    return {
        p: Span(
            followed_at=EPOCH + timedelta(microseconds=at),
            unfollowed_at=EPOCH + timedelta(microseconds=last[p][0])
            if last[p][1] == "unfollow"
            else None,
        )
        for p, at in first.items()
    }


async def reads(days: float, seed: int) -> dict[str, Any]:
    """The simulation and its comparison with the truth (see the module docstring)."""
    cfg = config()
    clock, store = VirtualClock(START), MemoryStore()
    world = SandboxWorld(Scenario.load("default"), seed=seed, start=START)
    agent = Agent(
        config=cfg,
        store=store,
        platforms={"demo": world.platform("demo", now=clock.now)},
        generator=TemplateGenerator(seed=seed),
        clock=clock,
        seed=seed,
    )
    started = time.perf_counter()
    await run_until(agent, clock, START + days * DAY)
    end = clock.now() + timedelta(hours=2)  # a last read after the end
    clock.advance_to(end)
    await audience_read_cycle(agent, end)
    elapsed = time.perf_counter() - started
    main = agent.account_ids["demo"]
    truth = list(world.people("demo", end).events)
    members = await store.audience_members(main)
    by_id = {m.id: m for m in members}
    stored = await store.audience_interactions(main)
    said = await store.conversations(main)
    exposed = {
        (f"n{e.seq}", e.kind, e.person, EPOCH + timedelta(microseconds=e.at_us)) for e in truth
    }
    kept = [(i.source_id, str(i.kind), by_id[i.member_id].user_id, i.at) for i in stored]
    truly = truth_spans(truth)
    mine = {
        m.user_id: Span(followed_at=m.followed_at, unfollowed_at=m.unfollowed_at)
        for m in members
        if m.followed_at is not None
    }
    table = cohort_retention(spans_of(members), now=end)
    return {
        "days": days,
        "seed": seed,
        "seconds": round(elapsed, 1),
        "events_exposed": len(truth),
        "by_kind": {k: sum(e.kind == k for e in truth) for k in sorted({e.kind for e in truth})},
        "interactions_stored": len(kept),
        "stored_once": len(kept) == len(set(kept)),
        "missing": len(exposed - set(kept)),
        "extra": len(set(kept) - exposed),
        "replies_exposed": sum(e.kind == "reply" for e in truth),
        "conversations_stored": len(said),
        "followers_spans_equal": mine == truly,
        "cohorts": len(table),
        "cohort_table_equal": table == cohort_retention(list(truly.values()), now=end),
        "cohort_table": [
            {"week": c.week, "followers": c.followers, "retained": c.retained} for c in table
        ],
    }


# -- memory ---------------------------------------------------------------------------------------


def year(followers: int, *, days: int = 365, seed: int = 1) -> list[list[AudienceEvent]]:
    """One batch of events per day: the follows of ``followers`` people spread over the year,
    churn of 0.1% a day, and each day three posts engaged as the sandbox's default rates give at
    that audience (reach 150 + 0.4 per follower; likes 1.5%, reposts 0.2%, replies 0.15%, quotes
    0.03% of reach), engagers drawn 60% from the followers so far, 40% from outsiders."""
    rng = random.Random(seed)
    reach = 150 + 0.4 * followers
    per_post = {"like": 0.015, "repost": 0.002, "reply": 0.0015, "quote": 0.0003}
    batches: list[list[AudienceEvent]] = []
    following: list[int] = []
    outsiders = 0
    next_person = 0
    for day in range(days):
        at = START + day * DAY
        batch: list[AudienceEvent] = []
        for _ in range(followers // days + (1 if day < followers % days else 0)):
            following.append(next_person)
            batch.append(event(AudienceKind.FOLLOW, next_person, at, f"f{next_person}"))
            next_person += 1
        for _ in range(int(len(following) * 0.001)):
            gone = following.pop(rng.randrange(len(following)))
            batch.append(event(AudienceKind.UNFOLLOW, gone, at, f"u{gone}:{day}"))
        for post in range(3):
            for kind, rate in per_post.items():
                for k in range(int(reach * rate)):
                    if following and rng.random() < 0.6:
                        who = following[rng.randrange(len(following))]
                    else:
                        outsiders += 1
                        who = 10_000_000 + rng.randrange(max(outsiders, 1))
                    batch.append(event(AudienceKind(kind), who, at, f"{kind}:{day}:{post}:{k}"))
        batches.append(batch)
    return batches


def event(kind: AudienceKind, person: int, at: datetime, source: str) -> AudienceEvent:
    return AudienceEvent(
        kind=kind, user_id=f"u{person}", handle=f"person{person}.example", at=at, source_id=source
    )


async def memory(followers: int, url: str | None) -> dict[str, Any]:
    """Store a year, then time one more day's batch and the daily upkeep."""
    with tempfile.TemporaryDirectory() as tmp:
        target = (
            normalise_postgres_url(url)
            if url
            else f"sqlite+aiosqlite:///{Path(tmp) / 'audience.db'}"
        )
        engine = create_engine(target)
        await upgrade(engine)
        store = SqlStore(engine)
        try:
            main = await store.ensure_account(
                name="big", platform="sandbox", handle="big", now=START
            )
            batches = year(followers, days=366)
            started = time.perf_counter()
            await bulk_load(engine, main, [e for day in batches[:-1] for e in day])
            load = time.perf_counter() - started
            last = batches[-1]
            started = time.perf_counter()
            await store.record_audience(main, last, now=last[0].at)
            day_write = time.perf_counter() - started
            settings = config().audience
            started = time.perf_counter()
            scored = await update_scores(store, main, settings, now=last[0].at + DAY)
            upkeep = time.perf_counter() - started
            size = await _bytes(engine, target, tmp)
            async with engine.connect() as conn:
                rows = {
                    t: int(await conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0)
                    for t in ("audience_members", "audience_interactions")
                }
        finally:
            await store.close()
        return {
            "backend": "postgresql" if url else "sqlite",
            "followers": followers,
            "rows": rows,
            "bytes": size,
            "bytes_per_interaction": round(size / max(rows["audience_interactions"], 1), 1),
            "events_per_day": len(last),
            "load_seconds": round(load, 1),
            "day_write_seconds": round(day_write, 2),
            "daily_upkeep_seconds": round(upkeep, 2),
            "members_scored": scored,
        }


async def bulk_load(engine: Any, account_id: int, events: list[AudienceEvent]) -> None:
    """The rows ``record_audience`` would write for ``events``, inserted in bulk (the year is
    only the background of the measurement; its daily update goes through the store): member
    state folded by the store's own :func:`agent.store.audience_rows.merged_member`."""
    people = by_user(events)
    members = [
        {
            "account_id": account_id,
            "platform_user_id": user,
            **merged_member(None, found),
            "updated_at": found[-1].at,
        }
        for user, found in people.items()
    ]
    async with engine.begin() as conn:
        for part in chunks(members, 5_000):
            await conn.execute(audience_members.insert(), list(part))
        ids = {
            r.platform_user_id: r.id
            for r in await conn.execute(
                sa.select(audience_members.c.platform_user_id, audience_members.c.id)
            )
        }
        rows = [
            {
                "account_id": account_id,
                "member_id": ids[e.user_id],
                "content_id": None,
                "platform_post_id": e.platform_post_id,
                "kind": str(e.kind),
                "at": e.at,
                "source_id": e.source_id,
            }
            for e in events
        ]
        for part in chunks(rows, 5_000):
            await conn.execute(audience_interactions.insert(), list(part))


def _files_size(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).iterdir())


async def _bytes(engine: Any, url: str, tmp: str) -> int:
    if url.startswith("sqlite"):
        return await asyncio.to_thread(_files_size, tmp)
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.text(
                    "SELECT pg_total_relation_size('audience_members')"
                    " + pg_total_relation_size('audience_interactions')"
                )
            )
            or 0
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--kind", choices=("reads", "memory"), default="reads")
    parser.add_argument("--days", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--url", help="PostgreSQL URL for --kind memory (default: SQLite file)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.days <= 0 or args.followers < 1:
        parser.error("--days must be > 0 and --followers >= 1")
    configure_logging(level="error")
    if args.kind == "reads":
        report = asyncio.run(reads(args.days, args.seed))
    else:
        report = asyncio.run(memory(args.followers, args.url))
    text = json.dumps(report, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
