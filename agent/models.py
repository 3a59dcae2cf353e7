"""Value objects for growthloop's domain state.

They are frozen and converted at the store boundary (``from_row`` / ``as_row`` live in the store),
so the cycles pass typed values around, never rows or dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from adapters.base import AccountInfo, PlatformLimits, PostMetrics, PublishedPost

__all__ = [
    "DIMENSIONS",
    "AccountInfo",
    "ArmChoice",
    "Draft",
    "Plan",
    "PlatformLimits",
    "PostMetrics",
    "PostStatus",
    "PublishedPost",
]

DIMENSIONS: tuple[str, ...] = ("content_type", "formula", "hook")  # what the policy chooses


class PostStatus(StrEnum):
    PLANNED = "planned"  # written and checked, waiting for its scheduled time
    PUBLISHING = "publishing"  # intent recorded; the platform call may or may not have happened
    POSTED = "posted"  # the platform has it; snapshot rows exist
    FAILED = "failed"  # definitely not on the platform
    REJECTED = "rejected"  # refused by the quality gate; never sent
    DRY_RUN = "dry_run"  # went through the whole pipeline but was only logged


class Mode(StrEnum):
    LIVE = "live"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmChoice:
    """What the policy picked for one post."""

    content_type: str
    formula: str
    hook: str
    topic: str

    def arm(self, dimension: str) -> str:
        return str(getattr(self, dimension))


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A post the planner decided to make, before it is written."""

    account: str
    platform: str
    arms: ArmChoice
    scheduled_for: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """Everything a generator needs to write one post."""

    arms: ArmChoice
    persona: str
    niche: str
    max_chars: int
    descriptions: dict[str, str] = field(default_factory=dict)  # dimension -> arm description
    recent_texts: tuple[str, ...] = ()  # the account's latest posts, newest first


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """A written post and how it was written."""

    text: str
    generator: str
    model: str | None = None
    prompt_version: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
