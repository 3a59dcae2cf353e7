"""The approval queue: what ``growthloop drafts`` does in approve mode.

In approve mode the planner stores a draft that passed the quality gate as ``draft`` instead of
``planned``; it waits here until a person approves it (it becomes ``planned`` and the publish
cycle sends it at its slot, or at once if the slot has passed), rejects it, or edits it (the new
text goes through the same gate). A draft counts as its account's one queued post, so nothing
more is planned for that account meanwhile; one nobody approves within
``approval.draft_expiry`` is rejected by the plan cycle ("expired unapproved").

These functions take the store and ``now``; the command line (``agent/cli.py``) opens the store,
reads the clock and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table

from adapters.base import text_hash
from adapters.length import LENGTHS, MAX_CHARS
from agent import gate
from agent.config import Account, Config
from agent.errors import GrowthloopError
from agent.models import Post, PostStatus
from agent.store.base import Store

DEFAULT_REJECT_REASON = "rejected by a person"  # stored as the post's error
PREVIEW_CHARS = 60  # of a draft's text in the list


class DraftError(GrowthloopError):
    """The draft cannot be used."""


class UnknownDraft(DraftError):
    """There is no draft with that id."""


class DraftRefused(DraftError):
    """The quality gate refused the edited text."""


async def get_draft(store: Store, content_id: int) -> Post:
    """The post ``content_id`` if it is a draft waiting for approval, else :class:`UnknownDraft`."""
    post = await store.get_post(content_id)
    if post is None:
        raise UnknownDraft(f"There is no post with id {content_id}.")
    if post.status is not PostStatus.DRAFT:
        raise UnknownDraft(
            f"Post {content_id} is not a draft waiting for approval (it is {post.status.value})."
        )
    return post


async def approve(store: Store, content_id: int, *, now: datetime) -> Post:
    """Queue the draft: ``planned`` at its slot, or at ``now`` if the slot has passed."""
    await get_draft(store, content_id)
    if not await store.approve_draft(content_id, now=now):
        raise UnknownDraft(f"Post {content_id} stopped being a draft meanwhile.")
    return await _reload(store, content_id)


async def reject(
    store: Store, content_id: int, *, reason: str = DEFAULT_REJECT_REASON, now: datetime
) -> Post:
    """Drop the draft (``rejected``, never sent); the planner writes the next one."""
    await get_draft(store, content_id)
    if not await store.reject_draft(content_id, reason=reason, now=now):
        raise UnknownDraft(f"Post {content_id} stopped being a draft meanwhile.")
    return await _reload(store, content_id)


async def edit(store: Store, config: Config, content_id: int, *, text: str, now: datetime) -> Post:
    """Replace the draft's text, after the quality gate passed it (:class:`DraftRefused` if not).

    The gate compares the new text with the account's recent posts, as the planner does.
    """
    post = await get_draft(store, content_id)
    account = await _account(store, config, post.account_id)
    recent = await store.recent_texts(post.account_id, config.gate.recent_posts)
    reason = gate.check(
        text,
        recent=recent,
        max_chars=max_chars(config, account.platform),
        gate=config.gate,
        length=LENGTHS[account.platform],
    )
    if reason is not None:
        raise DraftRefused(f"The quality gate refused the new text: {reason}.")
    if not await store.edit_draft(content_id, text=text, text_hash=text_hash(text), now=now):
        raise UnknownDraft(f"Post {content_id} stopped being a draft meanwhile.")
    return await _reload(store, content_id)


def max_chars(config: Config, platform: str) -> int:
    """The platform's post length limit, as its adapter reports it."""
    if platform == "sandbox":
        from adapters.sandbox import Scenario

        scenario = Scenario.load(config.sandbox.scenario)
        return int(scenario.platform.max_chars)
    return MAX_CHARS[platform]


async def _account(store: Store, config: Config, account_id: int) -> Account:
    name = (await store.account_names()).get(account_id)
    for account in config.accounts:
        if account.name == name:
            return account
    raise DraftError(f"The draft's account ({name or account_id}) is not in the config.")


async def _reload(store: Store, content_id: int) -> Post:
    post = await store.get_post(content_id)
    if post is None:  # pragma: no cover - posts are never deleted
        raise UnknownDraft(f"There is no post with id {content_id}.")
    return post


# -- printing -------------------------------------------------------------------------------


def print_drafts(console: Console, drafts: Sequence[Post], names: dict[int, str]) -> None:
    """The queue as a table, oldest first."""
    if not drafts:
        console.print("no drafts waiting for approval")
        return
    table = Table(title=f"Drafts waiting for approval ({len(drafts)})")
    for col in ("id", "account", "created (UTC)", "slot (UTC)", "content type", "text"):
        table.add_column(col, justify="right" if col == "id" else "left")
    for post in drafts:
        preview = " ".join(post.text.split())
        if len(preview) > PREVIEW_CHARS:
            preview = preview[: PREVIEW_CHARS - 1] + "…"
        table.add_row(
            str(post.id),
            names.get(post.account_id, str(post.account_id)),
            post.created_at.strftime("%Y-%m-%d %H:%M"),
            post.scheduled_for.strftime("%Y-%m-%d %H:%M"),
            post.arms.content_type,
            preview,
        )
    console.print(table)


def print_draft(console: Console, post: Post, account: str) -> None:
    """One post in full: its state, its slot, what it was written as, and its text."""
    arms = post.arms
    console.print(f"[bold]post {post.id}[/] ({post.status.value}) for {account}", highlight=False)
    console.print(f"created {post.created_at:%Y-%m-%d %H:%M} UTC", highlight=False)
    console.print(f"slot    {post.scheduled_for:%Y-%m-%d %H:%M} UTC", highlight=False)
    console.print(
        f"arms    content_type={arms.content_type} formula={arms.formula} hook={arms.hook} "
        f"topic={arms.topic}",
        highlight=False,
    )
    if post.error:
        console.print(f"error   {post.error}", highlight=False)
    console.print()
    console.print(post.text, highlight=False, markup=False)
