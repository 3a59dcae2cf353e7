"""Post lengths counted as the platforms count them, checked against the standards' own suites.

- X: every v3 weighted-length case of twitter-text's conformance file (vendored in
  ``tests/fixtures/twitter_text_validate_v3.yml``, Apache-2.0).
- Bluesky (and Mastodon, which counts graphemes too): Unicode's ``GraphemeBreakTest.txt``
  (vendored from Debian's ``unicode-data`` package as
  ``tests/fixtures/GraphemeBreakTest-15.0.0.txt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.length import (
    LENGTHS,
    code_points,
    grapheme_length,
    mastodon_length,
    threads_length,
    x_length,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
TWITTER_TEXT = FIXTURES / "twitter_text_validate_v3.yml"
GRAPHEME_BREAK_TEST = FIXTURES / "GraphemeBreakTest-15.0.0.txt"
# The one case of the 15.0 file that Unicode corrected in 15.1: U+2701 is not
# Extended_Pictographic, so GB11 does not join it across the ZWJ and 15.1's file expects
# "÷ 2701 × 200D ÷ 2701 ÷". The library follows the current rule (Unicode 17).
CORRECTED_AFTER_15_0 = ("\u2701\u200d\u2701",)


def twitter_text_cases() -> list[Any]:
    sections = yaml.safe_load(TWITTER_TEXT.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(case["text"], case["expected"]["weightedLength"], id=case["description"])
        for cases in sections.values()
        for case in cases
    ]


def grapheme_break_cases() -> list[tuple[str, list[str]]]:
    """(text, expected clusters) for each line of GraphemeBreakTest.txt."""
    cases = []
    for line in GRAPHEME_BREAK_TEST.read_text(encoding="utf-8").splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        clusters = [
            "".join(chr(int(code, 16)) for code in cluster.replace("×", " ").split())
            for cluster in data.strip("÷").split("÷")
        ]
        cases.append(("".join(clusters), clusters))
    return cases


def test_the_vendored_suites_are_complete() -> None:
    assert len(twitter_text_cases()) == 23  # 21 v3 weighted + 2 directional-marker cases
    assert len(grapheme_break_cases()) == 602


@pytest.mark.parametrize(("text", "weighted"), twitter_text_cases())
def test_x_length_agrees_with_twitter_text_v3_conformance(text: str, weighted: int) -> None:
    assert x_length(text) == weighted


def test_grapheme_length_agrees_with_unicode_grapheme_break_test() -> None:
    wrong = [
        text for text, clusters in grapheme_break_cases() if grapheme_length(text) != len(clusters)
    ]
    assert len(wrong) <= 1
    assert set(wrong) <= set(CORRECTED_AFTER_15_0)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("https://example.com/a/very/long/path/that/keeps/going?q=1", 23),
        ("see https://x.com/a.", 4 + 23 + 1),
        ("www.example.org and example.com", 23 + 5 + 23),
        ("日本語", 6),
        ("👍", 2),
        ("👍🏽", 2),
        ("👨\u200d👩\u200d👧\u200d👦", 2),  # a ZWJ family is one emoji
        ("🇫🇷", 2),
        ("e\u0301", 1),  # NFC: é
        ("“quotes” — dash", 15),
    ],
)
def test_x_length(text: str, length: int) -> None:
    assert x_length(text) == length


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("abc", 3),
        ("👨\u200d👩\u200d👧\u200d👦", 1),
        ("\U0001f44d\U0001f3fd", 1),  # thumbs up, skin tone
        ("\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea", 2),  # two flags
        ("e\u0301", 1),
        ("\r\n", 1),
        ("\u1100\u1161\u11a8", 1),  # Hangul L V T
        ("\u0915\u094d\u0924", 1),  # Devanagari conjunct (GB9c, Unicode 15.1)
    ],
)
def test_grapheme_length(text: str, length: int) -> None:
    assert grapheme_length(text) == length


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("https://example.com/" + "a" * 100, 23),
        ("example.com", 11),  # Mastodon links only URLs with a protocol
        ("@alice@example.social", 6),  # a remote mention counts as @alice
        ("@alice", 6),
        ("mail bob@example.com", 20),  # not a mention: preceded by a word character
        ("caf\u0065\u0301 👨\u200d👩\u200d👧", 6),  # grapheme clusters
    ],
)
def test_mastodon_length(text: str, length: int) -> None:
    assert mastodon_length(text) == length


def test_mastodon_length_uses_the_instances_url_reservation() -> None:
    assert mastodon_length("go https://example.com/abc", url_chars=30) == 3 + 30


def test_threads_and_sandbox_count_code_points() -> None:
    assert threads_length("a\u2603b") == 5  # snowman: an emoji, 3 UTF-8 bytes
    assert threads_length("日本語") == 3
    assert code_points("e\u0301") == 1
    assert set(LENGTHS) == {"x", "bluesky", "mastodon", "threads", "sandbox"}
