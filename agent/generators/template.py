"""The offline template generator: the default generator, no network, no cost.

A post is assembled from phrase tables (:mod:`agent.generators.template_phrases`)::

    <hook line>                        one of several phrasings for the hook
    <body>                             shaped by the formula, filled by the content type's angle
    <closer>                           optional (a question post always ends with a question)
    <call to action> <#hashtags>       optional

Slots ({topic}, {niche}, numbers, timeframes...) are filled per post, so the same arms give
different texts. A draft is built from its fullest form down to shorter ones (fewer optional parts,
fewer list items, a shorter body) until it fits ``max_chars``; a draft equal to a recent post (or
to one this generator has already written) is thrown away and the phrasings drawn again, a bounded
number of times. Arm names the tables do not know get generic phrasings, never a ``KeyError``.

The generator is deterministic for a seed: the same seed and the same sequence of requests give the
same drafts.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from agent.errors import GenerationError
from agent.generators import template_phrases as phrases
from agent.generators.template_phrases import ContentPhrases
from agent.models import THREAD, ArmChoice, Draft, GenerationRequest, joined

__all__ = ["PROMPT_VERSION", "TemplateGenerator"]

PROMPT_VERSION = "template-v1"  # bump when the tables change in a way worth telling apart
MAX_ATTEMPTS = 60  # fresh draws of phrasings before giving up on one request
OPENING_ATTEMPTS = 8  # of those, the first ones that skip an opening line used recently
HISTORY_SIZE = 5_000  # texts this generator remembers having written, to never repeat one
PERSONA_MAX_CHARS = 40  # longer personas are descriptions, not something to quote in a post
HASHTAG_MAX_CHARS = 24  # a longer CamelCase tag reads as noise

CLOSER_CHANCE = 0.6  # optional parts are drawn per post, then dropped first when too long
CTA_CHANCE = 0.3
HASHTAG_CHANCE = 0.3
MIN_PART_CHARS = 60  # a thread part shorter than this joins its neighbour (docs/threads.md)


@dataclass(frozen=True, slots=True)
class _Block:
    """A paragraph of the post and the ids of the phrasings it was made from."""

    text: str
    ids: tuple[str, ...]


_Shapes = list[list[_Block]]  # body variants, fullest first


class _Writer:
    """Draws phrasings for one draft: fills slots and records which phrasing was used."""

    def __init__(self, rng: random.Random, slots: dict[str, str]) -> None:
        self.rng = rng
        self.slots = slots

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def choose(self, table: str, options: Sequence[str]) -> tuple[str, str]:
        """Pick a usable template (all of its slots are known); return (id, template)."""
        usable = [(i, t) for i, t in enumerate(options) if _fields(t) <= self.slots.keys()]
        if not usable:
            raise GenerationError(f"template: no usable phrasing in table {table!r}")
        index, template = self.rng.choice(usable)
        return f"{table}.{index}", template

    def fill(self, template: str, **extra: str) -> str:
        return template.format_map({**self.slots, **extra})

    def pick(self, table: str, options: Sequence[str]) -> _Block:
        ident, template = self.choose(table, options)
        return _Block(self.fill(template), (ident,))

    def labelled(
        self, label_table: str, labels: Sequence[str], table: str, options: Sequence[str]
    ) -> _Block:
        """A phrasing behind a label ("The fix: ..."), its first letter lower-cased."""
        label_id, label = self.choose(label_table, labels)
        ident, template = self.choose(table, options)
        text = self.fill(template)
        if label and not template.startswith("{Topic}"):  # a topic keeps the user's casing
            text = _decap(text)
        elif label:
            text = self.slots["topic"] + text[len(self.slots["Topic"]) :]
        return _Block(label + text, (label_id, ident))

    def sample(self, table: str, options: Sequence[str], k: int) -> list[_Block]:
        """``k`` distinct phrasings, kept in table order (story beats stay chronological)."""
        usable = [i for i, t in enumerate(options) if _fields(t) <= self.slots.keys()]
        chosen = sorted(self.rng.sample(usable, min(k, len(usable))))
        return [_Block(self.fill(options[i]), (f"{table}.{i}",)) for i in chosen]


# --- formulas: each returns the body's shapes, fullest first -----------------------------------


def _problem_agitate_solve(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    if w.chance(0.5):
        problem = w.pick("pas.problem", phrases.PAS_PROBLEMS)
    else:
        problem = w.pick(f"{ct}.scene", c.scenes)
    agitate = w.pick("pas.agitate", phrases.PAS_AGITATE)
    solve = w.labelled("pas.solve", phrases.PAS_SOLVE_LABELS, f"{ct}.insight", c.insights)
    return [[problem, agitate, solve], [problem, solve], [solve]]


def _before_after_bridge(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    if w.chance(0.5):
        before = w.pick("bab.before", phrases.BAB_BEFORE)
    else:
        before = w.labelled(
            "bab.before_label", (phrases.BAB_BEFORE_LABEL,), f"{ct}.scene", c.scenes
        )
    after = w.pick("bab.after", phrases.BAB_AFTER)
    bridge = w.labelled("bab.bridge", phrases.BAB_BRIDGE_LABELS, f"{ct}.insight", c.insights)
    before_after = _Block(f"{before.text}\n{after.text}", before.ids + after.ids)
    return [[before_after, bridge], [after, bridge]]


def _listicle(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    intro_id, intro = w.choose(f"{ct}.intro", c.list_intros)
    items = w.sample(f"{ct}.point", c.points, w.rng.choice((3, 4)))

    def numbered(count: int, *, with_intro: bool = True) -> _Block:
        lines = [f"{i}. {item.text}" for i, item in enumerate(items[:count], start=1)]
        ids = tuple(i for item in items[:count] for i in item.ids)
        if not with_intro:
            return _Block("\n".join(lines), ids)
        return _Block("\n".join([w.fill(intro, count=str(count)), *lines]), (intro_id, *ids))

    shapes = [[numbered(count)] for count in range(len(items), 1, -1)]
    return [*shapes, [numbered(2, with_intro=False)]]  # a listicle is always a numbered list


def _hot_take_with_proof(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    take = w.labelled("hot.take", phrases.HOT_TAKE_LABELS, f"{ct}.insight", c.insights)
    proof = w.labelled("hot.proof", phrases.PROOF_LABELS, f"{ct}.proof", c.proofs)
    return [[take, proof], [take]]


def _curiosity_gap(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    tease = w.pick("gap.tease", phrases.CURIOSITY_TEASES)
    build = w.pick("gap.build", phrases.CURIOSITY_BUILDS)
    reveal = w.labelled("gap.reveal", phrases.CURIOSITY_REVEAL_LABELS, f"{ct}.insight", c.insights)
    return [[tease, build, reveal], [tease, reveal], [reveal]]


def _story_lesson(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    scene = w.pick(f"{ct}.scene", c.scenes)
    turn = w.pick("story.turn", phrases.STORY_TURNS)
    lesson = w.labelled("story.lesson", phrases.STORY_LESSON_LABELS, f"{ct}.insight", c.insights)
    return [[scene, turn, lesson], [scene, lesson], [lesson]]


def _generic_formula(w: _Writer, c: ContentPhrases, ct: str) -> _Shapes:
    scene = w.pick(f"{ct}.scene", c.scenes)
    insight = w.pick(f"{ct}.insight", c.insights)
    return [[scene, insight], [insight]]


_FORMULAS: dict[str, Callable[[_Writer, ContentPhrases, str], _Shapes]] = {
    "problem_agitate_solve": _problem_agitate_solve,
    "before_after_bridge": _before_after_bridge,
    "listicle": _listicle,
    "hot_take_with_proof": _hot_take_with_proof,
    "curiosity_gap": _curiosity_gap,
    "story_lesson": _story_lesson,
}


@dataclass(frozen=True, slots=True)
class _Composition:
    """One draw of phrasings; ``texts()`` renders it from fullest to shortest."""

    hook: _Block
    shapes: _Shapes
    ending: _Block | None  # a question post's closing question: never dropped
    closer: _Block | None
    cta: _Block | None
    hashtags: _Block | None

    def texts(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        optional = [self.hashtags, self.cta, self.closer]  # dropped in this order
        for shape in self.shapes:
            for dropped in range(len(optional) + 1):
                if dropped and optional[dropped - 1] is None:
                    continue  # nothing new dropped: same text as the previous one
                hashtags, cta, closer = [
                    None if i < dropped else part for i, part in enumerate(optional)
                ]
                blocks = [self.hook, *shape, self.ending, closer]
                tail = [b for b in (cta, hashtags) if b is not None]
                if tail:
                    blocks.append(
                        _Block(
                            " ".join(b.text for b in tail), tuple(i for b in tail for i in b.ids)
                        )
                    )
                present = [b for b in blocks if b is not None]
                yield "\n\n".join(b.text for b in present), tuple(i for b in present for i in b.ids)

    def thread(self, max_parts: int) -> Iterator[tuple[list[str], tuple[str, ...]]]:
        """The composition as a thread (docs/threads.md), fullest first: the hook opens the first
        part with the body's first paragraph, each further paragraph (a listicle's items two by
        two) is a part of its own, the closing question or line and the call to action end it.
        Parts beyond ``max_parts`` are merged into the last one; each part ends "(k/n)"."""
        optional = [self.hashtags, self.cta, self.closer]
        for shape in self.shapes:
            for dropped in range(len(optional) + 1):
                if dropped and optional[dropped - 1] is None:
                    continue
                hashtags, cta, closer = [
                    None if i < dropped else part for i, part in enumerate(optional)
                ]
                body = [piece for block in shape for piece in _paragraphs(block)]
                first, *rest = body
                blocks = [
                    _Block(f"{self.hook.text}\n\n{first.text}", self.hook.ids + first.ids),
                    *rest,
                ]
                ending = [b for b in (self.ending, closer) if b is not None]
                tail = [b for b in (cta, hashtags) if b is not None]
                if ending:  # the closing line ends the thread, the call to action after it
                    last = [*ending, *tail]
                    blocks.append(
                        _Block(
                            " ".join(b.text for b in last), tuple(i for b in last for i in b.ids)
                        )
                    )
                elif tail:  # a call to action alone is no part: it ends the last one
                    end = blocks[-1]
                    words = " ".join(b.text for b in tail)
                    blocks[-1] = _Block(
                        f"{end.text}\n\n{words}", end.ids + tuple(i for b in tail for i in b.ids)
                    )
                blocks = _merge_short(blocks)
                if len(blocks) < 2:
                    continue  # one paragraph is a post, not a thread
                while len(blocks) > max_parts:
                    a, b = blocks[-2], blocks[-1]
                    blocks[-2:] = [_Block(f"{a.text}\n\n{b.text}", a.ids + b.ids)]
                n = len(blocks)
                texts = [f"{b.text} ({k}/{n})" for k, b in enumerate(blocks, start=1)]
                yield texts, tuple(i for b in blocks for i in b.ids)


def _merge_short(blocks: list[_Block]) -> list[_Block]:
    """A paragraph shorter than ``MIN_PART_CHARS`` ("Then someone asked me...") is no part of its
    own: it opens the next part (or ends the previous one, if it is the last)."""
    out: list[_Block] = []
    carry: _Block | None = None
    for index, block in enumerate(blocks):
        if carry is not None:
            block = _Block(f"{carry.text}\n\n{block.text}", carry.ids + block.ids)
            carry = None
        if len(block.text) < MIN_PART_CHARS and index < len(blocks) - 1:
            carry = block
            continue
        out.append(block)
    if out and len(out[-1].text) < MIN_PART_CHARS and len(out) > 1:
        a, b = out[-2], out[-1]
        out[-2:] = [_Block(f"{a.text}\n\n{b.text}", a.ids + b.ids)]
    return out


def _paragraphs(block: _Block) -> list[_Block]:
    """A block as thread parts: a numbered list two items a part (its intro with the first)."""
    lines = block.text.split("\n")
    numbered = [i for i, line in enumerate(lines) if re.match(r"\d+\. ", line)]
    if len(numbered) < 3:
        return [block]
    head = lines[: numbered[0]]
    items = lines[numbered[0] :]
    chunks = [items[i : i + 2] for i in range(0, len(items), 2)]
    out = [_Block("\n".join([*head, *chunks[0]]), block.ids)]
    out += [_Block("\n".join(chunk), ()) for chunk in chunks[1:]]
    return out


class TemplateGenerator:
    """Writes posts offline from phrase tables; see the module docstring."""

    name = "template"

    def __init__(self, *, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._history: dict[str, None] = {}  # insertion-ordered set of texts written

    async def moderate(self, text: str) -> str | None:
        """None: the phrase tables are written by people, there is nothing to moderate."""
        return None

    async def write(self, request: GenerationRequest) -> Draft:
        """Write one post (or a thread, by ``request.arms.format``) for ``request``; raise
        GenerationError if none fits or all repeat."""
        if request.arms.format == THREAD:
            return self._write_thread(request)
        seen = set(request.recent_texts)
        recent_openings = {text.split("\n", 1)[0] for text in request.recent_texts}
        shortest: int | None = None
        for attempt in range(MAX_ATTEMPTS):
            composition = self._compose(request)
            # Prefer an opening line the account has not used lately, for a few draws: an
            # account exploiting one hook soon has used all of its openings.
            if attempt < OPENING_ATTEMPTS and composition.hook.text in recent_openings:
                continue
            for text, ids in composition.texts():
                shortest = len(text) if shortest is None else min(shortest, len(text))
                if len(text) > request.max_chars:
                    continue
                if text in seen or text in self._history:
                    break  # a shorter form of a repeat is still a repeat: draw again
                self._remember(text)
                return Draft(
                    text=text,
                    generator=self.name,
                    model=None,
                    prompt_version=PROMPT_VERSION,
                    tokens_in=0,
                    tokens_out=0,
                    cost_usd=0.0,
                    extra={"variant": list(ids)},
                )
        arms = _describe(request.arms)
        if shortest is not None and shortest > request.max_chars:
            raise GenerationError(
                f"template: no draft fits in {request.max_chars} characters for {arms} "
                f"(the shortest was {shortest}) after {MAX_ATTEMPTS} attempts"
            )
        raise GenerationError(
            f"template: every draft for {arms} within {request.max_chars} characters repeated "
            f"a recent post after {MAX_ATTEMPTS} attempts"
        )

    def _write_thread(self, request: GenerationRequest) -> Draft:
        """A thread of 2 to ``request.max_parts`` parts, each within ``max_chars``."""
        # a part equal to one posted lately would be refused as a duplicate by the platform:
        # every part must be new, not only the whole (a part of a recent thread is inside its
        # text; parts hold blank lines themselves, so the text cannot be split back)
        recent = request.recent_texts
        seen = set(recent)
        for _ in range(MAX_ATTEMPTS):
            composition = self._compose(request)
            for parts, ids in composition.thread(max(request.max_parts, 2)):
                if any(len(part) > request.max_chars for part in parts):
                    continue
                text = joined(parts)
                # the whole is new for good; a part only among the recent posts (the platforms'
                # duplicate windows), as the phrase tables hold few short paragraphs
                if text in seen or text in self._history:
                    break
                if any(part in earlier for part in parts for earlier in recent):
                    break
                self._remember(text)
                return Draft(
                    text=text,
                    parts=tuple(parts),
                    generator=self.name,
                    model=None,
                    prompt_version=PROMPT_VERSION,
                    extra={"variant": list(ids)},
                )
        raise GenerationError(
            f"template: no thread for {_describe(request.arms)} fits in {request.max_chars} "
            f"characters a part, or all repeated, after {MAX_ATTEMPTS} attempts"
        )

    def _compose(self, request: GenerationRequest) -> _Composition:
        arms = request.arms
        w = _Writer(self._rng, _slots(request, self._rng))
        hook_table = arms.hook if arms.hook in phrases.HOOKS else "generic"
        hook = w.pick(f"hook.{hook_table}", phrases.HOOKS.get(arms.hook, phrases.GENERIC_HOOKS))
        ct = arms.content_type if arms.content_type in phrases.CONTENT else "generic"
        content = phrases.CONTENT.get(arms.content_type, phrases.GENERIC_CONTENT)
        shapes = _FORMULAS.get(arms.formula, _generic_formula)(w, content, ct)

        ending = closer = None
        if content.asks:
            ending = w.pick(f"{ct}.ask", content.asks)
        elif w.chance(CLOSER_CHANCE):
            if content.closers and w.chance(0.6):
                closer = w.pick(f"{ct}.closer", content.closers)
            else:
                closer = w.pick("closer", phrases.GENERIC_CLOSERS)
        cta = w.pick("cta", phrases.CTAS) if w.chance(CTA_CHANCE) else None
        hashtags = None
        if w.chance(HASHTAG_CHANCE):
            sources = [request.niche] + ([arms.topic] if w.chance(0.5) else [])
            tags = [t for t in (_hashtag(s) for s in sources) if t]
            if tags:
                hashtags = _Block(" ".join(dict.fromkeys(tags)), ("hashtags",))
        return _Composition(
            hook=hook, shapes=shapes, ending=ending, closer=closer, cta=cta, hashtags=hashtags
        )

    def _remember(self, text: str) -> None:
        self._history[text] = None
        if len(self._history) > HISTORY_SIZE:
            del self._history[next(iter(self._history))]


def _slots(request: GenerationRequest, rng: random.Random) -> dict[str, str]:
    """Fill every slot for one draft (see the phrase module's docstring for the list)."""
    topic = request.arms.topic.strip()
    slots = {
        "topic": topic,
        "Topic": topic[:1].upper() + topic[1:],
        "niche": request.niche.strip(),
        "content_label": _humanise(request.arms.content_type),
    }
    for name, values in phrases.SLOT_VALUES.items():
        slots[name] = rng.choice(values).format_map(slots)
    slots["Client"] = slots["client"][:1].upper() + slots["client"][1:]
    persona = request.persona.strip().rstrip(".")
    if len(persona) <= PERSONA_MAX_CHARS and re.match(r"(?i)an? \w", persona):
        slots["persona_as"] = f"As {persona[0].lower()}{persona[1:]}"
    return slots


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _decap(text: str) -> str:
    """Lower-case a sentence's first letter, unless its first word is "I" or an acronym."""
    word = re.match(r"[A-Za-z]+", text)
    if word is None or word[0] == "I" or (len(word[0]) > 1 and not word[0][1:].islower()):
        return text
    return text[0].lower() + text[1:]


def _humanise(arm: str) -> str:
    return arm.replace("_", " ").strip() or "note"


def _hashtag(phrase: str) -> str | None:
    words = re.findall(r"[A-Za-z0-9]+", phrase)
    tag = "".join(word if not word.islower() else word.capitalize() for word in words)
    if not tag or len(tag) > HASHTAG_MAX_CHARS or tag.isdigit():
        return None
    return f"#{tag}"


def _describe(arms: ArmChoice) -> str:
    return (
        f"content_type={arms.content_type!r}, formula={arms.formula!r}, hook={arms.hook!r}, "
        f"topic={arms.topic!r}"
    )
