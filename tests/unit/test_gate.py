"""The quality gate: each rejection, the near-duplicate threshold, the blocklist, and end to end."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.length import LENGTHS
from agent import gate
from agent.config import Gate
from agent.generators.template import TemplateGenerator
from agent.models import ArmChoice, GenerationRequest, PostStatus
from agent.simulator import run_until
from agent.store.schema import content
from tests.conftest import T0, make_config
from tests.unit.vt_harness import Harness, make_harness

DEFAULT = Gate()

POST = (
    "Most people overcomplicate automated testing. It's simpler than it looks.\n\n"
    "The routine, step by step:\n"
    "1. Block 15 minutes on the calendar, same time every day.\n"
    "2. Cut any step you can't connect to a result.\n"
    "3. Review it every Monday and adjust."
)


def check(text: str, recent: tuple[str, ...] = (), **settings: Any) -> str | None:
    return gate.check(text, recent=recent, max_chars=280, gate=Gate(**settings))


# --- each rejection and its reason -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_empty_text_is_rejected(text: str) -> None:
    assert check(text) == "empty text"


def test_too_long_names_the_count_and_the_limit() -> None:
    assert check("x" * 281) == "too long: 281 characters, the platform allows 280"
    assert check("x" * 280) is None


def test_too_long_is_counted_the_platforms_way() -> None:
    url = "https://example.com/" + "a" * 60  # X counts any URL as 23
    text = "b" * 250 + " " + url  # 331 code points, 274 for X
    assert gate.check(text, recent=[], max_chars=280, gate=DEFAULT) is not None
    x_length = LENGTHS["x"]
    assert x_length(text) == 274
    assert gate.check(text, recent=[], max_chars=280, gate=DEFAULT, length=x_length) is None
    emoji = "🚀" * 150  # 150 code points, 300 for X (emoji weigh 2)
    assert check(emoji) is None
    reason = gate.check(emoji, recent=[], max_chars=280, gate=DEFAULT, length=x_length)
    assert reason == "too long: 300 characters, the platform allows 280"


def test_each_platform_counts_its_own_way() -> None:
    assert LENGTHS["sandbox"]("e\u0301" * 3) == 3  # code points after NFC
    assert LENGTHS["bluesky"]("e\u0301" * 3) == 3  # graphemes
    assert LENGTHS["threads"]("\U0001f44d") == 4  # an emoji counts its UTF-8 bytes
    assert LENGTHS["mastodon"]("https://example.com/" + "a" * 60) == 23


def test_exact_duplicate_ignores_case_whitespace_and_unicode_form() -> None:
    old = "Ship the café feature TODAY.\n\nThen rest."
    new = "ship the cafe\u0301 feature today. then   rest.  "  # decomposed é, other spacing
    reason = check(new, (POST, old))
    assert reason == "exact duplicate of a recent post: 'Ship the café feature TODAY. Then rest.'"


def test_reworded_copy_with_a_changed_number_is_a_near_duplicate() -> None:
    copy = POST.replace("15 minutes", "20 minutes").replace("Monday", "Friday")
    reason = check(copy, ("Something else entirely, about pricing.", POST))
    assert reason is not None
    match = re.fullmatch(
        r"near duplicate \(similarity (0\.\d\d), threshold 0\.80\) of a recent post: '(.*)'",
        reason,
    )
    assert match, reason
    assert float(match[1]) >= 0.8
    assert POST.startswith(match[2].removesuffix("…"))  # the matched post's start
    assert match[2].endswith("…")


def test_swapped_sentences_are_a_near_duplicate() -> None:
    lines = POST.split("\n")
    swapped = "\n".join([lines[0], "", lines[2], lines[5], lines[4], lines[3]])
    assert gate.similarity(swapped, POST) > 0.9
    assert (check(swapped, (POST,)) or "").startswith("near duplicate")


def test_blocklisted_term_is_named_in_the_reason() -> None:
    reason = check("Free money for every Developer!", blocklist=["crypto", "free money"])
    assert reason == "blocklisted term 'free money'"


def test_the_first_failing_check_is_reported() -> None:
    assert check("x" * 300, blocklist=["x"]) == "too long: 300 characters, the platform allows 280"
    assert check(POST, (POST,), blocklist=["testing"]) == "blocklisted term 'testing'"


def test_a_genuinely_new_post_passes() -> None:
    other = "Pricing developer tools: charge for the outcome, not for the hours. Start higher."
    assert check(other, (POST,), blocklist=["crypto"]) is None


# --- near-duplicate threshold --------------------------------------------------------------------


def test_threshold_decides_a_reworded_copy() -> None:
    copy = POST.replace("15 minutes", "20 minutes")
    score = gate.similarity(copy, POST)
    assert 0.8 < score < 1.0
    assert check(copy, (POST,), near_duplicate_threshold=0.8) is not None
    assert check(copy, (POST,), near_duplicate_threshold=round(score, 2) + 0.01) is None


def test_a_different_post_from_the_same_template_family_passes() -> None:
    # Two listicles the template generator wrote with the same arms and intro line.
    other = (
        "Most people in indie software and developer productivity quietly lose the game on "
        "automated testing.\n\n"
        "The routine, step by step:\n"
        "1. Block five minutes on the calendar, same time every day.\n"
        "2. Change one variable at a time.\n"
        "3. Review it every two weeks and adjust."
    )
    assert gate.similarity(other, POST) < 0.7
    assert check(other, (POST,)) is None


async def test_the_gates_similarity_is_the_pairwise_similarity_of_the_most_similar_post() -> None:
    """Regression (the gate compares against all recent posts at once, over a shared n-gram
    vocabulary): the score in a refusal is ``similarity`` with the closest recent post."""
    posts = await _template_batch(seed=5, days=4)
    for i in range(10, len(posts)):
        recent = tuple(posts[i - 10 : i])
        scores = [gate.similarity(posts[i], old) for old in recent]
        reason = check(posts[i], recent, near_duplicate_threshold=0.01)
        assert reason is not None
        found = re.search(r"similarity (\d\.\d\d)", reason)
        assert found is not None, reason
        assert float(found.group(1)) == pytest.approx(max(scores), abs=0.006)
        closest = recent[scores.index(max(scores))]
        assert gate._excerpt(closest) in reason


def test_only_the_given_recent_posts_are_compared() -> None:
    copy = POST.replace("15", "25")
    assert gate.check(copy, recent=[], max_chars=280, gate=DEFAULT) is None


async def _template_batch(seed: int, days: int = 30, per_day: int = 6) -> list[str]:
    """A month of an account's posts: arms drawn at random, recent posts fed back newest first."""
    config = make_config()
    account = config.accounts[0]
    arms = config.catalogues.arms()
    generator = TemplateGenerator(seed=seed)
    rnd = random.Random(seed)
    posts: list[str] = []
    for _ in range(days * per_day):
        choice = ArmChoice(
            topic=rnd.choice(account.topics), **{d: rnd.choice(a) for d, a in arms.items()}
        )
        request = GenerationRequest(
            arms=choice,
            persona=account.persona,
            niche=account.niche,
            max_chars=280,
            recent_texts=tuple(reversed(posts[-50:])),
        )
        posts.append((await generator.write(request)).text)
    return posts


async def test_a_month_of_distinct_template_posts_is_rarely_taken_for_near_duplicates() -> None:
    checked = rejected = 0
    for seed in (1, 2, 3):
        posts = await _template_batch(seed)
        for i, text in enumerate(posts):
            recent = posts[max(0, i - DEFAULT.recent_posts) : i][::-1]
            reason = gate.check(text, recent=recent, max_chars=280, gate=DEFAULT)
            assert reason is None or reason.startswith("near duplicate"), reason
            checked += 1
            rejected += reason is not None
    rate = rejected / checked
    print(f"near-duplicate false positives: {rejected}/{checked} = {rate:.1%}")
    assert checked == 540
    assert rate < 0.05  # measured: 2/540 = 0.4%


# --- blocklist: whole words and phrases, any case ------------------------------------------------


@pytest.mark.parametrize(
    ("term", "text", "blocked"),
    [
        ("ass", "A class act, a passive bypass, assorted assets.", False),
        ("ass", "Kick ASS.", True),
        ("ass", "ass", True),
        ("ass", "(ass)", True),
        ("free money", "FREE\n  money, today", True),
        ("free money", "carefree money", False),
        ("free money", "free moneybox", False),
        ("free money", "free, money", False),
        ("c++", "Why I still write C++.", True),
        ("c++", "c++11 is fine", False),
        ("Straße", "STRASSE closed", True),  # case-folded
        ("  ", "anything at all", False),  # a blank entry blocks nothing
    ],
)
def test_blocklist_matches_whole_words_and_phrases_in_any_case(
    term: str, text: str, blocked: bool
) -> None:
    assert (gate.blocked_term(text, [term]) == term) is blocked
    assert (check(text, blocklist=[term]) == f"blocklisted term {term!r}") is blocked


# --- end to end in virtual time ------------------------------------------------------------------

BLOCKED = "testing"  # a word of the topic "automated testing"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, gate={"blocklist": [BLOCKED]}) as h:
        yield h


async def test_blocklisted_topic_word_rejects_its_drafts_and_they_are_never_published(
    harness: Harness,
) -> None:
    with capture_logs() as logs:
        await run_until(harness.agent, harness.clock, T0 + timedelta(days=3))
    posts = await harness.rows(content)
    rejected = [p for p in posts if p.status == PostStatus.REJECTED]
    assert rejected, "the topic was never drawn in three days"
    assert {p.error for p in rejected} == {f"blocklisted term {BLOCKED!r}"}
    assert all(gate.blocked_term(p.text, [BLOCKED]) for p in rejected)
    assert all(p.generation_metadata["topic"] == "automated testing" for p in rejected)
    for post in posts:  # every stored draft that names the term was stopped
        if gate.blocked_term(post.text, [BLOCKED]):
            assert post.status == PostStatus.REJECTED
            assert post.platform_post_id is None
    published = harness.world_posts()
    assert len(published) >= 10
    assert not [text for _, text in published if gate.blocked_term(text, [BLOCKED])]
    events = [e for e in logs if e["event"] == "post_rejected"]
    assert len(events) == len(rejected)
    assert {e["reason"] for e in events} == {f"blocklisted term {BLOCKED!r}"}
