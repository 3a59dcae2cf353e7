"""The quality gate: the checks every draft passes before it is queued.

:func:`check` is pure (no I/O, no clock, no logging): it takes the draft, the account's recent
posts and the :class:`~agent.config.Gate` settings and returns ``None`` when the draft may be
queued, or the reason it may not. The checks, in order:

1. **Empty**: nothing but whitespace.
2. **Too long**: over ``max_chars`` as the platform counts (pass its ``length`` function: X's
   weighted length, Bluesky's graphemes...; plain code points otherwise).
3. **Blocklist**: a configured word or phrase appears as a whole word, in any case: ``ass`` blocks
   "Ass." but not "class"; ``free money`` blocks "FREE  money" but not "carefree moneybox".
4. **Exact duplicate** of a recent post, after normalising both (:func:`normalise`: Unicode NFC,
   case-folded, runs of whitespace collapsed to one space).
5. **Near duplicate**: the :func:`similarity` to a recent post reaches
   ``near_duplicate_threshold``.

Similarity is the cosine of the character 5-gram count vectors of the normalised texts. Character
n-grams are what make it robust to the two ways a copy is usually disguised: a changed number or
word only changes the few 5-grams that overlap it, and swapped sentences only change the 5-grams
across the seams, so both stay above 0.9 for a typical 100-280 character post (word 3-shingles
drop below 0.7 when two short sentences swap; ``difflib.SequenceMatcher`` drops to ~0.5, and is
~10x slower). Texts from the same template family that differ in their phrasings score well
below 0.8 (see ``tests/unit/test_gate.py`` for the measured rates). Comparing one draft with 50
posts of 280 characters takes a few milliseconds.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import numpy as np

from agent.config import Gate

__all__ = ["NGRAM", "blocked_term", "check", "normalise", "similarity"]

NGRAM = 5  # characters per n-gram: long enough to carry words, short enough to survive edits
EXCERPT_CHARS = 40  # how much of the matched post a reason quotes


def check(
    text: str,
    *,
    recent: Sequence[str],
    max_chars: int,
    gate: Gate,
    length: Callable[[str], int] = len,
) -> str | None:
    """``None`` if ``text`` may be queued, else the reason it may not (see the module docstring).

    ``recent`` holds the account's recent posts (only they are compared; the caller picks how many,
    normally ``gate.recent_posts``); ``length`` is the platform's own way of counting characters.
    """
    if not text.strip():
        return "empty text"
    size = length(text)
    if size > max_chars:
        return f"too long: {size} characters, the platform allows {max_chars}"
    normal = normalise(text)
    term = blocked_term(normal, gate.blocklist)
    if term is not None:
        return f"blocklisted term {term!r}"
    normals = [_normalised(old) for old in recent]  # the same recent posts plan after plan
    for old, old_normal in zip(recent, normals, strict=True):
        if old_normal == normal:
            return f"exact duplicate of a recent post: {_excerpt(old)}"
    best, match = 0.0, ""
    for old, score in zip(recent, _similarities(normal, normals), strict=True):
        if score > best:
            best, match = score, old
    if best >= gate.near_duplicate_threshold:
        return (
            f"near duplicate (similarity {best:.2f}, threshold "
            f"{gate.near_duplicate_threshold:.2f}) of a recent post: {_excerpt(match)}"
        )
    return None


def normalise(text: str) -> str:
    """The form texts are compared in: NFC, case-folded, whitespace runs collapsed, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@lru_cache(maxsize=4096)
def _normalised(text: str) -> str:
    return normalise(text)


def similarity(a: str, b: str) -> float:
    """Cosine similarity (0..1) of the character 5-gram counts of the normalised texts."""
    return _cosine(_ngrams(normalise(a)), _ngrams(normalise(b)))


def blocked_term(text: str, blocklist: Iterable[str]) -> str | None:
    """The first blocklist entry found in ``text`` as a whole word or phrase, in any case."""
    normal = normalise(text)
    for term in blocklist:
        if term.strip() and _term_pattern(term).search(normal):
            return term
    return None


@lru_cache(maxsize=1024)
def _term_pattern(term: str) -> re.Pattern[str]:
    # Not \b: a term may start or end with a non-word character ("$$$", "c++"), where \b fails.
    words = normalise(term).split(" ")
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)")


def _ngrams(normal: str) -> Counter[str]:
    if len(normal) < NGRAM:
        return Counter([normal])
    return Counter(normal[i : i + NGRAM] for i in range(len(normal) - NGRAM + 1))


_VOCABULARY: dict[str, int] = {}  # n-gram -> column, shared by every cached profile
_VOCABULARY_LIMIT = 2_000_000  # then start afresh (with the profile cache)


@lru_cache(maxsize=4096)
def _profile(normal: str) -> tuple[np.ndarray, np.ndarray, float]:
    """A text's n-grams as (columns, counts, norm), cached: every plan compares the same recent
    posts (the arrays are read-only)."""
    grams = _ngrams(normal)
    columns = np.fromiter(
        (_VOCABULARY.setdefault(g, len(_VOCABULARY)) for g in grams), dtype=np.intp
    )
    counts = np.fromiter(grams.values(), dtype=float)
    columns.flags.writeable = counts.flags.writeable = False
    return columns, counts, math.sqrt(float(counts @ counts))


def _similarities(normal: str, others: Sequence[str]) -> list[float]:
    """Cosine similarity of ``normal``'s n-gram counts with each of ``others``'s (all normalised):
    each other text's n-grams looked up among the text's own (sorted once), so a comparison
    costs the other text's length, not the vocabulary's (a vector over the whole vocabulary,
    which every text planned grows, cost ~1 ms a plan at 10,000 accounts). The counts are whole
    numbers, so the dot products are exact in any order."""
    if not others:
        return []
    if len(_VOCABULARY) > _VOCABULARY_LIMIT:
        _VOCABULARY.clear()
        _profile.cache_clear()
    columns, counts, norm = _profile(normal)
    order = np.argsort(columns)
    own_columns, own_counts = columns[order], counts[order]
    out = []
    for other_columns, other_counts, other_norm in (_profile(other) for other in others):
        at = np.minimum(np.searchsorted(own_columns, other_columns), len(own_columns) - 1)
        shared = own_columns[at] == other_columns
        dot = float(other_counts[shared] @ own_counts[at[shared]])
        out.append(min(1.0, dot / (norm * other_norm)) if dot > 0 else 0.0)
    return out


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(count * b[gram] for gram, count in a.items() if gram in b)
    if not dot:
        return 0.0
    norm_a = math.sqrt(sum(c * c for c in a.values()))
    norm_b = math.sqrt(sum(c * c for c in b.values()))
    return min(1.0, dot / (norm_a * norm_b))


def _excerpt(text: str) -> str:
    line = " ".join(text.split())
    return repr(line if len(line) <= EXCERPT_CHARS else line[: EXCERPT_CHARS - 1] + "…")
