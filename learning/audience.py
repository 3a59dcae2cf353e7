"""The audience's arithmetic (issue 19, docs/audience.md): engagement scores and tiers, weekly
follow cohorts and their retention, churn per week, and the followers each post and arm brought
and kept. Pure numpy: the callers read the rows and pass times in (``now``), nothing here does
I/O or reads the clock.

**Engagement score.** A person's score is the weighted sum of what they did, each act decaying
with its age::

    score = sum over interactions i of  weight[kind_i] * 0.5 ** (age_i / half_life)

with the tracking plan's weights (:data:`DEFAULT_WEIGHTS`: reply 5, like 1, repost 10, bookmark 8,
profile visit 3, link click 15; a quote, which the plan does not weigh, counts as a repost) and
:data:`DEFAULT_HALF_LIFE_DAYS`; ``half_life=None`` never decays (the plan's plain sum). Follows
and unfollows weigh nothing: they are state, not engagement. **Tiers** by score (the plan's
thresholds, :data:`DEFAULT_TIERS`): super fan >= 500, active >= 100, lurker >= 10, else inactive.

**Retention.** A follower's span runs from their first follow to their unfollow (none while they
follow; a re-follow clears it, so someone who left and came back counts as having stayed). The
cohort is the UTC week (Monday) of the first follow. Retention after ``n`` weeks, per cohort:
among the members followed at least ``n`` weeks ago, the share whose span lasted ``n`` weeks
(no unfollow, or an unfollow ``>= n`` weeks after the follow); None while nobody is that old.
**Churn** of a week: of those following at its start, the share who unfollowed during it.

**Per post and arm.** A follow is credited to the post the follow event names, else to the
person's last interaction with a post in the :data:`LAST_TOUCH_WINDOW` before the follow (last
touch: the simple rule until multi-touch attribution, issue 19 item 5, replaces it); a post's
followers "stayed" ``d`` days when their span lasted ``d`` days (:data:`STAY_DAYS`: 7 and 30,
the seed system's ``follower_retention_rate``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

# the tracking plan's engagement weights, points per act; "quote" is not in the plan: a repost
# with a comment, weighted as a repost
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "reply": 5.0,
    "like": 1.0,
    "repost": 10.0,
    "quote": 10.0,
    "bookmark": 8.0,
    "profile_visit": 3.0,
    "link_click": 15.0,
}
# the tracking plan's tiers: (name, lowest score), highest first; below the last: "inactive"
DEFAULT_TIERS: tuple[tuple[str, float], ...] = (
    ("super_fan", 500.0),
    ("active", 100.0),
    ("lurker", 10.0),
)
INACTIVE = "inactive"
# an act this old counts half; the plan has no decay: a quarter keeps a season's fans on top
DEFAULT_HALF_LIFE_DAYS = 90.0
RETENTION_WEEKS = (1, 2, 4, 8, 12)  # the retention checkpoints, in weeks
STAY_DAYS = (7, 30)  # days a post's new followers are checked at (seed: follower_retention_rate)
LAST_TOUCH_WINDOW = timedelta(days=7)  # how far back a follow is credited to a touched post
SECONDS_PER_DAY = 86_400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _seconds(times: Sequence[datetime | None]) -> np.ndarray:
    """Seconds since the epoch (NaN for None)."""
    return np.array(
        [np.nan if t is None else (t - _EPOCH).total_seconds() for t in times], dtype=float
    )


def week_start(at: datetime) -> str:
    """The cohort of a follow at ``at`` (aware, UTC): the Monday of its week, ``YYYY-MM-DD``."""
    day = at.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


# -- engagement ------------------------------------------------------------------------------


def engagement_scores(
    members: Sequence[int],
    kinds: Sequence[str],
    ages_days: Sequence[float],
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
) -> dict[int, float]:
    """Each member's engagement score from their interactions (one entry per interaction in
    the three sequences: who, what, how many days ago). Kinds without a weight (follow,
    unfollow) count 0; an act in the future counts as new."""
    if not (len(members) == len(kinds) == len(ages_days)):
        raise ValueError("members, kinds and ages_days must have one entry per interaction")
    if half_life_days is not None and half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    if not members:
        return {}
    who = np.asarray(members, dtype=np.int64)
    points = np.array([weights.get(str(k), 0.0) for k in kinds], dtype=float)
    if half_life_days is not None:
        ages = np.clip(np.asarray(ages_days, dtype=float), 0.0, None)
        points = points * np.exp2(-ages / half_life_days)
    ids, index = np.unique(who, return_inverse=True)
    totals = np.bincount(index, weights=points, minlength=len(ids))
    return {int(i): float(t) for i, t in zip(ids, totals, strict=True)}


def tier_of(score: float, tiers: Sequence[tuple[str, float]] = DEFAULT_TIERS) -> str:
    """The tier of a score: the first of ``tiers`` (highest first) whose lowest score it
    reaches, else ``inactive``."""
    for name, lowest in tiers:
        if score >= lowest:
            return name
    return INACTIVE


def tiers_of(
    scores: Sequence[float], tiers: Sequence[tuple[str, float]] = DEFAULT_TIERS
) -> list[str]:
    """:func:`tier_of` for many scores at once."""
    bounds = np.array([lowest for _, lowest in reversed(tiers)], dtype=float)
    names = [INACTIVE, *(name for name, _ in reversed(tiers))]
    if np.any(np.diff(bounds) <= 0):
        raise ValueError("tier thresholds must decrease from the first tier to the last")
    at = np.searchsorted(bounds, np.asarray(scores, dtype=float), side="right")
    return [names[int(i)] for i in at]


# -- cohorts, retention, churn ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One follower: their first follow, and their unfollow (None while they follow)."""

    followed_at: datetime
    unfollowed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cohort:
    """One weekly follow cohort: its size, how many follow now, and per checkpoint (weeks) how
    many are old enough to tell and the share of those who stayed (None: nobody old enough)."""

    week: str
    followers: int
    still_following: int
    eligible: dict[int, int] = field(default_factory=dict)
    retained: dict[int, float | None] = field(default_factory=dict)


def _lasted(spans: Sequence[Span], now: datetime, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """(old enough to tell, stayed) for each span at a checkpoint of ``weeks`` weeks."""
    follow = _seconds([s.followed_at for s in spans])
    unfollow = _seconds([s.unfollowed_at for s in spans])
    need = 7 * weeks * SECONDS_PER_DAY
    eligible = (now - _EPOCH).total_seconds() - follow >= need
    with np.errstate(invalid="ignore"):
        stayed = np.isnan(unfollow) | (unfollow - follow >= need)
    return eligible, eligible & stayed


def cohort_retention(
    spans: Sequence[Span], *, now: datetime, weeks: Sequence[int] = RETENTION_WEEKS
) -> list[Cohort]:
    """The weekly follow cohorts, oldest first, with their retention at each checkpoint."""
    if not spans:
        return []
    keys = np.array([week_start(s.followed_at) for s in spans])
    following = np.array([s.unfollowed_at is None for s in spans])
    checks = {n: _lasted(spans, now, n) for n in weeks}
    cohorts = []
    for week in sorted(set(keys.tolist())):
        mine = keys == week
        eligible = {n: int(np.sum(checks[n][0] & mine)) for n in weeks}
        stayed = {n: int(np.sum(checks[n][1] & mine)) for n in weeks}
        cohorts.append(
            Cohort(
                week=week,
                followers=int(np.sum(mine)),
                still_following=int(np.sum(following & mine)),
                eligible=eligible,
                retained={n: (stayed[n] / eligible[n] if eligible[n] else None) for n in weeks},
            )
        )
    return cohorts


@dataclass(frozen=True, slots=True, kw_only=True)
class WeekChurn:
    """One UTC week (from its Monday): followers at its start, follows and unfollows during
    it, and of those following at its start, how many left during it and their share (the
    churn; None when nobody followed at its start)."""

    week: str
    followers_at_start: int
    follows: int
    unfollows: int
    left: int
    churn: float | None


def weekly_churn(spans: Sequence[Span], *, now: datetime, weeks: int = 12) -> list[WeekChurn]:
    """Churn of the last ``weeks`` weeks up to ``now`` (the current week included), oldest
    first."""
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    follow = _seconds([s.followed_at for s in spans])
    unfollow = _seconds([s.unfollowed_at for s in spans])
    this_monday = date.fromisoformat(week_start(now))
    found = []
    for back in range(weeks - 1, -1, -1):
        monday = this_monday - timedelta(weeks=back)
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        begin = (start - _EPOCH).total_seconds()
        end = begin + 7 * SECONDS_PER_DAY
        with np.errstate(invalid="ignore"):
            at_start = (follow < begin) & (np.isnan(unfollow) | (unfollow >= begin))
            left = at_start & (unfollow < end)
            unfollowed = (unfollow >= begin) & (unfollow < end)
        joined = (follow >= begin) & (follow < end)
        base = int(np.sum(at_start))
        gone = int(np.sum(left))
        found.append(
            WeekChurn(
                week=monday.isoformat(),
                followers_at_start=base,
                follows=int(np.sum(joined)),
                unfollows=int(np.sum(unfollowed)),
                left=gone,
                churn=gone / base if base else None,
            )
        )
    return found


# -- per post and per arm --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Follow:
    """A member's follow: its span, and the post the follow event named (if any)."""

    member_id: int
    followed_at: datetime
    unfollowed_at: datetime | None = None
    content_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Touch:
    """A member's interaction with one of our posts."""

    member_id: int
    content_id: int
    at: datetime


def credit_last_touch(
    follows: Sequence[Follow], touches: Sequence[Touch], *, window: timedelta = LAST_TOUCH_WINDOW
) -> list[int | None]:
    """The post each follow is credited to: the one its event named, else the member's latest
    touch at or before the follow and no more than ``window`` before it (None: no such post)."""
    latest: dict[int, list[Touch]] = {}
    for touch in sorted(touches, key=lambda t: t.at):
        latest.setdefault(touch.member_id, []).append(touch)
    credited: list[int | None] = []
    for follow in follows:
        if follow.content_id is not None:
            credited.append(follow.content_id)
            continue
        found = None
        for touch in reversed(latest.get(follow.member_id, [])):
            if touch.at <= follow.followed_at:
                if follow.followed_at - touch.at <= window:
                    found = touch.content_id
                break
        credited.append(found)
    return credited


@dataclass(frozen=True, slots=True, kw_only=True)
class Kept:
    """Followers brought, and per check (days) how many are old enough and how many stayed."""

    brought: int
    eligible: dict[int, int]
    stayed: dict[int, int]

    def share(self, days: int) -> float | None:
        """The share that stayed ``days`` days (None while none is that old)."""
        n = self.eligible.get(days, 0)
        return self.stayed.get(days, 0) / n if n else None


def followers_kept(
    follows: Sequence[Follow],
    credited: Sequence[int | None],
    *,
    now: datetime,
    days: Sequence[int] = STAY_DAYS,
) -> dict[int, Kept]:
    """Per post (content id): the followers credited to it and how many stayed ``days``."""
    if len(follows) != len(credited):
        raise ValueError("one credited post per follow")
    follow = _seconds([f.followed_at for f in follows])
    unfollow = _seconds([f.unfollowed_at for f in follows])
    age = (now - _EPOCH).total_seconds() - follow
    posts = np.array([-1 if c is None else c for c in credited], dtype=np.int64)
    out: dict[int, Kept] = {}
    for post in sorted({c for c in credited if c is not None}):
        mine = posts == post
        eligible, stayed = {}, {}
        for d in days:
            need = d * SECONDS_PER_DAY
            old = mine & (age >= need)
            with np.errstate(invalid="ignore"):
                kept = old & (np.isnan(unfollow) | (unfollow - follow >= need))
            eligible[d], stayed[d] = int(np.sum(old)), int(np.sum(kept))
        out[post] = Kept(brought=int(np.sum(mine)), eligible=eligible, stayed=stayed)
    return out


def kept_by_arm(
    per_post: Mapping[int, Kept], arms: Mapping[int, Mapping[str, str]]
) -> dict[tuple[str, str], Kept]:
    """The posts' :class:`Kept` summed per (dimension, arm); ``arms`` gives each post's arm per
    dimension (its generation metadata). Posts without arms are left out."""
    out: dict[tuple[str, str], Kept] = {}
    for post, kept in per_post.items():
        for dimension, arm in arms.get(post, {}).items():
            if not arm:
                continue
            held = out.get((dimension, arm))
            if held is None:
                out[(dimension, arm)] = kept
                continue
            out[(dimension, arm)] = Kept(
                brought=held.brought + kept.brought,
                eligible={d: held.eligible[d] + kept.eligible.get(d, 0) for d in held.eligible},
                stayed={d: held.stayed[d] + kept.stayed.get(d, 0) for d in held.stayed},
            )
    return out
