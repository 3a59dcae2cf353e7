"""The queue of posts as an operator manages it: what ``growthloop posts`` does.

In live mode the planner queues each written, checked post as ``planned`` at its slot and the
publish cycle sends it once the slot has come. A person can list the queue (and any other posts
by status), show one post in full, **cancel** a queued post (``planned``, or a ``draft`` in
approve mode: it becomes ``cancelled`` and is never sent) or **move** a planned post to another
time (``reschedule``; ``now`` sends it at the publish cycle's next tick).

Both changes are safe while daemons run on the same database: the store applies them with one
conditional update (:mod:`agent.store.sql_queue`), and the publish cycle claims a post the same
way (``begin_publish``: ``planned`` -> ``publishing`` only while the row is still ``planned``).
Whichever commits first wins: a cancelled post can never be claimed, and a post already claimed
(``publishing``) or ``posted`` can no longer be cancelled - that is refused with the reason.
The claim also requires the post to be due by the cycle's time, so a post moved later after a
cycle read it as due is not sent at its old time. A cancelled post frees its slot as a rejected
draft does, so the planner writes the next one; it never counts as published, failed or learned.

These functions take the store and ``now``; the command line (``agent/cli_posts.py``) opens the
store, reads the clock and prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from agent.config import parse_duration
from agent.errors import GrowthloopError
from agent.models import CANCELLABLE, MOVABLE, Post, PostStatus
from agent.store.base import Store

DEFAULT_CANCEL_REASON = "cancelled by a person"  # stored as the post's error
DEFAULT_LIMIT = 50  # posts listed
PREVIEW_CHARS = 50  # of a post's text in the list (a row fits 140 columns)
PAST_TOLERANCE = timedelta(minutes=1)  # a reschedule time this far back still means "now"
QUEUE = (PostStatus.PLANNED, PostStatus.PUBLISHING, PostStatus.DRAFT)  # not yet published
# --status values besides the statuses themselves
STATUS_ALIASES: dict[str, tuple[PostStatus, ...]] = {
    "queue": QUEUE,
    "queued": (PostStatus.PLANNED,),
    "all": (),
}


class PostError(GrowthloopError):
    """The post cannot be used."""


class UnknownPost(PostError):
    """There is no post with that id."""


class PostRefused(PostError):
    """The post's state does not allow that change."""


# -- reading --------------------------------------------------------------------------------


def parse_statuses(values: Iterable[str]) -> tuple[PostStatus, ...]:
    """``--status`` values as statuses: a status, ``queued`` (planned), ``queue`` (the default:
    planned, publishing and draft) or ``all`` (any status). None given: the queue."""
    found: list[PostStatus] = []
    given = [v.strip().lower() for v in values]
    if not given:
        return QUEUE
    if "all" in given:
        return ()
    for value in given:
        if value in STATUS_ALIASES:
            found.extend(STATUS_ALIASES[value])
            continue
        try:
            found.append(PostStatus(value))
        except ValueError:
            choices = ", ".join([*STATUS_ALIASES, *(s.value for s in PostStatus)])
            raise PostError(f"Unknown status {value!r}: use one of {choices}.") from None
    return tuple(dict.fromkeys(found))


def newest_first(statuses: Sequence[PostStatus]) -> bool:
    """The queue is listed soonest first; history (any other status, or all) latest first."""
    return not statuses or not set(statuses) <= set(QUEUE)


async def account_id(store: Store, name: str) -> int:
    """The stored account called ``name``, else a :class:`PostError` naming the known ones."""
    names = await store.account_names()
    for found, known in names.items():
        if known == name:
            return found
    known_names = ", ".join(sorted(names.values())) or "none yet"
    raise PostError(
        f"There is no account named {name!r} in this database (accounts: {known_names})."
    )


async def list_posts(
    store: Store,
    *,
    account: str | None = None,
    statuses: Sequence[PostStatus] = QUEUE,
    limit: int = DEFAULT_LIMIT,
) -> list[Post]:
    """Posts of ``account`` (or every account) in ``statuses`` (empty: any), ordered as
    :func:`newest_first` says."""
    if limit < 1:
        raise PostError(f"--limit must be at least 1 (got {limit}).")
    return await store.list_posts(
        account_id=await account_id(store, account) if account is not None else None,
        statuses=statuses,
        newest_first=newest_first(statuses),
        limit=limit,
    )


def parse_id(value: str) -> int:
    """A post id as typed: a positive whole number, else a :class:`PostError`."""
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise PostError(
            f"{value!r} is not a post id: ids are whole numbers (see `growthloop posts list`)."
        )
    return int(text)


async def get_post(store: Store, content_id: int) -> Post:
    """The post ``content_id``, else :class:`UnknownPost`."""
    post = await store.get_post(content_id)
    if post is None:
        raise UnknownPost(f"There is no post with id {content_id} (see `growthloop posts list`).")
    return post


# -- changing -------------------------------------------------------------------------------


async def cancel(
    store: Store, content_id: int, *, reason: str = DEFAULT_CANCEL_REASON, now: datetime
) -> tuple[Post, bool]:
    """Cancel a queued post (planned or draft): it is never sent. Returns the post and whether
    this call cancelled it (False: it already was). :class:`PostRefused` for any other state."""
    post = await get_post(store, content_id)
    if post.status is PostStatus.CANCELLED:
        return post, False
    if post.status not in CANCELLABLE:
        raise PostRefused(_cannot_cancel(post))
    if not await store.cancel_post(content_id, reason=reason, now=now):
        post = await get_post(store, content_id)  # the publish cycle (or someone) came first
        if post.status is not PostStatus.CANCELLED:
            raise PostRefused(_cannot_cancel(post))
        return post, False
    return await get_post(store, content_id), True


async def reschedule(store: Store, content_id: int, *, when: datetime, now: datetime) -> Post:
    """Move a planned post to ``when`` (a time already passed: the next publish cycle).
    :class:`PostRefused` for a post that is not planned."""
    post = await get_post(store, content_id)
    if post.status not in MOVABLE:
        raise PostRefused(_cannot_move(post))
    if not await store.move_post(content_id, scheduled_for=max(when, now), now=now):
        raise PostRefused(_cannot_move(await get_post(store, content_id)))
    return await get_post(store, content_id)


def parse_when(*, at: str | None, after: str | None, now: datetime) -> datetime:
    """The time ``--at`` (``2026-12-08 14:00`` in UTC, ISO 8601 with an offset, or ``now``) or
    ``--in`` (a duration from now: ``90m``, ``2h``, ``1d``) names, in UTC. Exactly one of them;
    a time more than a minute in the past is refused (a typo, not a wish to post at once)."""
    if (at is None) == (after is None):
        raise PostError("Say when: either --at TIME (UTC, or ISO 8601 with an offset) or --in 2h.")
    if after is not None:
        try:
            delta: timedelta = parse_duration(after.strip())
        except ValueError:
            raise PostError(f"--in {after!r}: expected a duration such as 30m, 2h or 1d.") from None
        return now + delta
    assert at is not None
    if at.strip().lower() == "now":
        return now
    try:
        when = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PostError(
            f"--at {at!r}: expected a time such as '2026-12-08 14:00' (UTC), "
            "'2026-12-08T14:00+01:00' or 'now'."
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when < now - PAST_TOLERANCE:
        raise PostError(
            f"--at {when:%Y-%m-%d %H:%M} UTC is in the past (it is {now:%Y-%m-%d %H:%M} UTC "
            "now); use --at now to publish at the next cycle."
        )
    return when


def _cannot_cancel(post: Post) -> str:
    match post.status:
        case PostStatus.PUBLISHING:
            return (
                f"Post {post.id} is being published right now: it can no longer be cancelled. "
                "If it reaches the platform, delete it there."
            )
        case PostStatus.POSTED:
            return (
                f"Post {post.id} was already posted{_posted(post)}: it can no longer be "
                "cancelled; delete it on the platform."
            )
        case _:
            state = post.status.value
            return f"Post {post.id} is {state}: it is not queued, so it will not be sent."


def _cannot_move(post: Post) -> str:
    match post.status:
        case PostStatus.DRAFT:
            return (
                f"Post {post.id} is a draft waiting for approval: approve it with "
                f"`growthloop drafts approve {post.id}` first (it then goes out at its slot)."
            )
        case PostStatus.PUBLISHING:
            return f"Post {post.id} is being published right now: it can no longer be moved."
        case PostStatus.POSTED:
            return f"Post {post.id} was already posted{_posted(post)}: it can no longer be moved."
        case _:
            return (
                f"Post {post.id} is {post.status.value}: only a queued (planned) post can be "
                "rescheduled."
            )


def _posted(post: Post) -> str:
    when = f" at {post.posted_at:%Y-%m-%d %H:%M} UTC" if post.posted_at else ""
    return when + (f" (platform id {post.platform_post_id})" if post.platform_post_id else "")


# -- printing -------------------------------------------------------------------------------


def print_posts(
    console: Console,
    posts: Sequence[Post],
    names: dict[int, str],
    *,
    statuses: Sequence[PostStatus],
    limit: int,
    now: datetime,
) -> None:
    """The posts as one table, in the order given; queued posts say how soon they are due."""
    what = "any status" if not statuses else ", ".join(s.value for s in statuses)
    if not posts:
        console.print(f"no posts ({what})", highlight=False)
        return
    more = f", the first {limit} (--limit)" if len(posts) >= limit else ""
    table = Table(title=f"Posts ({what}): {len(posts)}{more}", expand=True)
    # one line per post, whatever the width: the text is cut with an ellipsis, never wrapped
    # (`posts show ID` has it in full)
    for col in ("id", "account", "status", "scheduled (UTC)", "type / formula"):
        table.add_column(col, justify="right" if col == "id" else "left", no_wrap=True)
    # the text takes the width that is left (ratio), so it is the column that gives way
    table.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
    for post in posts:
        arms = post.arms
        slot = f"{post.scheduled_for:%Y-%m-%d %H:%M}"
        if post.status is PostStatus.PLANNED:
            slot += f" ({relative(post.scheduled_for, now)})"
        table.add_row(
            str(post.id),
            names.get(post.account_id, str(post.account_id)),
            post.status.value,
            slot,
            f"{arms.content_type} / {arms.formula}",
            preview(post.text),
        )
    console.print(table)


def relative(at: datetime, now: datetime) -> str:
    """``in 2h 05m``, ``due`` (the next publish cycle sends it) or ``in 3d 4h``."""
    seconds = int((at - now).total_seconds())
    if seconds <= 0:
        return "due"
    minutes = max(seconds // 60, 1)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"in {days}d {hours}h"
    return f"in {hours}h {minutes:02d}m" if hours else f"in {minutes}m"


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def print_post(console: Console, post: Post, account: str) -> None:
    """One post in full: its state and history, what it was written as, and its text."""
    arms = post.arms
    meta = post.generation_metadata
    lines = [
        ("status", post.status.value),
        ("slot", _time(post.scheduled_for)),
        ("created", _time(post.created_at)),
        ("updated", _time(post.updated_at)),
        ("arms", f"content_type={arms.content_type} formula={arms.formula} hook={arms.hook}"),
        ("format", f"thread of {len(post.parts)} parts" if post.parts else ""),
        ("topic", arms.topic),
        ("written", f"{meta.get('generator', '?')} {meta.get('model') or ''}".strip()),
        ("attempts", str(post.publish_attempts)),
        ("publish started", _time(post.publish_started_at)),
        ("posted", _time(post.posted_at)),
        ("platform id", post.platform_post_id or ""),
        ("learned", _time(post.learned_at)),
        ("reason" if post.status is PostStatus.CANCELLED else "error", post.error or ""),
    ]
    console.print(f"[bold]post {post.id}[/] for {account}", highlight=False)
    for label, value in lines:
        if value:
            console.print(f"{label:<16}{value}", highlight=False, markup=False)
    console.print()
    console.print(post.text, highlight=False, markup=False)


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else ""
