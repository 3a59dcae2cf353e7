"""``growthloop drafts``: the approval queue (approve mode) - list, show, approve, reject or edit
drafts (agent/drafts.py). Safe while daemons run on the same database, SQLite included."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from agent.cli_support import ConfigOption, load, out, with_store
from agent.config import Config

drafts_app = typer.Typer(
    help="The approval queue (approve mode): list, approve, reject or edit drafts.",
    no_args_is_help=True,
)
T = TypeVar("T")


def _drafts_store(cfg: Config, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from agent.drafts import DraftError

    return with_store(cfg, work, refusals=(DraftError,))


DraftId = Annotated[int, typer.Argument(help="The draft's id (see `growthloop drafts list`).")]


@drafts_app.command("list")
def drafts_list(config: ConfigOption = None) -> None:
    """List the drafts waiting for approval, oldest first."""
    from agent.drafts import print_drafts

    async def work(store: Any) -> None:
        print_drafts(out, await store.drafts(), await store.account_names())

    _drafts_store(load(config), work)


@drafts_app.command("show")
def drafts_show(content_id: DraftId, config: ConfigOption = None) -> None:
    """Show one draft in full."""
    from agent.drafts import get_draft, print_draft

    async def work(store: Any) -> None:
        post = await get_draft(store, content_id)
        names = await store.account_names()
        print_draft(out, post, names.get(post.account_id, str(post.account_id)))

    _drafts_store(load(config), work)


@drafts_app.command("approve")
def drafts_approve(content_id: DraftId, config: ConfigOption = None) -> None:
    """Queue a draft: it is published at its slot (at once if the slot has passed)."""
    from agent.drafts import approve

    async def work(store: Any) -> Any:
        return await approve(store, content_id, now=datetime.now(UTC))

    post = _drafts_store(load(config), work)
    when = post.scheduled_for.strftime("%Y-%m-%d %H:%M")
    out.print(f"[green]approved[/] draft {content_id}; queued for {when} UTC", highlight=False)


@drafts_app.command("reject")
def drafts_reject(
    content_id: DraftId,
    config: ConfigOption = None,
    reason: Annotated[str, typer.Option(help="Why (stored with the post).")] = (
        "rejected by a person"
    ),
) -> None:
    """Drop a draft (never sent); the planner writes the next one."""
    from agent.drafts import reject

    async def work(store: Any) -> Any:
        return await reject(store, content_id, reason=reason, now=datetime.now(UTC))

    _drafts_store(load(config), work)
    out.print(f"[yellow]rejected[/] draft {content_id} ({reason})", highlight=False)


@drafts_app.command("edit")
def drafts_edit(
    content_id: DraftId,
    text: Annotated[str, typer.Option(help="The new text (checked by the quality gate).")],
    config: ConfigOption = None,
) -> None:
    """Replace a draft's text; the quality gate checks it first and refuses with the reason."""
    from agent.drafts import edit

    cfg = load(config)

    async def work(store: Any) -> Any:
        return await edit(store, cfg, content_id, text=text, now=datetime.now(UTC))

    _drafts_store(cfg, work)
    out.print(f"[green]edited[/] draft {content_id}; still waiting for approval", highlight=False)
