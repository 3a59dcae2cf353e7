"""Generated worlds: scenario files drawn from a documented distribution, one per integer seed.

The eight shipped scenarios were written by the project, and the learner's settings were chosen on
them. A generated world is a scenario nobody chose: ``generate(seed)`` draws every number of a
scenario file (catalogue sizes, arm effects, pair effects, drift, account, posting rate, noise,
virality, follower lag) from the distribution below, and ``World.text`` is an ordinary,
self-contained scenario YAML file (no ``extends:``) that :meth:`Scenario.load` validates. The same
seed gives the same file, byte for byte: the draws use only ``random.Random(seed).random()``
(whose stream Python keeps stable across versions) and every multiplier is rounded to 3 decimals.

Two fixed, disjoint seed sets keep tuning and reporting apart (:data:`SEED_SETS`): settings are
chosen on ``tune`` worlds, figures are reported on ``report`` worlds, never used for choosing.

The distribution (every constant is named below; docs/learning.md, "Generated worlds", gives the
reasons for the ranges). ``U(a, b)`` is uniform, ``LogU(a, b)`` log-uniform, ``N`` normal.

- **Catalogue**: content_type, formula and hook each get ``ARMS_PER_DIMENSION`` arms (an integer,
  uniform), named from ``ARM_NAMES`` (the shipped catalogue's names first, whose texts the template
  generator varies; then many_arms.yaml's), and ``bench.catalogue: scenario`` gives the agent
  exactly these arms. Hours stay neutral.
- **Structure** (``STRUCTURES``): ``main`` (arm effects only), ``main_and_pairs`` (arm effects plus
  a strong pair and, with ``P_CLASH``, a clash of the two marginal favourites) or ``pairs_only``
  (near-zero arm effects, one or two strong pairs: their parts look average alone).
- **Arm effects**: in ``main`` and ``main_and_pairs`` each dimension *matters* with
  ``P_DIMENSION_MATTERS`` (at least one does). An arm's log follower multiplier is
  ``x = s * z`` (``z ~ N(0, 1)``, centred over the dimension's arms), with the dimension's scale
  ``s ~ LogU(MAIN_SCALE)`` if it matters and ``s ~ U(NEGLIGIBLE_SCALE)`` if not. The effect is
  split between reach and follow conversion, ``reach = exp(w x)``, ``follow = exp((1 - w) x)``
  with ``w ~ U(REACH_SHARE)`` per arm, and ``engagement = exp(c (1 - w) x + sqrt(1 - c^2) s z')``
  with the world's engagement correlation ``c ~ U(ENGAGEMENT_CORRELATION)`` (engagement can point
  the other way than followers, as contrarian takes do in the default world).
- **Pairs**: a pair joins one arm of each of two distinct dimensions with follow multiplier
  ``LogU(PAIR_FOLLOW)`` (reach ``LogU(PAIR_REACH)``); ``pairs_only`` worlds get ``PAIRS_ONLY_COUNT``
  of them. A clash joins the marginal best arms of two dimensions with follow ``U(CLASH_FOLLOW)``.
- **Drift** (``DRIFT_KINDS``): none, abrupt or gradual (``ramp_days ~ U(RAMP_DAYS)``), starting on
  ``at_day ~ U(DRIFT_DAY)`` (early enough that the change is complete at least
  ``AFTER_CHANGE_DAYS`` before the run ends), in ``DRIFT_DIMENSIONS`` of the dimensions that
  matter (one or several; dimensions a positive pair couples only if no other matters). In a
  drifting dimension a uniformly chosen other arm swaps multipliers with the oracle's arm (the
  best jointly, pairs included), so the best arm changes by the same margin. A swap that does not
  change the oracle's arm (a pair or clash outweighs it) is dropped; worlds without a dimension
  that matters (``pairs_only``) do not drift.
- **Account**: ``initial_followers ~ LogU(INITIAL_FOLLOWERS)``; organic arrivals
  ``initial_followers * LogU(ORGANIC_GROWTH)`` per day; churn ``U(CHURN)`` of the initial
  followers per day.
- **Audience**: discovery reach ``LogU(NON_FOLLOWER_REACH)``, reach per follower
  ``U(REACH_PER_FOLLOWER)``, follow rate per impression ``LogU(FOLLOW_RATE)``; engagement rates
  are the default world's.
- **Noise and virality**: ``reach_sigma ~ U(REACH_SIGMA)``, follow dispersion
  ``LogU(FOLLOW_DISPERSION)``, engagement dispersion ``U(ENGAGEMENT_DISPERSION)``; viral
  probability ``LogU(VIRAL_PROBABILITY)``, tail index ``U(VIRAL_ALPHA)``, minimum multiplier
  ``U(VIRAL_MIN)``, cap one of ``VIRAL_MAX``.
- **Follower lag**: Erlang shape uniform in ``LAG_SHAPE``, scale ``LogU(LAG_SCALE_HOURS)``.
- **Posting**: ``bench.posts_per_day`` uniform in ``POSTS_PER_DAY``; ``bench.days = BENCH_DAYS``.

Changing any constant or the order of the draws changes every world: bump
:data:`GENERATOR_VERSION` (it is written in each file's header) when you do.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.sandbox_model import DIMENSIONS, Scenario

GENERATOR_VERSION = 1  # written in every file's header; bump when the distribution changes


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedSet:
    """A fixed range of generator seeds: the first ``count`` of them make a suite."""

    name: str
    first: int
    size: int

    def seeds(self, count: int, kind: str = "all") -> list[int]:
        """The set's first ``count`` seeds whose world is of ``kind`` (:data:`WORLD_KINDS`:
        ``all``; ``drift``, a best arm changes; ``stationary``, none does), in seed order."""
        if not 1 <= count <= self.size:
            raise ValueError(f"--count must be between 1 and {self.size} (got {count})")
        if kind not in WORLD_KINDS:
            raise ValueError(f"--kind must be one of {', '.join(WORLD_KINDS)} (got {kind!r})")
        if kind == "all":
            return list(range(self.first, self.first + count))
        wanted = kind == "drift"
        found: list[int] = []
        for seed in range(self.first, self.first + self.size):
            if (generate(seed).drift != "none") == wanted:
                found.append(seed)
                if len(found) == count:
                    break
        if len(found) < count:
            raise ValueError(f"the {self.name} set has only {len(found)} {kind} worlds")
        return found


# Tuning and reporting never share a world: 1000-1999 and 2000-2999 (disjoint by construction).
TUNE = SeedSet(name="tune", first=1000, size=1000)
REPORT = SeedSet(name="report", first=2000, size=1000)
SEED_SETS: dict[str, SeedSet] = {s.name: s for s in (TUNE, REPORT)}
# which worlds of a set a suite takes: all, those whose best arm changes, those where none does
WORLD_KINDS = ("all", "drift", "stationary")
DEFAULT_COUNT = 40  # worlds in a suite (issue 17: "at least 40 generated worlds")

# --- the distribution (docs/learning.md, "Generated worlds", says where each range comes from)
BENCH_DAYS = 90.0  # every generated world runs 90 days, as the shipped scenarios do
ARMS_PER_DIMENSION = (3, 12)  # shipped: 6-8 arms (default), 10-12 (many_arms)
STRUCTURES = (("main", 0.5), ("main_and_pairs", 0.25), ("pairs_only", 0.25))
P_DIMENSION_MATTERS = 0.7  # default world: all three matter, hooks barely (log-sd 0.07)
MAIN_SCALE = (0.05, 0.35)  # log-sd of arm effects; default world: 0.30 / 0.10 / 0.07
NEGLIGIBLE_SCALE = (0.0, 0.02)  # "near zero": at most +-2 % per arm, below what 360 posts resolve
REACH_SHARE = (0.0, 1.0)  # share of an arm's log follower effect carried by reach
ENGAGEMENT_CORRELATION = (-0.5, 1.0)  # engagement mostly, not always, agrees with followers
PAIR_FOLLOW = (1.5, 2.5)  # issue 17's pair world: 2x; interaction.yaml: 2.25x with reach
PAIR_REACH = (1.0, 1.25)
PAIRS_ONLY_COUNT = (1, 2)
P_CLASH = 0.5  # main_and_pairs: the two marginal favourites clash (interaction.yaml: 0.6)
CLASH_FOLLOW = (0.5, 0.8)
DRIFT_KINDS = (("none", 0.4), ("abrupt", 0.3), ("gradual", 0.3))  # drawn; see the docstring
DRIFT_DIMENSIONS = ((1, 0.6), (2, 0.3), (3, 0.1))  # how many dimensions change (if they matter)
AFTER_CHANGE_DAYS = (
    30.0  # the drift report's window: the change completes >= 30 days before the end
)
RAMP_DAYS = (5.0, 20.0)  # gradual drift: linear blend over this many days
DRIFT_DAY = (20.0, BENCH_DAYS - AFTER_CHANGE_DAYS)  # the start; gradual: minus its ramp
INITIAL_FOLLOWERS = (50, 20_000)  # small_account: 60; default: 1,500
ORGANIC_GROWTH = (0.0005, 0.005)  # organic arrivals per day, fraction of the initial followers
CHURN = (0.0, 0.002)  # fraction of the initial followers lost per day (default 0.001)
NON_FOLLOWER_REACH = (30.0, 400.0)  # impressions from discovery (default 150, small_account 40)
REACH_PER_FOLLOWER = (0.2, 0.6)  # default 0.4, small_account 0.5
FOLLOW_RATE = (0.002, 0.008)  # follows per impression (default 0.005)
POSTS_PER_DAY = (2, 3, 4, 5, 6, 8)  # shipped: 3 (small_account), 4, 10 (high_frequency)
REACH_SIGMA = (0.2, 0.7)  # default 0.35, viral 0.6
FOLLOW_DISPERSION = (0.7, 4.0)  # negative binomial shape of follows (default 2)
ENGAGEMENT_DISPERSION = (1.5, 5.0)  # default 3
VIRAL_PROBABILITY = (0.002, 0.04)  # default 0.01, viral 0.03
VIRAL_ALPHA = (1.2, 3.0)  # Pareto tail index: default 2.5, viral 1.3
VIRAL_MIN = (2.0, 6.0)  # default 3, viral 5
VIRAL_MAX = (100.0, 500.0)  # default 100, viral 500
LAG_SHAPE = (1, 4)  # Erlang shape of the follower lag (default 2)
LAG_SCALE_HOURS = (2.0, 16.0)  # default 5 h: median lag 1.4 h to 2.5 days

DEFAULT_RATES = {  # engagement rates per impression: the default world's (not varied)
    "likes": 0.015,
    "reposts": 0.002,
    "replies": 0.0015,
    "quotes": 0.0003,
    "bookmarks": 0.0015,
    "profile_clicks": 0.02,
    "url_clicks": 0.0,
}
# Arm names: the shipped catalogue's first (the template generator has phrases for them, so a
# policy that settles on one arm still gets varied texts past the gate's near-duplicate check),
# then many_arms.yaml's extra names, then generic ones (type_13...). Which name an arm gets does
# not matter to its effect: effects are drawn independently of the position.
ARM_NAMES: dict[str, tuple[str, ...]] = {
    "content_type": (
        *("how_to", "contrarian_take", "data_point", "personal_story", "case_study"),
        *("tool_review", "question", "checklist", "prediction", "behind_the_scenes"),
        *("myth_debunk", "resource_roundup"),
    ),
    "formula": (
        *("problem_agitate_solve", "before_after_bridge", "listicle", "hot_take_with_proof"),
        *("curiosity_gap", "story_lesson", "mistake_fix", "framework", "comparison", "q_and_a"),
    ),
    "hook": (
        *("bold_claim", "surprising_stat", "direct_question", "common_mistake", "myth_buster"),
        *("personal_confession", "time_promise", "contrarian_opening", "story_opener"),
        *("number_first", "you_statement", "quote_opener"),
    ),
}
ARM_PREFIX = {"content_type": "type", "formula": "formula", "hook": "hook"}  # generic names
_DECIMALS = 3  # multipliers and rates in the file; keeps files readable and stable
_U_EDGE = 1e-12  # keeps the normal quantile finite


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """A generated world: what was drawn (for summaries and tests) and the scenario file's text."""

    seed: int
    structure: str  # one of STRUCTURES
    matters: tuple[str, ...]  # dimensions with non-negligible arm effects
    pairs: int  # positive pair effects
    clashes: int  # negative pair effects
    drift: str  # one of DRIFT_KINDS
    drift_dimensions: tuple[str, ...]
    drift_day: float | None
    data: dict[str, Any] = field(repr=False)
    text: str = field(repr=False)

    @property
    def name(self) -> str:
        return world_name(self.seed)

    def summary(self) -> str:
        """One line: what kind of world this is."""
        drift = "no drift"
        if self.drift != "none":
            drift = f"{self.drift} drift of {'+'.join(self.drift_dimensions)} at day "
            drift += f"{self.drift_day:g}"
        bench, account = self.data["bench"], self.data["account"]
        arms = "x".join(str(len(self.data["effects"][d])) for d in DIMENSIONS)
        matters = "+".join(self.matters) or "none"
        return (
            f"{self.structure}; {arms} arms; matters: {matters}; pairs {self.pairs}, clashes "
            f"{self.clashes}; {drift}; {account['initial_followers']} followers; "
            f"{bench['posts_per_day']:g} posts/day"
        )


def world_name(seed: int) -> str:
    return f"world_{seed}"


class _Draws:
    """Every draw from one ``random.Random(seed).random()`` stream (stable across Pythons)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def u(self) -> float:
        return self._rng.random()

    def uniform(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return low + (high - low) * self.u()

    def log_uniform(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return math.exp(math.log(low) + (math.log(high) - math.log(low)) * self.u())

    def integer(self, bounds: tuple[int, int]) -> int:
        """Uniform in ``low..high`` inclusive."""
        low, high = bounds
        return low + min(int(self.u() * (high - low + 1)), high - low)

    def index(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def normal(self) -> float:
        u = min(max(self.u(), _U_EDGE), 1.0 - _U_EDGE)
        return statistics.NormalDist().inv_cdf(u)

    def weighted(self, options: tuple[tuple[Any, float], ...]) -> Any:
        u, total = self.u(), 0.0
        for value, weight in options:
            total += weight
            if u < total:
                return value
        return options[-1][0]


def _r(value: float) -> float:
    return round(value, _DECIMALS)


def _dimension_effects(
    draw: _Draws, dim: str, n_arms: int, scale: float, correlation: float
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Arm multipliers of one dimension, and each arm's log follower effect (for pairs/drift)."""
    raw = [scale * draw.normal() for _ in range(n_arms)]
    mean = sum(raw) / n_arms
    effects: dict[str, dict[str, float]] = {}
    logs = []
    for i, x0 in enumerate(raw):
        x = x0 - mean
        w = draw.uniform(REACH_SHARE)
        noise = scale * draw.normal()
        engagement = correlation * (1.0 - w) * x + math.sqrt(1.0 - correlation**2) * noise
        reach, follow = _r(math.exp(w * x)), _r(math.exp((1.0 - w) * x))
        effects[arm_name(dim, i)] = {
            "reach": reach,
            "engagement": _r(math.exp(engagement)),
            "follow": follow,
        }
        logs.append(math.log(reach * follow) if reach > 0 and follow > 0 else -math.inf)
    return effects, logs


def arm_name(dim: str, index: int) -> str:
    """The name of a dimension's ``index``-th arm (0-based): ARM_NAMES, then generic."""
    names = ARM_NAMES[dim]
    return names[index] if index < len(names) else f"{ARM_PREFIX[dim]}_{index + 1:02d}"


def _best(logs: list[float]) -> int:
    return max(range(len(logs)), key=lambda i: (logs[i], -i))


def oracle_arms(
    effects: dict[str, dict[str, dict[str, float]]], interactions: list[dict[str, Any]]
) -> dict[str, str]:
    """The arms with the highest expected followers (reach x follow, pairs included), chosen
    jointly over all dimensions; ties go to the first arm."""
    value: dict[tuple[str, ...], float] = {}
    for combo in itertools.product(*(list(effects[d]) for d in DIMENSIONS)):
        labels = dict(zip(DIMENSIONS, combo, strict=True))
        v = math.prod(effects[d][a]["reach"] * effects[d][a]["follow"] for d, a in labels.items())
        for pair in interactions:
            if all(labels[d] == a for d, a in pair["arms"].items()):
                v *= pair.get("reach", 1.0) * pair.get("follow", 1.0)
        value[combo] = v
    best = max(value, key=lambda combo: value[combo])
    return dict(zip(DIMENSIONS, best, strict=True))


def generate(seed: int) -> World:
    """The world of generator seed ``seed`` (see the module docstring for the distribution)."""
    draw = _Draws(seed)
    structure = draw.weighted(tuple((s, p) for s, p in STRUCTURES))
    sizes = {d: draw.integer(ARMS_PER_DIMENSION) for d in DIMENSIONS}
    correlation = draw.uniform(ENGAGEMENT_CORRELATION)
    if structure == "pairs_only":
        matters: list[str] = []
    else:
        matters = [d for d in DIMENSIONS if draw.u() < P_DIMENSION_MATTERS]
        forced = DIMENSIONS[draw.index(len(DIMENSIONS))]
        if not matters:
            matters = [forced]
    effects: dict[str, dict[str, dict[str, float]]] = {}
    logs: dict[str, list[float]] = {}
    for dim in DIMENSIONS:
        if dim in matters:
            scale = draw.log_uniform(MAIN_SCALE)
        else:
            scale = draw.uniform(NEGLIGIBLE_SCALE)
        effects[dim], logs[dim] = _dimension_effects(draw, dim, sizes[dim], scale, correlation)

    interactions: list[dict[str, Any]] = []
    pairs = clashes = 0
    n_pairs = {"main": 0, "main_and_pairs": 1, "pairs_only": draw.integer(PAIRS_ONLY_COUNT)}
    for _ in range(n_pairs[structure]):
        i = draw.index(len(DIMENSIONS))
        j = (i + 1 + draw.index(len(DIMENSIONS) - 1)) % len(DIMENSIONS)
        d1, d2 = sorted((DIMENSIONS[i], DIMENSIONS[j]), key=DIMENSIONS.index)
        a1 = list(effects[d1])[draw.index(sizes[d1])]
        a2 = list(effects[d2])[draw.index(sizes[d2])]
        pair = {
            "arms": {d1: a1, d2: a2},
            "reach": _r(draw.log_uniform(PAIR_REACH)),
            "follow": _r(draw.log_uniform(PAIR_FOLLOW)),
        }
        if any(p["arms"] == pair["arms"] for p in interactions):
            continue
        interactions.append(pair)
        pairs += 1
    if structure == "main_and_pairs" and draw.u() < P_CLASH:
        favourites = sorted(matters if len(matters) >= 2 else DIMENSIONS, key=DIMENSIONS.index)
        d1, d2 = favourites[0], favourites[1]
        arms = {d: list(effects[d])[_best(logs[d])] for d in (d1, d2)}
        if all(p["arms"] != arms for p in interactions):
            interactions.append({"arms": arms, "follow": _r(draw.uniform(CLASH_FOLLOW))})
            clashes += 1

    drift_kind = draw.weighted(DRIFT_KINDS) if matters else "none"
    drift: list[dict[str, Any]] = []
    drift_dims: tuple[str, ...] = ()
    drift_day: float | None = None
    if drift_kind != "none":
        # dimensions a positive pair couples keep the pair's arm whatever their own effects do:
        # draw the drifting ones among the others where there are any
        coupled = {d for p in interactions if p["follow"] > 1.0 for d in p["arms"]}
        pool = [d for d in matters if d not in coupled] or list(matters)
        count = min(draw.weighted(DRIFT_DIMENSIONS), len(pool))
        chosen = [pool.pop(draw.index(len(pool))) for _ in range(count)]
        ramp = round(draw.uniform(RAMP_DAYS), 1) if drift_kind == "gradual" else 0.0
        drift_day = round(draw.uniform((DRIFT_DAY[0], DRIFT_DAY[1] - ramp)), 1)
        before = oracle_arms(effects, interactions)
        changed: dict[str, dict[str, dict[str, float]]] = {}
        for dim in sorted(chosen, key=DIMENSIONS.index):
            names = list(effects[dim])
            old = names.index(before[dim])
            new = (old + 1 + draw.index(len(names) - 1)) % len(names)
            swapped = {
                names[new]: dict(effects[dim][names[old]]),
                names[old]: dict(effects[dim][names[new]]),
            }
            after = oracle_arms({**effects, dim: {**effects[dim], **swapped}}, interactions)
            if after[dim] != before[dim]:  # else the swap does not move the oracle: no drift here
                changed[dim] = swapped
        drift_dims = tuple(changed)
        if changed:
            drift.append({"at_day": drift_day, "ramp_days": ramp, "effects": changed})
        else:
            drift_kind, drift_day = "none", None

    initial = round(draw.log_uniform(INITIAL_FOLLOWERS))
    data: dict[str, Any] = {
        "name": world_name(seed),
        "description": "",  # filled in below, from the World's summary
        "time_scale": 1.0,
        "account": {
            "initial_followers": initial,
            "following": 300,
            "organic_followers_per_day": _r(initial * draw.log_uniform(ORGANIC_GROWTH)),
            "churn_per_day": round(draw.uniform(CHURN), 5),
        },
        "audience": {
            "non_follower_reach": _r(draw.log_uniform(NON_FOLLOWER_REACH)),
            "reach_per_follower": _r(draw.uniform(REACH_PER_FOLLOWER)),
            "reach_sigma": _r(draw.uniform(REACH_SIGMA)),
            "engagement_dispersion": _r(draw.uniform(ENGAGEMENT_DISPERSION)),
            "follow_dispersion": _r(draw.log_uniform(FOLLOW_DISPERSION)),
            "rates": {**DEFAULT_RATES, "follows": round(draw.log_uniform(FOLLOW_RATE), 5)},
            "viral": {
                "probability": round(draw.log_uniform(VIRAL_PROBABILITY), 4),
                "min_multiplier": _r(draw.uniform(VIRAL_MIN)),
                "alpha": _r(draw.uniform(VIRAL_ALPHA)),
                "max_multiplier": VIRAL_MAX[draw.index(len(VIRAL_MAX))],
            },
            "follower_lag": {
                "shape": draw.integer(LAG_SHAPE),
                "scale_hours": _r(draw.log_uniform(LAG_SCALE_HOURS)),
            },
        },
        "effects": effects,
        "interactions": interactions,
        "drift": drift,
        "bench": {
            "posts_per_day": float(POSTS_PER_DAY[draw.index(len(POSTS_PER_DAY))]),
            "days": BENCH_DAYS,
            "catalogue": "scenario",  # the agent gets exactly these arms, even 3 of them
        },
    }
    world = World(
        seed=seed,
        structure=structure,
        matters=tuple(matters),
        pairs=pairs,
        clashes=clashes,
        drift=drift_kind,
        drift_dimensions=drift_dims,
        drift_day=drift_day,
        data=data,
        text="",
    )
    data["description"] = world.summary()
    Scenario.model_validate(data)  # a generator bug must not write an invalid file
    header = (
        f"# Generated world: seed {seed}, generator version {GENERATOR_VERSION}"
        " (adapters/worlds.py; python -m bench.worlds).\n"
        f"# {world.summary()}\n"
        "# Regenerate rather than edit: the same seed gives this file byte for byte.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000)
    return World(**{**_fields(world), "text": header + body})


def _fields(world: World) -> dict[str, Any]:
    return {name: getattr(world, name) for name in World.__dataclass_fields__}


def write_worlds(seeds: list[int], directory: Path) -> list[Path]:
    """Write ``world_<seed>.yaml`` for each seed into ``directory``; the paths, in seed order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        world = generate(seed)
        path = directory / f"{world.name}.yaml"
        path.write_text(world.text, encoding="utf-8")
        paths.append(path)
    return paths
