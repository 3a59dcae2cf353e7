"""How many posts per second can each store backend carry through their whole lifecycle?

    python -m bench.store --backend sqlite|postgresql|raw-...|memory|all --posts N
                          [--concurrency K] [--json OUT]

One lifecycle is the Store calls the cycles make for one post, in their order (agent/cycles/*):

- plan:      ``arm_stats`` and ``recent_texts`` (what Thompson sampling and the gate read), then
             ``add_content`` (a planned post);
- publish:   ``add_account_snapshot`` (the "before" reading), ``begin_publish``,
             ``finish_publish`` (posted, with its 1h/4h/24h snapshot rows);
- poll:      three times ``due_snapshots`` at the horizon, then ``record_snapshots`` (the
             batch of one poll: here the one snapshot);
- attribute: ``add_attribution``;
- learn:     ``arm_stats``, then ``apply_learning`` (three arm rows, a learning_updates row and
             the post marked learned, in one transaction).

``--concurrency K`` runs K workers at once, each with its own account (as one worker owns an
account's planning and learning); post ``i`` lives at its own virtual time, so every poll sees
only the few snapshots still open. The first few lifecycles warm up the connections and are not
timed. Each backend gets a new, empty database: an SQLite file in a temporary directory, or a
PostgreSQL database created on ``GROWTHLOOP_BENCH_PG_URL`` (default: the tests' server,
``postgresql://postgres@127.0.0.1:5432/test``) and dropped afterwards. (Supabase is PostgreSQL
reached through its connection string: the ``postgresql`` backend measures that store.)

**The raw-driver baseline.** ``raw-sqlite3``, ``raw-aiosqlite`` and ``raw-asyncpg`` run the same
lifecycle through :class:`bench.store_raw.RawStore`: the SQL store's statements, in its
transactions, written by hand for the bare driver (aiosqlite and asyncpg are the SQL store's
drivers; sqlite3 on the event loop's thread is the floor). ``all`` runs the two SQL stores and
their baselines in one process, one after the other, and reports each store's **client CPU per
lifecycle** (``time.process_time``: every thread of the process, aiosqlite's included; the
PostgreSQL server's CPU is not in it) over each baseline's. A counting pass after the timed one
counts what a lifecycle sends, on the wire (see bench/store_counts.py): store calls, transactions
(``BEGIN`` sent), statements and, on PostgreSQL, round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from adapters.base import AccountInfo, PostMetrics, text_hash
from agent.models import DIMENSIONS, ArmStat, Attribution, NewContent, PostStatus
from agent.store.base import SnapshotReading, Store
from bench.store_counts import Counts, WireCounter, sqlite_tracer
from bench.store_raw import AiosqliteDriver, AsyncpgDriver, RawStore, Sqlite3Driver

PG_URL = os.environ.get(
    "GROWTHLOOP_BENCH_PG_URL",
    os.environ.get("GROWTHLOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)
T0 = datetime(2026, 1, 5, tzinfo=UTC)
POST_SPACING = timedelta(days=2)  # between two posts' virtual times: past the 24h horizon
HORIZONS = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
STAGES = ("plan", "publish", "poll", "attribute", "learn")
STORE_CALLS = 15  # per lifecycle (the list in the module docstring)
WARMUP = 5  # untimed lifecycles first (connections, statement caches)
COUNTED = 10  # lifecycles of the counting pass (what goes to the database, per lifecycle)
ARMS = {"content_type": "tip", "formula": "list", "hook": "question"}


# -- backends --------------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database next to ``PG_URL``; dropped afterwards."""
    name = f"growthloop_bench_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(kind: str) -> AsyncIterator[str]:
    """A new database of ``kind`` (sqlite | postgresql), migrated: its SQLAlchemy URL."""
    from agent.store.engine import create_engine, normalise_postgres_url
    from agent.store.migrate import upgrade

    async with AsyncExitStack() as stack:
        if kind == "sqlite":
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url = normalise_postgres_url(await stack.enter_async_context(fresh_pg_database()))
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield url


def _counting_engine(url: str, counts: Counts) -> Any:
    """The store's engine, its SQLite connections traced into ``counts``."""
    from sqlalchemy import event

    from agent.store.engine import create_engine

    engine = create_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.await_(dbapi_conn.driver_connection.set_trace_callback(sqlite_tracer(counts)))

    return engine


@asynccontextmanager
async def open_store(name: str, url: str, counts: Counts | None = None) -> AsyncIterator[Any]:
    """Backend ``name``'s store on the migrated database ``url``; with ``counts``, what it
    sends is counted (SQLite: traced; PostgreSQL: ``url`` already leads through the relay)."""
    from agent.store.engine import create_engine
    from agent.store.sql import SqlStore

    store: Any
    if name in ("sqlite", "postgresql"):
        traced = counts is not None and name == "sqlite"
        store = SqlStore(_counting_engine(url, counts) if counts and traced else create_engine(url))
    elif name == "raw-sqlite3":
        store = RawStore(Sqlite3Driver(make_url(url).database or "", counts))
    elif name == "raw-aiosqlite":
        store = RawStore(await AiosqliteDriver.open(make_url(url).database or "", counts))
    else:  # raw-asyncpg
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        store = RawStore(await AsyncpgDriver.open(plain))
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def memory_store() -> AsyncIterator[Any]:
    from agent.store.memory import MemoryStore

    store = MemoryStore()
    try:
        yield store
    finally:
        await store.close()


# name -> the database it runs on (None: none, the in-memory store)
BACKENDS: dict[str, str | None] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "raw-sqlite3": "sqlite",  # the same statements through sqlite3, on the loop's thread
    "raw-aiosqlite": "sqlite",  # ... through aiosqlite, the SQL store's SQLite driver
    "raw-asyncpg": "postgresql",  # ... through asyncpg, the SQL store's PostgreSQL driver
    "memory": None,  # the in-memory store: a baseline, not part of "all"
}
ALL = ("sqlite", "raw-aiosqlite", "raw-sqlite3", "postgresql", "raw-asyncpg")
RAW_OF = {"sqlite": ("raw-aiosqlite", "raw-sqlite3"), "postgresql": ("raw-asyncpg",)}


# -- one lifecycle ---------------------------------------------------------------------------


@dataclass
class Timings:
    stages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    lifecycles: list[float] = field(default_factory=list)


def _stat(account_id: int, dimension: str, arm: str, old: ArmStat | None, reward: float) -> ArmStat:
    posts = (old.posts if old else 0) + 1
    mean = ((old.mean * old.posts if old else 0.0) + reward) / posts
    return ArmStat(
        account_id=account_id,
        dimension=dimension,
        arm=arm,
        posts=posts,
        mean=mean,
        interval_low=mean * 0.5,
        interval_high=mean * 1.5,
        p_best=0.5,
        model="bench",
    )


async def lifecycle(store: Store, account_id: int, number: int, timings: Timings) -> None:
    """Carry post ``number`` from plan to learning update, timing each stage."""
    began = mark = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings.stages[stage] += now - mark
        mark = now

    at = T0 + number * POST_SPACING
    text = f"bench post {number}: what {uuid.uuid4().hex[:12]} taught me about shipping"
    await store.arm_stats(account_id)
    await store.recent_texts(account_id, 50)
    post = await store.add_content(
        NewContent(
            account_id=account_id,
            status=PostStatus.PLANNED,
            text=text,
            text_hash=text_hash(text),
            generation_metadata={**ARMS, "topic": "shipping", "generator": "bench"},
            scheduled_for=at,
            idempotency_key=uuid.uuid4().hex,
        ),
        now=at - timedelta(minutes=30),
    )
    lap("plan")

    followers = 1000 + number
    info = AccountInfo(handle="@bench", followers=followers, following=100, posts=number)
    await store.add_account_snapshot(account_id, info, taken_at=at)
    if not await store.begin_publish(post.id, now=at):
        raise RuntimeError(f"begin_publish refused post {post.id}")
    if not await store.finish_publish(
        post.id, platform_post_id=f"bench-{number}", posted_at=at, horizons=HORIZONS, now=at
    ):
        raise RuntimeError(f"finish_publish refused post {post.id}")
    lap("publish")

    for hours, horizon in enumerate(HORIZONS, start=1):
        due = [s for s in await store.due_snapshots(at + horizon) if s.content_id == post.id]
        if not due:
            raise RuntimeError(f"no due snapshot for post {post.id} at {horizon}")
        metrics = PostMetrics(
            platform_post_id=f"bench-{number}", likes=4 * hours, replies=hours, impressions=400
        )
        await store.record_snapshots(
            [
                SnapshotReading(
                    snapshot_id=snapshot.id,
                    metrics=metrics,
                    taken_at=at + horizon,
                    hours_since_post=horizon.total_seconds() / 3600,
                    followers_at=followers + hours,
                )
                for snapshot in due
            ]
        )
    lap("poll")

    gained = float(number % 5)
    await store.add_attribution(
        Attribution(
            content_id=post.id,
            attribution_method="deconvolution",
            window_hours=24.0,
            followers_before=float(followers),
            followers_after=followers + gained,
            followers_gained=gained,
            confidence_score=0.7,
            inputs={"bench": True},
        ),
        now=at + HORIZONS[-1],
    )
    lap("attribute")

    old = {(s.dimension, s.arm): s for s in await store.arm_stats(account_id)}
    stats = [
        _stat(account_id, dimension, ARMS[dimension], old.get((dimension, ARMS[dimension])), gained)
        for dimension in DIMENSIONS
    ]
    if not await store.apply_learning(
        account_id=account_id,
        content_ids=[post.id],
        stats=stats,
        evidence={"reward": gained, "arms": ARMS},
        updates_applied={"model": "bench", "changes": len(stats)},
        insights_summary={"leaders": ARMS},
        now=at + HORIZONS[-1],
    ):
        raise RuntimeError(f"apply_learning refused post {post.id}")
    lap("learn")
    timings.lifecycles.append(time.perf_counter() - began)


# -- a run -----------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    posts: int
    concurrency: int
    seconds: float
    posts_per_second: float
    ms_per_lifecycle: float  # wall time / posts: what one lifecycle costs in throughput
    cpu_ms_per_lifecycle: float  # this process's CPU time / posts (every thread: aiosqlite's too)
    latency_ms_mean: float  # how long one lifecycle takes from start to end
    latency_ms_p95: float
    store_calls_per_second: float
    stage_share: dict[str, float]  # of the summed lifecycle time, per stage
    per_lifecycle: dict[str, float]  # counted in a pass of its own: store calls, transactions...
    cpu_ratio: dict[str, float] = field(default_factory=dict)  # store CPU / each raw driver's


def warmup_each(concurrency: int) -> int:
    """Untimed lifecycles per worker first: at least WARMUP in all."""
    return -(-WARMUP // concurrency)


class _CallCounter:
    """A store whose method calls are counted (the counting pass's store calls)."""

    def __init__(self, store: Any) -> None:
        self.store, self.calls = store, 0

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self.store, name)


async def _counting_pass(name: str, url: str, first: int) -> dict[str, float]:
    """Per lifecycle, what backend ``name`` sends to the database ``url`` (store_counts.py):
    WARMUP lifecycles on a new connection first, then COUNTED ones counted."""
    counts = Counts()
    relay = None
    if BACKENDS[name] == "postgresql":
        parsed = make_url(url)
        relay = WireCounter(parsed.host or "127.0.0.1", parsed.port or 5432)
        url = parsed.set(host="127.0.0.1", port=await relay.start()).render_as_string(
            hide_password=False
        )
        counts = relay.counts
    try:
        async with open_store(name, url, counts) as store:
            account = await store.ensure_account(
                name="bench-count", platform="sandbox", handle="@count", now=T0
            )
            for number in range(first, first + WARMUP):
                await lifecycle(store, account, number, Timings())
            before = Counts(**asdict(counts))
            calls = _CallCounter(store)
            for number in range(first + WARMUP, first + WARMUP + COUNTED):
                await lifecycle(calls, account, number, Timings())
            done = Counts(
                transactions=counts.transactions - before.transactions,
                statements=counts.statements - before.statements,
                round_trips=counts.round_trips - before.round_trips,
            )
    finally:
        if relay is not None:
            await relay.stop()
    out = {"store_calls": calls.calls / COUNTED} | done.per(COUNTED)
    if relay is None:
        out.pop("round_trips")  # SQLite is in the process: no round trips to count
    return out


async def run_backend(
    name: str, posts: int, concurrency: int, advance: Callable[[], None]
) -> Result:
    kind = BACKENDS[name]
    async with AsyncExitStack() as stack:
        url = "" if kind is None else await stack.enter_async_context(fresh_database(kind))
        async with memory_store() if kind is None else open_store(name, url) as store:
            accounts = [
                await store.ensure_account(
                    name=f"bench-{k}", platform="sandbox", handle=f"@bench{k}", now=T0
                )
                for k in range(concurrency)
            ]
            total = warmup_each(concurrency) * concurrency + posts
            numbers = iter(range(total))

            async def worker(account_id: int, timings: Timings, count: int) -> None:
                for _ in range(count):
                    await lifecycle(store, account_id, next(numbers), timings)
                    advance()

            await asyncio.gather(
                *(worker(a, Timings(), warmup_each(concurrency)) for a in accounts)
            )
            timings = Timings()
            shares = [posts // concurrency + (k < posts % concurrency) for k in range(concurrency)]
            began, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(
                *(worker(a, timings, n) for a, n in zip(accounts, shares, strict=True))
            )
            cpu = time.process_time() - cpu
            seconds = time.perf_counter() - began
        per_lifecycle = {} if kind is None else await _counting_pass(name, url, total)
    latencies = sorted(timings.lifecycles)
    total_time = sum(timings.stages.values()) or 1.0
    return Result(
        backend=name,
        posts=posts,
        concurrency=concurrency,
        seconds=round(seconds, 3),
        posts_per_second=round(posts / seconds, 2),
        ms_per_lifecycle=round(1000 * seconds / posts, 2),
        cpu_ms_per_lifecycle=round(1000 * cpu / posts, 3),
        latency_ms_mean=round(1000 * sum(latencies) / len(latencies), 2),
        latency_ms_p95=round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2),
        store_calls_per_second=round(STORE_CALLS * posts / seconds, 1),
        stage_share={s: round(timings.stages[s] / total_time, 3) for s in STAGES},
        per_lifecycle=per_lifecycle,
    )


def add_ratios(results: list[Result]) -> None:
    """Each SQL store's client CPU over each raw driver's of the same run (``cpu_ratio``)."""
    by_name = {r.backend: r for r in results}
    for result in results:
        for raw in RAW_OF.get(result.backend, ()):
            if raw in by_name and by_name[raw].cpu_ms_per_lifecycle > 0:
                result.cpu_ratio[raw] = round(
                    result.cpu_ms_per_lifecycle / by_name[raw].cpu_ms_per_lifecycle, 2
                )


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def table(results: list[Result]) -> Table:
    out = Table(title="Store lifecycles: throughput, client CPU, what one lifecycle sends")
    columns = ("backend", "posts", "workers", "posts/s", "ms/post", "CPU ms/post", "CPU x raw")
    for column in columns:
        out.add_column(column, justify="left" if column == "backend" else "right")
    for column in ("calls", "transactions", "statements", "round trips"):
        out.add_column(column, justify="right")
    out.add_column("% plan/pub/poll/attr/learn", justify="right")
    for r in results:
        counted = r.per_lifecycle
        out.add_row(
            r.backend,
            str(r.posts),
            str(r.concurrency),
            f"{r.posts_per_second:.1f}",
            f"{r.ms_per_lifecycle:.1f}",
            f"{r.cpu_ms_per_lifecycle:.2f}",
            " ".join(f"{v:.1f} ({k.removeprefix('raw-')})" for k, v in r.cpu_ratio.items()),
            *(
                f"{counted[k]:g}" if k in counted else "-"
                for k in ("store_calls", "transactions", "statements", "round_trips")
            ),
            "/".join(f"{100 * r.stage_share[s]:.0f}" for s in STAGES),
        )
    return out


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    parser.add_argument("--posts", type=positive, default=200, help="timed lifecycles")
    parser.add_argument(
        "--concurrency", type=positive, default=1, help="workers at once, one account each"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, console: Console) -> int:
    names = ALL if args.backend == "all" else (args.backend,)
    results: list[Result] = []
    failed = 0
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for name in names:
            total = args.posts + warmup_each(args.concurrency) * args.concurrency
            task = progress.add_task(name, total=total)
            try:
                advance = functools.partial(progress.advance, task)
                result = await run_backend(name, args.posts, args.concurrency, advance)
            except (OSError, ImportError) as exc:  # no server, or the backend's extras missing
                progress.console.print(f"[red]{name}: not measured: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            except Exception as exc:  # e.g. asyncpg's "database does not exist", a StoreError
                progress.console.print(f"[red]{name}: failed: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            results.append(result)
    add_ratios(results)
    if results:
        console.print(table(results))
    info = machine()
    console.print(
        f"{info['processor']}, {info['cpus']} CPUs, Python {info['python']}, "
        f"SQLite {info['sqlite']}, load average {info['load_average']}"
    )
    if args.json:
        payload = {"machine": info, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    from agent.logs import configure_logging

    args = parse(argv)
    configure_logging(level="error")
    sys.exit(asyncio.run(run(args, Console(width=max(Console().width, 150)))))


if __name__ == "__main__":
    main()
