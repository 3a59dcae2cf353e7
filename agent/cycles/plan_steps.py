"""The plan cycle's steps: choose -> write -> check (the gate) -> queue, each returning a value.

:func:`agent.cycles.plan.plan_account` runs them in this order, under the account's plan lease,
and decides from the values they return whether to redraft:

- :func:`choose_slot` -> :class:`Slot`: when the cadence puts the next post (and the whole
  hours around it the policy may pick instead);
- :func:`choose` -> :class:`Choice`: the policy's arms, with the variants of any experiment
  running on the account in place of the policy's choice for what the experiment varies
  (agent/experiments.py); :func:`vary` turns it into a redraft's (never changing those);
- :func:`write` -> :class:`Written`: the generator's text and the metadata stored with it;
- :func:`check` -> :class:`Verdict`: the quality gate's and moderation's answer, as the status
  the post is stored with;
- :func:`queue` -> :class:`Queued`: the stored row, its log event and health counters.

The random draws happen in the order the steps run: the slot's jitter (``agent.random``), the
policy's sampling (``agent.rng``, and ``agent.random`` for a topic it does not learn), a
redraft's topic and hook (``agent.random``), then whatever the generator draws.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from adapters.base import text_hash
from agent import experiments, gate, schedule
from agent.config import DEFAULT_PROMPT, Account, ActiveHours, Cadence, Gate
from agent.core import Agent
from agent.errors import GenerationError
from agent.learner import choose_arms
from agent.logs import log
from agent.models import (
    SINGLE,
    THREAD,
    ArmChoice,
    GenerationRequest,
    Mode,
    NewContent,
    PostStatus,
    joined,
)

RECENT_TEXTS = 50  # how many recent posts the generator sees (the gate: gate.recent_posts)
ARMS = ("content_type", "formula", "hook", "topic")  # what the generator writes from


@dataclass(frozen=True, kw_only=True)
class Slot:
    """Where the next post goes: the cadence's time, and the hours the policy may move it to."""

    when: datetime
    hours: Mapping[str, datetime]  # local hour label ("09") -> a whole-hour move of ``when``
    active: ActiveHours


@dataclass(frozen=True, kw_only=True)
class Choice:
    """What to write: one arm per dimension, a topic, perhaps an hour (a label of the slot's)."""

    arms: Mapping[str, str]  # and "hour", "voice" when chosen
    policy: str  # the deciding policy's name, stored with the post
    # an experiment's variants (agent/experiments.py): what they pinned, their assignments
    assigned: experiments.Assigned = field(default_factory=experiments.Assigned)
    # the arms promotions retired for the account, by dimension: a redraft never takes them
    retired: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def arm_choice(self) -> ArmChoice:
        return ArmChoice(
            **{dimension: self.arms[dimension] for dimension in ARMS},
            format=self.arms.get("format", SINGLE),
        )

    def when(self, slot: Slot) -> datetime:
        """The post's time: the slot's, or the hour the policy chose within it."""
        hour = self.arms.get("hour")
        return slot.hours.get(hour, slot.when) if hour is not None else slot.when


@dataclass(frozen=True, kw_only=True)
class Written:
    """A written draft, not yet checked; ``failure`` says why there is no text."""

    when: datetime
    arms: ArmChoice
    text: str
    metadata: Mapping[str, Any]  # the content row's generation_metadata
    recent: tuple[str, ...]  # the account's latest posts, newest first (the gate compares)
    failure: str | None = None
    parts: tuple[str, ...] = ()  # a thread's parts (``text`` is them joined; docs/threads.md)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The check's answer, as the status the draft is stored with.

    ``planned`` or ``draft`` (approve mode): passed. ``rejected``: the gate or moderation refused
    it (``reason``), worth a redraft. ``failed``: it could not be written or checked; no unchecked
    post goes out, and the next tick tries again.
    """

    status: PostStatus
    reason: str | None = None

    @property
    def passed(self) -> bool:
        return self.status in (PostStatus.PLANNED, PostStatus.DRAFT)

    @property
    def refused(self) -> bool:
        return self.status is PostStatus.REJECTED


@dataclass(frozen=True, kw_only=True)
class Queued:
    """A draft stored as its verdict says."""

    post_id: int
    when: datetime
    verdict: Verdict


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


async def next_slot(
    agent: Agent,
    account: Account,
    account_id: int,
    now: datetime,
    *,
    last: datetime | None,
    anchor: datetime | None = None,
) -> datetime:
    """The cadence's time for the account's next post: spaced from the cadence's time of the
    last one (``anchor``; :meth:`Store.latest_slot`, the time before the policy moved it to a
    better hour, so that hour choices do not drift the cadence), never within the minimum gap
    of the last post itself (``last``), jittered, inside the active hours and under the daily
    cap."""
    cadence = effective_cadence(agent, account)
    active = cadence.active_hours
    start = anchor if anchor is not None else last
    base = now if start is None else max(now, start + schedule.spacing(cadence))
    when = base + agent.jitter(cadence.jitter)
    if last is not None:
        when = max(when, last + schedule.minimum_gap(cadence))
    when = max(when, now)
    for _ in range(30):  # at most a month ahead
        when = schedule.next_active_start(when, active)
        day_start, day_end = schedule.local_day(when, active)
        # nothing scheduled that day when the latest post is before it: no need to count
        if (
            last is None
            or last < day_start
            or await agent.store.count_scheduled(account_id, day_start, day_end)
            < schedule.daily_cap(cadence)
        ):
            return when
        when = day_end + abs(agent.jitter(cadence.jitter))
    return when


async def choose_slot(
    agent: Agent, account: Account, account_id: int, now: datetime, *, new: bool = False
) -> Slot:
    """The next post's slot (:func:`next_slot`) and the whole hours around it the cadence allows
    (never before the minimum gap after the last post). ``new``: the account has no post."""
    latest = None if new else await agent.store.latest_slot(account_id)
    last, anchor = latest if latest is not None else (None, None)
    when = await next_slot(agent, account, account_id, now, last=last, anchor=anchor)
    cadence = effective_cadence(agent, account)
    earliest = now if last is None else max(now, last + schedule.minimum_gap(cadence))
    hours = schedule.hour_slots(
        when, schedule.spacing(cadence), cadence.active_hours, earliest=earliest
    )
    return Slot(when=when, hours=hours, active=cadence.active_hours)


async def choose(
    agent: Agent, account: Account, account_id: int, now: datetime, *, slot: Slot, new: bool = False
) -> Choice:
    """The policy's choice for the account's next post (the one place the policy is asked),
    and the variants of the experiments running on the account (recorded before writing) in
    place of the policy's choice for what each varies; arms a promotion retired are not offered
    to the policy, and a promoted voice is written with."""
    retired = {} if new else await experiments.promoted(agent, account_id, now)
    voice = retired.pop("voice", set())
    prompt = retired.pop("prompt", set())
    arms, policy = await choose_arms(
        agent, account, account_id, now, slots=slot.hours, new=new, retired=retired
    )
    assigned = experiments.Assigned()
    if not new:
        assigned = await experiments.assign(agent, account_id, now, hours=slot.hours)
    if voice:
        arms["voice"] = next(iter(voice))
    if prompt:
        arms["prompt"] = next(iter(prompt))
    return Choice(
        arms={**arms, **assigned.arms},
        policy=policy,
        assigned=assigned,
        retired={d: frozenset(v) for d, v in retired.items()},
    )


def vary(agent: Agent, account: Account, choice: Choice, attempt: int) -> Choice:
    """The choice for draft ``attempt`` (0: the first, as the policy chose it).

    A policy that keeps exploiting the same arms would write a refused post again, so a redraft
    takes another topic and, from the second redraft on, another hook, drawn afresh each time
    (not asking the policy again, which would refit the same model on the same history).
    """
    if not attempt:
        return choice
    arms = dict(choice.arms)
    options = {"topic": list(account.topics), "hook": agent.config.catalogues.arms()["hook"]}
    for dimension in ("topic", "hook")[:attempt]:
        if dimension in choice.assigned.arms:
            continue  # an experiment's variant: kept
        gone = choice.retired.get(dimension, frozenset())
        others = [a for a in options[dimension] if a != arms.get(dimension) and a not in gone]
        if others:
            arms[dimension] = agent.random.choice(others)
    return Choice(arms=arms, policy=choice.policy, assigned=choice.assigned, retired=choice.retired)


async def write(
    agent: Agent,
    account: Account,
    account_id: int,
    *,
    choice: Choice,
    slot: Slot,
    new: bool = False,
) -> Written:
    """The generator's draft for ``choice`` at its time in ``slot``, or why it failed.
    ``new``: the account has no post (no recent text to read)."""
    arms, when = choice.arm_choice, choice.when(slot)
    catalogues = agent.config.catalogues
    max_chars = agent.platforms[account.name].limits.max_chars
    recent = (
        []
        if new
        else await agent.store.recent_texts(
            account_id, max(RECENT_TEXTS, agent.config.gate.recent_posts)
        )
    )
    prompt = choice.arms.get("prompt", agent.config.generator.prompt)
    if prompt != DEFAULT_PROMPT and prompt not in agent.config.generator.prompts:
        prompt = agent.config.generator.prompt  # a version since removed from the config
    request = GenerationRequest(
        arms=arms,
        persona=choice.arms.get("voice", account.persona),
        niche=account.niche,
        max_chars=max_chars,
        descriptions={d: catalogues.description(d, arms.arm(d)) for d in agent.config.dimensions},
        recent_texts=tuple(recent[:RECENT_TEXTS]),
        prompt=prompt,
        instructions=agent.config.generator.instructions(prompt),
        max_parts=agent.config.threads.max_parts,
    )
    metadata: dict[str, Any] = {
        "content_type": arms.content_type,
        "formula": arms.formula,
        "hook": arms.hook,
        "topic": arms.topic,
        "hour": schedule.hour_label(when, slot.active),
        # the cadence's own time, before the hour was chosen: the next post is spaced from it
        "cadence_at": slot.when.isoformat(),
        "policy": choice.policy,
        "mode": agent.config.mode.value,
    }
    if agent.config.threads.enabled:  # the format is an arm (docs/threads.md)
        metadata["format"] = arms.format
    if "voice" in choice.arms:
        metadata["voice"] = choice.arms["voice"]
    if prompt != DEFAULT_PROMPT:
        metadata["prompt"] = prompt
    if choice.assigned.experiments:
        metadata["experiments"] = [dict(e) for e in choice.assigned.experiments]
    written = Written(when=when, arms=arms, text="", metadata=metadata, recent=tuple(recent))
    try:
        draft = await agent.generator.write(request)
    except GenerationError as exc:
        return replace(written, failure=f"generation failed: {exc}")
    how: dict[str, Any] = {
        "generator": draft.generator,
        "model": draft.model,
        "prompt_version": draft.prompt_version,
        "tokens_in": draft.tokens_in,
        "tokens_out": draft.tokens_out,
        "cost_usd": draft.cost_usd,
    }
    if arms.format == THREAD:
        if len(draft.parts) < 2:
            return replace(written, failure=f"generation failed: {draft.generator} wrote no thread")
        how["parts"] = list(draft.parts)
        return replace(
            written, text=joined(draft.parts), parts=draft.parts, metadata={**metadata, **how}
        )
    return replace(written, text=draft.text, metadata={**metadata, **how})


Moderate = Callable[[str], Awaitable[str | None]]  # None, or why the text was flagged


async def check(
    written: Written,
    *,
    gate_config: Gate,
    max_chars: int,
    length: Callable[[str], int],
    moderate: Moderate | None,
    mode: Mode,
) -> Verdict:
    """The quality gate, then (if it passed and moderation is on) the moderation endpoint."""
    if written.failure is not None:
        return Verdict(status=PostStatus.FAILED, reason=written.failure)
    reason = None
    for number, part in enumerate(written.parts, start=1):  # a thread: each part is a post
        if (size := length(part)) > max_chars:
            reason = (
                f"too long: part {number} has {size} characters, the platform allows {max_chars}"
            )
            break
    reason = reason or gate.check(
        written.text,
        recent=written.recent[: gate_config.recent_posts],
        # a thread's parts are checked above; the whole is only compared and screened
        max_chars=length(written.text) if written.parts else max_chars,
        gate=gate_config,
        length=length,
    )
    if not reason and moderate is not None:
        try:
            reason = await moderate(written.text)
        except GenerationError as exc:
            return Verdict(status=PostStatus.FAILED, reason=f"moderation failed: {exc}")
    if reason:
        return Verdict(status=PostStatus.REJECTED, reason=reason)
    # approve mode: waits for `growthloop drafts approve ID`
    return Verdict(status=PostStatus.DRAFT if mode is Mode.APPROVE else PostStatus.PLANNED)


async def queue(
    agent: Agent,
    account: Account,
    account_id: int,
    now: datetime,
    *,
    written: Written,
    verdict: Verdict,
    assigned: Sequence[int] = (),
) -> Queued:
    """Store the draft with its verdict's status (linked to its experiments' ``assigned``
    assignments: a redraft's replaces the refused draft's); log it and count it."""
    post = await agent.store.add_content(
        NewContent(
            account_id=account_id,
            status=verdict.status,
            text=written.text,
            text_hash=text_hash(written.text),
            generation_metadata=dict(written.metadata),
            scheduled_for=written.when,
            idempotency_key=uuid.uuid4().hex,
            error=verdict.reason,
        ),
        now=now,
    )
    for assignment_id in assigned:
        await agent.store.link_assignment(assignment_id, post.id)
    agent.spent_llm(account_id, float(written.metadata.get("cost_usd") or 0.0))
    arms, totals = written.arms, agent.stats.totals
    placed = {
        "account": account.name,
        "content_id": post.id,
        "scheduled_for": written.when.isoformat(),
        "content_type": arms.content_type,
    }
    if verdict.status is PostStatus.PLANNED:
        log.info("post_planned", **placed, formula=arms.formula, hook=arms.hook, topic=arms.topic)
        agent.count("posts_planned", account_id)
    elif verdict.status is PostStatus.DRAFT:
        log.info("draft_written", **placed)
        totals["drafts_written"] += 1
    else:
        log.warning(
            "post_rejected", account=account.name, content_id=post.id, reason=verdict.reason
        )
        agent.count("posts_rejected", account_id)
        if verdict.refused:
            totals["drafts_refused"] += 1  # the gate or moderation said no
    return Queued(post_id=post.id, when=written.when, verdict=verdict)
