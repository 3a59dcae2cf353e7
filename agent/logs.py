"""Structured logging: fixed event names with context, JSON when not on a terminal, no secrets.

Event names used across the daemon (tests assert on them): ``post_planned``, ``post_rejected``,
``post_published``, ``post_publish_failed``, ``post_rescheduled``, ``post_reconciled``,
``post_dry_run``, ``snapshot_taken``, ``account_snapshot_taken``, ``followers_attributed``,
``posterior_updated``, ``health_written``, ``cycle_failed``, ``daemon_started``,
``daemon_stopping``, ``daemon_stopped``, ``shutdown_requested``, ``shutdown_forced``,
``cycles_cancelled``, ``cycle_cancelled``, ``health_endpoint``, ``deploy_warning``,
``demo_running``, ``status``, ``dashboard_endpoint``, ``dashboard_signed_in``,
``dashboard_sign_in_failed``, ``dashboard_store_error``; ``library_log`` for a library's own
``logging`` record (warnings and above).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|auth|credential|database_url|dsn"
    r"|webhook_url"  # webhook_url: GROWTHLOOP_ALERT_WEBHOOK_URL (agent/alerts.py)
    r"|service_role_key)",  # SUPABASE_SERVICE_ROLE_KEY (agent/report/share.py)
    re.IGNORECASE,
)
# user:password@ in URLs, and bearer/sk- style tokens inside free text
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s]+@", re.IGNORECASE)
BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
REDACTED = "[redacted]"


def _secret_values() -> list[str]:
    """Values of secret-looking environment variables, to scrub wherever they appear."""
    values = []
    for key, value in os.environ.items():
        if value and len(value) >= 6 and SECRET_KEY.search(key):
            values.append(value)
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    for value in _secret_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    text = URL_PASSWORD.sub(rf"\g<scheme>:{REDACTED}@", text)
    return BEARER.sub(rf"\g<1>{REDACTED}", text)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank secret-named keys and scrub secret values from every string."""
    secrets = _secret_values()
    for key in list(event_dict):
        value = event_dict[key]
        if SECRET_KEY.search(str(key)) and key != "event":
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value, secrets)
        elif isinstance(value, BaseException):
            event_dict[key] = redact_text(f"{type(value).__name__}: {value}", secrets)
    return event_dict


def configure_logging(*, json: bool | None = None, level: str | None = None) -> None:
    """JSON lines when stdout is not a terminal (or GROWTHLOOP_LOG_FORMAT=json), else console."""
    fmt = os.environ.get("GROWTHLOOP_LOG_FORMAT", "").lower()
    if json is None:
        json = fmt == "json" or (fmt != "console" and not sys.stderr.isatty())
    level_name = (level or os.environ.get("GROWTHLOOP_LOG_LEVEL", "info")).upper()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level_name, logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_library_logs(renderer)


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler installed by :func:`_route_library_logs` (found to replace);
    writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _library_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A library's log record as the fixed event ``library_log`` with its message."""
    event_dict["message"] = event_dict.pop("event", "")
    event_dict["event"] = "library_log"
    return event_dict


def _route_library_logs(renderer: Any) -> None:
    """Render the standard ``logging`` records of libraries (APScheduler, aiohttp, asyncio) like
    our own events (JSON or console, secrets redacted), warnings and above only, instead of
    Python's plain-text last-resort output."""
    handler = _LibraryHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _library_event,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


log = structlog.get_logger("growthloop")
