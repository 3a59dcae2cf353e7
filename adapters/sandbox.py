"""The simulated platform: a whole simulated network (:class:`SandboxWorld`) and the adapter one
account uses to talk to it (:class:`SandboxPlatform`, an :class:`adapters.base.Platform`).

The audience behind it, its formulas and the scenario files that configure it are documented in
:mod:`adapters.sandbox_model`. This module is the platform's *behaviour*:

- ``publish`` checks, in order: injected/random faults that fail before anything is created
  (``auth_failed``, ``rate_limit``, ``publish_error``, ``publish_timeout_before``); empty or
  over-long text (``ContentRejected``, counted in NFC code points); the idempotency key (a key
  already used by the account returns its post, like Mastodon's ``Idempotency-Key``); the sliding
  hourly and daily caps (``RateLimited(reset_at=...)``); the same text within the duplicate window
  (``DuplicateContent``). Then the post is created and committed, and only then may a
  ``publish_ambiguous`` fault raise ``AmbiguousPublish`` - the post exists, the caller must
  reconcile it with ``find_recent``.
- ``platform.publish_delay_before_s`` / ``publish_delay_after_s`` (crash-test aids, real
  seconds, default 0) make ``publish`` sleep before it writes anything, or after the new post is
  committed but before it returns.
- ``platform.latency_ms`` / ``read_latency_ms`` (real milliseconds, default 0) simulate a
  network round trip: half of ``latency_ms`` before a publish creates the post and half after;
  all of ``read_latency_ms`` before a read answers.
- ``fetch_metrics`` returns counters accrued up to the caller's ``now()`` (monotone in time);
  deleted and unknown ids are omitted. ``fetch_account`` returns followers at ``now()``.
- Billing (``platform.prices``, default nothing): ``spend_usd`` adds the post price to each
  post created (``post_with_url`` when the text has a link) and the read price to each object a
  read returns (a post's metrics, the account, a post found), as X's pay-per-use bills; a
  replayed idempotency key creates nothing and bills nothing.
- Deleting a post hides it from reads; the followers it brought stay (as on real platforms), and
  deleting an unknown post is a no-op.
- Audience reads (``read_audience``: every simulated person's act, and who follows) are in
  :mod:`adapters.sandbox_reads`; the people themselves in :mod:`adapters.sandbox_people`.

Storage. The world lives in SQLite: ``:memory:`` when ``path`` is None (simulation), or a file in
WAL mode with a busy timeout, so a world survives restarts and several processes can share it
(publishing is one ``BEGIN IMMEDIATE`` transaction, committed before ``publish`` returns). The
scenario, seed and start are stored in the file when it is created; re-opening it continues that
world whatever arguments are passed.

Faults. ``SandboxWorld.inject_fault`` queues faults (stored in the world, so another process
sharing the file sees them); ``faults.*_rate`` keys of the scenario add random faults, drawn
deterministically per (seed, account, kind, call number of this process).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.base import (
    AccountInfo,
    PlatformLimits,
    PostMetrics,
    Prices,
    PublishedPost,
    ReplyTo,
    text_hash,
)
from adapters.length import code_points, urls
from adapters.sandbox_model import (
    COUNTERS,
    DIMENSIONS,
    REPLY_REACH,
    AudienceModel,
    GroundTruth,
    Scenario,
    from_us,
    reference_followers,
    stable_key,
    stable_uniform,
    to_us,
)
from adapters.sandbox_people import People, PostDraw
from adapters.sandbox_reads import SandboxAudienceReads
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    DuplicateContent,
    GrowthloopError,
    PlatformUnavailable,
    RateLimited,
)

REPLY_LABEL = "reply_to"  # a thread part's parent, kept with its labels in the world's table

__all__ = [
    "DIMENSIONS",
    "FAULT_KINDS",
    "GroundTruth",
    "SandboxPlatform",
    "SandboxWorld",
    "Scenario",
]

#: fault kind -> the calls it hits (see SandboxWorld.inject_fault)
FAULT_KINDS: Mapping[str, str] = {
    "publish_error": "publish: PlatformUnavailable, nothing posted",
    "publish_ambiguous": "publish: the post IS created, then AmbiguousPublish",
    "publish_timeout_before": "publish: AmbiguousPublish, nothing posted",
    "rate_limit": "publish: RateLimited(reset_at), nothing posted",
    "read_rate_limit": "fetch_metrics, fetch_account, find_recent: RateLimited(reset_at)",
    "metrics_error": "fetch_metrics: PlatformUnavailable",
    "account_error": "fetch_account: PlatformUnavailable",
    "find_error": "find_recent: PlatformUnavailable",
    "auth_failed": "any call: AuthFailed",
}
_RATE_KEYS = {  # fault kind -> the scenario's faults.<key> giving its random rate
    "publish_error": "publish_error_rate",
    "publish_ambiguous": "publish_ambiguous_rate",
    "publish_timeout_before": "publish_timeout_rate",
    "rate_limit": "rate_limit_rate",
    "read_rate_limit": "read_rate_limit_rate",
    "metrics_error": "metrics_error_rate",
    "account_error": "account_error_rate",
    "find_error": "find_error_rate",
}
_FORMAT = "1"  # version of the file layout below
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS accounts (
        name TEXT PRIMARY KEY, created_us INTEGER NOT NULL,
        initial_followers INTEGER NOT NULL, following INTEGER NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS posts (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, idx INTEGER NOT NULL,
        text TEXT NOT NULL, text_hash TEXT NOT NULL, idempotency_key TEXT NOT NULL,
        posted_us INTEGER NOT NULL, labels TEXT NOT NULL,
        {", ".join(f"{name} INTEGER NOT NULL" for name in COUNTERS)},
        follows INTEGER NOT NULL, expected_follows REAL NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        UNIQUE (account, idx), UNIQUE (account, idempotency_key))""",
    "CREATE INDEX IF NOT EXISTS posts_by_time ON posts (account, posted_us, follows)",
    """CREATE TABLE IF NOT EXISTS faults (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, account TEXT, remaining INTEGER NOT NULL)""",
)
_BUSY_TIMEOUT_MS = 30_000  # how long a process waits for another one's write lock
_CHUNK = 500  # ids per IN (...) query
_COUNTER_COLUMNS = ", ".join(COUNTERS)


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    key: int  # seeds this account's random streams
    created_us: int
    initial_followers: int
    following: int


class SandboxWorld:
    """A simulated network: its accounts, posts and audience, in memory or in a SQLite file."""

    def __init__(
        self, scenario: Scenario, *, seed: int, start: datetime, path: Path | None = None
    ) -> None:
        self._path = None if path is None else Path(path)
        self._closed = False
        self._db = self._connect(self._path)
        try:
            scenario, seed, start_us = self._init_meta(scenario, seed, to_us(start))
        except BaseException:
            self._db.close()
            raise
        self._scenario = scenario
        self._model = AudienceModel(scenario, seed=seed, start_us=start_us)
        self._accounts: dict[str, _Account] = {}
        # account -> (cutoff_us, the follows of its posts up to that cutoff): every follower of
        # a post that old has arrived, so the sum only grows, by the posts crossing the cutoff
        self._settled: dict[str, tuple[int, int]] = {}
        # An in-memory world has no other process writing to it, so follower counts are read
        # from Python lists instead of SQL: account -> its posts' times (sorted), their follows,
        # and the running sum of those follows (from 0); and its number of undeleted posts.
        self._arrivals: dict[str, tuple[list[int], list[int], list[int]]] = {}
        self._live_posts: Counter[str] = Counter()
        self._calls: dict[tuple[str, str], int] = {}  # (account, fault kind) -> random draws so far
        self._faults_queued = self._path is not None  # another process may queue faults
        self._people: dict[str, People] = {}  # account -> its simulated people (sandbox_people)

    # -------------------------------------------------------------------------------- public API
    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @property
    def seed(self) -> int:
        return self._model.seed

    @property
    def start(self) -> datetime:
        return from_us(self._model.start_us)

    def platform(self, account: str, *, now: Callable[[], datetime]) -> SandboxPlatform:
        """The adapter for one account; the account is created on its first call."""
        if not account:
            raise ValueError("account must be a non-empty name")
        return SandboxPlatform(self, account, now=now)

    def ground_truth(self) -> GroundTruth:
        """The hidden truth of the audience and of every post so far (benchmarks only)."""
        rows = self._query(
            "SELECT id, labels, follows, expected_follows, posted_us, impressions"
            " FROM posts ORDER BY rowid"
        )
        model = self._model
        ref = reference_followers(self._scenario)
        post_arms = {row[0]: json.loads(row[1]) for row in rows}
        post_days = {row[0]: model.hours(int(row[4])) / 24.0 for row in rows}
        return GroundTruth(
            dimensions=tuple(model.arms),
            arms=dict(model.arms),
            arm_followers={
                dim: {
                    arm: model.expected({dim: arm}, day=0, followers=ref, metric="followers")
                    for arm in arms
                }
                for dim, arms in model.arms.items()
            },
            arm_engagements={
                dim: {
                    arm: model.expected({dim: arm}, day=0, followers=ref, metric="engagements")
                    for arm in arms
                }
                for dim, arms in model.arms.items()
            },
            followers_caused={row[0]: float(row[2]) for row in rows},
            expected_followers_caused={row[0]: float(row[3]) for row in rows},
            post_arms=post_arms,
            post_days=post_days,
            followers_given_reach={
                row[0]: model.follows_given_reach(
                    post_arms[row[0]], day=post_days[row[0]], impressions=row[5]
                )
                for row in rows
            },
            reference_followers=ref,
            _model=model,
        )

    def people(self, account: str, at: datetime) -> People:
        """The account's simulated people played up to ``at`` (adapters/sandbox_people.py):
        every person-level event and who follows. Benchmarks and tests only - the agent reads
        what the platform exposes through ``SandboxPlatform.read_audience``."""
        now_us = to_us(at)
        with self._guard():
            return self._people_of(self._account(account, now_us), now_us)

    def _people_of(self, account: _Account, now_us: int) -> People:
        people = self._people.get(account.name)
        if people is None or now_us < people.now_us:  # a clock set back: play from the start
            people = self._people[account.name] = People(
                self._model,
                account=account.name,
                key=account.key,
                initial=account.initial_followers,
                created_us=account.created_us,
            )
        rows = self._db.execute(
            "SELECT id, posted_us, likes, reposts, replies, quotes, follows FROM posts"
            " WHERE account = ? AND posted_us >= ? AND posted_us <= ? ORDER BY posted_us, idx",
            (account.name, people.posts_until_us, now_us),
        ).fetchall()
        people.advance(
            now_us,
            [
                PostDraw(
                    post_id=row[0],
                    posted_us=row[1],
                    totals=dict(
                        zip(("likes", "reposts", "replies", "quotes"), row[2:6], strict=True)
                    ),
                    follows=row[6],
                )
                for row in rows
            ],
        )
        return people

    def inject_fault(self, kind: str, *, count: int = 1, account: str | None = None) -> None:
        """Make the next ``count`` calls hit by ``kind`` fail (see :data:`FAULT_KINDS`).

        ``account`` None: whichever account makes such a call first. ``rate_limit`` faults
        answer ``reset_at = now + faults.rate_limit_reset_minutes`` (sandbox minutes).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._guard():
            self._db.execute(
                "INSERT INTO faults (kind, account, remaining) VALUES (?, ?, ?)",
                (kind, account, count),
            )
        self._faults_queued = True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def __enter__(self) -> SandboxWorld:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- storage plumbing
    @staticmethod
    def _connect(path: Path | None) -> sqlite3.Connection:
        if path is None:
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.execute("PRAGMA synchronous=OFF")
            return db
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"Sandbox world file {path} cannot be opened: {exc}.") from None
        try:
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a returned publish survives a power cut too
        except sqlite3.Error as exc:
            db.close()
            raise ConfigError(
                f"Sandbox world file {path} is not a usable SQLite file: {exc}."
            ) from None
        return db

    def _init_meta(self, scenario: Scenario, seed: int, start_us: int) -> tuple[Scenario, int, int]:
        """Create the tables and the world's identity, or read back the stored identity."""
        try:
            with self._transaction():
                for statement in _SCHEMA:
                    self._db.execute(statement)
                meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    meta = {
                        "format": _FORMAT,
                        "scenario": scenario.model_dump_json(),
                        "seed": str(seed),
                        "start_us": str(start_us),
                    }
                    self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        except sqlite3.Error as exc:
            raise ConfigError(f"Sandbox world file {self._path} is not usable: {exc}.") from None
        if meta.get("format") != _FORMAT:
            raise ConfigError(
                f"Sandbox world file {self._path} has format {meta.get('format')!r}; "
                f"this code reads format {_FORMAT!r}."
            )
        stored = Scenario.model_validate_json(meta["scenario"])
        return stored, int(meta["seed"]), int(meta["start_us"])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Storage failures look like an unavailable platform to the caller."""
        if self._closed:
            raise PlatformUnavailable("sandbox: the world is closed")
        try:
            yield
        except sqlite3.Error as exc:
            raise PlatformUnavailable(f"sandbox: storage failed: {exc}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._guard():
            return self._db.execute(sql, params).fetchall()

    # ----------------------------------------------------------------------- shared by platforms
    def _account(self, name: str, now_us: int) -> _Account:
        account = self._accounts.get(name)
        if account is None:
            model = self._model
            created = max(now_us, model.start_us)
            initial = model.initial_followers(name)
            following = self._scenario.account.following
            with self._guard():
                self._db.execute(
                    "INSERT OR IGNORE INTO accounts VALUES (?, ?, ?, ?)",
                    (name, created, initial, following),
                )
                row = self._db.execute(
                    "SELECT created_us, initial_followers, following FROM accounts WHERE name = ?",
                    (name,),
                ).fetchone()
            account = _Account(name, stable_key(name), row[0], row[1], row[2])
            self._accounts[name] = account
        return account

    def _note_post(self, account: str, posted_us: int, follows: int) -> None:
        """Keep an in-memory world's follower lists up to date with a new post."""
        if self._path is not None:
            return
        times, gains, running = self._arrivals.setdefault(account, ([], [], [0]))
        at = bisect.bisect_right(times, posted_us)
        times.insert(at, posted_us)
        gains.insert(at, follows)
        if at == len(times) - 1:
            running.append(running[-1] + follows)
        else:  # published before an earlier post (a clock set back): sum again
            running[:] = [0, *itertools.accumulate(gains)]
        self._live_posts[account] += 1

    def _followers(self, account: _Account, now_us: int) -> int:
        """followers(t) of the module docstring of adapters.sandbox_model."""
        model = self._model
        cutoff = now_us - model.real_us(model.lag_horizon_hours)
        scale = model.time_scale / 3.6e9
        if self._path is None:
            times, follows, running = self._arrivals.get(account.name, ([], [], [0]))
            low = bisect.bisect_right(times, cutoff)
            high = bisect.bisect_right(times, now_us)
            settled = running[low]
            gains = sum(
                math.floor(follows[k] * model.arrived((now_us - times[k]) * scale))
                for k in range(low, high)
            )
        else:
            settled, gains = self._followers_from_db(account, now_us, cutoff, scale)
        organic = model.organic(
            account.key,
            account.initial_followers,
            model.hours(account.created_us),
            model.hours(now_us),
        )
        return max(0, account.initial_followers + organic + settled + gains)

    def _followers_from_db(
        self, account: _Account, now_us: int, cutoff: int, scale: float
    ) -> tuple[int, int]:
        """(followers of posts settled by ``cutoff``, those arrived since) from the posts table."""
        model, db = self._model, self._db
        # Incremental: the posts between the last cutoff and this one. (A post is stored with
        # its publish time, which is past every earlier cutoff, also when another process
        # sharing the world file publishes it.)
        before, settled = self._settled.get(account.name, (-(2**62), 0))
        if cutoff < before:  # an earlier moment than last asked about: from scratch
            before, settled = -(2**62), 0
        if cutoff > before:
            settled += db.execute(
                "SELECT COALESCE(SUM(follows), 0) FROM posts"
                " WHERE account = ? AND posted_us > ? AND posted_us <= ?",
                (account.name, before, cutoff),
            ).fetchone()[0]
        self._settled[account.name] = (cutoff, settled)
        arriving = db.execute(
            "SELECT posted_us, follows FROM posts"
            " WHERE account = ? AND posted_us > ? AND posted_us <= ?",
            (account.name, cutoff, now_us),
        ).fetchall()
        gains = sum(
            math.floor(follows * model.arrived((now_us - posted) * scale))
            for posted, follows in arriving
        )
        return settled, gains

    def _fault(self, account: str, kind: str) -> bool:
        """Whether this call fails with ``kind``: a queued fault is used up, or a random draw."""
        if self._faults_queued:
            row = self._db.execute(
                "SELECT id FROM faults WHERE kind = ? AND remaining > 0"
                " AND (account IS NULL OR account = ?) ORDER BY id LIMIT 1",
                (kind, account),
            ).fetchone()
            if row is not None:
                taken = self._db.execute(
                    "UPDATE faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0",
                    (row[0],),
                )
                if taken.rowcount:
                    return True
        rate_key = _RATE_KEYS.get(kind)
        rate = 0.0 if rate_key is None else getattr(self._scenario.faults, rate_key)
        if rate <= 0.0:
            return False
        calls = self._calls.get((account, kind), 0)
        self._calls[(account, kind)] = calls + 1
        return stable_uniform(self._model.seed, account, kind, calls) < rate


class SandboxPlatform(SandboxAudienceReads):
    """One account on a :class:`SandboxWorld`; implements :class:`adapters.base.Platform`."""

    name = "sandbox"

    def __init__(self, world: SandboxWorld, account: str, *, now: Callable[[], datetime]) -> None:
        self._world = world
        self._handle = account
        self._now = now
        self._account: _Account | None = None
        self._spend_usd = 0.0  # billed by the scenario's platform.prices

    @property
    def handle(self) -> str:
        return self._handle

    @property
    def limits(self) -> PlatformLimits:
        spec = self._world._scenario.platform
        return PlatformLimits(
            max_chars=spec.max_chars,
            posts_per_hour=spec.posts_per_hour,
            posts_per_day=spec.posts_per_day,
        )

    @property
    def spend_usd(self) -> float:
        """What this adapter's calls cost by the scenario's ``platform.prices`` (default 0)."""
        return self._spend_usd

    @property
    def prices(self) -> Prices:
        spec = self._world._scenario.platform.prices
        return Prices(post=spec.post, post_with_url=spec.post_with_url, read=spec.read)

    def _bill_reads(self, objects: int) -> None:
        self._spend_usd += self._world._scenario.platform.prices.read * objects

    def length(self, text: str) -> int:
        """Code points after NFC normalisation (:func:`adapters.length.code_points`)."""
        return code_points(text)

    async def load_limits(self) -> PlatformLimits:
        """Nothing to read: the limits are the scenario's."""
        return self.limits

    async def check_write_access(self) -> str:
        """The simulated account may always post (faults are injected per call, not here)."""
        return "ok (the platform's session allows posting)"

    async def publish(
        self, text: str, *, idempotency_key: str, labels: Mapping[str, str] | None = None
    ) -> PublishedPost:
        """Create a post (see the module docstring for the order of checks)."""
        return await self._publish(text, idempotency_key, labels, None)

    # -- threads (docs/threads.md) ---------------------------------------------------------

    async def publish_reply(
        self,
        text: str,
        *,
        reply_to: ReplyTo,
        idempotency_key: str,
        labels: Mapping[str, str] | None = None,
    ) -> PublishedPost:
        """Create a later part of a thread: a reply to ``reply_to.parent_id`` (one of the
        account's posts, else ``ContentRejected``), reaching :data:`REPLY_REACH` of the people
        a post would. Checks and faults as :meth:`publish`."""
        return await self._publish(text, idempotency_key, labels, reply_to)

    def replies_to(self, post_id: str) -> str | None:
        """The parent of one of the account's posts (None: not a reply), for tests."""
        rows = self._world._query("SELECT labels FROM posts WHERE id = ?", (post_id,))
        return json.loads(rows[0][0]).get(REPLY_LABEL) if rows else None

    async def _publish(
        self,
        text: str,
        idempotency_key: str,
        labels: Mapping[str, str] | None,
        reply_to: ReplyTo | None,
    ) -> PublishedPost:
        world = self._world
        spec = world._scenario.platform
        if spec.latency_ms > 0:  # the request on its way
            await asyncio.sleep(spec.latency_ms / 2000)
        if spec.publish_delay_before_s > 0:  # crash-test aid: nothing is written yet
            await asyncio.sleep(spec.publish_delay_before_s)
        now_us, account = self._begin(
            ("auth_failed", "rate_limit", "publish_error", "publish_timeout_before")
        )
        max_chars = spec.max_chars
        length = self.length(text)
        if not text.strip():
            raise ContentRejected("sandbox: the post is empty")
        if length > max_chars:
            raise ContentRejected(
                f"sandbox: the post has {length} characters; the limit is {max_chars}"
            )
        with world._guard(), world._transaction():
            row = world._db.execute(
                "SELECT id, text, posted_us FROM posts WHERE account = ? AND idempotency_key = ?",
                (account.name, idempotency_key),
            ).fetchone()
            if row is not None:
                return PublishedPost(
                    platform_post_id=row[0], text=row[1], posted_at=from_us(row[2])
                )
            self._check_caps(account, now_us)
            self._check_duplicate(account, text, now_us)
            # the audience's daily rhythm: the UTC hour of posting is a label the scenario can
            # give effects to (dimension "hour", arms "00".."23"), whatever the caller sent
            arms = {**(labels or {}), "hour": f"{from_us(now_us).hour:02d}"}
            if reply_to is not None:
                self._check_parent(account, reply_to)
                arms[REPLY_LABEL] = reply_to.parent_id
            post = self._create(account, text, idempotency_key, arms, now_us)
        prices = spec.prices
        self._spend_usd += prices.post_with_url if urls(text) else prices.post
        if spec.publish_delay_after_s > 0:  # crash-test aid: the post is committed, not returned
            await asyncio.sleep(spec.publish_delay_after_s)
        if spec.latency_ms > 0:  # the answer on its way back
            await asyncio.sleep(spec.latency_ms / 2000)
        with world._guard():
            ambiguous = world._fault(account.name, "publish_ambiguous")
        if ambiguous:
            raise AmbiguousPublish("sandbox: the connection dropped after the post was sent")
        return post

    async def fetch_metrics(self, post_ids: Sequence[str]) -> dict[str, PostMetrics]:
        """Counters accrued up to now; deleted and unknown ids are omitted."""
        await self._read_latency()
        now_us, _ = self._begin(("auth_failed", "read_rate_limit", "metrics_error"))
        model, ids = self._world._model, list(dict.fromkeys(post_ids))
        scale = model.time_scale / 3.6e9
        found: dict[str, PostMetrics] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = self._world._query(
                f"SELECT id, posted_us, {_COUNTER_COLUMNS} FROM posts"
                f" WHERE deleted = 0 AND id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for post_id, posted_us, *totals in rows:
                share = model.accrued((now_us - posted_us) * scale)
                counters = {
                    name: math.floor(total * share)
                    for name, total in zip(COUNTERS, totals, strict=True)
                }
                found[post_id] = PostMetrics(platform_post_id=post_id, **counters)
        self._bill_reads(len(found))
        return {post_id: found[post_id] for post_id in ids if post_id in found}

    async def fetch_account(self) -> AccountInfo:
        await self._read_latency()
        now_us, account = self._begin(("auth_failed", "read_rate_limit", "account_error"))
        world = self._world
        with world._guard():
            followers = world._followers(account, now_us)
            if world._path is None:
                posts = world._live_posts[account.name]
            else:
                posts = world._db.execute(
                    "SELECT COUNT(*) FROM posts WHERE account = ? AND deleted = 0", (account.name,)
                ).fetchone()[0]
        self._bill_reads(1)
        return AccountInfo(
            handle=account.name, followers=followers, following=account.following, posts=posts
        )

    async def find_recent(self, *, since: datetime, limit: int = 100) -> list[PublishedPost]:
        """The account's own posts created at or after ``since``, newest first."""
        await self._read_latency()
        _, account = self._begin(("auth_failed", "read_rate_limit", "find_error"))
        rows = self._world._query(
            "SELECT id, text, posted_us FROM posts WHERE account = ? AND deleted = 0"
            " AND posted_us >= ? ORDER BY posted_us DESC, idx DESC LIMIT ?",
            (account.name, to_us(since), max(limit, 0)),
        )
        self._bill_reads(len(rows))
        return [
            PublishedPost(platform_post_id=r[0], text=r[1], posted_at=from_us(r[2])) for r in rows
        ]

    async def delete(self, post_id: str) -> None:
        """Hide one of the account's posts; unknown ids are ignored (deleting is idempotent)."""
        _, account = self._begin(("auth_failed",))
        with self._world._guard():
            changed = self._world._db.execute(
                "UPDATE posts SET deleted = 1 WHERE id = ? AND account = ? AND deleted = 0",
                (post_id, account.name),
            ).rowcount
            if changed and self._world._path is None:
                self._world._live_posts[account.name] -= 1

    async def aclose(self) -> None:
        """Nothing to release: the world owns the storage (``SandboxWorld.close``)."""

    # ---------------------------------------------------------------------------------- helpers
    async def _read_latency(self) -> None:
        latency = self._world._scenario.platform.read_latency_ms
        if latency > 0:
            await asyncio.sleep(latency / 1000)

    def _begin(self, fault_kinds: Sequence[str]) -> tuple[int, _Account]:
        """Read the clock, make sure the account exists and raise any fault this call hits."""
        world = self._world
        now_us = to_us(self._now())
        with world._guard():
            if self._account is None:
                self._account = world._account(self._handle, now_us)
            for kind in fault_kinds:
                if world._fault(self._handle, kind):
                    raise self._fault_error(kind, now_us)
        return now_us, self._account

    def _fault_error(self, kind: str, now_us: int) -> GrowthloopError:
        model = self._world._model
        if kind in ("rate_limit", "read_rate_limit"):
            minutes = self._world._scenario.faults.rate_limit_reset_minutes
            reset_at = from_us(now_us + model.real_us(minutes / 60))
            return RateLimited("sandbox: 429 Too Many Requests", reset_at=reset_at)
        if kind == "auth_failed":
            return AuthFailed("sandbox: 401 Unauthorized (the account's token was revoked)")
        if kind == "publish_timeout_before":
            return AmbiguousPublish("sandbox: the request timed out (nothing was posted)")
        return PlatformUnavailable(f"sandbox: 503 Service Unavailable ({kind})")

    def _check_caps(self, account: _Account, now_us: int) -> None:
        model, spec = self._world._model, self._world._scenario.platform
        hour, day = model.real_us(1.0), model.real_us(24.0)
        times = [
            row[0]
            for row in self._world._db.execute(
                "SELECT posted_us FROM posts WHERE account = ? AND posted_us > ?"
                " ORDER BY posted_us",
                (account.name, now_us - day),
            )
        ]
        last_hour = [t for t in times if t > now_us - hour]
        for window, cap, length, what in (
            (last_hour, spec.posts_per_hour, hour, "hour"),
            (times, spec.posts_per_day, day, "day"),
        ):
            if len(window) >= cap:
                reset_at = from_us(window[len(window) - cap] + length)
                raise RateLimited(
                    f"sandbox: at most {cap} posts per {what}; try again at {reset_at.isoformat()}",
                    reset_at=reset_at,
                )

    def _check_parent(self, account: _Account, reply_to: ReplyTo) -> None:
        found = self._world._db.execute(
            "SELECT id FROM posts WHERE account = ? AND id = ? AND deleted = 0",
            (account.name, reply_to.parent_id),
        ).fetchone()
        if found is None:
            raise ContentRejected(f"sandbox: no post {reply_to.parent_id!r} to reply to")

    def _check_duplicate(self, account: _Account, text: str, now_us: int) -> None:
        model = self._world._model
        window = model.real_us(self._world._scenario.platform.duplicate_window_hours)
        duplicate = self._world._db.execute(
            "SELECT id FROM posts WHERE account = ? AND text_hash = ? AND deleted = 0"
            " AND posted_us > ? LIMIT 1",
            (account.name, text_hash(text), now_us - window),
        ).fetchone()
        if duplicate is not None:
            raise DuplicateContent(f"sandbox: the same text was already posted as {duplicate[0]}")

    def _create(
        self, account: _Account, text: str, key: str, labels: dict[str, str], now_us: int
    ) -> PublishedPost:
        world, model = self._world, self._world._model
        db = world._db
        index = db.execute(
            "SELECT COALESCE(MAX(idx), 0) + 1 FROM posts WHERE account = ?", (account.name,)
        ).fetchone()[0]
        draw = model.draw_post(
            account_key=account.key,
            index=index,
            labels=labels,
            followers=world._followers(account, now_us),
            day=model.hours(now_us) / 24.0,
            reach_scale=REPLY_REACH if REPLY_LABEL in labels else 1.0,
        )
        post_id = f"{account.name}-{index}"
        db.execute(
            f"INSERT INTO posts (id, account, idx, text, text_hash, idempotency_key, posted_us,"
            f" labels, {_COUNTER_COLUMNS}, follows, expected_follows)"
            f" VALUES ({', '.join('?' * (10 + len(COUNTERS)))})",
            (
                post_id,
                account.name,
                index,
                text,
                text_hash(text),
                key,
                now_us,
                json.dumps(labels, sort_keys=True),
                *draw.totals,
                draw.follows,
                draw.expected_follows,
            ),
        )
        world._note_post(account.name, now_us, draw.follows)
        return PublishedPost(platform_post_id=post_id, text=text, posted_at=from_us(now_us))
