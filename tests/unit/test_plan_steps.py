"""The plan cycle's steps one by one (choose -> write -> check -> queue) and the redraft decision.

Each step runs on a real agent (SQLite store, sandbox platform, virtual clock); the check step
takes only values, so it is exercised with drafts built here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent import schedule
from agent.cycles.plan import REDRAFTS, plan_account, plan_cycle, redraft
from agent.cycles.plan_steps import (
    ARMS,
    Choice,
    Slot,
    Verdict,
    Written,
    check,
    choose,
    choose_slot,
    effective_cadence,
    queue,
    vary,
    write,
)
from agent.errors import GenerationError
from agent.learner import policy_for
from agent.models import ArmChoice, Draft, GenerationRequest, Mode, NewContent, PostStatus
from tests.conftest import T0, make_config
from tests.unit.test_gate_never_publishes import FIRST, Scripted
from tests.unit.vt_harness import ALWAYS, Harness, make_harness

HOUR = timedelta(hours=1)
FRESH = "A different post: measure before you optimise, then measure again."
NEAR = FIRST.replace("ten minutes", "five minutes")  # a near duplicate of FIRST
ARM_CHOICE = ArmChoice(content_type="how_to", formula="listicle", hook="question", topic="x")


class Failing:
    name = "failing"

    async def write(self, request: GenerationRequest) -> Draft:
        raise GenerationError("the model is down")


@pytest.fixture
async def harness(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, **getattr(request, "param", {})) as h:
        yield h


def ids(h: Harness) -> tuple[Any, int]:
    account = h.agent.config.accounts[0]
    return account, h.agent.account_ids[account.name]


# --- choose ---------------------------------------------------------------------------------


async def test_choose_slot_is_now_for_a_new_account_then_spaced_after_the_last_post(
    harness: Harness,
) -> None:
    account, account_id = ids(harness)
    first = await choose_slot(harness.agent, account, account_id, T0)
    assert first.when == T0  # no jitter, always active, nothing queued
    assert first.hours and all(t >= T0 for t in first.hours.values())
    for label, when in first.hours.items():
        assert label == schedule.hour_label(when, first.active)
        assert (when - T0) % HOUR == timedelta(0)  # whole hours from the cadence's time

    assert await plan_cycle(harness.agent, T0) == 1
    second = await choose_slot(harness.agent, account, account_id, T0)
    spacing = schedule.spacing(effective_cadence(harness.agent, account))
    assert second.when == T0 + spacing


async def test_hour_choices_do_not_drift_the_cadence(harness: Harness) -> None:
    """Regression (issue 17): the next post was spaced from the last post's *chosen* hour, so a
    learner that kept choosing later hours posted less often (620 of 720 posts in a generated
    world at 8 a day); it is spaced from the cadence's own time (``cadence_at``)."""
    account, account_id = ids(harness)
    spacing = schedule.spacing(effective_cadence(harness.agent, account))
    anchor = T0
    for _ in range(6):  # a policy that always takes the latest hour the slot offers
        slot = await choose_slot(harness.agent, account, account_id, anchor)
        assert slot.when == anchor  # on the cadence's grid, however late the last post went
        latest = max(slot.hours.values())
        assert latest > slot.when
        await harness.store.add_content(
            NewContent(
                account_id=account_id,
                status=PostStatus.PLANNED,
                text=f"a post at {latest}",
                text_hash=str(latest),
                generation_metadata={"cadence_at": slot.when.isoformat()},
                scheduled_for=latest,
                idempotency_key=f"k-{latest.timestamp()}",
            ),
            now=anchor,
        )
        anchor += spacing


async def test_choose_returns_one_arm_per_dimension_and_the_policy_name(harness: Harness) -> None:
    account, account_id = ids(harness)
    slot = await choose_slot(harness.agent, account, account_id, T0)
    choice = await choose(harness.agent, account, account_id, T0, slot=slot)
    catalogue = harness.agent.config.catalogues.arms()
    for dimension in ("content_type", "formula", "hook"):
        assert choice.arms[dimension] in catalogue[dimension]
    assert choice.arms["topic"] in account.topics
    assert choice.policy == policy_for(harness.agent, account).name


def test_a_choice_moves_the_post_to_its_hour_only_when_the_slot_offers_it() -> None:
    slot = Slot(when=T0, hours={"07": T0 + HOUR, "08": T0 + 2 * HOUR}, active=_always())
    arms = {"content_type": "a", "formula": "b", "hook": "c", "topic": "d"}
    assert Choice(arms={**arms, "hour": "08"}, policy="p").when(slot) == T0 + 2 * HOUR
    assert Choice(arms={**arms, "hour": "23"}, policy="p").when(slot) == T0
    assert Choice(arms=arms, policy="p").when(slot) == T0
    assert Choice(arms=arms, policy="p").arm_choice == ArmChoice(
        content_type="a", formula="b", hook="c", topic="d"
    )


async def test_vary_keeps_the_first_draft_then_changes_topic_then_topic_and_hook(
    harness: Harness,
) -> None:
    account, _ = ids(harness)
    arms = {"content_type": "how_to", "formula": "listicle", "hook": "question"}
    policy = Choice(arms={**arms, "topic": account.topics[0], "hour": "09"}, policy="joint")
    assert vary(harness.agent, account, policy, 0) is policy
    first = vary(harness.agent, account, policy, 1)
    assert first.arms["topic"] != policy.arms["topic"] and first.arms["topic"] in account.topics
    assert {k: first.arms[k] for k in (*arms, "hour")} == {**arms, "hour": "09"}
    second = vary(harness.agent, account, policy, 2)
    assert second.arms["topic"] != policy.arms["topic"]
    assert second.arms["hook"] != policy.arms["hook"]
    assert (second.arms["content_type"], second.arms["formula"]) == ("how_to", "listicle")
    assert second.policy == "joint" and policy.arms["hook"] == "question"  # not mutated


# --- write ----------------------------------------------------------------------------------


@pytest.mark.parametrize("harness", [{"generator": Scripted([FIRST])}], indirect=True)
async def test_write_returns_the_text_with_the_metadata_stored_with_it(harness: Harness) -> None:
    account, account_id = ids(harness)
    slot = await choose_slot(harness.agent, account, account_id, T0)
    choice = Choice(
        arms={**_arms(), "hour": next(iter(slot.hours))}, policy="joint"
    )  # an hour the slot offers
    written = await write(harness.agent, account, account_id, choice=choice, slot=slot)
    assert written.text == FIRST and written.failure is None
    assert written.when == choice.when(slot) and written.arms == choice.arm_choice
    assert list(written.metadata) == [
        *ARMS,
        "hour",
        "cadence_at",
        "policy",
        "mode",
        *("generator", "model", "prompt_version", "tokens_in", "tokens_out", "cost_usd"),
    ]
    assert written.metadata["hour"] == schedule.hour_label(written.when, slot.active)
    assert written.metadata["cadence_at"] == slot.when.isoformat()  # where the next is spaced from
    assert (written.metadata["policy"], written.metadata["generator"]) == ("joint", "scripted")
    assert written.recent == ()  # nothing posted yet


@pytest.mark.parametrize("harness", [{"generator": Failing()}], indirect=True)
async def test_write_reports_a_generation_failure_with_no_text(harness: Harness) -> None:
    account, account_id = ids(harness)
    slot = await choose_slot(harness.agent, account, account_id, T0)
    choice = Choice(arms=_arms(), policy="joint")
    written = await write(harness.agent, account, account_id, choice=choice, slot=slot)
    assert written.failure == "generation failed: the model is down"
    assert written.text == "" and "generator" not in written.metadata


# --- check (the gate) -----------------------------------------------------------------------


class Moderator:
    def __init__(self, answer: str | None = None, *, down: bool = False) -> None:
        self.answer, self.down, self.texts = answer, down, []  # type: list[str]

    async def __call__(self, text: str) -> str | None:
        self.texts.append(text)
        if self.down:
            raise GenerationError("moderation: server error")
        return self.answer


async def checked(text: str, *, recent: tuple[str, ...] = (), **options: Any) -> Verdict:
    values: dict[str, Any] = {
        "gate_config": make_config().gate,
        "max_chars": 280,
        "length": len,
        "moderate": None,
        "mode": Mode.LIVE,
        **options,
    }
    return await check(_written(text, recent=recent), **values)


async def test_check_passes_a_clean_draft_as_planned_or_as_a_draft_in_approve_mode() -> None:
    moderator = Moderator()
    assert await checked(FRESH, recent=(FIRST,), moderate=moderator) == Verdict(
        status=PostStatus.PLANNED
    )
    assert moderator.texts == [FRESH]
    approve = await checked(FRESH, mode=Mode.APPROVE)
    assert approve == Verdict(status=PostStatus.DRAFT) and approve.passed and not approve.refused


@pytest.mark.parametrize(
    ("text", "length", "reason"),
    [
        (FIRST, len, "exact duplicate"),
        (NEAR, len, "near duplicate"),
        (FRESH, lambda text: 281, "too long"),  # counted the platform's way
    ],
)
async def test_check_refuses_what_the_gate_refuses_without_asking_moderation(
    text: str, length: Any, reason: str
) -> None:
    moderator = Moderator()
    verdict = await checked(text, recent=(FIRST,), length=length, moderate=moderator)
    assert verdict.status is PostStatus.REJECTED and verdict.refused and not verdict.passed
    assert verdict.reason is not None and reason in verdict.reason
    assert moderator.texts == []


async def test_check_refuses_a_flagged_draft_and_fails_when_moderation_is_down() -> None:
    flagged = await checked(FRESH, moderate=Moderator("flagged by moderation: spam"))
    assert flagged == Verdict(status=PostStatus.REJECTED, reason="flagged by moderation: spam")
    down = await checked(FRESH, moderate=Moderator(down=True))
    assert down == Verdict(
        status=PostStatus.FAILED, reason="moderation failed: moderation: server error"
    )
    assert not down.refused and not down.passed


async def test_check_fails_a_draft_that_could_not_be_written() -> None:
    moderator = Moderator()
    written = _written("", failure="generation failed: boom")
    verdict = await check(
        written,
        gate_config=make_config().gate,
        max_chars=280,
        length=len,
        moderate=moderator,
        mode=Mode.LIVE,
    )
    assert verdict == Verdict(status=PostStatus.FAILED, reason="generation failed: boom")
    assert moderator.texts == []


# --- queue ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "event", "counters"),
    [
        (Verdict(status=PostStatus.PLANNED), "post_planned", {"posts_planned": 1}),
        (Verdict(status=PostStatus.DRAFT), "draft_written", {"drafts_written": 1}),
        (
            Verdict(status=PostStatus.REJECTED, reason="near duplicate (0.9)"),
            "post_rejected",
            {"posts_rejected": 1, "drafts_refused": 1},
        ),
        (
            Verdict(status=PostStatus.FAILED, reason="generation failed: boom"),
            "post_rejected",
            {"posts_rejected": 1},
        ),
    ],
)
async def test_queue_stores_the_draft_as_its_verdict_says_logs_and_counts_it(
    harness: Harness, verdict: Verdict, event: str, counters: dict[str, int]
) -> None:
    account, account_id = ids(harness)
    written = _written(FRESH, when=T0 + 2 * HOUR)
    with capture_logs() as logs:
        queued = await queue(
            harness.agent, account, account_id, T0, written=written, verdict=verdict
        )
    (row,) = await harness.posts()
    assert (queued.post_id, queued.when, queued.verdict) == (row.id, T0 + 2 * HOUR, verdict)
    assert (row.status, row.error, row.text) == (verdict.status, verdict.reason, FRESH)
    assert row.generation_metadata == dict(written.metadata)
    [entry] = [e for e in logs if e["event"] == event]
    assert entry["content_id"] == row.id and entry["account"] == account.name
    if verdict.passed:
        assert entry["scheduled_for"] == (T0 + 2 * HOUR).isoformat()
        assert entry["content_type"] == ARM_CHOICE.content_type
    else:
        assert entry["reason"] == verdict.reason
    totals = harness.agent.stats.totals
    watched = ("posts_planned", "drafts_written", "posts_rejected", "drafts_refused")
    assert {k: totals[k] for k in watched if k in totals} == counters  # and no zero entries


# --- the redraft decision -------------------------------------------------------------------


def test_only_a_refused_draft_is_redrafted_and_at_most_redrafts_times() -> None:
    refused = Verdict(status=PostStatus.REJECTED, reason="near duplicate")
    assert [redraft(refused, attempt) for attempt in range(REDRAFTS + 1)] == [True] * REDRAFTS + [
        False
    ]
    for status in (PostStatus.PLANNED, PostStatus.DRAFT, PostStatus.FAILED):
        assert not redraft(Verdict(status=status, reason="x"), 0)


@pytest.mark.parametrize("harness", [{"generator": Scripted([FIRST, NEAR, FRESH])}], indirect=True)
async def test_a_near_duplicate_is_redrafted_once_then_the_fresh_draft_is_planned(
    harness: Harness,
) -> None:
    account, _ = ids(harness)
    await published_first(harness)
    with capture_logs() as logs:
        assert await plan_account(harness.agent, account, harness.clock.now()) is True
    statuses = await harness.statuses()
    assert statuses == [PostStatus.POSTED, PostStatus.REJECTED, PostStatus.PLANNED]
    assert [e["event"] for e in logs if e["event"] in ("post_rejected", "post_planned")] == [
        "post_rejected",
        "post_planned",
    ]
    assert harness.agent.stats.totals["drafts_refused"] == 1


@pytest.mark.parametrize("harness", [{"generator": Scripted([FIRST, NEAR])}], indirect=True)
async def test_a_writer_that_repeats_itself_is_rejected_after_every_redraft(
    harness: Harness,
) -> None:
    account, _ = ids(harness)
    await published_first(harness)
    assert await plan_account(harness.agent, account, harness.clock.now()) is False
    rows = await harness.posts()
    assert [r.status for r in rows[1:]] == [PostStatus.REJECTED] * (1 + REDRAFTS)
    assert all("near duplicate" in r.error for r in rows[1:])
    requests = harness.agent.generator.requests  # type: ignore[attr-defined]
    policy, *redrafts = requests[1:]
    assert all(r.arms.topic != policy.arms.topic for r in redrafts)
    assert all(r.arms.hook != policy.arms.hook for r in redrafts[1:])  # from the second one
    assert all(r.arms.content_type == policy.arms.content_type for r in redrafts)
    assert harness.agent.stats.totals["drafts_refused"] == 1 + REDRAFTS


async def published_first(h: Harness) -> None:
    """The scripted writer's first post planned and published; the clock at the next slot."""
    assert await plan_account(h.agent, h.agent.config.accounts[0], T0) is True
    await h.run_cycles("publish")
    h.clock.advance_to(T0 + 3 * HOUR)


def _always() -> Any:
    return make_config(cadence={"active_hours": ALWAYS}).cadence.active_hours


def _arms() -> dict[str, str]:
    return {dimension: ARM_CHOICE.arm(dimension) for dimension in ARMS}


def _written(
    text: str, *, recent: tuple[str, ...] = (), when: Any = T0, failure: str | None = None
) -> Written:
    metadata = {**_arms(), "hour": "00", "policy": "joint", "mode": "live"}
    return Written(
        when=when, arms=ARM_CHOICE, text=text, metadata=metadata, recent=recent, failure=failure
    )


async def test_new_accounts_are_planned_as_a_worker_that_reads_their_posts_plans_them(
    tmp_path: Path,
) -> None:
    # a new account's first draft reads none of its posts (there are none): an exclusive worker
    # knows from the cycle's one query, a shared one from its check under the lease. The same
    # posts, texts and times come out as from plans that read everything, and then again once
    # the accounts have posts
    accounts = [
        {
            "name": f"a{i}",
            "platform": "sandbox",
            "handle": f"@a{i}",
            "persona": "A pragmatic developer",
            "niche": "indie software",
            "topics": ["t1", "t2"],
        }
        for i in range(3)
    ]
    planned = []
    for how in ("reading everything", "exclusive", "shared"):
        (tmp_path / how).mkdir()
        async with make_harness(tmp_path / how, accounts=accounts, cadence={"jitter": "30m"}) as h:
            h.agent.exclusive, h.agent.serial = how != "shared", True
            new = await h.store.accounts_without_content()
            assert new == set(h.agent.account_ids.values())
            for when in (T0, T0 + 2 * HOUR):
                h.clock.advance_to(when)
                await h.run_cycles("publish")
                if how == "reading everything":  # as plan_cycle does, without saying "new"
                    for account in h.agent.config.accounts:
                        assert await plan_account(h.agent, account, when) is True
                else:
                    assert await plan_cycle(h.agent, when) == 3
            assert await h.store.accounts_without_content() == set()
            planned.append(
                [
                    (p.account_id, p.status, p.text, p.scheduled_for, p.generation_metadata)
                    for p in await h.posts()
                ]
            )
    assert len(planned[0]) == 6
    assert planned[0] == planned[1] == planned[2]


class _Counting:
    """The harness's real store, counting the calls made to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.inner, name)


async def test_a_new_accounts_first_plan_reads_no_follower_series(tmp_path: Path) -> None:
    """Regression (issue 16): a shared worker's first plan of a new account read the account's
    follower series for the audience covariate of posts it did not have (a third of the CPU of
    planning 2,000 new accounts on PostgreSQL)."""
    accounts = [
        {
            "name": f"a{i}",
            "platform": "sandbox",
            "handle": f"@a{i}",
            "persona": "A pragmatic developer",
            "niche": "indie software",
            "topics": ["t1", "t2"],
        }
        for i in range(2)
    ]
    async with make_harness(tmp_path, accounts=accounts) as h:
        h.agent.exclusive, h.agent.serial = False, True
        counting = _Counting(h.agent.store)
        h.agent.store = counting
        assert await plan_cycle(h.agent, T0) == 2
        assert counting.calls["account_series"] == 0
        assert counting.calls["learning_history"] == 0
        assert counting.calls["add_content"] == 2
