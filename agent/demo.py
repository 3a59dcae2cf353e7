"""``growthloop run --demo``: the whole loop in about a minute of real time, on the sandbox.

A real daemon posts a few times a day and learns a day later, so a first run shows almost
nothing. The demo runs the same daemon and the same cycles with compressed settings:

- every account on the ``sandbox`` platform (the ``demo_realtime`` scenario: 10 real seconds are
  one sandbox hour) and the offline template generator, whatever the config says: nothing is
  published anywhere real and no paid API is called;
- its own files beside the config's SQLite file (``demo.db``, ``demo-world.db``,
  ``demo-journal.jsonl``), replaced on each run; ``DATABASE_URL`` is ignored, so the user's
  database is never touched;
- posting allowed at any hour with the first post due at once, polls 10, 20 and 30 s after a
  post, a follower reading every 5 s, a 2 s tick and a ``status`` line every 15 s.

Plan, publish, poll, attribution and the learning step (``posterior_updated``) all show in the
log within about 40 seconds; SIGTERM or Ctrl-C stops it as it stops the real daemon.
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

from agent.config import ActiveHours, Cadence, Config
from agent.models import Mode

DEMO_SCENARIO = "demo_realtime"
DEMO_TICK = timedelta(seconds=2)
DEMO_HORIZONS = (timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=30))
DEMO_ACCOUNT_EVERY = timedelta(seconds=5)  # follower readings: attribution needs them
DEMO_STATUS_EVERY = timedelta(seconds=15)
DEMO_CADENCE = Cadence(
    posts_per_day=48,
    max_posts_per_hour=10,
    min_gap=timedelta(minutes=1),
    jitter=timedelta(0),
    active_hours=ActiveHours(start=time(0, 0), end=time(0, 0), timezone="UTC"),  # all day
)
DEMO_FILES = ("demo.db", "demo-world.db", "demo-journal.jsonl")


def demo_config(config: Config) -> Config:
    """The config as the demo runs it: sandbox only, its own files, compressed time."""
    folder = config.store.sqlite_path.parent
    accounts = [
        a.model_copy(
            update={"platform": "sandbox", "cadence": None, "api_base_url": None, "tier": None}
        )
        for a in config.accounts
    ]
    return config.model_copy(
        update={
            "mode": Mode.LIVE,
            "accounts": accounts,
            "cadence": DEMO_CADENCE,
            "generator": config.generator.model_copy(update={"kind": "template"}),
            "polling": config.polling.model_copy(
                update={"horizons": list(DEMO_HORIZONS), "account_every": DEMO_ACCOUNT_EVERY}
            ),
            "learning": config.learning.model_copy(update={"attribution_window": None}),
            "store": config.store.model_copy(update={"sqlite_path": folder / DEMO_FILES[0]}),
            "sandbox": config.sandbox.model_copy(
                update={"scenario": DEMO_SCENARIO, "world_path": folder / DEMO_FILES[1]}
            ),
            "runtime": config.runtime.model_copy(
                update={
                    "tick": DEMO_TICK,
                    "status_every": DEMO_STATUS_EVERY,
                    "journal_path": folder / DEMO_FILES[2],
                }
            ),
        }
    )


def fresh_demo_files(config: Config) -> None:
    """Remove the previous demo's files (the demo config's store, world and journal)."""
    for path in (config.store.sqlite_path, config.sandbox.world_path):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    config.runtime.journal_path.unlink(missing_ok=True)
