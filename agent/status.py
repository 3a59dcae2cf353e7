"""What the daemon tells its operator while nothing else happens: the ``status`` line and where
to ask for more.

A real daemon posts a few times a day, inside its active hours, so most of its log is silence.
Every ``runtime.status_every`` (and once after the first tick) it logs one ``status`` event:
the accounts, the next queued post and when it is due, the snapshots due and the next one, and
the last learning step, all read from the store, so two workers on one database say the same.
At start it logs ``health_endpoint``: the URL of ``/healthz`` and the ``growthloop health``
command that reads the same counters from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.core import Agent

ANY_ADDRESS = ("", "0.0.0.0", "::")  # a server bound to every interface answers on localhost


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """One ``status`` line's content."""

    accounts: list[str]
    posts_queued: int
    next_post_at: datetime | None
    posts_in_flight: int
    snapshots_due: int
    next_snapshot_at: datetime | None
    posted: int
    learning_updates: int
    last_learning_at: datetime | None

    def as_log(self, now: datetime) -> dict[str, Any]:
        """The log event's fields: times as ISO strings, plus how far away the next ones are."""
        return {
            "accounts": self.accounts,
            "posts_queued": self.posts_queued,
            "next_post_at": _iso(self.next_post_at),
            "next_post_in": until(self.next_post_at, now),
            "posts_in_flight": self.posts_in_flight,
            "snapshots_due": self.snapshots_due,
            "next_snapshot_at": _iso(self.next_snapshot_at),
            "next_snapshot_in": until(self.next_snapshot_at, now),
            "posted": self.posted,
            "learning_updates": self.learning_updates,
            "last_learning_at": _iso(self.last_learning_at),
        }


async def read_status(agent: Agent, *, now: datetime, last_learning_at: datetime | None) -> Status:
    """The status from the store (``last_learning_at``: when this process last learned)."""
    pending = await agent.store.pending_work(now)
    counts = await agent.store.counts()
    return Status(
        accounts=[a.name for a in agent.config.accounts],
        posts_queued=int(pending["posts_queued"]),
        next_post_at=pending["next_post_at"],
        posts_in_flight=int(pending["posts_in_flight"]),
        snapshots_due=int(pending["polls_due"]),
        next_snapshot_at=pending["next_poll_at"],
        posted=counts.get("posted", 0),
        learning_updates=counts.get("learning_updates", 0),
        last_learning_at=last_learning_at,
    )


def until(when: datetime | None, now: datetime) -> str | None:
    """``"due now"``, ``"in 4m"``, ``"in 2h 5m"`` (None when there is nothing)."""
    if when is None:
        return None
    seconds = int((when - now).total_seconds())
    if seconds <= 0:
        return "due now"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"in {hours}h {minutes}m"
    return f"in {minutes}m" if minutes else f"in {secs}s"


def healthz_url(host: str, port: int) -> str:
    shown = "localhost" if host in ANY_ADDRESS else host
    if ":" in shown:  # an IPv6 address
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/healthz"


def health_command(config_path: Path | None) -> str:
    """The command that reads the same counters from the store."""
    return "growthloop health" + (f" --config {config_path}" if config_path else "")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
