"""Alerts: optional webhook notifications for what an operator must act on.

When ``GROWTHLOOP_ALERT_WEBHOOK_URL`` is set (a secret: read from the environment or ``.env``,
never from the config file and never logged), each alert is POSTed as JSON with both ``text``
(what a Slack incoming webhook reads) and ``content`` (what a Discord webhook reads), so one URL
of either works::

    {"text": "growthloop: account 'main' suspended ...", "content": "<the same>",
     "kind": "account_suspended", "account": "main"}

Kinds (:class:`AlertKind`): an account suspended by the circuit breaker, the LLM budget reached,
the kill switch on, the monthly platform budget cutting reads or posts (agent/budget.py), a
streak of publish failures, the store unavailable, posts stuck ``publishing``. Each kind is sent
at most once per ``alerts.repeat_after`` (default 1 h) per account (or once overall for kinds
without one); the time is the ``now`` passed in, so the
simulator's virtual clock rate-limits too.

Sending never blocks or breaks a cycle: :meth:`Alerts.notify` only schedules the request (a
task with ``alerts.timeout``); a failure is logged as ``alert_failed`` with the kind and the
error, never the URL. :meth:`Alerts.drain` waits for the requests in flight (tests, shutdown).
Without a URL, :meth:`Alerts.disabled` is a no-op that still logs ``alert`` at debug level.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from agent.config import DEFAULT_ALERT_REPEAT, DEFAULT_ALERT_TIMEOUT, Config, Secrets
from agent.logs import log, redact_text

ALERT_WEBHOOK_ENV = "GROWTHLOOP_ALERT_WEBHOOK_URL"
MAX_TEXT = 1900  # Discord refuses content over 2000 characters


class AlertKind(StrEnum):
    ACCOUNT_SUSPENDED = "account_suspended"
    BUDGET_REACHED = "budget_reached"
    KILL_SWITCH = "kill_switch"
    PLATFORM_BUDGET = "platform_budget"
    PUBLISH_FAILURES = "publish_failures"
    STORE_UNAVAILABLE = "store_unavailable"
    STUCK_PUBLISHING = "stuck_publishing"


class Alerts:
    """Sends alerts to one webhook, each (kind, account) at most once per ``repeat_after``."""

    def __init__(
        self,
        *,
        url: str | None,
        repeat_after: timedelta = DEFAULT_ALERT_REPEAT,
        timeout: timedelta = DEFAULT_ALERT_TIMEOUT,
    ) -> None:
        self._url = url or None
        self.repeat_after = repeat_after
        self.timeout = timeout
        self._last: dict[tuple[str, str | None], datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0  # requests the webhook accepted (2xx)

    @classmethod
    def disabled(cls) -> Alerts:
        """No webhook: every alert is only logged (debug)."""
        return cls(url=None)

    @classmethod
    def from_config(cls, config: Config) -> Alerts:
        """From ``GROWTHLOOP_ALERT_WEBHOOK_URL`` (environment or .env) and ``alerts:``."""
        secret = Secrets().growthloop_alert_webhook_url
        url = secret.get_secret_value().strip() if secret is not None else ""
        return cls(url=url, repeat_after=config.alerts.repeat_after, timeout=config.alerts.timeout)

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def notify(
        self, kind: AlertKind, text: str, *, now: datetime, account: str | None = None
    ) -> bool:
        """Send ``text`` unless this (kind, account) was sent within ``repeat_after`` of
        ``now``; returns whether it was (to be) sent. Never raises, never waits."""
        key = (kind.value, account)
        last = self._last.get(key)
        if last is not None and now - last < self.repeat_after:
            return False
        self._last[key] = now
        message = f"growthloop: {text}"[:MAX_TEXT]
        log.debug("alert", kind=kind.value, account=account, webhook=self.enabled)
        if self._url is None:
            return False
        body = {"text": message, "content": message, "kind": kind.value, "account": account}
        task = asyncio.get_running_loop().create_task(
            self._send(self._url, kind, account, body), name=f"alert:{kind.value}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _send(self, url: str, kind: AlertKind, account: str | None, body: Any) -> None:
        try:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout.total_seconds())
                )
            async with self._session.post(url, json=body) as response:
                if response.status >= 300:
                    log.warning(
                        "alert_failed", kind=kind.value, account=account, status=response.status
                    )
                    return
            self.sent += 1
            log.info("alert_sent", kind=kind.value, account=account)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            # the URL may appear in the error's text: redact it, and never log it
            error = redact_text(f"{type(exc).__name__}: {exc}").replace(url, "<webhook>")
            log.warning("alert_failed", kind=kind.value, account=account, error=error)

    async def drain(self) -> None:
        """Wait for the alerts in flight (each bounded by ``timeout``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None
