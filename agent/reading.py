"""Reading: when a follower-count reading is due, by what the attribution needs and what a read
costs on the account's platform.

Attribution (``agent/cycles/attribute.py``) works from the ``account_snapshots`` series. What it
uses of it:

- **time window** (``learning/attribution.py``): the reading just before each post (the
  ``before`` point; taken by the publish cycle before every post) and the readings around the
  window's end, interpolated; a window is attributed once a reading exists at or after its end;
- **deconvolution** (``learning/deconvolution.py``, the default): the series thinned to at most
  one reading per hour of a 24 h window; readings may be irregular (the noise of a change is
  proportional to its duration), so fewer readings make wider intervals, not a biased fit.

Neither gains from a reading every 10 minutes. Where reads are free (Bluesky, Mastodon,
Threads, the sandbox, X's monthly tiers) the count is still read every
:data:`~agent.config.DEFAULT_ACCOUNT_POLL_EVERY` (10 min), as before. Where the platform bills each
read (X pay-per-use, $0.001 an object) the readings taken just before each post are the series,
and a periodic reading only fills gaps longer than ``polling.paid_account_every`` (12 h: a night,
an account that stopped posting). At 4 posts a day that is ~4 readings a day instead of 144, and
the all-in cost of a post falls from ~3.7x the post fee to ~1.27x (``python -m bench.cost``).

Whatever the platform, one reading serves every reader until the next is due: the periodic
follower cycle and the poll batches ask the same :func:`reading_due`, so a poll batch no longer
reads the count again when a reading was just taken (it did on every batch), and the simulator's
"account" events fall due at :func:`next_reading_at`. ``polling.account_every`` set in the config
applies to every platform, billed or not.

The monthly platform budget (``agent/budget.py``) can stop the periodic readings altogether.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.base import Prices
from agent.config import DEFAULT_ACCOUNT_POLL_EVERY, Config


def reading_interval(config: Config, prices: Prices) -> timedelta:
    """How long a follower reading serves before the next is due, for a platform billing
    ``prices``: ``polling.account_every`` when set, else 10 min where reads are free and
    ``polling.paid_account_every`` where each read is billed."""
    polling = config.polling
    if polling.account_every is not None:
        return polling.account_every
    return polling.paid_account_every if prices.read > 0 else DEFAULT_ACCOUNT_POLL_EVERY


def next_reading_at(last: datetime | None, interval: timedelta, now: datetime) -> datetime:
    """When the next reading falls due: ``now`` when there is none yet."""
    return now if last is None else last + interval


def reading_due(last: datetime | None, interval: timedelta, now: datetime) -> bool:
    """Whether a reading taken at ``last`` (None: never) is too old to serve at ``now``."""
    return last is None or now - last >= interval
