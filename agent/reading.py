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

Neither gains from a reading every 10 minutes; the deconvolution does lose from readings hours
apart (it separates overlapping posts by when their followers arrive). Where reads are free
(Bluesky, Mastodon, Threads, the sandbox, X's monthly tiers) nothing changes: the count is read
every :data:`~agent.config.DEFAULT_ACCOUNT_POLL_EVERY` (10 min) and metrics at every
``polling.horizons``. Where the platform bills each read (X pay-per-use, $0.001 an object) the
reads go where attribution and the learner need them: the follower count every
``polling.paid_account_every`` (4 h) besides the reading just before each post, and a post's
metrics at the last two horizons (``polling.paid_horizons``; 4 h and 24 h by default: the 4 h
poll is the learner's provisional evidence while a post's followers are still being counted).
At 4 posts a day that is ~9 follower readings and 8 metric reads a day instead of 144 and 12:
the all-in cost of a post falls from ~3.6x the post fee to ~1.26x (``python -m bench.cost``),
and the learning benchmark's score stays within noise of reading every 10 minutes with every
horizon. The first default (every 2 h, the last horizon only) cost about as much, 1.30x, but
left the learner without provisional evidence: 0.09 of the oracle's followers lost over 90 days
(docs/costs.md).

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
from agent.config import DEFAULT_ACCOUNT_POLL_EVERY, PAID_HORIZONS_KEPT, Config


def reading_interval(config: Config, prices: Prices) -> timedelta:
    """How long a follower reading serves before the next is due, for a platform billing
    ``prices``: ``polling.account_every`` when set, else 10 min where reads are free and
    ``polling.paid_account_every`` where each read is billed."""
    polling = config.polling
    if polling.account_every is not None:
        return polling.account_every
    return polling.paid_account_every if prices.read > 0 else DEFAULT_ACCOUNT_POLL_EVERY


def poll_horizons(config: Config, prices: Prices) -> list[timedelta]:
    """The horizons a post's metrics are polled at, for a platform billing ``prices``:
    ``polling.horizons`` where reads are free, ``polling.paid_horizons`` (unset: the last
    ``PAID_HORIZONS_KEPT`` of ``polling.horizons``) where each read is billed."""
    polling = config.polling
    if prices.read <= 0:
        return list(polling.horizons)
    return list(polling.paid_horizons or polling.horizons[-PAID_HORIZONS_KEPT:])


# the golden ratio's fractional part: i * PHI mod 1 spreads any number of ids evenly over [0, 1)
PHI = 0.6180339887498949


def first_reading_at(account_id: int, started: datetime, interval: timedelta) -> datetime:
    """When an account with no reading yet takes its first periodic one: spread over the first
    ``interval`` after ``started`` by its id, so that N new accounts do not all read at once
    (10,000 reads and inserts in the first tick of a new deployment, and a burst a real
    platform's rate limit would refuse). Attribution loses nothing: the publish cycle still
    reads the count just before every post."""
    return started + interval * ((account_id * PHI) % 1.0)


def next_reading_at(
    last: datetime | None, interval: timedelta, now: datetime, *, first: datetime | None = None
) -> datetime:
    """When the next reading falls due: ``first`` (or ``now``) when there is none yet."""
    if last is None:
        return now if first is None else max(first, now)
    return last + interval


def reading_due(
    last: datetime | None, interval: timedelta, now: datetime, *, first: datetime | None = None
) -> bool:
    """Whether a reading taken at ``last`` (None: never, and then whether ``first`` has come) is
    too old to serve at ``now``."""
    if last is None:
        return first is None or now >= first
    return now - last >= interval
