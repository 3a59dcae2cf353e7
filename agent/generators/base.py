"""The generator interface."""

from __future__ import annotations

from typing import Protocol

from agent.models import Draft, GenerationRequest


class Generator(Protocol):
    """Writes the text of one post. Raises GenerationError when it cannot."""

    name: str

    async def write(self, request: GenerationRequest) -> Draft: ...

    async def moderate(self, text: str) -> str | None:
        """None when ``text`` may be posted, else why not (a moderation service's verdict).

        A generator with no moderation service returns None. Raises GenerationError when the
        service cannot answer: the caller must not publish an unchecked post.
        """
        ...
