"""Real time: the cycles as APScheduler interval jobs, plus the /healthz endpoint.

A database outage does not stop the daemon: the store retries a dropped connection with
backoff, then raises StoreUnavailable; the cycle gives up until its next tick, the outage is
logged once (``store_unavailable``, then ``store_available``), and work that fell due meanwhile
is still in the database, so it runs afterwards.

``stop()`` only sets an event. Shutdown then stops taking new work (the scheduler is shut down),
lets cycles in flight finish within the grace period, and closes the store and adapters. A post
interrupted even so stays ``publishing`` and is reconciled on the next start.
"""

from __future__ import annotations

import asyncio
import errno
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from agent.core import Agent
from agent.cycles import CYCLES, Cycle, reconcile_cycle
from agent.cycles.publish import env_pause_reason, pause_reason
from agent.errors import ConfigError, PlatformError, StoreError, StoreUnavailable
from agent.logs import log

MAX_CONSECUTIVE_CRASHES = 5  # an unexpected error this many times in a row stops the daemon
# cycles that read the store on every run: one of them succeeding ends a store outage
STORE_PROBES = frozenset({"publish", "poll"})


class Daemon:
    def __init__(self, agent: Agent, *, host: str = "0.0.0.0", port: int = 8080) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self._stop = asyncio.Event()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._crashes: dict[str, int] = {}
        self._store_down_since: datetime | None = None  # set by StoreUnavailable, once
        self.exit_code = 0
        self.bound_port: int | None = None

    def stop(self) -> None:
        self._stop.set()

    async def _run_cycle(self, name: str, cycle: Cycle) -> None:
        if self._stop.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        now = self.agent.clock.now()
        try:
            done = await cycle(self.agent, now)
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
        except StoreUnavailable as exc:
            # the store already retried with backoff; log the outage once, not every tick
            self.agent.stats.last_error[name] = f"{type(exc).__name__}: {exc}"
            if self._store_down_since is None:
                self._store_down_since = now
                log.warning("store_unavailable", cycle=name, error=str(exc))
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
        finally:
            self._in_flight.discard(task)

    async def healthz(self, _request: web.Request) -> web.Response:
        now = self.agent.clock.now()
        body: dict[str, Any] = {
            "status": "ok" if not self._stop.is_set() else "stopping",
            "now": now.isoformat(),
            "mode": self.agent.config.mode.value,
            "accounts": [a.name for a in self.agent.config.accounts],
            "last_run": {k: v.isoformat() for k, v in self.agent.stats.last_run.items()},
            "last_error": self.agent.stats.last_error,
            "totals": dict(self.agent.stats.totals),
        }
        env_reason = env_pause_reason()  # still reported when the store is unreachable
        body["paused"], body["pause_reason"] = env_reason is not None, env_reason
        try:
            body["pending"] = _jsonable(await self.agent.store.pending_work(now))
            body["counts"] = await self.agent.store.counts()
            reason = await pause_reason(self.agent)
            body["paused"], body["pause_reason"] = reason is not None, reason
        except StoreError as exc:
            body["status"] = "degraded"
            body["store_error"] = str(exc)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def run(self, *, install_signals: bool = True) -> int:
        from agent import signals

        agent = self.agent
        await agent.setup()
        reconciled = await reconcile_cycle(agent, agent.clock.now())
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
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
        remove = signals.install(self.stop) if install_signals else None
        tick = agent.config.runtime.tick.total_seconds()
        scheduler = AsyncIOScheduler(timezone=UTC)
        first = datetime.now(UTC)
        # Staggered within a tick, in loop order: a post planned now is published a moment later.
        offset = tick / len(CYCLES)
        for index, (name, cycle) in enumerate(CYCLES.items()):
            scheduler.add_job(
                self._run_cycle,
                "interval",
                seconds=tick,
                args=[name, cycle],
                id=name,
                max_instances=1,
                coalesce=True,
                next_run_time=first + timedelta(seconds=index * offset),
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info(
            "daemon_started",
            accounts=len(agent.config.accounts),
            port=self.bound_port,
            tick_seconds=tick,
            reconciled=reconciled,
            mode=agent.config.mode.value,
        )
        try:
            await self._stop.wait()
        finally:
            log.info("daemon_stopping", in_flight=len(self._in_flight))
            scheduler.shutdown(wait=False)
            grace = agent.config.runtime.shutdown_grace.total_seconds()
            if self._in_flight:
                _done, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
                for task in pending:
                    task.cancel()
            if remove:
                remove()
            await runner.cleanup()
            log.info("daemon_stopped", exit_code=self.exit_code)
        return self.exit_code


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
