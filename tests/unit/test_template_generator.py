"""The offline template generator and the arm catalogues it writes for."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.errors import GenerationError
from agent.generators import template, template_phrases
from agent.generators.base import Generator
from agent.generators.template import TemplateGenerator
from agent.models import ArmChoice, GenerationRequest

CATALOGUES = Path(__file__).resolve().parents[2] / "config" / "catalogues.yaml"
TOPICS = ("cold email", "pricing", "onboarding", "customer interviews", "AI tools")

EXPECTED_ARMS = {
    "content_types": [
        "how_to",
        "contrarian_take",
        "data_point",
        "personal_story",
        "case_study",
        "tool_review",
        "question",
    ],
    "formulas": [
        "problem_agitate_solve",
        "before_after_bridge",
        "listicle",
        "hot_take_with_proof",
        "curiosity_gap",
        "story_lesson",
    ],
    "hooks": [
        "bold_claim",
        "surprising_stat",
        "direct_question",
        "common_mistake",
        "myth_buster",
        "personal_confession",
        "time_promise",
        "contrarian_opening",
    ],
}


def _catalogues() -> dict[str, list[dict[str, str]]]:
    with CATALOGUES.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)["catalogues"]


def _names(key: str) -> list[str]:
    return [entry["name"] for entry in _catalogues()[key]]


def make_request(
    *,
    content_type: str = "how_to",
    formula: str = "listicle",
    hook: str = "bold_claim",
    topic: str = "cold email",
    **overrides: Any,
) -> GenerationRequest:
    """A generation request; arms by keyword, any other request field through ``overrides``."""
    arms = ArmChoice(content_type=content_type, formula=formula, hook=hook, topic=topic)
    fields: dict[str, Any] = {"persona": "a bootstrapped founder", "niche": "B2B SaaS"}
    fields["max_chars"] = 280
    return GenerationRequest(arms=arms, **{**fields, **overrides})


def _all_arms() -> list[tuple[str, str, str]]:
    return list(itertools.product(_names("content_types"), _names("formulas"), _names("hooks")))


# --- the catalogues -----------------------------------------------------------------------------


def test_catalogues_have_the_expected_arms_with_real_descriptions() -> None:
    catalogues = _catalogues()
    assert set(catalogues) == set(EXPECTED_ARMS)
    descriptions: list[str] = []
    for key, names in EXPECTED_ARMS.items():
        assert [entry["name"] for entry in catalogues[key]] == names
        for entry in catalogues[key]:
            assert set(entry) == {"name", "description"}
            assert re.fullmatch(r"[a-z0-9_]+", entry["name"])
            assert 40 <= len(entry["description"]) <= 300, entry["name"]
            descriptions.append(entry["description"])
    assert len(set(descriptions)) == len(descriptions)


def test_template_tables_cover_every_catalogue_arm() -> None:
    assert set(_names("content_types")) <= set(template_phrases.CONTENT)
    assert set(_names("formulas")) <= set(template._FORMULAS)
    assert set(_names("hooks")) <= set(template_phrases.HOOKS)


# --- length limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_chars", [280, 300])
async def test_every_arm_combination_fits_the_limit(max_chars: int) -> None:
    generator: Generator = TemplateGenerator(seed=max_chars)
    for i, (content_type, formula, hook) in enumerate(_all_arms()):
        request = make_request(
            content_type=content_type,
            formula=formula,
            hook=hook,
            topic=TOPICS[i % len(TOPICS)],
            max_chars=max_chars,
        )
        draft = await generator.write(request)
        assert draft.text.strip(), (content_type, formula, hook)
        assert len(draft.text) <= max_chars, draft.text
        assert "{" not in draft.text and "}" not in draft.text, draft.text
        assert "  " not in draft.text and "\n\n\n" not in draft.text, draft.text


async def test_a_tight_limit_fits_or_raises_never_overlong() -> None:
    generator = TemplateGenerator(seed=5)
    written = 0
    for content_type, formula, hook in _all_arms():
        request = make_request(content_type=content_type, formula=formula, hook=hook, max_chars=120)
        try:
            draft = await generator.write(request)
        except GenerationError as exc:
            assert "120" in str(exc)
            continue
        assert len(draft.text) <= 120
        written += 1
    assert written > 0


async def test_an_impossible_limit_raises_generation_error() -> None:
    with pytest.raises(GenerationError, match="20 characters"):
        await TemplateGenerator(seed=1).write(make_request(max_chars=20))


# --- variety and repetition ---------------------------------------------------------------------


async def test_thirty_days_of_posts_are_all_distinct() -> None:
    rng = random.Random(42)
    generator = TemplateGenerator(seed=42)
    content_types, formulas, hooks = _names("content_types"), _names("formulas"), _names("hooks")
    texts: list[str] = []
    for _day in range(30):
        for _post in range(6):
            request = make_request(
                content_type=rng.choice(content_types),
                formula=rng.choice(formulas),
                hook=rng.choice(hooks),
                topic=rng.choice(TOPICS),
                recent_texts=tuple(reversed(texts[-50:])),
            )
            texts.append((await generator.write(request)).text)
    assert len(texts) == 180
    assert len(set(texts)) == len(texts)
    # Real variety, not the same few openings with different endings.
    assert len({text.split("\n", 1)[0] for text in texts}) > 100


async def test_same_request_repeated_never_gives_the_same_text() -> None:
    generator = TemplateGenerator(seed=3)
    request = make_request(content_type="data_point", formula="hot_take_with_proof")
    texts = [(await generator.write(request)).text for _ in range(100)]
    assert len(set(texts)) == 100


async def test_a_text_in_recent_texts_is_never_returned() -> None:
    request = make_request(formula="story_lesson", hook="personal_confession")
    first = (await TemplateGenerator(seed=11).write(request)).text
    # Same seed, so the first draw would be the same text again, but it is now recent.
    again = await TemplateGenerator(seed=11).write(
        make_request(
            formula="story_lesson", hook="personal_confession", recent_texts=(first, "other")
        )
    )
    assert again.text != first


async def test_only_repeats_available_raises_generation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = TemplateGenerator(seed=2)
    request = make_request()
    composition = generator._compose(request)
    monkeypatch.setattr(generator, "_compose", lambda _request: composition)
    every_form = tuple(text for text, _ids in composition.texts())
    with pytest.raises(GenerationError, match="repeated a recent post"):
        await generator.write(make_request(recent_texts=every_form))


async def test_the_same_seed_gives_the_same_posts() -> None:
    requests = [
        make_request(content_type=ct, formula=f, hook=h)
        for ct, f, h in random.Random(0).sample(_all_arms(), 20)
    ]
    first, second, other = (TemplateGenerator(seed=s) for s in (9, 9, 10))
    a = [(await first.write(r)).text for r in requests]
    b = [(await second.write(r)).text for r in requests]
    c = [(await other.write(r)).text for r in requests]
    assert a == b
    assert a != c


# --- arms shape the output ----------------------------------------------------------------------


async def test_listicle_posts_are_numbered_lists() -> None:
    generator = TemplateGenerator(seed=4)
    for content_type in _names("content_types"):
        draft = await generator.write(make_request(content_type=content_type, formula="listicle"))
        assert re.search(r"^1\. \S", draft.text, re.MULTILINE), draft.text
        assert re.search(r"^2\. \S", draft.text, re.MULTILINE), draft.text


@pytest.mark.parametrize(
    ("formula", "marker"),
    [
        ("problem_agitate_solve", r"^(The fix|What works|The way out|What helped): "),
        ("before_after_bridge", r"^After: "),
        ("curiosity_gap", r"^(Here it is|It's this|The answer): "),
        ("story_lesson", r"^(Lesson|The lesson|What I took from it|Takeaway): "),
    ],
)
async def test_formula_shapes_the_body(formula: str, marker: str) -> None:
    generator = TemplateGenerator(seed=6)
    for content_type in _names("content_types"):
        draft = await generator.write(make_request(content_type=content_type, formula=formula))
        assert re.search(marker, draft.text, re.MULTILINE), draft.text
        assert not re.search(r"^1\. ", draft.text, re.MULTILINE)


async def test_each_hook_has_its_own_openings() -> None:
    openings: dict[str, set[str]] = {}
    for hook in _names("hooks"):
        generator = TemplateGenerator(seed=8)
        drafts = [await generator.write(make_request(hook=hook)) for _ in range(30)]
        openings[hook] = {draft.text.split("\n", 1)[0] for draft in drafts}
        assert len(openings[hook]) >= 3, hook  # several phrasings per hook
    for a, b in itertools.combinations(openings, 2):
        assert not openings[a] & openings[b], (a, b)
    assert all(line.endswith("?") for line in openings["direct_question"])
    assert all(re.search(r"\bI\b", line) for line in openings["personal_confession"])


async def test_question_posts_ask_the_audience_something() -> None:
    generator = TemplateGenerator(seed=12)
    for formula in _names("formulas"):
        draft = await generator.write(make_request(content_type="question", formula=formula))
        body = draft.text.split("\n", 1)[1]
        assert "?" in body, draft.text


async def test_topic_and_niche_are_woven_in() -> None:
    generator = TemplateGenerator(seed=13)
    texts = [
        (await generator.write(make_request(topic="churn", niche="dev tools"))).text
        for _ in range(40)
    ]
    assert all("churn" in text for text in texts)
    assert any("dev tools" in text for text in texts)


async def test_a_short_persona_can_be_quoted_but_a_long_one_never_is() -> None:
    long_persona = "a bootstrapped founder who writes plainly about growth and hates hype"
    for persona, expected in (("a solo founder", True), (long_persona, False)):
        generator = TemplateGenerator(seed=14)
        texts = [
            (
                await generator.write(
                    make_request(
                        content_type="personal_story", hook="personal_confession", persona=persona
                    )
                )
            ).text
            for _ in range(60)
        ]
        assert any("As a solo founder," in t for t in texts) is expected
        assert not any("hates hype" in t for t in texts)


# --- unknown arms and metadata ------------------------------------------------------------------


async def test_unknown_arm_names_fall_back_to_generic_phrasings() -> None:
    generator = TemplateGenerator(seed=15)
    for formula in ("three_act_story", "listicle"):
        request = make_request(
            content_type="checklist",
            formula=formula,
            hook="analogy_opening",
            descriptions={
                "content_type": "A checklist the reader can save.",
                "formula": "Setup, conflict, resolution.",
                "hook": "Open with an analogy.",
            },
        )
        texts = set()
        for _ in range(10):
            draft = await generator.write(request)
            assert draft.text and len(draft.text) <= 280
            assert any(i.startswith("hook.generic.") for i in draft.extra["variant"])
            assert any(i.startswith("generic.") for i in draft.extra["variant"])
            texts.add(draft.text)
        assert len(texts) == 10


async def test_draft_metadata() -> None:
    draft = await TemplateGenerator(seed=16).write(make_request())
    assert draft.generator == "template"
    assert draft.model is None
    assert draft.prompt_version == "template-v1"
    assert (draft.tokens_in, draft.tokens_out, draft.cost_usd) == (0, 0, 0.0)
    variant = draft.extra["variant"]
    assert isinstance(variant, list) and all(isinstance(i, str) for i in variant)
    assert variant[0].startswith("hook.bold_claim.")
    assert any(i.startswith("how_to.point.") for i in variant)
