"""How each platform counts a post's length, with the libraries made for it.

Every adapter's :meth:`~adapters.base.Platform.length` is one of these functions, and its
``limits.max_chars`` is in the same unit. They are plain functions here (no SDK, no I/O) so that
the command line can check a draft's length without connecting (``growthloop drafts edit``):

- **X**: the weighted length of twitter-text's v3 configuration, from ``twitter-text-parser``
  (the Python port of twitter-text): every URL counts 23 (a t.co link), emoji sequences count 2,
  code points in the Latin-and-friends ranges count 1 and the others (CJK, most symbols) 2, after
  NFC normalisation. It agrees with every v3 weighted-length case of twitter-text's conformance
  suite (``tests/fixtures/twitter_text_validate_v3.yml``).
- **Bluesky**: extended grapheme clusters (UAX #29), from ``regex``'s ``\\X``, which follows
  current Unicode (17.0 in the pinned version); the ``app.bsky.feed.post`` lexicon limits
  ``text`` by ``maxGraphemes``. Checked against Unicode's ``GraphemeBreakTest.txt``.
- **Mastodon**: as the server's ``StatusLengthValidator`` counts: a URL with a protocol counts
  ``characters_reserved_per_url`` (23), a mention of a remote account counts its username part
  only (``@alice@example.social`` counts as ``@alice``), and the result is counted in grapheme
  clusters (docs.joinmastodon.org, "Posting to your profile": "URLs in text always count for 23
  characters"; Instance entity: ``configuration.statuses.characters_reserved_per_url``).
- **Threads**: code points, except that emoji count their UTF-8 bytes (Meta's Threads API
  reference for ``text``: 500 characters, "emojis are counted as their UTF-8 byte length").
- **sandbox**: code points after NFC normalisation (the simulated platform's own rule).
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Callable
from functools import cache
from types import ModuleType

import regex

X_MAX_CHARS = 280  # weighted characters per post
BLUESKY_MAX_GRAPHEMES = 300  # per post (app.bsky.feed.post lexicon: text maxGraphemes)
MASTODON_DEFAULT_MAX_CHARS = 500  # Mastodon's default when the instance does not say
THREADS_MAX_CHARS = 500  # per text post, counted by threads_length
URL_CHARS = 23  # what a URL counts on X and (by default) on Mastodon

_GRAPHEME = regex.compile(r"\X")
# Mastodon's Account::MENTION_RE: @username, optionally @domain (a remote account)
_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[\w.-]+\w+)?", regex.IGNORECASE
)
# what Threads counts by its UTF-8 bytes: pictographs and the parts of emoji sequences
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Emoji_Modifier}|[\u200d\u20e3\ufe00-\ufe0f]")


@cache
def _twitter_text() -> ModuleType:
    """twitter-text, imported on first use: it compiles its URL and emoji tables at import (about
    half a second), which only X and Mastodon accounts need. It reads its emoji table through
    setuptools' ``pkg_resources``, hence the ``setuptools<81`` pin in pyproject.toml, and
    setuptools warns about that on import; the warning is about the library, not about us."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import twitter_text

    return twitter_text


def x_length(text: str) -> int:
    """The weighted length X counts for ``text`` (twitter-text v3)."""
    return int(_twitter_text().parse_tweet(text).weightedLength)


def urls(text: str, *, without_protocol: bool = True) -> list[tuple[int, int]]:
    """The (start, end) of each URL twitter-text finds in ``text`` (bare domains too unless
    ``without_protocol`` is False)."""
    found = _twitter_text().extract_urls_with_indices(
        text, extract_urls_without_protocol=without_protocol
    )
    return [(int(url["indices"][0]), int(url["indices"][1])) for url in found]


def grapheme_length(text: str) -> int:
    """The number of extended grapheme clusters (user-perceived characters) in ``text``."""
    return len(_GRAPHEME.findall(text))


def mastodon_length(text: str, *, url_chars: int = URL_CHARS) -> int:
    """The length a Mastodon server counts: URLs as ``url_chars``, remote mentions by username."""
    pieces: list[str] = []
    position = 0
    for start, end in urls(text, without_protocol=False):
        pieces += [_local_mentions(text[position:start]), "x" * url_chars]
        position = end
    pieces.append(_local_mentions(text[position:]))
    return grapheme_length("".join(pieces))


def _local_mentions(text: str) -> str:
    return _MENTION.sub(lambda m: "@" + m.group(1), text)


def threads_length(text: str) -> int:
    """The length Threads counts: code points, an emoji's code points by their UTF-8 bytes."""
    return sum(
        len(char.encode("utf-8")) if _EMOJI.match(char) else 1
        for char in unicodedata.normalize("NFC", text)
    )


def code_points(text: str) -> int:
    """Code points after NFC normalisation (the simulated platform's count)."""
    return len(unicodedata.normalize("NFC", text))


# The counting rule and the default post limit of each platform, for code that has no adapter
# to ask (the command line reviewing drafts offline).
LENGTHS: dict[str, Callable[[str], int]] = {
    "x": x_length,
    "bluesky": grapheme_length,
    "mastodon": mastodon_length,
    "threads": threads_length,
    "sandbox": code_points,
}
MAX_CHARS: dict[str, int] = {
    "x": X_MAX_CHARS,
    "bluesky": BLUESKY_MAX_GRAPHEMES,
    "mastodon": MASTODON_DEFAULT_MAX_CHARS,
    "threads": THREADS_MAX_CHARS,
}
