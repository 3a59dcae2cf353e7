"""What the adapter contract suite needs from each platform's test set-up.

Every platform (the sandbox and each real adapter against its local test server) provides an
async context manager factory yielding a :class:`Harness`; ``tests/adapters/test_contract.py``
runs the same tests against all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from adapters.base import Platform

# Failure kinds every harness understands (the next `count` matching calls fail that way):
#   "rate_limit"    - HTTP 429 with a reset time (the platform's own rate-limit headers)
#   "unavailable"   - HTTP 503 (or the platform's equivalent server error)
#   "lose_response" - on publish: the server stores the post, then drops the connection /
#                     answers after the client's timeout (the outcome is unknown to the client)
#   "auth"          - HTTP 401 (bad or insufficient credentials)
#   "malformed"     - HTTP 200 with a body that is not valid JSON
FAILURE_KINDS = ("rate_limit", "unavailable", "lose_response", "auth", "malformed")


class Harness(Protocol):
    platform: Platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` calls fail as ``kind`` (see FAILURE_KINDS)."""
        ...

    def stored_texts(self) -> list[str]:
        """The texts of the account's posts as the server holds them (for exactly-once checks)."""
        ...

    def supports(self, kind: str) -> bool:
        """Whether this platform can simulate ``kind`` (the sandbox has no 'malformed')."""
        ...

    # -- threads (docs/threads.md) --

    def parent_of(self, post_id: str) -> str | None:
        """The post ``post_id`` replies to, as the server stores it (None: a top-level post)."""
        ...

    def lose_response_after(self, creates: int) -> None:
        """Let the next ``creates`` posts through, then store the one after and lose its answer
        (the "lose_response" failure, one create later). Wire platforms only."""
        ...


HarnessFactory = Callable[[], AbstractAsyncContextManager[Harness]]
