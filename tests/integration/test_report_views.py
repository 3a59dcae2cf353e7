"""The reporting views of migration 0003, checked against the tables on SQLite and PostgreSQL.

The data is made by the agent itself: two sandbox accounts run through the real cycles in virtual
time for a day and a half (with a generator that bills every draft and a platform wrapper that
bills every call, so the spend columns are not all zero). Every view's rows are then compared
with the same figures computed here, in Python, from the table rows. A few smaller tests write
through the Store API to reach what the simulation does not (drafts, posts in flight, failures,
spend per follower, an account with nothing to do).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic import command

from adapters.base import AccountInfo, PostMetrics, text_hash
from adapters.sandbox import SandboxWorld, Scenario
from agent.clock import VirtualClock
from agent.core import Agent
from agent.cycles.health import health_cycle
from agent.generators.template import TemplateGenerator
from agent.models import Attribution, Draft, GenerationRequest, NewContent, PostStatus
from agent.simulator import run_until
from agent.store.engine import create_engine, normalise_postgres_url
from agent.store.migrate import alembic_config, upgrade
from agent.store.schema import (
    ARM_VIEWS,
    REPORT_VIEWS,
    account_snapshots,
    accounts,
    arm_statistics,
    content,
    follower_attributions,
    performance_snapshots,
    system_health_metrics,
)
from agent.store.sql import SqlStore
from tests.conftest import T0, example_raw, fresh_pg_database, make_config, supabase_store

ALWAYS = {"start": "00:00", "end": "00:00", "timezone": "UTC"}
DRAFT_PRICE = 0.0125  # US dollars the test generator bills per draft
CALL_PRICE = 0.0005  # US dollars the test platform wrapper bills per platform call
SIMULATED = timedelta(days=1, hours=12)  # from T0 (06:00): two calendar days, then some
Z_95 = 1.959964


class PricedGenerator:
    """The template generator, billing a fixed price per draft (as an LLM would)."""

    name = "priced_template"

    def __init__(self, seed: int) -> None:
        self._inner = TemplateGenerator(seed=seed)

    async def write(self, request: GenerationRequest) -> Draft:
        draft = await self._inner.write(request)
        return replace(draft, generator=self.name, cost_usd=DRAFT_PRICE)

    async def moderate(self, text: str) -> str | None:
        return await self._inner.moderate(text)


class BilledPlatform:
    """A sandbox account that bills every call, like X's pay-per-use API (``spend_usd``)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.spend_usd = 0.0
        self.name = inner.name

    def length(self, text: str) -> int:  # counting is local: not a billed call
        return int(self._inner.length(text))

    async def load_limits(self) -> Any:  # the sandbox's limits are local: not a billed call
        return await self._inner.load_limits()

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if not callable(value):
            return value

        async def billed(*args: Any, **kwargs: Any) -> Any:
            self.spend_usd += CALL_PRICE
            return await value(*args, **kwargs)

        return billed


@dataclass
class Simulated:
    store: SqlStore
    platform_spend_usd: float  # what the platform wrappers billed over the whole run
    drafts: int  # drafts the generator billed


async def migrated_store(stack: AsyncExitStack, backend: str, directory: Path) -> SqlStore:
    """A migrated SQL store: an SQLite file in ``directory`` or a fresh PostgreSQL database."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'views.db'}"
    else:
        url = normalise_postgres_url(await stack.enter_async_context(fresh_pg_database()))
    engine = create_engine(url)
    await upgrade(engine)
    store = SqlStore(engine)
    stack.push_async_callback(store.close)
    return store


@pytest.fixture(params=["sqlite", "postgresql", "supabase"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The views are SQL: SQLite, PostgreSQL, and PostgreSQL set up like a Supabase project (the
    views read as a non-superuser role, under row-level security); not the in-memory store."""
    if request.param == "supabase":
        async with supabase_store() as s:
            yield s
        return
    async with AsyncExitStack() as stack:
        yield await migrated_store(stack, request.param, tmp_path)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def simulated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Simulated]:
    """Two sandbox accounts, a day and a half simulated on a migrated store, per backend."""
    async with AsyncExitStack() as stack:
        store = await migrated_store(stack, request.param, tmp_path_factory.mktemp("views"))
        world = SandboxWorld(Scenario.load("default"), seed=11, start=T0)
        stack.callback(world.close)
        first = example_raw()["accounts"][0]
        second = {**first, "name": "second", "handle": "@second"}
        config = make_config(
            accounts=[first, second],
            cadence={"active_hours": ALWAYS, "jitter": "0s"},
            polling={"account_every": "30m"},
        )
        clock = VirtualClock(T0)
        platforms = {
            a.name: BilledPlatform(world.platform(a.name, now=clock.now)) for a in config.accounts
        }
        generator = PricedGenerator(seed=11)
        agent = Agent(
            config=config,
            store=store,
            platforms=platforms,  # type: ignore[arg-type]
            generator=generator,
            clock=clock,
            seed=11,
        )
        end = T0 + SIMULATED
        await run_until(agent, clock, end)
        await health_cycle(agent, end)  # the hours up to the end, so spend is complete
        yield Simulated(
            store=store,
            platform_spend_usd=sum(p.spend_usd for p in platforms.values()),
            drafts=len(await table(store, content)),
        )


# -- reading and comparing ------------------------------------------------------------------


async def table(store: SqlStore, t: sa.Table) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return [
            dict(r._mapping) for r in await conn.execute(sa.select(t).order_by(t.c[t.c.keys()[0]]))
        ]


async def view(store: SqlStore, name: str) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(sa.text(f"SELECT * FROM {name}"))]


def utc(value: Any) -> datetime | None:
    """A view's timestamp (SQLite: naive UTC text; PostgreSQL: an aware datetime) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_of(value: Any) -> str:
    """A view's day (SQLite: 'YYYY-MM-DD'; PostgreSQL: a date), or a timestamp's UTC day."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


TIMESTAMP_COLUMNS = {
    "posted_at",
    "updated_at",
    "first_attributed_at",
    "last_attributed_at",
    "oldest_due_snapshot_at",
    "next_snapshot_at",
    "next_post_at",
    "oldest_in_flight_since",
    "oldest_draft_at",
}


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in TIMESTAMP_COLUMNS & out.keys():
        out[key] = utc(out[key])
    if "day" in out:
        out["day"] = day_of(out["day"])
    return out


def assert_rows_match(
    got: list[dict[str, Any]], expected: dict[Any, dict[str, Any]], key: tuple[str, ...]
) -> None:
    """Each view row equals the expected row of its key (floats to 1e-9), and no row is missing."""
    by_key = {tuple(normalised(r)[k] for k in key): normalised(r) for r in got}
    assert set(by_key) == set(expected)
    for k, want in expected.items():
        row = by_key[k]
        for column, value in want.items():
            found = row[column]
            if isinstance(value, float) and found is not None:
                assert float(found) == pytest.approx(value, rel=1e-9, abs=1e-9), (k, column)
            else:
                assert found == value, (k, column, found, value)


# -- the expected figures, from the tables ----------------------------------------------------


@dataclass
class Tables:
    accounts: dict[int, str]
    content: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    readings: list[dict[str, Any]]
    attributions: list[dict[str, Any]]
    arms: list[dict[str, Any]]
    health: list[dict[str, Any]]

    def account_of(self, content_id: int) -> int:
        return next(c["account_id"] for c in self.content if c["id"] == content_id)


async def load(store: SqlStore) -> Tables:
    return Tables(
        accounts={a["id"]: a["name"] for a in await table(store, accounts)},
        content=await table(store, content),
        snapshots=await table(store, performance_snapshots),
        readings=await table(store, account_snapshots),
        attributions=await table(store, follower_attributions),
        arms=await table(store, arm_statistics),
        health=await table(store, system_health_metrics),
    )


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def expected_daily_health(t: Tables) -> dict[tuple[int, str], dict[str, Any]]:
    account_of = {c["id"]: c["account_id"] for c in t.content}
    days: set[tuple[int, str]] = set()
    for c in t.content:
        for column in ("created_at", "updated_at", "posted_at"):
            if c[column] is not None:
                days.add((c["account_id"], day_of(c[column])))
    days |= {(account_of[s["content_id"]], day_of(s["due_at"])) for s in t.snapshots}
    days |= {(r["account_id"], day_of(r["taken_at"])) for r in t.readings}
    days |= {(h["account_id"], day_of(h["hour_start"])) for h in t.health}
    out = {}
    for account_id, day in days:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        end = start + timedelta(days=1)
        mine = [c for c in t.content if c["account_id"] == account_id]
        published = sum(1 for c in mine if c["posted_at"] and day_of(c["posted_at"]) == day)
        failed = sum(
            1
            for c in mine
            if c["status"] == "failed"
            and c["publish_attempts"] > 0
            and day_of(c["updated_at"]) == day
        )
        rejected = sum(
            1 for c in mine if c["status"] == "rejected" and day_of(c["updated_at"]) == day
        )
        snaps = [
            s
            for s in t.snapshots
            if account_of[s["content_id"]] == account_id and day_of(s["due_at"]) == day
        ]
        ok = sum(1 for s in snaps if s["taken_at"] is not None and s["error"] is None)
        readings = sorted(
            (r for r in t.readings if r["account_id"] == account_id),
            key=lambda r: (r["taken_at"], r["id"]),
        )
        before = [r for r in readings if r["taken_at"] < start]
        within = [r for r in readings if start <= r["taken_at"] < end]
        f_start = before[-1] if before else (within[0] if within else None)
        upto = [r for r in readings if r["taken_at"] < end]
        f_end = upto[-1] if upto else None
        gained = f_end["followers"] - f_start["followers"] if f_start and f_end else None
        llm = sum(
            float(c["generation_metadata"].get("cost_usd") or 0.0)
            for c in mine
            if day_of(c["created_at"]) == day
        )
        hours = [
            h for h in t.health if h["account_id"] == account_id and day_of(h["hour_start"]) == day
        ]
        platform = sum(h["platform_spend_usd"] for h in hours)
        out[(account_id, day)] = {
            "account": t.accounts[account_id],
            "posts_published": published,
            "posts_failed": failed,
            "posts_rejected": rejected,
            "publish_success_rate": ratio(published, published + failed),
            "snapshots_due": len(snaps),
            "snapshots_taken": ok,
            "snapshot_success_rate": ratio(ok, len(snaps)),
            "followers_start": f_start["followers"] if f_start else None,
            "followers_end": f_end["followers"] if f_end else None,
            "followers_gained": gained,
            "llm_spend_usd": llm,
            "platform_spend_usd": platform,
            "spend_usd": llm + platform,
            "cost_per_follower_usd": (llm + platform) / gained if gained and gained > 0 else None,
            "api_calls": sum(h["api_calls"] for h in hours),
            "api_errors": sum(h["api_errors"] for h in hours),
            "health_hours": len(hours),
        }
    return out


def expected_leaderboard(t: Tables) -> dict[tuple[int, str, str], dict[str, Any]]:
    out = {}
    for s in t.arms:
        rivals = [
            (-r["mean"], r["arm"])
            for r in t.arms
            if (r["account_id"], r["dimension"]) == (s["account_id"], s["dimension"])
        ]
        out[(s["account_id"], s["dimension"], s["arm"])] = {
            "account": t.accounts[s["account_id"]],
            "rank": 1 + sum(1 for m in rivals if m < (-s["mean"], s["arm"])),
            "posts": s["posts"],
            "mean": s["mean"],
            "interval_low": s["interval_low"],
            "interval_high": s["interval_high"],
            "p_best": s["p_best"],
            "model": s["model"],
        }
    return out


def latest_attribution(t: Tables, content_id: int, method: str) -> dict[str, Any] | None:
    rows = [
        f
        for f in t.attributions
        if f["content_id"] == content_id and f["attribution_method"] == method
    ]
    return max(rows, key=lambda f: (f["created_at"], f["id"])) if rows else None


def expected_post_performance(t: Tables) -> dict[tuple[int], dict[str, Any]]:
    out = {}
    for c in t.content:
        if c["posted_at"] is None:
            continue
        meta = c["generation_metadata"]
        row: dict[str, Any] = {
            "account_id": c["account_id"],
            "account": t.accounts[c["account_id"]],
            "status": c["status"],
            "content_type": meta["content_type"],
            "formula": meta["formula"],
            "hook": meta["hook"],
            "topic": meta["topic"],
            "text": c["text"],
            "platform_post_id": c["platform_post_id"],
            "posted_at": c["posted_at"],
        }
        for hours in (1, 4, 24):
            snap = next(
                (
                    s
                    for s in t.snapshots
                    if s["content_id"] == c["id"] and s["horizon_hours"] == hours
                ),
                {},
            )
            for name in ("likes", "reposts", "replies", "impressions"):
                row[f"{name}_{hours}h"] = snap.get(name)
            row[f"followers_{hours}h"] = snap.get("followers_at")
        for method in ("time_window", "deconvolution"):
            found = latest_attribution(t, c["id"], method)
            row[f"followers_{method}"] = found["followers_gained"] if found else None
            row[f"confidence_{method}"] = found["confidence_score"] if found else None
        out[(c["id"],)] = row
    return out


def expected_attribution_summary(t: Tables) -> dict[tuple[int, str], dict[str, Any]]:
    groups: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for f in t.attributions:
        groups[(t.account_of(f["content_id"]), f["attribution_method"])].append(f)
    return {
        key: {
            "account": t.accounts[key[0]],
            "posts_attributed": len({f["content_id"] for f in rows}),
            "attributions": len(rows),
            "total_followers_gained": sum(f["followers_gained"] for f in rows),
            "mean_followers_gained": sum(f["followers_gained"] for f in rows) / len(rows),
            "mean_confidence": sum(f["confidence_score"] for f in rows) / len(rows),
            "first_attributed_at": min(f["created_at"] for f in rows),
            "last_attributed_at": max(f["created_at"] for f in rows),
        }
        for key, rows in groups.items()
    }


def expected_pending_work(t: Tables, now: datetime) -> dict[tuple[int], dict[str, Any]]:
    out = {}
    for account_id, name in t.accounts.items():
        mine = [c for c in t.content if c["account_id"] == account_id]
        ids = {c["id"] for c in mine}
        open_snaps = [s for s in t.snapshots if s["content_id"] in ids and s["taken_at"] is None]
        due = [s["due_at"] for s in open_snaps if s["due_at"] <= now]
        upcoming = [s["due_at"] for s in open_snaps if s["due_at"] > now]
        planned = [c for c in mine if c["status"] == "planned"]
        flying = [c for c in mine if c["status"] == "publishing"]
        drafts = [c for c in mine if c["status"] == "draft"]
        out[(account_id,)] = {
            "account": name,
            "snapshots_due": len(due),
            "oldest_due_snapshot_at": min(due, default=None),
            "snapshots_upcoming": len(upcoming),
            "next_snapshot_at": min(upcoming, default=None),
            "posts_queued": len(planned),
            "posts_queued_due": sum(1 for c in planned if c["scheduled_for"] <= now),
            "next_post_at": min((c["scheduled_for"] for c in planned), default=None),
            "posts_in_flight": len(flying),
            "oldest_in_flight_since": min((c["publish_started_at"] for c in flying), default=None),
            "drafts_waiting": len(drafts),
            "oldest_draft_at": min((c["created_at"] for c in drafts), default=None),
        }
    return out


# -- the simulated run ------------------------------------------------------------------------

SIM = pytest.mark.asyncio(loop_scope="module")


@SIM
async def test_daily_health_matches_the_tables(simulated: Simulated) -> None:
    t = await load(simulated.store)
    got = await view(simulated.store, "daily_health")
    # two UTC days of activity, and the next one, when the last posts' 24h snapshots fall due
    assert sorted({day_of(r["day"]) for r in got}) == [
        (T0 + timedelta(days=n)).date().isoformat() for n in range(3)
    ]
    assert sum(r["posts_published"] for r in got) > 10

    assert_rows_match(got, expected_daily_health(t), ("account_id", "day"))
    # spend, as billed by the test doubles rather than as read back from the tables
    assert sum(r["llm_spend_usd"] for r in got) == pytest.approx(DRAFT_PRICE * simulated.drafts)
    assert sum(r["platform_spend_usd"] for r in got) == pytest.approx(simulated.platform_spend_usd)
    # followers gained day by day add up to each account's growth over the run
    for account_id in t.accounts:
        readings = sorted(
            (r for r in t.readings if r["account_id"] == account_id),
            key=lambda r: (r["taken_at"], r["id"]),
        )
        gained = sum(r["followers_gained"] for r in got if r["account_id"] == account_id)
        assert gained == readings[-1]["followers"] - readings[0]["followers"]


@SIM
async def test_arm_leaderboard_matches_the_stored_estimates(simulated: Simulated) -> None:
    t = await load(simulated.store)
    got = await view(simulated.store, "arm_leaderboard")
    assert {r["dimension"] for r in got} >= {"content_type", "formula", "hook"}
    assert any(r["posts"] >= 2 for r in got)

    assert_rows_match(got, expected_leaderboard(t), ("account_id", "dimension", "arm"))
    for r in got:
        assert r["interval_low"] <= r["mean"] <= r["interval_high"]
        assert 0.0 <= r["p_best"] <= 1.0


@SIM
async def test_post_performance_matches_the_tables(simulated: Simulated) -> None:
    t = await load(simulated.store)
    got = await view(simulated.store, "post_performance")
    full = [
        r for r in got if r["likes_24h"] is not None and r["followers_deconvolution"] is not None
    ]
    assert full, "some posts should have their 24h snapshot and an attribution"
    assert any(r["likes_1h"] is not None and r["likes_24h"] is None for r in got)

    assert_rows_match(got, expected_post_performance(t), ("content_id",))


@SIM
async def test_attribution_summary_matches_the_tables(simulated: Simulated) -> None:
    t = await load(simulated.store)
    got = await view(simulated.store, "attribution_summary")
    assert {r["attribution_method"] for r in got} == {"time_window", "deconvolution"}

    assert_rows_match(got, expected_attribution_summary(t), ("account_id", "attribution_method"))


@SIM
async def test_pending_work_matches_the_tables(simulated: Simulated) -> None:
    # The simulated run lies months before the wall clock: every open snapshot is due now.
    t = await load(simulated.store)
    got = await view(simulated.store, "pending_work")
    assert sum(r["snapshots_due"] for r in got) > 0

    assert_rows_match(got, expected_pending_work(t, datetime.now(UTC)), ("account_id",))


# -- through the Store API --------------------------------------------------------------------

HORIZONS = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))


def new_content(account_id: int, **overrides: Any) -> NewContent:
    text = overrides.pop("text", f"a post about sleep {uuid.uuid4().hex[:8]}")
    meta = {"content_type": "tip", "formula": "list", "hook": "question", "topic": "sleep"}
    values: dict[str, Any] = {
        "account_id": account_id,
        "status": PostStatus.PLANNED,
        "text": text,
        "text_hash": text_hash(text),
        "generation_metadata": meta | overrides.pop("meta", {}),
        "scheduled_for": overrides.pop("at", T0),
        "idempotency_key": uuid.uuid4().hex,
    }
    values.update(overrides)
    return NewContent(**values)


async def add(store: SqlStore, account_id: int, *, now: datetime, **overrides: Any) -> int:
    overrides.setdefault("at", now)
    return (await store.add_content(new_content(account_id, **overrides), now=now)).id


async def publish(store: SqlStore, content_id: int, *, at: datetime) -> None:
    assert await store.begin_publish(content_id, now=at)
    assert await store.finish_publish(
        content_id, platform_post_id=f"p{content_id}", posted_at=at, horizons=HORIZONS, now=at
    )


async def snapshot_ids(store: SqlStore, content_id: int) -> list[int]:
    rows = [s for s in await table(store, performance_snapshots) if s["content_id"] == content_id]
    return [s["id"] for s in sorted(rows, key=lambda s: s["horizon_hours"])]


async def reading(store: SqlStore, account_id: int, followers: int, at: datetime) -> None:
    info = AccountInfo(handle="@main", followers=followers, following=10, posts=1)
    await store.add_account_snapshot(account_id, info, taken_at=at)


def health_row(account_id: int, hour: datetime, platform_usd: float) -> dict[str, Any]:
    return {
        "hour_start": hour,
        "account_id": account_id,
        "posts_attempted": 0,
        "posts_succeeded": 0,
        "posts_failed": 0,
        "posts_rejected": 0,
        "polls_due": 0,
        "polls_done": 0,
        "polls_late": 0,
        "api_calls": 3,
        "api_errors": 1,
        "rate_limit_waits": 0,
        "errors_by_kind": {},
        "engagement_rate": None,
        "followers_total": None,
        "followers_gained": 0.0,
        "llm_spend_usd": 0.0,
        "platform_spend_usd": platform_usd,
        "cost_per_follower_usd": None,
        "created_at": hour + timedelta(hours=1),
    }


async def test_daily_health_counts_failures_errors_and_cost_per_follower(store: SqlStore) -> None:
    main = await store.ensure_account(name="main", platform="sandbox", handle="@main", now=T0)
    day = T0.date().isoformat()
    costs = {"posted": 0.02, "failed": 0.03, "generation_failed": 0.0, "rejected": 0.01}
    posted = await add(store, main, now=T0, meta={"cost_usd": costs["posted"]})
    await publish(store, posted, at=T0 + timedelta(hours=1))
    failed = await add(store, main, now=T0, meta={"cost_usd": costs["failed"]})
    assert await store.begin_publish(failed, now=T0 + timedelta(hours=2))
    await store.fail_publish(failed, error="AuthFailed", now=T0 + timedelta(hours=2))
    # a generation failure: never sent, so not a failed publish
    await add(store, main, now=T0, status=PostStatus.FAILED, meta={"cost_usd": None})
    rejected = {"cost_usd": costs["rejected"]}
    await add(store, main, now=T0, status=PostStatus.REJECTED, meta=rejected)
    one_hour, four_hours, _ = await snapshot_ids(store, posted)
    metrics = PostMetrics(platform_post_id=f"p{posted}", likes=4, impressions=100)
    await store.record_snapshot(
        one_hour, metrics, taken_at=T0 + timedelta(hours=2), hours_since_post=1.0, followers_at=104
    )
    await store.record_snapshot(
        four_hours,
        None,
        taken_at=T0 + timedelta(hours=5),
        hours_since_post=4.0,
        followers_at=None,
        error="post not found on the platform",
    )
    await reading(store, main, 100, T0 - timedelta(days=1))  # the day before: the start
    await reading(store, main, 104, T0 + timedelta(hours=1))
    await reading(store, main, 112, T0 + timedelta(hours=10))
    platform = {T0: 0.04, T0 + timedelta(hours=1): 0.06}
    for hour, usd in platform.items():
        await store.write_health(health_row(main, hour, usd))

    rows = {day_of(r["day"]): r for r in await view(store, "daily_health")}

    yesterday = (T0 - timedelta(days=1)).date().isoformat()
    tomorrow = (T0 + timedelta(days=1)).date().isoformat()  # the 24h snapshot is due then
    assert set(rows) == {yesterday, day, tomorrow}
    today = rows[day]
    spend = sum(costs.values()) + sum(platform.values())
    assert (today["posts_published"], today["posts_failed"], today["posts_rejected"]) == (1, 1, 1)
    assert today["publish_success_rate"] == pytest.approx(1 / 2)
    assert (today["snapshots_due"], today["snapshots_taken"]) == (2, 1)  # 1h taken, 4h erred
    assert today["snapshot_success_rate"] == pytest.approx(1 / 2)
    assert (today["followers_start"], today["followers_end"]) == (100, 112)
    assert today["followers_gained"] == 112 - 100
    assert today["llm_spend_usd"] == pytest.approx(sum(costs.values()))
    assert today["platform_spend_usd"] == pytest.approx(sum(platform.values()))
    assert today["spend_usd"] == pytest.approx(spend)
    assert today["cost_per_follower_usd"] == pytest.approx(spend / (112 - 100))
    assert (today["api_calls"], today["api_errors"], today["health_hours"]) == (6, 2, 2)
    # a day with no posts and no growth: no rates, no cost per follower (no division by zero)
    quiet = rows[yesterday]
    assert (quiet["posts_published"], quiet["followers_gained"]) == (0, 0)
    assert quiet["publish_success_rate"] is None
    assert quiet["snapshot_success_rate"] is None
    assert quiet["cost_per_follower_usd"] is None
    assert rows[tomorrow]["snapshots_due"] == 1
    assert rows[tomorrow]["followers_start"] == rows[tomorrow]["followers_end"] == 112


async def test_pending_work_reports_each_account_against_the_clock(store: SqlStore) -> None:
    # Placed hours away from the wall clock, which the view reads (CURRENT_TIMESTAMP).
    now = datetime.now(UTC).replace(microsecond=0)
    busy = await store.ensure_account(name="busy", platform="sandbox", handle=None, now=now)
    idle = await store.ensure_account(name="idle", platform="sandbox", handle=None, now=now)
    old = await add(store, busy, now=now - timedelta(hours=31))
    await publish(store, old, at=now - timedelta(hours=30))  # due -29h, -26h, -6h
    first, *_ = await snapshot_ids(store, old)
    await store.record_snapshot(
        first, None, taken_at=now - timedelta(hours=29), hours_since_post=1.0, followers_at=None
    )
    recent = await add(store, busy, now=now - timedelta(hours=3))
    await publish(store, recent, at=now - timedelta(hours=2))  # due -1h, +2h, +22h
    await add(store, busy, now=now - timedelta(hours=1), at=now - timedelta(minutes=10))
    await add(store, busy, now=now - timedelta(hours=1), at=now + timedelta(hours=3))
    flying = await add(store, busy, now=now - timedelta(hours=1), at=now - timedelta(minutes=20))
    assert await store.begin_publish(flying, now=now - timedelta(minutes=5))
    await add(store, busy, now=now - timedelta(hours=2), status=PostStatus.DRAFT)
    await add(store, busy, now=now - timedelta(hours=1), status=PostStatus.DRAFT)

    rows = {r["account"]: normalised(r) for r in await view(store, "pending_work")}

    assert rows["busy"] == {
        "account_id": busy,
        "account": "busy",
        "snapshots_due": 3,
        "oldest_due_snapshot_at": now - timedelta(hours=26),
        "snapshots_upcoming": 2,
        "next_snapshot_at": now + timedelta(hours=2),
        "posts_queued": 2,
        "posts_queued_due": 1,
        "next_post_at": now - timedelta(minutes=10),
        "posts_in_flight": 1,
        "oldest_in_flight_since": now - timedelta(minutes=5),
        "drafts_waiting": 2,
        "oldest_draft_at": now - timedelta(hours=2),
    }
    assert rows["idle"] == {
        "account_id": idle,
        "account": "idle",
        "snapshots_due": 0,
        "oldest_due_snapshot_at": None,
        "snapshots_upcoming": 0,
        "next_snapshot_at": None,
        "posts_queued": 0,
        "posts_queued_due": 0,
        "next_post_at": None,
        "posts_in_flight": 0,
        "oldest_in_flight_since": None,
        "drafts_waiting": 0,
        "oldest_draft_at": None,
    }
    t = await load(store)
    assert_rows_match(list(rows.values()), expected_pending_work(t, now), ("account_id",))


async def test_downgrade_to_0002_drops_the_report_views_only(store: SqlStore) -> None:
    def go(connection: sa.Connection) -> tuple[set[str], str | None]:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0002")
        return set(sa.inspect(connection).get_view_names()), None

    async with store.engine.begin() as conn:
        views, _ = await conn.run_sync(go)

    assert views == {"content_type_performance", "formula_performance", "hook_performance"}
    await upgrade(store.engine)
    async with store.engine.connect() as conn:
        views = await conn.run_sync(lambda c: set(sa.inspect(c).get_view_names()))
    assert views == set(ARM_VIEWS) | set(REPORT_VIEWS) | LATER_VIEWS


# views of later migrations (0012 the audience's, 0013 the experiments', 0014 the threads'),
# back after the upgrade
LATER_VIEWS = {
    "audience_tiers",
    "top_engaged_followers",
    "cohort_retention",
    "post_audience",
    "post_touch_credit",
    "experiment_results",
    "thread_performance",
}


async def test_post_performance_shows_the_latest_attribution_of_each_method(
    store: SqlStore,
) -> None:
    main = await store.ensure_account(name="main", platform="sandbox", handle=None, now=T0)
    post = await add(store, main, now=T0, meta={"hook": "bold_claim"})
    await publish(store, post, at=T0)
    await add(store, main, now=T0)  # planned, never posted: no row
    for hours, snapshot in zip((1, 4, 24), await snapshot_ids(store, post), strict=True):
        metrics = PostMetrics(platform_post_id=f"p{post}", likes=hours, impressions=10 * hours)
        at = T0 + timedelta(hours=hours)
        await store.record_snapshot(
            snapshot, metrics, taken_at=at, hours_since_post=hours, followers_at=500 + hours
        )
    # the attribution window was changed from 24h to 12h: the newer estimate is the one shown
    for window, gained, written in ((24.0, 3.0, 25), (12.0, 1.5, 30)):
        attribution = Attribution(
            content_id=post,
            attribution_method="time_window",
            window_hours=window,
            followers_before=500.0,
            followers_after=500.0 + gained,
            followers_gained=gained,
            confidence_score=window / 100,
            inputs={},
        )
        await store.add_attribution(attribution, now=T0 + timedelta(hours=written))

    [row] = await view(store, "post_performance")

    assert (row["content_id"], row["account"], row["hook"]) == (post, "main", "bold_claim")
    assert [row[f"likes_{h}h"] for h in (1, 4, 24)] == [1, 4, 24]
    assert [row[f"impressions_{h}h"] for h in (1, 4, 24)] == [10, 40, 240]
    assert [row[f"followers_{h}h"] for h in (1, 4, 24)] == [501, 504, 524]
    assert row["followers_time_window"] == 1.5
    assert row["confidence_time_window"] == pytest.approx(0.12)
    assert row["followers_deconvolution"] is None
    [summary] = await view(store, "attribution_summary")
    assert (summary["posts_attributed"], summary["attributions"]) == (1, 2)
    assert summary["total_followers_gained"] == pytest.approx(4.5)
