"""Webhook alerts (agent/alerts.py) against a local webhook server (tests/unit/webhook_server.py):
Slack- and Discord-compatible bodies, rate-limited per kind and account, never blocking or
breaking the caller, the URL never logged."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from agent.alerts import AlertKind, Alerts
from agent.config import Config
from tests.conftest import T0, make_config
from tests.unit.webhook_server import WebhookServer

HOUR = timedelta(hours=1)


async def sent(alerts: Alerts) -> None:
    await alerts.drain()
    await alerts.aclose()


async def test_an_alert_body_works_for_slack_and_discord(webhook: WebhookServer) -> None:
    alerts = Alerts(url=webhook.url)
    assert alerts.notify(AlertKind.BUDGET_REACHED, "LLM budget reached", now=T0, account="main")
    await sent(alerts)

    (body,) = webhook.bodies
    assert body["text"] == body["content"] == "growthloop: LLM budget reached"  # Slack, Discord
    assert (body["kind"], body["account"]) == ("budget_reached", "main")
    assert alerts.sent == 1


async def test_each_kind_and_account_is_sent_at_most_once_per_repeat_after(
    webhook: WebhookServer,
) -> None:
    alerts = Alerts(url=webhook.url, repeat_after=HOUR)
    first = alerts.notify(AlertKind.ACCOUNT_SUSPENDED, "a", now=T0, account="main")
    again = alerts.notify(AlertKind.ACCOUNT_SUSPENDED, "a", now=T0 + HOUR / 2, account="main")
    other_account = alerts.notify(AlertKind.ACCOUNT_SUSPENDED, "b", now=T0, account="other")
    other_kind = alerts.notify(AlertKind.PUBLISH_FAILURES, "c", now=T0, account="main")
    later = alerts.notify(AlertKind.ACCOUNT_SUSPENDED, "d", now=T0 + HOUR, account="main")
    await sent(alerts)

    assert (first, again, other_account, other_kind, later) == (True, False, True, True, True)
    assert webhook.kinds() == [
        ("account_suspended", "main"),
        ("account_suspended", "other"),
        ("publish_failures", "main"),
        ("account_suspended", "main"),
    ]


async def test_a_slow_webhook_never_holds_up_the_caller(webhook: WebhookServer) -> None:
    webhook.delay = 5.0
    alerts = Alerts(url=webhook.url, timeout=timedelta(seconds=0.3))
    with capture_logs() as logs:
        alerts.notify(AlertKind.STORE_UNAVAILABLE, "database unavailable", now=T0)
        # notify returned at once: the request is still on its way
        assert webhook.bodies == [] and alerts.sent == 0
        await asyncio.wait_for(sent(alerts), timeout=3)  # bounded by the alert timeout

    failed = [e for e in logs if e["event"] == "alert_failed"]
    assert [(e["kind"], e["log_level"]) for e in failed] == [("store_unavailable", "warning")]
    assert alerts.sent == 0


async def test_a_refused_or_unreachable_webhook_is_logged_without_its_url(
    webhook: WebhookServer,
) -> None:
    webhook.status = 500
    secret_url = webhook.url + "?token=s3cr3t-hook"
    refused = Alerts(url=secret_url)
    unreachable = Alerts(url="http://127.0.0.1:9/hook?token=s3cr3t-hook")  # nothing listens
    with capture_logs() as logs:
        refused.notify(AlertKind.KILL_SWITCH, "paused", now=T0)
        unreachable.notify(AlertKind.KILL_SWITCH, "paused", now=T0)
        await sent(refused)
        await sent(unreachable)

    failed = [e for e in logs if e["event"] == "alert_failed"]
    assert len(failed) == 2
    assert failed[0].get("status") == 500 or failed[1].get("status") == 500
    assert "s3cr3t" not in json.dumps(logs, default=str)
    assert len(webhook.bodies) == 1  # it was asked once, and said no


async def test_without_a_url_nothing_is_sent(webhook: WebhookServer) -> None:
    alerts = Alerts.disabled()
    assert not alerts.enabled
    assert not alerts.notify(AlertKind.STUCK_PUBLISHING, "post 3 stuck", now=T0, account="main")
    await sent(alerts)
    assert webhook.bodies == []


def config_with_alerts(**alerts: str) -> Config:
    return make_config(alerts=alerts)


async def test_the_url_comes_from_the_environment_and_settings_from_the_config(
    webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROWTHLOOP_ALERT_WEBHOOK_URL", webhook.url)
    alerts = Alerts.from_config(config_with_alerts(repeat_after="10m", timeout="2s"))
    assert alerts.enabled
    assert (alerts.repeat_after, alerts.timeout) == (timedelta(minutes=10), timedelta(seconds=2))
    alerts.notify(AlertKind.KILL_SWITCH, "paused", now=T0)
    await sent(alerts)
    assert webhook.kinds() == [("kill_switch", None)]

    monkeypatch.delenv("GROWTHLOOP_ALERT_WEBHOOK_URL")
    assert not Alerts.from_config(config_with_alerts()).enabled


async def test_the_webhook_url_from_the_environment_is_scrubbed_from_every_log_line(
    webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.logs import redact_secrets

    url = webhook.url + "/T000/B000/s3cr3tPart"
    monkeypatch.setenv("GROWTHLOOP_ALERT_WEBHOOK_URL", url)
    event = redact_secrets(None, "warning", {"event": "x", "error": f"cannot post to {url}"})
    assert "s3cr3tPart" not in str(event)
    event = redact_secrets(None, "info", {"event": "x", "alert_webhook_url": url})
    assert "s3cr3tPart" not in str(event)
