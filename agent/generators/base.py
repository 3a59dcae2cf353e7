"""The generator interface."""

from __future__ import annotations

from typing import Protocol

from agent.models import Draft, GenerationRequest


class Generator(Protocol):
    """Writes the text of one post. Raises GenerationError when it cannot."""

    name: str

    async def write(self, request: GenerationRequest) -> Draft: ...
