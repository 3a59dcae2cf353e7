"""Plan: choose what to post next (Thompson sampling), write it, check it, queue it.

Each account keeps at most one post queued (``planned``). Its time respects the cadence: posts
spread over the active hours, never closer than the minimum gap, never more than the daily cap in
a local day, shifted by random jitter so the account does not post like a metronome.

In approve mode a draft that passes the gate is stored as ``draft`` and waits for a person
(``growthloop drafts``, :mod:`agent.drafts`); it counts as the account's queued post, and one
nobody approved within ``approval.draft_expiry`` is rejected at the start of the cycle.

Several workers: an account is planned under the lease ``plan:<account_id>``, so two workers
never plan for one account at once (the one-queued-post rule is checked under the lease, and
again before the post is stored, in case writing it outlasted the lease).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import text_hash
from agent import gate, schedule
from agent.config import Account, Cadence
from agent.core import Agent
from agent.errors import GenerationError
from agent.learner import choose_arms
from agent.logs import log
from agent.models import ArmChoice, GenerationRequest, Mode, NewContent, PostStatus

# A draft the quality gate refused is redrafted at once (the policy's choice with another topic,
# then another topic and hook, drawn afresh each time), up to this many times per cycle, so a
# refusal does not cost the account its posting slot. Two redrafts still lost ~3 % of the
# learner's slots in the learning benchmark (an exploiting policy writes similar posts).
REDRAFTS = 4
RECENT_TEXTS = 50  # how many recent posts the generator sees (the gate: gate.recent_posts)
POLICY_NAME = "thompson_gamma_poisson"


def effective_cadence(agent: Agent, account: Account) -> Cadence:
    """The account's cadence, never above what its platform allows."""
    cadence = agent.config.cadence_for(account)
    limits = agent.platforms[account.name].limits
    return cadence.model_copy(
        update={
            "posts_per_day": min(cadence.posts_per_day, float(limits.posts_per_day)),
            "max_posts_per_hour": min(cadence.max_posts_per_hour, limits.posts_per_hour),
        }
    )


async def next_slot(agent: Agent, account: Account, account_id: int, now: datetime) -> datetime:
    cadence = effective_cadence(agent, account)
    active = cadence.active_hours
    last = await agent.store.latest_scheduled(account_id)
    base = now if last is None else max(now, last + schedule.spacing(cadence))
    when = base + agent.jitter(cadence.jitter)
    if last is not None:
        when = max(when, last + schedule.minimum_gap(cadence))
    when = max(when, now)
    for _ in range(30):  # at most a month ahead
        when = schedule.next_active_start(when, active)
        day_start, day_end = schedule.local_day(when, active)
        if await agent.store.count_scheduled(account_id, day_start, day_end) < schedule.daily_cap(
            cadence
        ):
            return when
        when = day_end + abs(agent.jitter(cadence.jitter))
    return when


async def over_budget(agent: Agent, account: Account, account_id: int, now: datetime) -> bool:
    """Whether today's (UTC) LLM spend has reached the account's or the overall daily budget.

    Spend is the cost_usd the generators recorded on the content rows created today. The offline
    template generator costs nothing and is not checked (a budget of 0 must not stop it).
    """
    if agent.generator.name == "template":
        return False
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    spent: dict[int, float] = {}
    for other in agent.account_ids.values():
        inputs = await agent.store.health_inputs(other, day_start, day_end)
        spent[other] = float(inputs["llm_spend_usd"])
    budget = agent.config.budget
    for scope, used, limit in (
        ("account", spent[account_id], budget.llm_daily_usd_per_account),
        ("total", sum(spent.values()), budget.llm_daily_usd_total),
    ):
        if used >= limit:
            log.warning(
                "planning_paused_budget",
                account=account.name,
                scope=scope,
                spent=round(used, 6),
                budget=limit,
            )
            return True
    return False


def _varied(agent: Agent, account: Account, chosen: dict[str, str], vary: int) -> dict[str, str]:
    out = dict(chosen)
    options = {"topic": list(account.topics), "hook": agent.config.catalogues.arms()["hook"]}
    for dimension in ("topic", "hook")[:vary]:
        others = [arm for arm in options[dimension] if arm != out.get(dimension)]
        if others:
            out[dimension] = agent.random.choice(others)
    return out


async def plan_account(agent: Agent, account: Account, now: datetime) -> bool:
    account_id = agent.account_ids[account.name]
    if await agent.store.pending_count(account_id) > 0:
        return False  # checked first without the lease: the usual case, and it needs none
    async with agent.leased(f"plan:{account_id}", now) as held:
        if not held:
            return False  # another worker is planning this account
        first: dict[str, str] = {}  # the policy's choice, kept for the redrafts
        for attempt in range(1 + REDRAFTS):
            refused = agent.stats.totals["drafts_refused"]
            if await _plan_leased(agent, account, account_id, now, vary=attempt, choice=first):
                return True
            if agent.stats.totals["drafts_refused"] == refused:
                return False  # not refused by the gate (budget, failure, queue): no redraft
        return False


async def _still_ours(agent: Agent, account: Account, account_id: int, now: datetime) -> bool:
    """After writing: is the plan lease still this worker's and the queue still empty?"""
    if agent.exclusive:
        return True
    name = f"plan:{account_id}"
    if not await agent.store.acquire_lease(name, worker=agent.worker_id, now=now, ttl=agent.lease):
        log.warning("plan_lease_lost", account=account.name)
        return False
    return await agent.store.pending_count(account_id) == 0 and not await awaiting_approval(
        agent, account
    )


async def _plan_leased(
    agent: Agent,
    account: Account,
    account_id: int,
    now: datetime,
    *,
    vary: int = 0,
    choice: dict[str, str] | None = None,
) -> bool:
    """Plan one post. ``vary`` > 0 (a redraft after a refusal): a policy that keeps exploiting
    the same arms would write the same post again, so the redraft takes a different topic and,
    from the second redraft on, a different hook, at random.

    ``choice``: empty, it receives the policy's choice (and its name, as "policy"); given
    filled (a redraft), that choice is varied instead of asking the policy again, which would
    refit the same model on the same history."""
    if not agent.exclusive and (
        await agent.store.pending_count(account_id) > 0 or await awaiting_approval(agent, account)
    ):
        return False  # another worker planned it between our first look and the lease
    if await over_budget(agent, account, account_id, now):
        return False
    when = await next_slot(agent, account, account_id, now)
    catalogues = agent.config.catalogues
    cadence = effective_cadence(agent, account)
    last = await agent.store.latest_scheduled(account_id)
    earliest = now if last is None else max(now, last + schedule.minimum_gap(cadence))
    slots = schedule.hour_slots(
        when, schedule.spacing(cadence), cadence.active_hours, earliest=earliest
    )
    if choice:
        chosen, policy_name = dict(choice), choice["policy"]
        del chosen["policy"]
    else:
        chosen, policy_name = await choose_arms(agent, account, account_id, now, slots=slots)
        if choice is not None:
            choice.update(chosen, policy=policy_name)
    if vary:
        chosen = _varied(agent, account, chosen, vary)
    if chosen.get("hour") in slots:
        when = slots[chosen["hour"]]  # the policy chose a later hour within this slot
    arms = ArmChoice(**{k: chosen[k] for k in ("content_type", "formula", "hook", "topic")})
    platform = agent.platforms[account.name]
    gate_config = agent.config.gate
    recent = await agent.store.recent_texts(account_id, max(RECENT_TEXTS, gate_config.recent_posts))
    request = GenerationRequest(
        arms=arms,
        persona=account.persona,
        niche=account.niche,
        max_chars=platform.limits.max_chars,
        descriptions={d: catalogues.description(d, arms.arm(d)) for d in agent.config.dimensions},
        recent_texts=tuple(recent[:RECENT_TEXTS]),
    )
    metadata: dict[str, Any] = {
        "content_type": arms.content_type,
        "formula": arms.formula,
        "hook": arms.hook,
        "topic": arms.topic,
        "hour": schedule.hour_label(when, cadence.active_hours),
        "policy": policy_name,
        "mode": agent.config.mode.value,
    }
    status, error, text = PostStatus.PLANNED, None, ""
    try:
        draft = await agent.generator.write(request)
    except GenerationError as exc:
        status, error = PostStatus.FAILED, f"generation failed: {exc}"
    else:
        text = draft.text
        metadata |= {
            "generator": draft.generator,
            "model": draft.model,
            "prompt_version": draft.prompt_version,
            "tokens_in": draft.tokens_in,
            "tokens_out": draft.tokens_out,
            "cost_usd": draft.cost_usd,
        }
        error = gate.check(
            text,
            recent=recent[: gate_config.recent_posts],
            max_chars=platform.limits.max_chars,
            gate=gate_config,
            length=platform_length(account.platform),
        )
        moderate = getattr(agent.generator, "moderate", None)
        if not agent.config.generator.moderation:
            moderate = None
        if not error and moderate is not None:
            try:
                error = await moderate(text)  # None, or why the moderation endpoint flagged it
            except GenerationError as exc:
                status, error = PostStatus.FAILED, f"moderation failed: {exc}"
        if status is PostStatus.FAILED:
            pass  # no unchecked post goes out: stored failed, tried again at the next tick
        elif error:
            status = PostStatus.REJECTED
        elif agent.config.mode is Mode.APPROVE:
            status = PostStatus.DRAFT  # waits for `growthloop drafts approve ID`
    if not await _still_ours(agent, account, account_id, agent.clock.now()):
        return False
    post = await agent.store.add_content(
        NewContent(
            account_id=account_id,
            status=status,
            text=text,
            text_hash=text_hash(text),
            generation_metadata=metadata,
            scheduled_for=when,
            idempotency_key=uuid.uuid4().hex,
            error=error,
        ),
        now=now,
    )
    if status is PostStatus.PLANNED:
        log.info(
            "post_planned",
            account=account.name,
            content_id=post.id,
            scheduled_for=when.isoformat(),
            content_type=arms.content_type,
            formula=arms.formula,
            hook=arms.hook,
            topic=arms.topic,
        )
        agent.stats.totals["posts_planned"] += 1
        return True
    if status is PostStatus.DRAFT:
        log.info(
            "draft_written",
            account=account.name,
            content_id=post.id,
            scheduled_for=when.isoformat(),
            content_type=arms.content_type,
        )
        agent.stats.totals["drafts_written"] += 1
        return True
    log.warning("post_rejected", account=account.name, content_id=post.id, reason=error)
    agent.stats.totals["posts_rejected"] += 1
    if status is PostStatus.REJECTED:
        agent.stats.totals["drafts_refused"] += 1  # the gate or moderation said no: redraft
    return False


# Platforms that count a post's length their own way, by the adapter's own counting function.
_LENGTH_FUNCTIONS = {
    "x": ("adapters.x", "x_length"),  # weighted: URLs 23, CJK and emoji 2
    "bluesky": ("adapters.bluesky", "grapheme_count"),
    "threads": ("adapters.threads", "threads_length"),  # emoji count their UTF-8 bytes
}


def platform_length(platform: str) -> Callable[[str], int]:
    """How ``platform`` counts a post's characters (code points unless it has its own rule).

    Imported lazily so that an account's adapter SDK is loaded only when that platform is used.
    """
    if platform not in _LENGTH_FUNCTIONS:
        return len
    module, name = _LENGTH_FUNCTIONS[platform]
    function: Callable[[str], int] = getattr(importlib.import_module(module), name)
    return function


async def expire_drafts(agent: Agent, now: datetime) -> int:
    """Reject the drafts nobody approved within ``approval.draft_expiry``."""
    expired = await agent.store.expire_drafts(now - agent.config.approval.draft_expiry, now)
    if expired:
        log.info("draft_expired", count=expired)
        agent.stats.totals["drafts_expired"] += expired
    return expired


async def awaiting_approval(agent: Agent, account: Account) -> bool:
    """Whether the account has a draft waiting (it counts as its one queued post)."""
    return bool(await agent.store.drafts(agent.account_ids[account.name]))


async def plan_cycle(agent: Agent, now: datetime) -> int:
    await expire_drafts(agent, now)
    planned = 0
    for account in agent.config.accounts:
        if await awaiting_approval(agent, account):
            continue
        planned += await plan_account(agent, account, now)
    return planned
