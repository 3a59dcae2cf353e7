"""Plan: choose what to post next (Thompson sampling), write it, check it, queue it.

The steps are in :mod:`agent.cycles.plan_steps`, each returning a value; :func:`plan_account`
runs them under the account's lease and redrafts a draft the gate or moderation refused
(:func:`redraft`, from the step's :class:`~agent.cycles.plan_steps.Verdict`), so a refusal does
not cost the account its slot.

Each account keeps at most one post queued (``planned``). Its time respects the cadence: posts
spread over the active hours, never closer than the minimum gap, never more than the daily cap in
a local day, shifted by random jitter so the account does not post like a metronome.

In approve mode a draft that passes the gate is stored as ``draft`` and waits for a person
(``growthloop drafts``, :mod:`agent.drafts`); it counts as the account's queued post, and one
nobody approved within ``approval.draft_expiry`` is rejected at the start of the cycle.

An account the circuit breaker suspended (agent/breaker.py) is not planned at all.

One query finds the accounts without a queued post (``Store.queued_accounts``): an idle tick asks
nothing per account. When some are to be planned, an exclusive worker asks once which accounts
have no content row at all (``Store.accounts_without_content``); a worker sharing the store
learns it under the lease, with the queue check (``Store.queue_state``). A new account's first
draft then reads none of its posts (none to read): three store calls of the five a plan makes. Those
accounts are planned concurrently, ``runtime.plan_concurrency`` at a time
(:meth:`agent.core.Agent.bounded`); each account's steps stay in order.

Several workers: an account is planned under the lease ``plan:<account_id>``, so two workers
never plan for one account at once (the one-queued-post rule is checked under the lease, and
again before the post is stored, in case writing it outlasted the lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.alerts import AlertKind
from agent.breaker import recheck
from agent.budget import Stage, account_stage
from agent.config import Account
from agent.core import Agent
from agent.cycles.plan_steps import (
    Choice,
    Moderate,
    Verdict,
    check,
    choose,
    choose_slot,
    queue,
    vary,
    write,
)
from agent.logs import log

# A draft the quality gate refused is redrafted at once (the policy's choice with another topic,
# then another topic and hook, drawn afresh each time), up to this many times per cycle, so a
# refusal does not cost the account its posting slot. Two redrafts still lost ~3 % of the
# learner's slots in the learning benchmark (an exploiting policy writes similar posts).
REDRAFTS = 4


@dataclass(kw_only=True)
class Spend:
    """Today's (UTC) LLM spend per account: read once per plan cycle (``Store.llm_spend``, one
    query for every account) and added to as the cycle's own drafts are written. Another
    worker's drafts of the same cycle are seen at the next one, and drafts written at once
    (``runtime.plan_concurrency``) are each checked before the others are paid: the budget can
    be passed by at most that many drafts."""

    by_account: dict[int, float]
    total: float = 0.0

    def __post_init__(self) -> None:
        self.total = sum(self.by_account.values())

    def add(self, account_id: int, usd: float) -> None:
        self.by_account[account_id] = self.by_account.get(account_id, 0.0) + usd
        self.total += usd


async def todays_spend(agent: Agent, now: datetime) -> Spend | None:
    """What the generators spent today, or None for the offline template generator, which costs
    nothing and is not checked (a budget of 0 must not stop it)."""
    if agent.generator.name == "template":
        return None
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Spend(by_account=await agent.store.llm_spend(day_start, day_start + timedelta(days=1)))


def over_budget(
    agent: Agent, account: Account, account_id: int, now: datetime, spend: Spend | None
) -> bool:
    """Whether today's (UTC) LLM spend has reached the account's or the overall daily budget.

    Spend is the cost_usd the generators recorded on the content rows created today
    (:func:`todays_spend`; None: the template generator, never over budget).
    """
    if spend is None:
        return False
    budget = agent.config.budget
    for scope, used, limit in (
        ("account", spend.by_account.get(account_id, 0.0), budget.llm_daily_usd_per_account),
        ("total", spend.total, budget.llm_daily_usd_total),
    ):
        if used >= limit:
            log.warning(
                "planning_paused_budget",
                account=account.name,
                scope=scope,
                spent=round(used, 6),
                budget=limit,
            )
            agent.alerts.notify(
                AlertKind.BUDGET_REACHED,
                f"LLM budget reached ({scope}): spent ${used:.4f} of ${limit:.2f} today (UTC); "
                f"planning for account {account.name!r} waits until tomorrow",
                now=now,
                account=account.name,
            )
            return True
    return False


def redraft(verdict: Verdict, attempt: int) -> bool:
    """Whether draft ``attempt`` (0: the first) ending with ``verdict`` is followed by another in
    the same cycle: only a draft the gate or moderation refused, and at most ``REDRAFTS`` times.
    A draft that failed (generation or moderation down) is tried again at the next tick."""
    return verdict.refused and attempt < REDRAFTS


async def plan_account(
    agent: Agent, account: Account, now: datetime, spend: Spend | None = None, *, new: bool = False
) -> bool:
    """Plan the account's next post, which the caller saw without one queued
    (:meth:`Store.queued_accounts`): whether one was queued (or a draft written, in approve
    mode). ``new``: the caller saw it without any content row (only an exclusive worker may
    say so: no other can add one meanwhile), so its first draft asks the store nothing about
    its posts."""
    account_id = agent.account_ids[account.name]
    async with agent.leased(f"plan:{account_id}", now) as held:
        if not held:
            return False  # another worker is planning this account
        policy_choice: Choice | None = None  # asked once; a redraft varies it
        attempt = 0
        while True:
            may, new_here = await _may_plan(agent, account, account_id, now, spend)
            if not may:
                return False
            fresh = (new or new_here) and not attempt  # a redraft follows a stored refusal
            slot = await choose_slot(agent, account, account_id, now, new=fresh)
            if policy_choice is None:
                policy_choice = await choose(agent, account, account_id, now, slot=slot, new=fresh)
            choice = vary(agent, account, policy_choice, attempt)
            written = await write(agent, account, account_id, choice=choice, slot=slot, new=fresh)
            verdict = await check(
                written,
                gate_config=agent.config.gate,
                max_chars=agent.platforms[account.name].limits.max_chars,
                length=agent.platforms[account.name].length,
                moderate=moderation(agent),
                mode=agent.config.mode,
            )
            if not await _still_ours(agent, account, account_id, agent.clock.now()):
                return False
            queued = await queue(
                agent,
                account,
                account_id,
                now,
                written=written,
                verdict=verdict,
                assigned=choice.assigned.assignments,
            )
            if spend is not None:
                spend.add(account_id, float(written.metadata.get("cost_usd") or 0.0))
            if not redraft(queued.verdict, attempt):
                return queued.verdict.passed
            attempt += 1


async def _may_plan(
    agent: Agent, account: Account, account_id: int, now: datetime, spend: Spend | None
) -> tuple[bool, bool]:
    """Before each draft: is the queue still empty (another worker may have planned between our
    first look and the lease) and the LLM budget not spent? And is the account new (no content
    row), as a worker sharing the store reads under the lease (False from an exclusive one,
    whose cycle asked once for every account)?"""
    new = False
    if not agent.exclusive:
        state = await agent.store.queue_state(account_id)
        if state.queued:
            return False, False
        new = state.new
    if await account_stage(agent, account_id, now) >= Stage.NO_POSTS:
        # the monthly platform budget cannot pay for another post (agent/budget.py)
        return False, new
    return not over_budget(agent, account, account_id, now, spend), new


async def _still_ours(agent: Agent, account: Account, account_id: int, now: datetime) -> bool:
    """After writing: is the plan lease still this worker's and the queue still empty?"""
    if agent.exclusive:
        return True
    name = f"plan:{account_id}"
    if not await agent.store.acquire_lease(name, worker=agent.worker_id, now=now, ttl=agent.lease):
        log.warning("plan_lease_lost", account=account.name)
        return False
    return not (await agent.store.queue_state(account_id)).queued


def moderation(agent: Agent) -> Moderate | None:
    """The generator's moderation check, when it has one and ``generator.moderation`` is on."""
    if not agent.config.generator.moderation:
        return None
    return agent.generator.moderate


async def expire_drafts(agent: Agent, now: datetime) -> int:
    """Reject the drafts nobody approved within ``approval.draft_expiry``."""
    expired = await agent.store.expire_drafts(now - agent.config.approval.draft_expiry, now)
    if expired:
        log.info("draft_expired", count=expired)
        agent.stats.totals["drafts_expired"] += expired
    return expired


async def plan_cycle(agent: Agent, now: datetime) -> int:
    await expire_drafts(agent, now)
    # the circuit breaker: no drafts (no LLM call) for a suspended account; a suspension for
    # refused credentials is read again every failsafe.credentials_check and lifted if it passes
    suspended = await recheck(agent, now)
    # one query for every account: most ticks every account has its post queued (or a draft
    # waiting) and nothing more is asked
    skip = suspended | await agent.store.queued_accounts()
    todo = [a for a in agent.config.accounts if agent.account_ids[a.name] not in skip]
    spend = await todays_spend(agent, now) if todo else None
    # a worker no other shares the store with asks once which accounts have no post at all (new
    # accounts: their first plan needs no read of their posts); several workers ask each time
    new = await agent.store.accounts_without_content() if todo and agent.exclusive else set()

    async def plan(account: Account) -> bool:
        return await plan_account(
            agent, account, now, spend, new=agent.account_ids[account.name] in new
        )

    limit = agent.config.runtime.plan_concurrency
    return sum(await agent.bounded(todo, plan, limit=limit))
