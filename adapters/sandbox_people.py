"""The simulated audience person by person: who engages with a post, who follows and when, who
unfollows, who replies with what text (issue 19 item 2). The ground truth the audience reads of
:class:`adapters.sandbox.SandboxPlatform` expose and the benchmarks compare against.

Consistent with the aggregate model of :mod:`adapters.sandbox_model` by construction: the
sandbox's counters are ``floor(total * F(age))`` (engagement) and ``floor(follows * G(age))``
(a post's followers), and the k-th person event of a post happens at the first age where that
floor reaches k (:meth:`AudienceModel.first_ages`), so counting people gives the counters. Organic
arrivals and churn of whole sandbox hour h are spread evenly through it the same way
(``floor(fraction * count)``). Every event is one person:

- **a post's follower**: one of the people who engaged with that post and do not follow yet
  (with probability :data:`ENGAGED_FOLLOW`, when there is one), else someone new: so touches
  before a follow exist and are meaningful for multi-touch attribution;
- **an engagement** (like, repost, reply, quote): a current follower with the probability a
  follower is among the post's reach (``rho F / (R0 + rho F)``), else a non-follower (one seen
  before with probability :data:`RETURNING`, else someone new); nobody does one kind of act twice
  to one post;
- **churn**: a current follower chosen uniformly; **organic arrivals**: someone new.

The account's initial followers are people ``<account>-u0 .. u<initial-1>`` who followed before
the world began (no event). Draws come from one generator per account consumed in event order
(time, then a fixed tie-break), so the people are the same however the time is cut into reads.
Bookmarks, profile visits and link clicks stay aggregate (no platform says who did them).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.sandbox_model import AudienceModel

ENGAGED_FOLLOW = 0.6  # a post's follower is one of its engagers (when there is one)
RETURNING = 0.5  # a non-follower engagement is by someone who engaged before
PERSON_KINDS = ("likes", "reposts", "replies", "quotes")  # counters people are drawn for
_KIND = {"likes": "like", "reposts": "repost", "replies": "reply", "quotes": "quote"}
_ORDER = {"unfollow": 0, "follow": 1, "like": 2, "repost": 3, "reply": 4, "quote": 5}
REPLIES = (
    "This is exactly what I needed today, thanks.",
    "Interesting - do you have a source for that?",
    "I tried this last week and it worked.",
    "Not sure I agree, but good thread.",
    "Saving this one.",
    "How long did it take you to see results?",
)


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """One thing one simulated person did. ``seq`` numbers an account's events from 0 in the
    order they happened (the notifications' cursor)."""

    seq: int
    at_us: int
    kind: str  # follow, unfollow, like, repost, reply, quote
    person: str  # their user id; the handle is "<id>.sim"
    post_id: str | None
    text: str | None  # a reply's or quote's text


@dataclass(frozen=True, slots=True)
class PostDraw:
    """What the world knows of a post: its time, person-level totals and follows."""

    post_id: str
    posted_us: int
    totals: dict[str, int]
    follows: int


class People:
    """One account's simulated people, advanced through time as it is read."""

    def __init__(
        self, model: AudienceModel, *, account: str, key: int, initial: int, created_us: int
    ) -> None:
        self._model = model
        self._account = account
        self._key = key
        self._initial = initial
        self._created_us = created_us
        self._rng = random.Random(model.seed ^ key)
        self._scale_us = 3.6e9 / model.time_scale  # microseconds per sandbox hour
        self._followers: list[str] = [f"{account}-u{i}" for i in range(initial)]
        self._where = {p: i for i, p in enumerate(self._followers)}
        self._outsiders: list[str] = []  # engaged, never followed
        self._engagers: dict[str, list[str]] = {}  # post -> people who engaged, in order
        self._done: set[tuple[str, str, str]] = set()  # (person, post, kind)
        self._people = initial
        self._pending: list[tuple[int, int, int, str, str | None]] = []
        self._tie = 0
        self._posts: set[str] = set()
        self._hour = max(0, math.floor(model.hours(created_us)))  # next organic hour to schedule
        self.events: list[PersonEvent] = []
        self.now_us = created_us
        self.posts_until_us = -(2**62)  # posts up to this time are scheduled

    @property
    def followers(self) -> list[str]:
        """Who follows now (at :attr:`now_us`), in the order they (last) followed."""
        return list(self._followers)

    def advance(self, now_us: int, posts: Sequence[PostDraw]) -> None:
        """Play every event up to ``now_us`` (earlier times than already played: nothing)."""
        for post in posts:
            if post.post_id not in self._posts:
                self._posts.add(post.post_id)
                self._schedule_post(post)
            self.posts_until_us = max(self.posts_until_us, post.posted_us)
        model = self._model
        while self._hour <= model.hours(now_us):
            self._schedule_hour(self._hour)
            self._hour += 1
        while self._pending and self._pending[0][0] <= now_us:
            at_us, _, _, kind, post_id = heapq.heappop(self._pending)
            self._play(at_us, kind, post_id)
        self.now_us = max(self.now_us, now_us)

    # -- scheduling -------------------------------------------------------------------------

    def _push(self, at_us: int, kind: str, post_id: str | None) -> None:
        self._tie += 1
        heapq.heappush(self._pending, (at_us, _ORDER[kind], self._tie, kind, post_id))

    def _schedule_post(self, post: PostDraw) -> None:
        model = self._model
        for counter in PERSON_KINDS:
            for age in model.first_ages("accrued", post.totals.get(counter, 0)):
                self._push(
                    post.posted_us + math.ceil(age * self._scale_us), _KIND[counter], post.post_id
                )
        for age in model.first_ages("arrived", post.follows):
            self._push(post.posted_us + math.ceil(age * self._scale_us), "follow", post.post_id)

    def _schedule_hour(self, hour: int) -> None:
        arrivals, churn = self._model.organic_hour(self._key, self._initial, hour)
        start_us = self._model.start_us
        for count, kind in ((arrivals, "follow"), (churn, "unfollow")):
            for j in range(1, count + 1):
                at_us = start_us + math.ceil((hour + j / count) * self._scale_us)
                if at_us > self._created_us:
                    self._push(at_us, kind, None)

    # -- playing ----------------------------------------------------------------------------

    def _new_person(self) -> str:
        self._people += 1
        return f"{self._account}-u{self._people - 1}"

    def _follow(self, person: str) -> None:
        if person not in self._where:
            self._where[person] = len(self._followers)
            self._followers.append(person)

    def _unfollow(self, person: str) -> None:
        at = self._where.pop(person)
        last = self._followers.pop()
        if last != person:
            self._followers[at] = last
            self._where[last] = at

    def _record(self, at_us: int, kind: str, person: str, post_id: str | None) -> None:
        text = None
        if kind in ("reply", "quote"):
            text = REPLIES[self._rng.randrange(len(REPLIES))]
        self.events.append(PersonEvent(len(self.events), at_us, kind, person, post_id, text))

    def _play(self, at_us: int, kind: str, post_id: str | None) -> None:
        rng = self._rng
        if kind == "unfollow":
            if not self._followers:
                return  # nobody left to churn (the aggregate count floors at zero too)
            person = self._followers[rng.randrange(len(self._followers))]
            self._unfollow(person)
        elif kind == "follow":
            chosen = None
            if post_id is not None:
                engaged = [p for p in self._engagers.get(post_id, ()) if p not in self._where]
                if engaged and rng.random() < ENGAGED_FOLLOW:
                    chosen = engaged[rng.randrange(len(engaged))]
            person = chosen if chosen is not None else self._new_person()
            self._follow(person)
        else:
            assert post_id is not None
            person = self._engager(post_id, kind)
            self._done.add((person, post_id, kind))
            self._engagers.setdefault(post_id, []).append(person)
        self._record(at_us, kind, person, post_id)

    def _engager(self, post_id: str, kind: str) -> str:
        rng, audience = self._rng, self._model.scenario.audience
        followers = len(self._followers)
        reach = audience.reach_per_follower * followers
        share = reach / (audience.non_follower_reach + reach) if reach > 0 else 0.0
        if followers and rng.random() < share:
            person = self._followers[rng.randrange(followers)]
        elif self._outsiders and rng.random() < RETURNING:
            person = self._outsiders[rng.randrange(len(self._outsiders))]
        else:
            person = self._new_person()
            self._outsiders.append(person)
        if (person, post_id, kind) in self._done:
            person = self._new_person()
            self._outsiders.append(person)
        return person
