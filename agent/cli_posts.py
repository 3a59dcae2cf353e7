"""``growthloop posts``: list, show, cancel and reschedule queued posts (agent/posts.py).

Registered on the main app by :mod:`agent.cli`; the helpers (config loading, error paragraphs,
the consoles) are :mod:`agent.cli_support`'s. They open the store as ``drafts`` does,
take no lock, and work while daemons run on the same database, SQLite included.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from agent.cli_support import ConfigOption, fail, out, with_store
from agent.cli_support import load as _load
from agent.posts import (
    DEFAULT_CANCEL_REASON,
    DEFAULT_LIMIT,
    PostError,
    cancel,
    get_post,
    list_posts,
    parse_id,
    parse_statuses,
    parse_when,
    print_post,
    print_posts,
    reschedule,
)

posts_app = typer.Typer(
    help="The queue of posts: list, show, cancel or reschedule them (safe while daemons run).",
    no_args_is_help=True,
)
T = TypeVar("T")

PostId = Annotated[
    str, typer.Argument(help="The post's id (see `growthloop posts list`).", show_default=False)
]


def _id(value: str) -> int:
    """The id argument, or one line and exit code 2 (Typer's own error is a framed box)."""
    try:
        return parse_id(value)
    except PostError as exc:
        fail(str(exc), 2)
        raise


def _with_store(config: ConfigOption, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(store)`` on the config's store; a refusal prints one paragraph, exit code 2."""
    return with_store(_load(config), work, refusals=(PostError,))


@posts_app.command("list")
def posts_list(
    config: ConfigOption = None,
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="Only this account's posts.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only posts in this status (repeatable): planned (or queued), publishing, "
            "posted, failed, draft, cancelled, rejected, dry_run; `queue` (the default: "
            "planned, publishing and draft, soonest first) or `all` (latest first).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many posts.")] = DEFAULT_LIMIT,
) -> None:
    """List posts: by default the queue (not yet published), soonest first."""

    async def work(store: Any) -> None:
        statuses = parse_statuses(status or ())
        posts = await list_posts(store, account=account, statuses=statuses, limit=limit)
        names = await store.account_names()
        now = datetime.now(UTC)
        print_posts(out, posts, names, statuses=statuses, limit=limit, now=now)

    _with_store(config, work)


@posts_app.command("show")
def posts_show(post_id: PostId, config: ConfigOption = None) -> None:
    """Show one post in full: status, slot, attempts, errors, platform id, arms and text."""
    content_id = _id(post_id)

    async def work(store: Any) -> None:
        post = await get_post(store, content_id)
        names = await store.account_names()
        print_post(out, post, names.get(post.account_id, str(post.account_id)))

    _with_store(config, work)


@posts_app.command("cancel")
def posts_cancel(
    post_id: PostId,
    config: ConfigOption = None,
    reason: Annotated[str, typer.Option(help="Why (stored with the post).")] = (
        DEFAULT_CANCEL_REASON
    ),
) -> None:
    """Cancel a queued post (planned, or a draft): never published, even by a running daemon."""
    content_id = _id(post_id)

    async def work(store: Any) -> Any:
        return await cancel(store, content_id, reason=reason, now=datetime.now(UTC))

    post, changed = _with_store(config, work)
    if changed:
        out.print(f"[yellow]cancelled[/] post {content_id} ({reason})", highlight=False)
    else:
        out.print(f"post {content_id} was already cancelled ({post.error})", highlight=False)


@posts_app.command("reschedule")
def posts_reschedule(
    post_id: PostId,
    config: ConfigOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="The new time: '2026-12-08 14:00' (UTC), ISO 8601 with an offset, or 'now' "
            "(the next publish cycle).",
        ),
    ] = None,
    after: Annotated[
        str | None, typer.Option("--in", help="The new time from now: 30m, 2h, 1d.")
    ] = None,
) -> None:
    """Move a queued (planned) post to another time."""
    content_id = _id(post_id)

    async def work(store: Any) -> Any:
        now = datetime.now(UTC)
        when = parse_when(at=at, after=after, now=now)
        return await reschedule(store, content_id, when=when, now=now)

    post = _with_store(config, work)
    when = f"{post.scheduled_for:%Y-%m-%d %H:%M:%S}"
    out.print(f"[green]rescheduled[/] post {content_id} to {when} UTC", highlight=False)
