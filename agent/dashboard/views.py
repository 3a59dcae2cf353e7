"""What the dashboard and the JSON API show, read through the store methods the CLI uses.

One truth: every figure here comes from the same call as its command-line twin, so the page, the
API and the terminal agree.

============================  ========================================================
figure                        read with (and shown by)
============================  ========================================================
pending work                  ``Store.pending_work`` (``growthloop health``, ``/healthz``)
hourly health rows            ``Store.latest_health`` (``growthloop health``)
leading arm per dimension     ``Store.arm_stats``: the ``arm_statistics`` rows behind the
                              seed-named SQL views (``growthloop health``)
platform cost this month      ``Store.platform_costs`` (``growthloop health``)
publishing on / paused        ``pause_reason``: the environment, then ``Store.paused``
                              (``/healthz``, ``growthloop health``)
suspended accounts            ``Store.suspensions`` (``growthloop health``, ``/healthz``)
next posts                    ``Store.list_posts`` planned + publishing, soonest first
                              (``growthloop posts list --status planned --status publishing``)
drafts waiting for approval   ``Store.drafts`` (``growthloop drafts list``)
recent activity               ``Store.list_posts`` any status, latest slot first
                              (``growthloop posts list --status all``)
followers now                 ``Store.last_account_snapshots``
insights                      ``Store.insights`` (``growthloop insights``)
an account's report           :func:`agent.report.data.gather` (``growthloop report``)
============================  ========================================================

Everything is returned as plain values (dicts, lists, numbers, strings, datetimes);
:func:`jsonable` turns datetimes and dates into ISO strings for the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from agent.core import Agent
from agent.cycles.publish import pause_reason
from agent.models import ArmStat, Post, PostStatus, StoredInsight, Suspension
from agent.report.data import Report, gather, insight_views
from agent.summary import by_dimension

HEALTH_HOURS = 12  # hourly rows shown: `growthloop health`'s default (--hours 12)
QUEUE_LIMIT = 20  # next posts and drafts listed
ACTIVITY_LIMIT = 20  # recent posts listed
PREVIEW_CHARS = 140  # of a post's text in the lists
MAX_REPORT_DAYS = 366  # the longest period ?days= accepts
UPCOMING = (PostStatus.PLANNED, PostStatus.PUBLISHING)


class BadRequest(ValueError):
    """A query parameter that cannot be used (the API answers 400 with this message)."""


def jsonable(value: Any) -> Any:
    """Datetimes and dates as ISO strings, dataclasses as dicts, tuples as lists, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def post_view(post: Post, names: Mapping[int, str]) -> dict[str, Any]:
    meta = post.generation_metadata
    return {
        "id": post.id,
        "account": names.get(post.account_id, str(post.account_id)),
        "status": post.status.value,
        "scheduled_for": post.scheduled_for,
        "posted_at": post.posted_at,
        "created_at": post.created_at,
        "updated_at": post.updated_at,
        "arms": {d: meta.get(d, "") for d in ("content_type", "formula", "hook", "topic")},
        "text": post.text[:PREVIEW_CHARS] + ("…" if len(post.text) > PREVIEW_CHARS else ""),
        "platform_post_id": post.platform_post_id,
        "error": post.error,
    }


def suspension_view(s: Suspension) -> dict[str, Any]:
    return {
        "account": s.account,
        "platform": s.platform,
        "reason": s.reason,
        "error_type": s.error_kind,
        "detail": s.detail,
        "since": s.suspended_at,
        "until": s.until,
    }


def arm_view(s: ArmStat) -> dict[str, Any]:
    return {
        "arm": s.arm,
        "posts": s.posts,
        "mean": s.mean,
        "low": s.interval_low,
        "high": s.interval_high,
        "p_best": s.p_best,
        "model": s.model,
    }


def insight_view(i: StoredInsight) -> dict[str, Any]:
    return {
        "id": i.id,
        "account": i.account,
        "kind": i.kind,
        "subject": i.subject,
        "severity": i.severity,
        "recommendation": i.recommendation,
        "statement": i.statement,
        "value": i.value,
        "low": i.low,
        "high": i.high,
        "probability": i.probability,
        "unit": i.unit,
        "first_seen_at": i.first_seen_at,
        "updated_at": i.updated_at,
        "resolved_at": i.resolved_at,
        "acknowledged_at": i.acknowledged_at,
    }


async def leaders(agent: Agent) -> list[dict[str, Any]]:
    """Each account's leading arm per dimension at the latest learning step: the rows of
    ``growthloop health``'s "What the deciding model believes" table, in its order."""
    store = agent.store
    out = []
    for account_id, name in sorted((await store.account_names()).items()):
        for dimension, rows in by_dimension(await store.arm_stats(account_id)).items():
            out.append({"account": name, "dimension": dimension, **arm_view(rows[0])})
    return out


async def health(agent: Agent, now: datetime, *, hours: int = HEALTH_HOURS) -> dict[str, Any]:
    """What ``growthloop health`` prints, as data."""
    store = agent.store
    reason = await pause_reason(agent)
    return {
        "now": now,
        "publishing": {"on": reason is None, "pause_reason": reason},
        "pending": await store.pending_work(now),
        "counts": await store.counts(),
        "hours": await store.latest_health(limit=hours),
        "leaders": await leaders(agent),
        "platform_costs": [
            {**jsonable(c), "cost_per_post_usd": c.cost_per_post_usd}
            for c in await store.platform_costs(at=now)
        ],
        "suspended": [suspension_view(s) for s in await store.suspensions(now=now)],
    }


async def queue(
    agent: Agent, now: datetime, *, account: str | None = None, limit: int = QUEUE_LIMIT
) -> dict[str, Any]:
    """The next posts (planned or being published, soonest first), the drafts waiting for a
    person (oldest first) and the suspended accounts: of every account, or of ``account`` (a
    configured name; the pending work is always every account's, as ``growthloop health``)."""
    store = agent.store
    names = await store.account_names()
    account_id: int | None = None
    if account is not None:
        account_name(agent, account)
        ids = {name: i for i, name in names.items()}
        if account not in ids:  # configured, never run: nothing queued yet
            account_id = -1
        else:
            account_id = ids[account]
    upcoming = await store.list_posts(account_id=account_id, statuses=UPCOMING, limit=limit)
    drafts = await store.drafts(account_id)
    held = await store.suspensions(now=now)
    return {
        "now": now,
        "account": account,
        "pending": await store.pending_work(now),
        "next_posts": [post_view(p, names) for p in upcoming],
        "drafts": [post_view(p, names) for p in drafts[:limit]],
        "drafts_waiting": len(drafts),
        "suspended": [suspension_view(s) for s in held if account is None or s.account == account],
    }


async def activity(agent: Agent, *, limit: int = ACTIVITY_LIMIT) -> list[dict[str, Any]]:
    """The latest posts in any status, latest slot first."""
    names = await agent.store.account_names()
    posts = await agent.store.list_posts(newest_first=True, limit=limit)
    return [post_view(p, names) for p in posts]


async def accounts(agent: Agent, now: datetime) -> list[dict[str, Any]]:
    """One summary per configured account: followers now, queue, suspension, open insights and
    the leading arm of each dimension."""
    store = agent.store
    ids = {name: i for i, name in (await store.account_names()).items()}
    latest = await store.last_account_snapshots()
    upcoming = await store.list_posts(statuses=(PostStatus.PLANNED,), limit=10_000)
    suspended = {s.account for s in await store.suspensions(now=now)}
    open_insights = await store.insights()
    out = []
    for account in agent.config.accounts:
        account_id = ids.get(account.name)
        snapshot = latest.get(account_id) if account_id is not None else None
        mine = [p for p in upcoming if p.account_id == account_id]
        stats = await store.arm_stats(account_id) if account_id is not None else []
        out.append(
            {
                "name": account.name,
                "platform": account.platform,
                "handle": account.handle,
                "followers": snapshot.followers if snapshot else None,
                "followers_at": snapshot.taken_at if snapshot else None,
                "posts_queued": len(mine),
                "next_post_at": mine[0].scheduled_for if mine else None,
                "suspended": account.name in suspended,
                "open_insights": sum(1 for i in open_insights if i.account == account.name),
                "model": stats[0].model if stats else None,
                "leaders": {d: arm_view(rows[0]) for d, rows in by_dimension(stats).items()},
            }
        )
    return out


async def insights(agent: Agent, *, include_closed: bool = False) -> list[dict[str, Any]]:
    return [insight_view(i) for i in await agent.store.insights(include_closed=include_closed)]


def parse_days(value: str | None, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        days = float(value)
    except ValueError:
        raise BadRequest(f"days={value!r} is not a number of days (e.g. days=30)") from None
    if not 0 < days <= MAX_REPORT_DAYS:
        raise BadRequest(f"days={value} is out of range: give 0 < days <= {MAX_REPORT_DAYS}")
    return days


def account_name(agent: Agent, name: str) -> str:
    names = [a.name for a in agent.config.accounts]
    if name not in names:
        raise LookupError(f"No account {name!r}; the accounts are: {', '.join(names)}.")
    return name


async def account_report(agent: Agent, name: str, *, now: datetime, days: float) -> Report:
    """``growthloop report --account NAME --days DAYS`` up to ``now``, with the account's open
    insights (and those about several accounts)."""
    rows = await agent.store.insights()
    return await gather(
        agent.store,
        agent.config,
        start=now - timedelta(days=days),
        end=now,
        accounts=[name],
        insights=insight_views(r for r in rows if r.account in (name, None)),
        now=now,
        title=f"growthloop dashboard: {name}",
    )


def report_json(report: Report) -> dict[str, Any]:
    """The report's value tree, with the figures its page shows (the derived properties)."""
    accounts_out = []
    for a in report.accounts:
        body = jsonable(a)
        body["insights"] = [_insight_json(i) for i in a.insights]
        body["summary"] = {
            "followers_start": a.followers_start,
            "followers_end": a.followers_end,
            "followers_gained": a.followers_gained,
            "posts": len(a.posts),
            "attributed": a.attributed,
            "engagements": a.engagements,
            "spend_usd": a.spend_usd,
            "cost_per_follower_usd": a.cost_per_follower_usd,
        }
        h = a.health
        body["health"]["rates"] = {
            "publish_success": h.publish_success,
            "poll_success": h.poll_success,
            "late_share": h.late_share,
            "api_error_rate": h.api_error_rate,
        }
        accounts_out.append(body)
    return {
        "generated_at": report.generated_at.isoformat(),
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "days": report.days,
        "accounts": accounts_out,
        "insights": [_insight_json(i) for i in report.insights],
    }


def _insight_json(i: Any) -> dict[str, Any]:
    return {
        "title": i.title,
        "statement": i.statement,
        "severity": i.severity,
        "confidence": i.confidence,
        "kind": i.kind,
    }
