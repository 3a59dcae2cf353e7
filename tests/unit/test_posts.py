"""agent/posts.py: reading the operator's times and statuses, and the refusals of ``growthloop
posts`` on the in-memory store (the store's own transitions are in
tests/integration/contract/test_queue.py; the CLI against a running daemon in
tests/acceptance/test_posts_cli.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent import posts
from agent.models import PostStatus
from agent.simulator import run_until
from agent.store.memory import MemoryStore
from agent.store.schema import system_health_metrics
from tests.conftest import T0
from tests.integration.contract.factories import account, planned, posted, publishing
from tests.unit.vt_harness import make_harness

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-12-08 14:00", datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),  # naive: UTC
        ("2026-12-08T14:00+02:00", datetime(2026, 12, 8, 12, 0, tzinfo=UTC)),
        ("2026-12-08T14:00Z", datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),
        ("now", NOW),
        (" NOW ", NOW),
        ("2026-12-07 11:59:30", datetime(2026, 12, 7, 11, 59, 30, tzinfo=UTC)),  # within a minute
    ],
)
def test_parse_when_at(at: str, expected: datetime) -> None:
    when = posts.parse_when(at=at, after=None, now=NOW)
    assert when == expected
    assert when.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)), ("1d", timedelta(days=1))],
)
def test_parse_when_in(after: str, expected: timedelta) -> None:
    assert posts.parse_when(at=None, after=after, now=NOW) == NOW + expected


@pytest.mark.parametrize(
    ("at", "after", "message"),
    [
        (None, None, "either --at"),
        ("now", "2h", "either --at"),
        ("tomorrow", None, "expected a time such as"),
        ("2026-12-07 10:00", None, "is in the past"),
        ("2026-12-07T13:00+02:00", None, "is in the past"),  # 11:00 UTC
        (None, "-2h", "expected a duration"),
        (None, "soon", "expected a duration"),
    ],
)
def test_parse_when_refuses(at: str | None, after: str | None, message: str) -> None:
    with pytest.raises(posts.PostError, match=message):
        posts.parse_when(at=at, after=after, now=NOW)


def test_parse_statuses() -> None:
    assert posts.parse_statuses([]) == posts.QUEUE
    assert posts.parse_statuses(["queued"]) == (PostStatus.PLANNED,)
    assert posts.parse_statuses(["Posted", "failed", "posted"]) == (
        PostStatus.POSTED,
        PostStatus.FAILED,
    )
    assert posts.parse_statuses(["all", "posted"]) == ()
    with pytest.raises(posts.PostError, match=r"Unknown status 'sent'.*cancelled"):
        posts.parse_statuses(["sent"])


def test_the_queue_is_listed_soonest_first_and_history_latest_first() -> None:
    assert not posts.newest_first(posts.QUEUE)
    assert not posts.newest_first([PostStatus.PLANNED])
    assert posts.newest_first([PostStatus.POSTED])
    assert posts.newest_first([PostStatus.PLANNED, PostStatus.CANCELLED])
    assert posts.newest_first(())  # all


async def test_cancel_and_reschedule_refuse_with_the_posts_state() -> None:
    store = MemoryStore()
    acc = await account(store)
    flying = await publishing(store, acc)
    done = await posted(store, acc, posted_at=T0 + timedelta(hours=1))
    draft = await planned(store, acc, status=PostStatus.DRAFT)
    refused = await planned(store, acc, status=PostStatus.REJECTED)

    cases: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (lambda: posts.cancel(store, flying.id, now=T0), "being published right now"),
        (lambda: posts.cancel(store, done.id, now=T0), f"platform id pid-{done.id}"),
        (lambda: posts.cancel(store, refused.id, now=T0), "is rejected: it is not queued"),
        (lambda: posts.cancel(store, 999, now=T0), "no post with id 999"),
        (lambda: posts.reschedule(store, draft.id, when=T0, now=T0), "drafts approve"),
        (lambda: posts.reschedule(store, done.id, when=T0, now=T0), "already posted"),
    ]
    for call, message in cases:
        with pytest.raises(posts.PostError, match=message):
            await call()
    assert (await posts.cancel(store, draft.id, now=T0))[1] is True
    post, changed = await posts.cancel(store, draft.id, now=T0)
    assert (post.status, changed) == (PostStatus.CANCELLED, False)


async def test_reschedule_to_a_passed_time_means_now() -> None:
    store = MemoryStore()
    acc = await account(store)
    post = await planned(store, acc, scheduled_for=T0 + timedelta(hours=5))

    moved = await posts.reschedule(store, post.id, when=T0 - timedelta(seconds=30), now=T0)

    assert moved.scheduled_for == T0
    assert [p.id for p in await store.due_posts(T0)] == [post.id]


async def test_list_posts_by_account_name() -> None:
    store = MemoryStore()
    acc = await account(store)
    other = await account(store, "second")
    mine = await planned(store, acc)
    await planned(store, other)

    assert [p.id for p in await posts.list_posts(store, account="main")] == [mine.id]
    with pytest.raises(posts.PostError, match=r"no account named 'nope'.*main, second"):
        await posts.list_posts(store, account="nope")
    with pytest.raises(posts.PostError, match="--limit"):
        await posts.list_posts(store, limit=0)


# -- with the cycles, in virtual time (tests/unit/vt_harness.py) ---------------------------------


async def test_a_cancelled_post_frees_its_slot_is_never_sent_nor_counted_nor_learned(
    tmp_path: Path,
) -> None:
    async with make_harness(tmp_path) as h:
        await h.run_cycles("plan")
        (queued,) = await h.with_status(PostStatus.PLANNED)
        cancelled, changed = await posts.cancel(h.store, queued.id, now=h.clock.now())
        assert changed and cancelled.status is PostStatus.CANCELLED

        await h.run_cycles("plan")
        (replacement,) = await h.with_status(PostStatus.PLANNED)
        assert replacement.scheduled_for == queued.scheduled_for  # the slot it freed
        with capture_logs() as logs:
            await run_until(h.agent, h.clock, T0 + timedelta(days=2))

        after = [p for p in await h.posts() if p.id == queued.id]
        assert [(p.status, p.publish_attempts, p.learned_at) for p in after] == [
            ("cancelled", 0, None)
        ]
        assert queued.text not in h.world_texts()
        published = [e["content_id"] for e in logs if e["event"] == "post_published"]
        assert replacement.id in published and queued.id not in published
        assert any(e["event"] == "posterior_updated" for e in logs)  # learning ran, without it
        health = await h.rows(system_health_metrics)
        assert sum(r.posts_succeeded for r in health) == len(published)
        assert sum(r.posts_failed for r in health) == 0


@pytest.mark.parametrize(
    ("ahead", "text"),
    [
        (timedelta(seconds=-5), "due"),
        (timedelta(0), "due"),
        (timedelta(seconds=20), "in 1m"),
        (timedelta(minutes=59), "in 59m"),
        (timedelta(hours=2, minutes=5), "in 2h 05m"),
        (timedelta(days=3, hours=4, minutes=10), "in 3d 4h"),
    ],
)
def test_relative_slot(ahead: timedelta, text: str) -> None:
    assert posts.relative(NOW + ahead, NOW) == text


def test_parse_id() -> None:
    assert posts.parse_id(" 42 ") == 42
    for bad in ("abc", "-3", "0", "4.2", ""):
        with pytest.raises(posts.PostError, match="is not a post id"):
            posts.parse_id(bad)


async def test_posts_list_prints_one_line_per_post_however_long_its_text() -> None:
    """Regression: the text column wrapped a long word onto a second line (`productiv…`), which
    read as a row of its own; `posts list` is one line per post, cut with an ellipsis."""
    import io

    from rich.console import Console

    store = MemoryStore()
    acc = await account(store)
    long_words = " ".join(["productivity-engineering"] * 12)
    post = await planned(store, acc, scheduled_for=T0 + timedelta(hours=2), text=long_words)
    for width in (80, 140):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=False)
        found = await store.list_posts(statuses=(PostStatus.PLANNED,))
        posts.print_posts(
            console, found, {acc: "demo"}, statuses=(PostStatus.PLANNED,), limit=50, now=T0
        )
        rows = [line for line in buffer.getvalue().splitlines() if "│" in line]  # data rows
        assert len(rows) == 1, buffer.getvalue()
        cells = [c.strip() for c in rows[0].strip("│ ").split("│")]
        assert cells[:3] == [str(post.id), "demo", "planned"]
        assert cells[-1].endswith("…") and long_words.startswith(cells[-1][:-1])
