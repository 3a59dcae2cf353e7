"""The circuit breaker: an account that cannot post stops planning and publishing.

Two things suspend an account (a row in the store, :class:`agent.models.Suspension`, seen by
every worker, ``/healthz`` and ``growthloop health``):

- **auth**: the platform refused its credentials or a permission (``AuthFailed``), at publish
  or at the start-up check (``check_write_access``, a read, never a post). The account stays
  suspended until its credentials change (at start, the SHA-256 fingerprint of its credential
  variables' values differs from the one stored at suspension; the values are never stored),
  until the same cheap read succeeds again (every ``failsafe.credentials_check``, default 15
  min; a read that cannot tell, "unknown ...", does not count), or until
  ``growthloop resume --account NAME``;
- **failures**: ``failsafe.failure_streak`` (default 3) publish failures of one kind in a row
  (``ContentRejected``, ``PlatformUnavailable``, an ambiguous outcome...) suspend it for
  ``failsafe.cool_down`` (default 1 h), or until a resume. A rate limit is the platform asking to
  wait and does not count; a post published resets the streak.

While suspended the account gets no drafts (no LLM call), no publish, and its queued posts wait.
A suspension is logged once (``account_suspended``, naming the account, the platform, the
environment variables to check and the permission posting needs) and alerted once
(agent/alerts.py); the end is logged as ``account_resumed`` with its cause.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from agent.alerts import AlertKind
from agent.config import Account, account_secret_names, account_secrets
from agent.errors import AuthFailed, PlatformError, RateLimited
from agent.logs import log, redact_text
from agent.models import Suspension

if TYPE_CHECKING:
    from agent.core import Agent

AUTH = "auth"  # suspended until the credentials change, a read succeeds, or a resume
FAILURES = "failures"  # suspended for the cool-down after a streak of one kind of failure

# what posting needs, by platform: named in the account_suspended event
PERMISSIONS = {
    "x": "an app with Read and Write permission and an access token made after setting it "
    "(OAuth 1.0a user context)",
    "bluesky": "a valid app password for the handle (app passwords may post)",
    "mastodon": "an access token with the write:statuses scope",
    "threads": "a long-lived token with threads_basic and threads_content_publish",
    "sandbox": "none (simulated)",
}


@dataclass
class Breaker:
    """This process's part of the breaker: failure streaks and when each suspended account's
    credentials were last read (the suspensions themselves live in the store)."""

    streaks: dict[int, tuple[str, int]] = field(default_factory=dict)  # account -> (kind, n)
    checked_at: dict[int, datetime] = field(default_factory=dict)
    # accounts suspended during the current publish cycle (its list of due posts predates it)
    tripped: set[int] = field(default_factory=set)


def fingerprint(account: Account) -> str | None:
    """SHA-256 (hex) of the account's credential variables' names and values; None for an
    account without credentials (the sandbox). Never the values themselves."""
    values = account_secrets(account)
    if not values:
        return None
    digest = hashlib.sha256()
    for name in sorted(values):
        digest.update(f"{name}\0{values[name]}\0".encode())
    return digest.hexdigest()


async def suspended_ids(agent: Agent, now: datetime) -> set[int]:
    """The accounts suspended at ``now`` (one read of the store)."""
    return {s.account_id for s in await agent.store.suspensions(now=now)}


async def suspend(
    agent: Agent, account: Account, exc: PlatformError, now: datetime, *, reason: str
) -> bool:
    """Suspend the account for ``exc``; logs and alerts only when this call suspended it."""
    account_id = agent.account_ids[account.name]
    until = now + agent.config.failsafe.cool_down if reason == FAILURES else None
    detail = redact_text(str(exc))
    done = await agent.store.suspend_account(
        account_id=account_id,
        reason=reason,
        error_kind=type(exc).__name__,
        detail=detail,
        fingerprint=fingerprint(account),
        now=now,
        until=until,
    )
    agent.breaker.streaks.pop(account_id, None)
    agent.breaker.checked_at[account_id] = now
    agent.breaker.tripped.add(account_id)
    if not done:
        return False
    variables = account_secret_names(account)
    permission = PERMISSIONS.get(account.platform, "posting")
    log.error(
        "account_suspended",
        account=account.name,
        platform=account.platform,
        reason=reason,
        error_type=type(exc).__name__,
        error=detail,
        variables=variables,
        permission=permission,
        until=until.isoformat() if until else None,
    )
    agent.stats.totals["accounts_suspended"] += 1
    if reason == AUTH:
        lift = "when its credentials change or `growthloop resume --account " + account.name + "`"
        check = f"check {', '.join(variables)}; " if variables else ""
        text = (
            f"account {account.name!r} ({account.platform}) suspended: {type(exc).__name__}: "
            f"{detail}. {check}posting needs {permission}. It resumes {lift}."
        )
    else:
        text = (
            f"account {account.name!r} ({account.platform}) suspended until "
            f"{until.isoformat() if until else '-'} after "
            f"{agent.config.failsafe.failure_streak} publish failures in a row "
            f"({type(exc).__name__}: {detail})."
        )
    agent.alerts.notify(AlertKind.ACCOUNT_SUSPENDED, text, now=now, account=account.name)
    return True


async def lift(agent: Agent, account: Account, now: datetime, *, cause: str) -> bool:
    """End the account's suspension (logged as ``account_resumed``)."""
    account_id = agent.account_ids[account.name]
    agent.breaker.streaks.pop(account_id, None)
    if not await agent.store.lift_suspension(account_id):
        return False
    log.info("account_resumed", account=account.name, platform=account.platform, cause=cause)
    return True


async def publish_failed(agent: Agent, account: Account, exc: PlatformError, now: datetime) -> None:
    """After a publish failed: suspend at once on AuthFailed; count a streak otherwise."""
    if isinstance(exc, AuthFailed):
        await suspend(agent, account, exc, now, reason=AUTH)
        return
    if isinstance(exc, RateLimited):
        return
    account_id = agent.account_ids[account.name]
    kind = type(exc).__name__
    previous, count = agent.breaker.streaks.get(account_id, (kind, 0))
    count = count + 1 if previous == kind else 1
    agent.breaker.streaks[account_id] = (kind, count)
    limit = agent.config.failsafe.failure_streak
    if count >= 2:
        agent.alerts.notify(
            AlertKind.PUBLISH_FAILURES,
            f"account {account.name!r}: {count} publish failures in a row ({kind}: {exc})",
            now=now,
            account=account.name,
        )
    if limit and count >= limit:
        await suspend(agent, account, exc, now, reason=FAILURES)


def publish_succeeded(agent: Agent, account_id: int) -> None:
    agent.breaker.streaks.pop(account_id, None)


# check_write_access answers starting so cannot tell whether the account may post: such a read
# never lifts a suspension (e.g. X without an x-access-level header, after a refused post)
INCONCLUSIVE = ("unknown", "not checkable")


async def _read_access(agent: Agent, account: Account, now: datetime) -> PlatformError | str:
    """One write-access read (no post, no LLM call): the platform's description when it
    answers, else the error (an AuthFailed suspends; other errors leave things as they are)."""
    account_id = agent.account_ids[account.name]
    agent.breaker.checked_at[account_id] = now
    try:
        async with agent.api_call(account_id, "check_write_access"):
            return await agent.platforms[account.name].check_write_access()
    except PlatformError as exc:
        return exc


def conclusive(answer: PlatformError | str) -> bool:
    """Whether a write-access read says the account may post."""
    return isinstance(answer, str) and not answer.strip().lower().startswith(INCONCLUSIVE)


async def startup_check(agent: Agent, now: datetime) -> None:
    """At start: lift the auth suspensions whose credentials changed, then read every
    non-suspended account's write access once (an AuthFailed suspends it before any draft).
    One read of the suspensions for every account; the accounts' reads run concurrently, as
    the cycles' work does (:meth:`Agent.for_accounts`: ``runtime.concurrency`` per platform),
    so 10,000 accounts do not wait on 10,000 reads in turn."""
    current = {s.account_id: s for s in await agent.store.suspensions(now=now)}

    async def check(account_id: int) -> None:
        account = agent.account(account_id)
        held: Suspension | None = current.get(account_id)
        if held is not None and held.reason == AUTH and held.fingerprint != fingerprint(account):
            await lift(agent, account, now, cause="credentials_changed")
            held = None
        if held is not None:
            log.warning(
                "account_still_suspended",
                account=account.name,
                platform=account.platform,
                reason=held.reason,
                error_type=held.error_kind,
                since=held.suspended_at.isoformat(),
                variables=account_secret_names(account),
            )
            return
        answer = await _read_access(agent, account, now)
        if isinstance(answer, AuthFailed):
            await suspend(agent, account, answer, now, reason=AUTH)
        elif isinstance(answer, PlatformError):
            log.warning("write_access_unchecked", account=account.name, error=str(answer))

    await agent.for_accounts([agent.account_ids[a.name] for a in agent.config.accounts], check)


async def recheck(agent: Agent, now: datetime) -> set[int]:
    """The accounts suspended at ``now``, after reading again (every
    ``failsafe.credentials_check``) the write access of those suspended for auth: a read that
    succeeds lifts the suspension."""
    every = agent.config.failsafe.credentials_check
    suspended = set()
    for held in await agent.store.suspensions(now=now):
        account = agent.config.account(held.account) if held.account in agent.account_ids else None
        if account is None:  # an account no longer configured
            continue
        last = agent.breaker.checked_at.get(held.account_id, held.suspended_at)
        if held.reason == AUTH and now - last >= every:
            answer = await _read_access(agent, account, now)
            if conclusive(answer) and await lift(agent, account, now, cause="write_access_ok"):
                continue
        suspended.add(held.account_id)
    return suspended
