"""Real time: the cycles as APScheduler interval jobs, plus the HTTP server: ``/healthz``,
``/metrics``, and the dashboard and JSON API when ``GROWTHLOOP_DASHBOARD_TOKEN`` is set
(:mod:`agent.dashboard`, docs/dashboard.md), all on one port.

A database outage does not stop the daemon: the store retries a dropped connection with
backoff, then raises StoreUnavailable; the cycle gives up until its next tick, the outage is
logged once (``store_unavailable``, then ``store_available``), and work that fell due meanwhile
is still in the database, so it runs afterwards.

Shutdown (SIGTERM, SIGINT or ``stop()``, which only sets an event):

1. the scheduler is paused: no cycle starts any more; cycles in flight go on;
2. the daemon waits for them, at most ``runtime.shutdown_grace``;
3. the scheduler is shut down, the server closed; the CLI then closes the store and adapters
   and exits 0.

Waking for the next post: each cycle runs every ``runtime.tick``, but the publish cycle is
brought forward to the next queued post's time (``Store.next_post_after``) when that comes
sooner, asked after every plan and publish cycle (the two that change the queue; a person's
``growthloop posts move`` is seen at the next one). A post goes out at its time, not up to a
tick later, and no cycle runs more often than there is work.

A cycle runs as its own task (``_job`` starts ``_run_cycle`` and waits on it through
``asyncio.shield``), so APScheduler cancelling its job never reaches the work itself: only the
daemon cancels a cycle, and only when the grace period runs out or a second signal asks to stop
at once (``shutdown_forced``). A post interrupted that way stays ``publishing`` and is
reconciled on the next start, before anything else runs.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from agent import deploy_checks
from agent.alerts import AlertKind
from agent.core import Agent
from agent.cycles import CYCLES, Cycle, reconcile_cycle
from agent.cycles.publish import env_pause_reason, pause_reason
from agent.dashboard.access import Access
from agent.dashboard.app import build_app
from agent.errors import ConfigError, PlatformError, StoreError, StoreUnavailable
from agent.logs import log
from agent.status import health_command, healthz_url, read_status

MAX_CONSECUTIVE_CRASHES = 5  # an unexpected error this many times in a row stops the daemon
# cycles that read the store on every run: one of them succeeding ends a store outage
STORE_PROBES = frozenset({"publish", "poll"})
WAKERS = frozenset({"plan", "publish"})  # cycles that change the queue: the publish job is woken
CANCEL_WAIT = 2.0  # seconds: how long cancelled cycles get to unwind (roll back) before exit


class Daemon:
    def __init__(
        self,
        agent: Agent,
        *,
        host: str = "0.0.0.0",
        port: int = 8080,
        store_url: str = "",
        config_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
        demo: bool = False,
        access: Access | None = None,
    ) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.store_url = store_url  # for its kind and the deploy checks; never logged
        self.config_path = config_path
        self.environ = os.environ if environ is None else environ
        self.demo = demo
        # the dashboard's and /metrics' tokens (None: from ``environ``; the CLI passes those it
        # read from the environment and .env before anything started)
        self.access = Access.from_environ(self.environ) if access is None else access
        self._stop = asyncio.Event()
        self._abort = asyncio.Event()  # a second signal: cancel what is in flight
        self._in_flight: dict[
            asyncio.Task[None], str
        ] = {}  # running jobs -> their name (a cycle, "status")
        self._crashes: dict[str, int] = {}
        self._store_down_since: datetime | None = None  # set by StoreUnavailable, once
        self._last_learning_at: datetime | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._last_publish_at: datetime | None = None  # the `now` of the last publish cycle
        self.exit_code = 0
        self.bound_port: int | None = None

    def stop(self) -> None:
        self._stop.set()

    def on_signal(self, sig: signal.Signals) -> None:
        """First SIGTERM/SIGINT: stop gracefully. Second: stop at once."""
        if not self._stop.is_set():
            log.info(
                "shutdown_requested",
                signal=sig.name,
                in_flight=self._running(),
                grace_seconds=self.agent.config.runtime.shutdown_grace.total_seconds(),
                hint="send it again to stop at once",
            )
            self.stop()
            return
        if not self._abort.is_set():
            log.warning(
                "shutdown_forced",
                signal=sig.name,
                cancelling=self._running(),
                note="a post left publishing is reconciled at the next start",
            )
            self._abort.set()

    def _running(self) -> list[str]:
        return sorted(self._in_flight.values())

    async def _job(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """The APScheduler job: runs the work (a cycle, the status line) as its own task and
        waits on it shielded, so the scheduler cancelling this job (at its shutdown) never
        cancels the work itself."""
        if self._stop.is_set():
            return
        task = asyncio.create_task(work(), name=f"job-{name}")
        self._in_flight[task] = name
        task.add_done_callback(self._forget)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            pass  # the job, not the cycle: shutdown waits for (or cancels) the task itself

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)

    async def _run_cycle(self, name: str, cycle: Cycle) -> None:
        now = self.agent.clock.now()
        try:
            with self.agent.metrics.time_cycle(name):
                done = await cycle(self.agent, now)
            self.agent.metrics.set_store_up(True)
            self.agent.stats.last_run[name] = now
            self.agent.stats.last_error.pop(name, None)
            self._crashes[name] = 0
            if self._store_down_since is not None and name in STORE_PROBES:
                log.info(
                    "store_available",
                    cycle=name,
                    down_s=round((self.agent.clock.now() - self._store_down_since).total_seconds()),
                )
                self._store_down_since = None
            if done:
                log.debug("cycle_done", cycle=name, work=done)
                if name == "learn":
                    self._last_learning_at = now
            if name == "publish":
                self._last_publish_at = now
            if name in WAKERS:
                await self._wake_publish(by=name)
        except asyncio.CancelledError:
            log.warning("cycle_cancelled", cycle=name)
            raise
        except StoreUnavailable as exc:
            # the store already retried with backoff; log the outage once, not every tick
            self.agent.stats.last_error[name] = f"{type(exc).__name__}: {exc}"
            self.agent.metrics.set_store_up(False)
            if self._store_down_since is None:
                self._store_down_since = now
                log.warning("store_unavailable", cycle=name, error=str(exc))
                self.agent.alerts.notify(AlertKind.STORE_UNAVAILABLE, f"{exc}", now=now)
        except (StoreError, PlatformError) as exc:
            # expected trouble (database or platform down): keep going, try again next tick
            self.agent.stats.last_error[name] = f"{type(exc).__name__}: {exc}"
            log.warning("cycle_failed", cycle=name, error=str(exc), error_type=type(exc).__name__)
        except Exception as exc:
            self.agent.stats.last_error[name] = f"{type(exc).__name__}: {exc}"
            self._crashes[name] = self._crashes.get(name, 0) + 1
            log.exception("cycle_crashed", cycle=name, consecutive=self._crashes[name])
            if self._crashes[name] >= MAX_CONSECUTIVE_CRASHES:
                self.exit_code = 1
                self.stop()

    async def _wake_publish(self, *, by: str) -> None:
        """Bring the publish job forward to the next queued post's time, when that is sooner
        than its next tick (see the module docstring). Posts already due that the last publish
        cycle left queued (held by the breaker or the kill switch) wait for the tick."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self._stop.is_set():
            return
        if by != "publish" and "publish" in self._in_flight.values():
            return  # it asks again when it ends
        job = scheduler.get_job("publish")
        if job is None or job.next_run_time is None:
            return
        since = self._last_publish_at or datetime.min.replace(tzinfo=UTC)
        when = await self.agent.store.next_post_after(since)
        if when is None:
            return
        # the store's times are the agent clock's; the scheduler runs on the wall clock (they
        # differ under the scale benchmark's compressed clock, agent.clock.ScaledClock)
        factor = float(getattr(self.agent.clock, "factor", 1.0))
        if factor != 1.0:
            ahead = max((when - self.agent.clock.now()).total_seconds(), 0.0) / factor
            when = datetime.now(UTC) + timedelta(seconds=ahead)
        when = max(when, datetime.now(UTC))
        if when < job.next_run_time:
            scheduler.modify_job("publish", next_run_time=when)
            log.debug("publish_woken", at=when.isoformat(), by=by)

    async def healthz(self, _request: web.Request) -> web.Response:
        now = self.agent.clock.now()
        body: dict[str, Any] = {
            "status": "ok" if not self._stop.is_set() else "stopping",
            "now": now.isoformat(),
            "mode": self.agent.config.mode.value,
            "accounts": [a.name for a in self.agent.config.accounts],
            "last_run": {k: v.isoformat() for k, v in self.agent.stats.last_run.items()},
            "last_error": self.agent.stats.last_error,
            "in_flight": self._running(),  # the cycles running now
            "totals": dict(self.agent.stats.totals),
        }
        env_reason = env_pause_reason()  # still reported when the store is unreachable
        body["paused"], body["pause_reason"] = env_reason is not None, env_reason
        try:
            body["pending"] = _jsonable(await self.agent.store.pending_work(now))
            body["counts"] = await self.agent.store.counts()
            reason = await pause_reason(self.agent)
            body["paused"], body["pause_reason"] = reason is not None, reason
            body["suspended"] = [
                {
                    "account": s.account,
                    "platform": s.platform,
                    "reason": s.reason,
                    "error_type": s.error_kind,
                    "since": s.suspended_at.isoformat(),
                    "until": s.until.isoformat() if s.until else None,
                }
                for s in await self.agent.store.suspensions(now=now)
            ]
        except StoreError as exc:
            body["status"] = "degraded"
            body["store_error"] = str(exc)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def run(self, *, install_signals: bool = True) -> int:
        from agent import signals

        agent = self.agent
        remove = signals.install(self.on_signal) if install_signals else None
        await agent.setup()
        reconciled = await reconcile_cycle(agent, agent.clock.now())
        app = build_app(agent, self.access, healthz=self.healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise _bind_error(exc, host=self.host, port=self.port) from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        scheduler = self._scheduler = self._start_scheduler()
        self._log_started(reconciled)
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(scheduler)
            if remove:
                remove()
            await runner.cleanup()
            log.info("daemon_stopped", exit_code=self.exit_code)
        return self.exit_code

    def _start_scheduler(self) -> AsyncIOScheduler:
        """One interval job per cycle (plus the status line), started; none if already stopping."""
        runtime = self.agent.config.runtime
        tick = runtime.tick.total_seconds()
        scheduler = AsyncIOScheduler(timezone=UTC)
        first = datetime.now(UTC)
        # Staggered within a tick, in loop order: a post planned now is published a moment later.
        offset = timedelta(seconds=tick / len(CYCLES))
        jobs: list[tuple[str, Callable[[], Coroutine[Any, Any, None]], float, datetime]] = [
            (name, partial(self._run_cycle, name, cycle), tick, first + index * offset)
            for index, (name, cycle) in enumerate(CYCLES.items())
        ]
        # the first status once every cycle has run once (before the next tick), then every
        # status_every
        every = runtime.status_every.total_seconds()
        jobs.append(("status", self._status, every, first + (len(CYCLES) - 0.5) * offset))
        for name, work, seconds, next_run in jobs:
            scheduler.add_job(
                self._job,
                "interval",
                seconds=seconds,
                args=[name, work],
                id=name,
                name=f"cycle {name}",  # APScheduler's own warnings name the cycle
                max_instances=1,
                coalesce=True,
                next_run_time=next_run,
                misfire_grace_time=None,
            )
        if not self._stop.is_set():  # a signal during start-up: start nothing
            scheduler.start()
        return scheduler

    async def _shutdown(self, scheduler: AsyncIOScheduler) -> None:
        """Stop starting cycles, let those in flight finish within the grace period (or cancel
        them on a second signal), then stop the scheduler, which has nothing left to cancel."""
        log.info("daemon_stopping", in_flight=self._running())
        if scheduler.running:
            scheduler.pause()
        grace = self.agent.config.runtime.shutdown_grace.total_seconds()
        left = await self._drain(grace)
        if left:
            reason = "shutdown_forced" if self._abort.is_set() else "grace_expired"
            log.warning(
                "cycles_cancelled",
                cycles=sorted(self._in_flight[t] for t in left if t in self._in_flight),
                reason=reason,
                grace_seconds=grace,
                note="a post left publishing is reconciled at the next start",
            )
            for task in left:
                task.cancel()
            await asyncio.wait(left, timeout=CANCEL_WAIT)
        if scheduler.running:
            scheduler.shutdown(wait=False)

    async def _drain(self, grace: float) -> list[asyncio.Task[None]]:
        """Wait for the cycles in flight; those still running after ``grace`` seconds or when a
        second signal arrives are returned."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        abort = asyncio.create_task(self._abort.wait(), name="shutdown-abort")
        try:
            while self._in_flight and not self._abort.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait(
                    {*self._in_flight, abort},
                    timeout=remaining,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            abort.cancel()
        return list(self._in_flight)

    def _log_started(self, reconciled: int) -> None:
        """``daemon_started`` (what runs, where, on which store: never a secret), then where to
        look (``health_endpoint``) and each ``deploy_warning``."""
        config = self.agent.config
        log.info(
            "daemon_started",
            mode=config.mode.value,
            demo=self.demo,
            accounts=[a.name for a in config.accounts],
            platforms=sorted({a.platform for a in config.accounts}),
            store=deploy_checks.store_kind(self.store_url) if self.store_url else "unknown",
            port=self.bound_port,
            tick_seconds=config.runtime.tick.total_seconds(),
            reconciled=reconciled,
        )
        log.info(
            "health_endpoint",
            url=healthz_url(self.host, self.bound_port or self.port),
            # `growthloop health` reads the config's database, which the demo never uses
            command=f"sqlite3 {config.store.sqlite_path}"
            if self.demo
            else health_command(self.config_path),
            status_every_seconds=config.runtime.status_every.total_seconds(),
        )
        if self.demo:
            log.info(
                "demo_running",
                database=str(config.store.sqlite_path),
                world=str(config.sandbox.world_path),
                note="every account on the sandbox: nothing is published anywhere real; "
                "the first post goes out now, polls follow after "
                + ", ".join(f"{h.total_seconds():g}s" for h in config.polling.horizons)
                + ", then the learning step",
            )
        url = healthz_url(self.host, self.bound_port or self.port).removesuffix("/healthz")
        log.info(
            "dashboard_endpoint",
            url=f"{url}/dashboard" if self.access.dashboard_on else None,
            api=f"{url}/api/" if self.access.dashboard_on else None,
            enabled=self.access.dashboard_on,
            metrics_protected=self.access.metrics_token is not None,
            note="open it and sign in with GROWTHLOOP_DASHBOARD_TOKEN"
            if self.access.dashboard_on
            else "off: set GROWTHLOOP_DASHBOARD_TOKEN to serve the dashboard (docs/dashboard.md)",
        )
        warnings = deploy_checks.deploy_warnings(
            config, store_url=self.store_url, environ=self.environ
        )
        for warning in warnings:
            log.warning(
                "deploy_warning", problem=warning.kind, host=warning.host, detail=warning.message
            )

    async def _status(self) -> None:
        """The ``status`` line; skipped while the store is unreachable (the cycles say so)."""
        now = self.agent.clock.now()
        try:
            status = await read_status(self.agent, now=now, last_learning_at=self._last_learning_at)
        except StoreError:
            return
        log.info("status", **status.as_log(now))


def _bind_error(exc: OSError, *, host: str, port: int) -> Exception:
    """The ConfigError for a health server that cannot listen (any other OSError unchanged)."""
    fix = (
        "choose another port with server.port in the config or PORT in the environment "
        "(PORT wins when set)"
    )
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"Port {port} on {host} is already in use, so the health server (/healthz) cannot "
            f"listen: another growthloop, or another server, holds it. Stop that process, or {fix}."
        )
    if exc.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
        return ConfigError(
            f"The health server cannot listen on {host}:{port} ({exc.strerror}). Check "
            f"server.host (an address of this machine, or 0.0.0.0), or {fix}."
        )
    return exc


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
