"""Building the real object graph from the configuration (only the CLI and runtimes call this)."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from adapters.base import Platform
from agent.alerts import Alerts
from agent.clock import Clock
from agent.config import Config, Secrets, account_secrets, check_account_secrets
from agent.core import Agent
from agent.errors import ConfigError, SchemaOutOfDate, StoreError, StoreUnavailable
from agent.generators.base import Generator
from agent.generators.template import TemplateGenerator
from agent.journal import PublishJournal
from agent.logs import log, redact_text
from agent.store import migrate
from agent.store.base import Store
from agent.store.engine import (
    create_engine,
    database_url,
    ensure_writable_dir,
    ensure_writable_file,
)
from agent.store.memory import MemoryStore
from agent.store.retry import refusal
from agent.store.sql import SqlStore

STORES = ("sql", "memory")  # build(store=...): the configured database, or agent/store/memory.py


@dataclass
class Built:
    agent: Agent
    store: Store
    world: Any | None  # the sandbox world, when any account is on the sandbox

    async def aclose(self) -> None:
        await self.agent.alerts.aclose()
        for platform in self.agent.platforms.values():
            await platform.aclose()
        await self.store.close()
        if self.world is not None:
            self.world.close()


def store_url(config: Config, *, sqlite_path: Path | None = None) -> str:
    """Where the store lives. Precedence: ``sqlite_path`` (simulations), DATABASE_URL, then the
    config's SQLite file. SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY select no store: they are
    for Supabase Storage (``growthloop report --upload``); Supabase's database is reached
    through DATABASE_URL like any PostgreSQL."""
    secrets = Secrets()
    env_url = secrets.database_url.get_secret_value() if secrets.database_url else None
    if sqlite_path is not None:
        env_url = None
    return database_url(sqlite_path=sqlite_path or config.store.sqlite_path, env_url=env_url)


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, OSError | OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


STORE_WAIT_NOTICE = 2.0  # seconds without an answer before a waiting `run` says so


def store_where(url: str) -> str:
    """``host:port/database`` of a PostgreSQL URL (the SQLite file for SQLite): no secrets."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return str(parsed.database)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


@dataclass
class _WaitNotice:
    """Says once, early, that the store is being waited for and for how long: when the first
    attempt fails, or when it has not answered within :data:`STORE_WAIT_NOTICE` seconds (a
    server that accepts connections but does not answer)."""

    url: str
    wait: float
    said: bool = False

    def say(self, error: str | None = None) -> None:
        if self.said or self.wait <= 0:
            return
        self.said = True
        log.warning(
            "store_waiting",
            database=store_where(self.url),
            retry_for_s=round(self.wait),
            error=error or f"no answer within {STORE_WAIT_NOTICE:g} s",
            message=f"the database cannot be reached yet; retrying for up to {self.wait:g} s "
            "(GROWTHLOOP_STORE_WAIT) before giving up",
        )

    async def after_delay(self) -> None:
        await asyncio.sleep(STORE_WAIT_NOTICE)
        self.say()


def _first_line(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return redact_text(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def store_error(exc: BaseException, *, url: str, waited: float = 0.0) -> StoreError | None:
    """The StoreError for a failure to open the store at ``url`` (None: not a database error,
    let it propagate): the server refused us (:class:`StoreRefused`, exit 2), or could not be
    reached (after ``waited`` seconds of retries)."""
    refused = refusal(exc, url=url)
    if refused is not None:
        return refused
    if _unreachable(exc):
        retried = f" after retrying for {waited:g} s" if waited > 0 else ""
        fix = (
            "Check that the file's disk is healthy and that no other program holds it locked."
            if url.startswith("sqlite")
            else "Check DATABASE_URL (host and port) and that the server is up"
            + ("; `growthloop run` waits GROWTHLOOP_STORE_WAIT seconds for it." if waited else ".")
        )
        return StoreUnavailable(
            f"cannot reach the database at {store_where(url)}{retried} ({_first_line(exc)}). " + fix
        )
    return None


async def open_store(url: str, *, auto_migrate: bool, wait: float = 0.0) -> Store:
    """Open the store; SQLite is migrated automatically, PostgreSQL must already be current.

    A database that cannot be reached is retried with backoff for up to ``wait`` seconds (the
    daemon waits for a database that is still starting), saying so once within
    :data:`STORE_WAIT_NOTICE` seconds (``store_waiting``), then reported as a StoreError. A
    server that refuses the role, password or database name is a :class:`StoreRefused` at once.
    """
    engine = create_engine(url)
    store = SqlStore(engine)
    notice = _WaitNotice(url=url, wait=wait)
    announcer = asyncio.create_task(notice.after_delay()) if wait > 0 else None
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: _unreachable(e) and refusal(e, url=url) is None),
            wait=wait_random_exponential(multiplier=0.5, max=10),
            stop=stop_after_delay(wait),
            before_sleep=lambda state: notice.say(
                _first_line(state.outcome.exception() if state.outcome else None)
            ),
            reraise=True,
        ):
            with attempt:
                if auto_migrate or url.startswith("sqlite"):
                    await migrate.upgrade(engine)
                await migrate.ensure_current(engine)
    except CommandError as exc:
        await store.close()
        raise SchemaOutOfDate(
            f"The database's schema revision is unknown to this version of growthloop ({exc}). "
            "It was probably migrated by a newer release: run that release, or restore a backup."
        ) from None
    except BaseException as exc:
        await store.close()
        translated = store_error(exc, url=url, waited=wait)
        if translated is not None:
            raise translated from None
        raise
    finally:
        if announcer is not None:
            announcer.cancel()
    return store


async def save_sqlite(store: MemoryStore, path: Path) -> None:
    """Write an in-memory store's rows into the SQLite file ``path`` (new or empty; migrated
    here), so a simulation's data can be read with SQL afterwards."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(engine)
        await store.export(engine)
    finally:
        await engine.dispose()


def open_world(config: Config, *, start: datetime, in_memory: bool, seed: int | None = None) -> Any:
    from adapters.sandbox import SandboxWorld, Scenario

    scenario = Scenario.load(config.sandbox.scenario)
    path = None
    if not in_memory:
        ensure_writable_dir(
            config.sandbox.world_path.parent,
            fix="Point sandbox.world_path (the simulated platform's state) at a writable location.",
        )
        path = config.sandbox.world_path
    return SandboxWorld(
        scenario, seed=config.sandbox.seed if seed is None else seed, start=start, path=path
    )


# Each real platform's module exposes
#   from_config(*, account: str, secrets: Mapping[str, str], base_url: str | None,
#               now: Callable[[], datetime]) -> Platform
ADAPTER_MODULES = {
    "x": "adapters.x",
    "bluesky": "adapters.bluesky",
    "mastodon": "adapters.mastodon",
    "threads": "adapters.threads",
}


def build_platforms(config: Config, world: Any, now: Callable[[], datetime]) -> dict[str, Platform]:
    platforms: dict[str, Platform] = {}
    for index, account in enumerate(config.accounts):
        if account.platform == "sandbox":
            platforms[account.name] = world.platform(account.name, now=now)
            continue
        try:
            module = importlib.import_module(ADAPTER_MODULES[account.platform])
        except ModuleNotFoundError:
            raise ConfigError(
                f"accounts[{index}] ({account.name!r}): the {account.platform} adapter is not "
                "part of this release yet; use platform: sandbox for now."
            ) from None
        options = {"tier": account.tier} if account.tier else {}
        platforms[account.name] = module.from_config(
            account=account.name,
            secrets=account_secrets(account),
            base_url=account.api_base_url,
            now=now,
            env_prefix=account.env_prefix,
            **options,
        )
    return platforms


def build_generator(config: Config, *, seed: int | None = None) -> Generator:
    """The generator ``config.generator.kind`` names; the OpenAI one needs OPENAI_API_KEY."""
    settings = config.generator
    if settings.kind == "template":
        return TemplateGenerator(seed=seed)
    key = Secrets().openai_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(
            "generator.kind is 'openai' but OPENAI_API_KEY is not set. Put the API key of your "
            "OpenAI account (or of the OpenAI-compatible server named by generator.base_url) in "
            "the environment or in .env, or set generator.kind: template to write posts offline."
        )
    from agent.generators.llm import OpenAIGenerator  # loads the openai SDK only when used

    return OpenAIGenerator(
        api_key=key.get_secret_value(),
        model=settings.model,
        temperature=settings.temperature,
        base_url=settings.base_url,
        max_attempts=settings.max_attempts,
        timeout=settings.timeout.total_seconds(),
        prices=settings.prices,
    )


async def build(
    config: Config,
    *,
    clock: Clock,
    seed: int | None = None,
    sqlite_path: Path | None = None,
    world_in_memory: bool = False,
    store_wait: float = 0.0,
    journal: bool = False,
    store: str = "sql",
    alerts: bool = False,
) -> Built:
    """The agent graph; ``journal=True`` (the daemon) keeps publishes the database could not
    record in ``runtime.journal_path`` (a simulation has no journal: one in the same directory
    belongs to a real daemon).

    ``store="memory"`` (simulations and benchmarks) keeps everything in this process
    (:class:`agent.store.memory.MemoryStore`, nothing persisted; ``sqlite_path`` and
    DATABASE_URL are then not used); ``"sql"`` opens the configured database.

    ``alerts=True`` (the daemon) sends alerts to ``GROWTHLOOP_ALERT_WEBHOOK_URL`` when it is set
    (agent/alerts.py); simulations never alert.
    """
    if store not in STORES:
        raise ConfigError(f"unknown store {store!r}; expected one of: {', '.join(STORES)}")
    check_account_secrets(config)
    if journal:  # checked now, not first needed during a database outage
        ensure_writable_file(
            config.runtime.journal_path,
            fix="Point runtime.journal_path at a writable location: the daemon keeps there the "
            "posts it published while the database was unreachable.",
        )
    generator = build_generator(config, seed=seed)
    url = "memory" if store == "memory" else store_url(config, sqlite_path=sqlite_path)
    needs_world = any(a.platform == "sandbox" for a in config.accounts)
    world = (
        open_world(config, start=clock.now(), in_memory=world_in_memory, seed=seed)
        if (needs_world)
        else None
    )
    try:
        platforms = build_platforms(config, world, clock.now)
        opened: Store = (
            MemoryStore()
            if store == "memory"
            else await open_store(url, auto_migrate=False, wait=store_wait)
        )
    except BaseException:
        if world is not None:
            world.close()
        raise
    agent = Agent(
        config=config,
        store=opened,
        platforms=platforms,
        generator=generator,
        clock=clock,
        seed=seed,
        # one process per SQLite file (store/lockfile.py); a memory store is this process's own
        exclusive=url.startswith("sqlite") or store == "memory",
        journal=PublishJournal(config.runtime.journal_path) if journal else None,
        alerts=Alerts.from_config(config) if alerts else Alerts.disabled(),
    )
    return Built(agent=agent, store=opened, world=world)


def port_from_env(default: int) -> int:
    value = os.environ.get("PORT")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"PORT must be a number, got {value!r}.") from None
