"""Secrets never reach the logs."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from agent.logs import configure_logging, redact_text


@pytest.fixture(autouse=True)
def _reset_structlog() -> object:
    yield
    structlog.reset_defaults()


def test_secret_env_values_and_secret_keys_are_redacted_in_json_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-verysecretvalue123")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter22pw@db.internal:5432/app")
    configure_logging(json=True, level="info")
    log = structlog.get_logger("test")
    log.info(
        "post_published",
        detail="called with sk-verysecretvalue123",
        api_key="plain",
        url="postgresql://app:hunter22pw@db.internal:5432/app",
        other="postgresql://bob:pw4bob@replica:5432/app",
        header="Bearer abc.def.ghi",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "post_published"
    assert "sk-verysecretvalue123" not in line
    assert "hunter22pw" not in line
    assert "abc.def.ghi" not in line
    assert event["api_key"] == "[redacted]"
    assert event["url"] == "[redacted]"  # the whole DATABASE_URL value is a secret
    assert event["other"] == "postgresql://bob:[redacted]@replica:5432/app"


def test_redact_text_leaves_ordinary_text_alone() -> None:
    assert redact_text("5 followers gained", secrets=[]) == "5 followers gained"


def test_library_log_records_are_json_events_not_plain_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # APScheduler, aiohttp and asyncio log through `logging`: without a handler Python prints
    # their warnings as plain text into the JSON log.
    configure_logging(json=True, level="info")
    library = logging.getLogger("apscheduler.scheduler")
    library.info("Scheduler started")  # below warning: left out
    library.warning('Execution of job "cycle poll" skipped: maximum number of running instances')
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["event"] == "library_log"
    assert event["level"] == "warning"
    assert event["logger"] == "apscheduler.scheduler"
    assert "skipped" in event["message"]
