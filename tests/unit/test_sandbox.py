"""The simulated platform: its audience model, its platform behaviour and its storage."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Platform, PostMetrics
from adapters.sandbox import (
    FAULT_KINDS,
    SandboxPlatform,
    SandboxWorld,
    Scenario,
)
from adapters.scenario_files import scenario_names
from agent.errors import (
    AmbiguousPublish,
    AuthFailed,
    ConfigError,
    ContentRejected,
    DuplicateContent,
    PlatformUnavailable,
    RateLimited,
)

START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
CONTENT_TYPES = (
    "how_to",
    "contrarian_take",
    "data_point",
    "personal_story",
    "case_study",
    "tool_review",
    "question",
)


class Clock:
    """The agent's clock, moved by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, **delta: float) -> None:
        self.at = START + timedelta(**delta)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def make_scenario(**overrides: Any) -> Scenario:
    """The default scenario with nested overrides (``platform={"posts_per_hour": 2}``)."""
    data = Scenario.load("default").model_dump()
    return Scenario.model_validate(_merge(data, overrides))


QUIET = {"account": {"organic_followers_per_day": 0.0, "churn_per_day": 0.0}}


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(make_scenario(), seed=7, start=START) as w:
        yield w


@pytest.fixture
def clock() -> Clock:
    return Clock()


def labels(content_type: str = "how_to", formula: str = "listicle", hook: str = "bold_claim"):
    return {"content_type": content_type, "formula": formula, "hook": hook, "topic": "growth"}


async def post(platform: SandboxPlatform, n: int, **arms: str):
    return await platform.publish(
        f"post number {n}", idempotency_key=f"key-{n}", labels=labels(**arms)
    )


# ------------------------------------------------------------------------------------ scenarios


def test_every_bundled_scenario_loads() -> None:
    names = {name: Scenario.load(name) for name in scenario_names()}
    assert set(names) >= {"default", "drifting", "viral", "faulty", "demo_realtime"}
    assert names["demo_realtime"].time_scale == 360
    assert names["drifting"].drift[0].at_day == 45
    assert names["faulty"].faults.publish_error_rate > 0
    assert names["viral"].audience.viral.probability > names["default"].audience.viral.probability
    # extends: keeps the default's effects
    assert names["viral"].effects == names["default"].effects


def test_default_scenario_names_the_default_catalogue() -> None:
    effects = Scenario.load("default").effects
    assert set(effects["content_type"]) == set(CONTENT_TYPES)
    assert set(effects["formula"]) == {
        "problem_agitate_solve",
        "before_after_bridge",
        "listicle",
        "hot_take_with_proof",
        "curiosity_gap",
        "story_lesson",
    }
    assert len(effects["hook"]) == 8


def test_default_scenario_is_realistic_and_learnable(world: SandboxWorld) -> None:
    truth = world.ground_truth()
    average_post = truth.expected_followers({})
    assert 1.0 <= average_post <= 10.0
    by_type = sorted(truth.arm_followers["content_type"].values(), reverse=True)
    assert 1.4 <= by_type[0] / by_type[1] <= 1.6
    for dimension in ("formula", "hook"):
        values = sorted(truth.arm_followers[dimension].values(), reverse=True)
        assert 1.05 <= values[0] / values[1] < by_type[0] / by_type[1]


def test_load_error_names_the_file_and_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "audience:\n  rates:\n    likez: 0.1\nplatform:\n  max_chars: lots\n"
        "drift:\n  - {at_day: -1, effects: {}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        Scenario.load(bad)
    message = str(caught.value)
    assert str(bad) in message
    assert "audience.rates.likez: unknown key" in message
    assert "platform.max_chars" in message
    assert "drift[0].at_day" in message
    assert "\n" not in message


def test_load_error_for_unknown_dimension_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "dims.yaml"
    bad.write_text("effects:\n  content_types:\n    how_to: {reach: 2}\n")
    with pytest.raises(ConfigError, match=r"effects: unknown dimension 'content_types'"):
        Scenario.load(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        Scenario.load(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("audience: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Scenario.load(tmp_path / "broken.yaml")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="too deep"):
        Scenario.load(tmp_path / "loop.yaml")


def test_unknown_scenario_name_lists_the_shipped_names() -> None:
    with pytest.raises(ConfigError) as caught:
        Scenario.load("defualt")
    message = str(caught.value)
    assert "'defualt'" in message
    assert all(name in message for name in ("default", "drifting", "small_account"))


def test_a_scenario_file_anywhere_extends_a_shipped_scenario_by_name(tmp_path: Path) -> None:
    (tmp_path / "quiet.yaml").write_text("extends: viral\nname: quiet\n")
    quiet, viral = Scenario.load(tmp_path / "quiet.yaml"), Scenario.load("viral")
    assert quiet.name == "quiet"
    assert quiet.audience == viral.audience  # everything else from the shipped viral.yaml
    # a str that is not a plain name is a path, like a Path
    assert Scenario.load(str(tmp_path / "quiet.yaml")) == quiet


# ---------------------------------------------------------------------------------- determinism


async def _session(seed: int) -> list[object]:
    """A fixed script of calls; returns everything the platform answered."""
    clock = Clock()
    with SandboxWorld(make_scenario(), seed=seed, start=START) as w:
        platform = w.platform("acme", now=clock)
        answers: list[object] = []
        ids = []
        for n in range(8):
            clock.set(hours=5 * n)
            ids.append(
                (await post(platform, n, content_type=CONTENT_TYPES[n % 7])).platform_post_id
            )
            clock.set(hours=5 * n + 1)
            answers.append(await platform.fetch_metrics(ids))
            answers.append(await platform.fetch_account())
        clock.set(hours=100)
        answers.append(await platform.fetch_metrics(ids))
        answers.append(await platform.fetch_account())
        answers.append(dict(w.ground_truth().followers_caused))
        return answers


async def test_same_seed_gives_the_same_numbers_and_another_seed_does_not() -> None:
    first, again, other = await _session(1), await _session(1), await _session(2)
    assert first == again
    assert first != other
    assert first[-2] != other[-2]  # the account itself differs, not only one post


async def test_counters_do_not_depend_on_when_they_were_asked(clock: Clock) -> None:
    results = []
    for polls in ([1, 4, 24], [24]):
        with SandboxWorld(make_scenario(), seed=3, start=START) as w:
            platform = w.platform("acme", now=clock)
            clock.set(hours=0)
            published = await post(platform, 1)
            for age in polls:
                clock.set(hours=age)
                metrics = await platform.fetch_metrics([published.platform_post_id])
            results.append(metrics)
    assert results[0] == results[1]


# ------------------------------------------------------------------------------------- accrual


async def test_counters_are_monotone_and_mostly_accrued_by_24h(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    posted = []
    for n in range(40):
        clock.set(hours=6 * n)
        posted.append(await post(platform, n, content_type=CONTENT_TYPES[n % 7]))
    ages = [0, 0.25, 1, 2, 4, 8, 24, 48, 24 * 30]
    series: dict[str, list[PostMetrics]] = {}
    for p in posted:
        for age in ages:
            clock.at = p.posted_at + timedelta(hours=age)
            series.setdefault(p.platform_post_id, []).append(
                (await platform.fetch_metrics([p.platform_post_id]))[p.platform_post_id]
            )
    fields = ("impressions", "likes", "reposts", "replies", "bookmarks", "profile_clicks")
    for snapshots in series.values():
        for field in fields:
            values = [getattr(s, field) for s in snapshots]
            assert values == sorted(values), (field, values)
        assert snapshots[0].impressions == 0

    def mean_share(age_index: int) -> float:
        return statistics.mean(
            s[age_index].impressions / s[-1].impressions for s in series.values()
        )

    at_1h, at_4h, at_24h = (
        mean_share(ages.index(1)),
        mean_share(ages.index(4)),
        mean_share(ages.index(24)),
    )
    assert 0.15 < at_1h < at_4h < at_24h
    assert 0.6 < at_4h < 0.9
    assert 0.95 < at_24h < 1.0  # most by 24 h, a little still to come
    engagements = [s[-1].engagements for s in series.values()]
    assert statistics.mean(engagements) > 5


# ----------------------------------------------------------------------------------- followers


async def test_follower_gains_arrive_with_a_lag_and_overlap(clock: Clock) -> None:
    scenario = make_scenario(
        **QUIET, audience={"rates": {"follows": 0.05}, "follow_dispersion": 50.0}
    )
    followers: dict[str, dict[float, int]] = {}
    caused: dict[str, list[float]] = {}
    for case, hours in (("a_only", [0]), ("a_and_b", [0, 3])):
        with SandboxWorld(scenario, seed=11, start=START) as w:
            platform = w.platform("acme", now=clock)
            for n, at in enumerate(hours):
                clock.set(hours=at)
                await post(platform, n)
            followers[case] = {}
            for at in (0.01, 3, 6, 12, 200):
                clock.set(hours=at)
                followers[case][at] = (await platform.fetch_account()).followers - 1500
            caused[case] = list(w.ground_truth().followers_caused.values())
    gain_a, gain_b = caused["a_and_b"]
    assert caused["a_only"] == [gain_a]
    assert gain_a > 20 and gain_b > 20
    alone = followers["a_only"]
    assert 0 <= alone[0.01] < alone[3] < alone[6] < gain_a  # still arriving hours later
    assert alone[200] == gain_a
    both = followers["a_and_b"]
    from_b_at_6h = both[6] - alone[6]
    assert 0 < from_b_at_6h < gain_b  # B is arriving while A still is: the gains overlap
    assert both[200] == gain_a + gain_b


async def test_follower_count_is_the_same_read_often_or_once(clock: Clock, tmp_path: Path) -> None:
    """Regression (settled followers are summed incrementally between reads; an in-memory world
    reads them from lists, a world file from SQL): worlds in memory and in a file, read every two
    hours (also back in time) or once at each moment, all agree."""
    scenario = make_scenario(audience={"rates": {"follows": 0.05}})
    checkpoints = (100.0, 150.0, 400.0, 120.0)
    files = iter(range(100))

    def new_world(in_file: bool) -> SandboxWorld:
        path = tmp_path / f"world-{next(files)}.db" if in_file else None
        return SandboxWorld(scenario, seed=3, start=START, path=path)

    async def world_with_posts(w: SandboxWorld) -> SandboxPlatform:
        platform = w.platform("acme", now=clock)
        for n in range(12):  # a post every 8 h; followers arrive over ~2 days
            clock.set(hours=8 * n)
            await post(platform, n)
        return platform

    seen: dict[str, list[int]] = {}
    for in_file in (False, True):
        often = seen["often in file" if in_file else "often in memory"] = []
        with new_world(in_file) as w:
            platform = await world_with_posts(w)
            caused = sum(w.ground_truth().followers_caused.values())
            at = 88.0
            for checkpoint in checkpoints:
                while at + 2.0 < checkpoint:
                    at += 2.0
                    clock.set(hours=at)
                    await platform.fetch_account()
                clock.set(hours=checkpoint)
                often.append((await platform.fetch_account()).followers)
        once = seen["once in file" if in_file else "once in memory"] = []
        for checkpoint in checkpoints:
            with new_world(in_file) as w:
                platform = await world_with_posts(w)
                clock.set(hours=checkpoint)
                once.append((await platform.fetch_account()).followers)
    counts = list(seen.values())
    assert all(c == counts[0] for c in counts), seen
    assert counts[0][2] > counts[0][0] > 1500  # the posts' followers arrived
    # at 400 h every post's followers have arrived: the rest is ~3 a day in, 1.5 out, ~17 days
    assert abs(counts[0][2] - caused - 1500) < 60


async def test_organic_growth_and_churn_without_posts(clock: Clock) -> None:
    scenario = make_scenario(account={"organic_followers_per_day": 24.0, "churn_per_day": 0.004})
    with SandboxWorld(scenario, seed=5, start=START) as w:
        platform = w.platform("acme", now=clock)
        counts = []
        for day in range(0, 31):
            clock.set(days=day)
            counts.append((await platform.fetch_account()).followers)
    assert counts[0] == 1500
    net_per_day = (counts[-1] - counts[0]) / 30  # expected 24 - 6 = 18
    assert 14 < net_per_day < 22
    assert len(set(counts)) > 20


async def test_better_arms_bring_more_followers_and_engagement_on_average(clock: Clock) -> None:
    with SandboxWorld(make_scenario(), seed=21, start=START) as w:
        arms = {
            "best": {"content_type": "how_to"},
            "worst": {"content_type": "question"},
            "good_formula": {"formula": "listicle"},
            "weak_formula": {"formula": "story_lesson"},
        }
        ids: dict[str, list[str]] = {name: [] for name in arms}
        for name, arm in arms.items():
            platform = w.platform(name, now=clock)
            for n in range(150):
                clock.set(hours=4 * n)
                ids[name].append((await post(platform, n, **arm)).platform_post_id)
        clock.set(days=40)
        caused = w.ground_truth().followers_caused
        mean = {name: statistics.mean(caused[i] for i in ids[name]) for name in arms}
        assert mean["best"] > 2.0 * mean["worst"]
        assert mean["good_formula"] > 1.15 * mean["weak_formula"]
        grown = {
            name: (await w.platform(name, now=clock).fetch_account()).followers for name in arms
        }
        assert grown["best"] > grown["worst"] + 300
        engagement = {}
        for name in ("best", "worst"):
            metrics = await w.platform(name, now=clock).fetch_metrics(ids[name])
            engagement[name] = statistics.mean(m.engagements for m in metrics.values())
        assert engagement["best"] > 1.3 * engagement["worst"]


# ------------------------------------------------------------------------------ ground truth


def test_ground_truth_ranking_follows_the_scenario_effects(world: SandboxWorld) -> None:
    truth = world.ground_truth()
    effects = world.scenario.effects
    for dimension in ("content_type", "formula", "hook"):
        product = {arm: e.reach * e.follow for arm, e in effects[dimension].items()}
        assert truth.ranking(dimension) == sorted(product, key=lambda arm: -product[arm])
        assert truth.best_arm(dimension) == truth.ranking(dimension)[0]
        assert truth.expected_followers({dimension: truth.best_arm(dimension)}) == pytest.approx(
            truth.arm_followers[dimension][truth.best_arm(dimension)]
        )
    assert truth.best_arm("content_type") == "how_to"
    assert (
        truth.arm_engagements["content_type"]["how_to"]
        > truth.arm_engagements["content_type"]["question"]
    )
    ratio = truth.expected_followers({"content_type": "how_to", "formula": "listicle"}) / (
        truth.expected_followers({"content_type": "question", "formula": "listicle"})
    )
    assert ratio == pytest.approx(1.20 * 1.35 / (0.85 * 0.70))


def test_ground_truth_sees_the_drift() -> None:
    with SandboxWorld(Scenario.load("drifting"), seed=1, start=START) as w:
        truth = w.ground_truth()
        assert truth.best_arm("content_type") == "how_to"
        assert truth.best_arm("content_type", START + timedelta(days=44.9)) == "how_to"
        assert truth.best_arm("content_type", START + timedelta(days=45.1)) == "personal_story"
        assert truth.ranking("formula", START + timedelta(days=60)) == truth.ranking("formula")


async def test_ground_truth_lists_every_post_with_its_realised_and_expected_gain(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    ids = []
    for n in range(60):
        clock.set(hours=4 * n)
        ids.append((await post(platform, n, content_type=CONTENT_TYPES[n % 7])).platform_post_id)
    truth = world.ground_truth()
    assert list(truth.followers_caused) == ids
    assert truth.post_arms[ids[0]]["content_type"] == "how_to"
    realised = sum(truth.followers_caused.values())
    expected = sum(truth.expected_followers_caused.values())
    assert 0.6 * expected < realised < 1.5 * expected
    assert all(v == int(v) and v >= 0 for v in truth.followers_caused.values())


# ---------------------------------------------------------------------------- platform rules


async def test_the_sandbox_is_a_platform(world: SandboxWorld, clock: Clock) -> None:
    platform = world.platform("acme", now=clock)
    assert isinstance(platform, Platform)
    assert platform.name == "sandbox"
    limits = platform.limits
    assert (limits.max_chars, limits.posts_per_hour, limits.posts_per_day) == (280, 10, 50)
    info = await platform.fetch_account()
    assert (info.handle, info.followers, info.following, info.posts) == ("acme", 1500, 300, 0)
    await platform.aclose()


async def test_duplicate_text_is_rejected_within_the_window(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    await platform.publish("Same words", idempotency_key="a")
    clock.set(hours=2)
    with pytest.raises(DuplicateContent):
        await platform.publish("Same words  ", idempotency_key="b")
    other = world.platform("someone_else", now=clock)
    await other.publish("Same words", idempotency_key="a")  # another account may say it
    clock.set(hours=169)
    await platform.publish("Same words", idempotency_key="c")  # past the 168 h window
    assert (await platform.fetch_account()).posts == 2


async def test_reusing_an_idempotency_key_returns_the_same_post(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    first = await platform.publish("Hello", idempotency_key="k1", labels=labels())
    clock.set(minutes=5)
    again = await platform.publish("Hello", idempotency_key="k1", labels=labels())
    assert again == first
    assert [p.platform_post_id for p in await platform.find_recent(since=START)] == [
        first.platform_post_id
    ]
    assert (await platform.fetch_account()).posts == 1


async def test_empty_or_over_long_text_is_rejected(world: SandboxWorld, clock: Clock) -> None:
    platform = world.platform("acme", now=clock)
    with pytest.raises(ContentRejected, match="281 characters"):
        await platform.publish("x" * 281, idempotency_key="long")
    with pytest.raises(ContentRejected, match="empty"):
        await platform.publish("  \n", idempotency_key="empty")
    assert await platform.find_recent(since=START) == []
    await platform.publish("é" * 280, idempotency_key="fits")  # code points, not bytes


async def test_rate_caps_answer_with_a_reset_time(clock: Clock) -> None:
    scenario = make_scenario(platform={"posts_per_hour": 3, "posts_per_day": 5})
    with SandboxWorld(scenario, seed=1, start=START) as w:
        platform = w.platform("acme", now=clock)
        for n in range(3):
            clock.set(minutes=10 * n)
            await post(platform, n)
        clock.set(minutes=30)
        with pytest.raises(RateLimited) as caught:
            await post(platform, 3)
        assert caught.value.reset_at == START + timedelta(hours=1)
        assert caught.value.reset_at > clock()
        clock.at = caught.value.reset_at
        await post(platform, 3)
        clock.set(hours=2)
        await post(platform, 4)
        clock.set(hours=3)
        with pytest.raises(RateLimited) as caught:
            await post(platform, 5)
        assert caught.value.reset_at == START + timedelta(hours=24)
        assert (await platform.fetch_account()).posts == 5


async def test_deleted_posts_disappear_but_their_followers_stay(clock: Clock) -> None:
    with SandboxWorld(make_scenario(**QUIET), seed=2, start=START) as w:
        platform = w.platform("acme", now=clock)
        published = await post(platform, 1)
        clock.set(days=5)
        before = await platform.fetch_account()
        await platform.delete(published.platform_post_id)
        await platform.delete("no-such-post")
        assert await platform.fetch_metrics([published.platform_post_id, "nope"]) == {}
        assert await platform.find_recent(since=START) == []
        after = await platform.fetch_account()
        assert (before.posts, after.posts) == (1, 0)
        assert after.followers == before.followers


async def test_find_recent_is_newest_first_and_bounded(world: SandboxWorld, clock: Clock) -> None:
    platform = world.platform("acme", now=clock)
    for n in range(5):
        clock.set(hours=n)
        await post(platform, n)
    recent = await platform.find_recent(since=START + timedelta(hours=1), limit=3)
    assert [p.text for p in recent] == ["post number 4", "post number 3", "post number 2"]
    assert recent[0].posted_at == START + timedelta(hours=4)
    assert len(await platform.find_recent(since=START + timedelta(hours=1))) == 4


# ---------------------------------------------------------------------------------------- faults


async def test_publish_error_posts_nothing(world: SandboxWorld, clock: Clock) -> None:
    platform = world.platform("acme", now=clock)
    world.inject_fault("publish_error")
    with pytest.raises(PlatformUnavailable):
        await post(platform, 1)
    assert await platform.find_recent(since=START) == []
    await post(platform, 1)  # the fault is used up
    assert len(await platform.find_recent(since=START)) == 1


async def test_publish_ambiguous_creates_the_post_then_raises(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    world.inject_fault("publish_ambiguous")
    with pytest.raises(AmbiguousPublish):
        await post(platform, 1)
    found = await platform.find_recent(since=START)
    assert [p.text for p in found] == ["post number 1"]
    assert await post(platform, 1) == found[0]  # a retry with the same key finds it


async def test_publish_timeout_before_raises_ambiguous_and_posts_nothing(
    world: SandboxWorld, clock: Clock
) -> None:
    platform = world.platform("acme", now=clock)
    world.inject_fault("publish_timeout_before", count=2)
    for _ in range(2):
        with pytest.raises(AmbiguousPublish):
            await post(platform, 1)
    assert await platform.find_recent(since=START) == []
    await post(platform, 1)


@pytest.mark.parametrize(
    ("kind", "call", "error"),
    [
        ("rate_limit", "publish", RateLimited),
        ("read_rate_limit", "fetch_account", RateLimited),
        ("metrics_error", "fetch_metrics", PlatformUnavailable),
        ("account_error", "fetch_account", PlatformUnavailable),
        ("find_error", "find_recent", PlatformUnavailable),
        ("auth_failed", "fetch_metrics", AuthFailed),
    ],
)
async def test_injected_faults_hit_their_call_once(
    world: SandboxWorld, clock: Clock, kind: str, call: str, error: type[Exception]
) -> None:
    platform = world.platform("acme", now=clock)
    calls = {
        "publish": lambda: post(platform, 1),
        "fetch_account": platform.fetch_account,
        "fetch_metrics": lambda: platform.fetch_metrics(["acme-1"]),
        "find_recent": lambda: platform.find_recent(since=START),
    }
    world.inject_fault(kind, account="someone_else")
    await calls[call]()  # not this account's fault
    world.inject_fault(kind, account="acme")
    with pytest.raises(error) as caught:
        await calls[call]()
    if error is RateLimited:
        reset_at = caught.value.reset_at  # type: ignore[attr-defined]
        assert reset_at == clock() + timedelta(minutes=15)
    await calls[call]()  # used up


def test_fault_kinds_are_checked(world: SandboxWorld) -> None:
    assert {"publish_error", "publish_ambiguous", "publish_timeout_before", "rate_limit"} <= set(
        FAULT_KINDS
    )
    assert {"metrics_error", "account_error"} <= set(FAULT_KINDS)
    with pytest.raises(ValueError, match="unknown fault kind"):
        world.inject_fault("gremlins")


async def test_random_fault_rates_are_roughly_right_and_deterministic(clock: Clock) -> None:
    scenario = make_scenario(faults={"metrics_error_rate": 0.3, "publish_error_rate": 0.2})

    async def outcomes(seed: int) -> list[bool]:
        with SandboxWorld(scenario, seed=seed, start=START) as w:
            platform = w.platform("acme", now=clock)
            failed = []
            for _ in range(300):
                try:
                    await platform.fetch_metrics(["x"])
                    failed.append(False)
                except PlatformUnavailable:
                    failed.append(True)
            return failed

    first = await outcomes(1)
    assert first == await outcomes(1)
    assert first != await outcomes(2)
    assert 0.2 < sum(first) / len(first) < 0.4


# ----------------------------------------------------------------------------- time and files


async def test_time_scale_compresses_sandbox_hours() -> None:
    clock = Clock()
    demo = Scenario.load("demo_realtime")
    answers = []
    for scenario, hour in ((make_scenario(), timedelta(hours=1)), (demo, timedelta(seconds=10))):
        with SandboxWorld(scenario, seed=4, start=START) as w:
            platform = w.platform("acme", now=clock)
            clock.at = START
            published = await post(platform, 1)
            clock.at = START + 30 * hour
            answers.append(
                (
                    await platform.fetch_metrics([published.platform_post_id]),
                    await platform.fetch_account(),
                )
            )
    assert answers[0] == answers[1]


async def test_file_backed_world_survives_reopening(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "worlds" / "world.db"
    world = SandboxWorld(make_scenario(), seed=9, start=START, path=path)
    platform = world.platform("acme", now=clock)
    published = await post(platform, 1)
    clock.set(hours=1)
    early = (await platform.fetch_metrics([published.platform_post_id]))[published.platform_post_id]
    world.close()

    other_scenario = Scenario.load("viral")
    reopened = SandboxWorld(other_scenario, seed=999, start=START + timedelta(days=3), path=path)
    try:
        assert (reopened.seed, reopened.start, reopened.scenario.name) == (9, START, "default")
        platform = reopened.platform("acme", now=clock)
        assert await platform.find_recent(since=START) == [published]
        clock.set(hours=24)
        late = (await platform.fetch_metrics([published.platform_post_id]))[
            published.platform_post_id
        ]
        assert late.impressions > early.impressions and late.likes >= early.likes
        assert await post(platform, 1) == published  # idempotency keys survive too
        second = await post(platform, 2)
        assert second.platform_post_id == "acme-2"
        account = await platform.fetch_account()
    finally:
        reopened.close()

    with SandboxWorld(make_scenario(), seed=9, start=START) as in_memory:  # never interrupted
        platform = in_memory.platform("acme", now=clock)
        clock.set(hours=0)
        await post(platform, 1)
        clock.set(hours=24)
        await post(platform, 2)
        assert await platform.fetch_account() == account
        assert (await platform.fetch_metrics(["acme-1"]))["acme-1"] == late


async def test_two_processes_can_share_a_world_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shared.db"
    first = SandboxWorld(make_scenario(), seed=1, start=START, path=path)
    second = SandboxWorld(make_scenario(), seed=1, start=START, path=path)
    try:
        a, b = first.platform("acme", now=clock), second.platform("acme", now=clock)
        clock.set(minutes=1)
        one = await post(a, 1)
        clock.set(minutes=2)
        two = await post(b, 2)
        assert one.platform_post_id != two.platform_post_id
        assert await a.find_recent(since=START) == [two, one]
        with pytest.raises(DuplicateContent):
            await a.publish(two.text, idempotency_key="fresh")
        second.inject_fault("account_error")  # seen by the other process
        with pytest.raises(PlatformUnavailable):
            await a.fetch_account()
    finally:
        first.close()
        second.close()


def test_a_file_that_is_not_a_world_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite at all, just some text " * 50)
    with pytest.raises(ConfigError, match=r"notes\.db"):
        SandboxWorld(make_scenario(), seed=1, start=START, path=path)


async def test_closed_world_answers_unavailable(clock: Clock) -> None:
    world = SandboxWorld(make_scenario(), seed=1, start=START)
    platform = world.platform("acme", now=clock)
    world.close()
    world.close()
    with pytest.raises(PlatformUnavailable):
        await platform.fetch_account()


async def test_in_memory_calls_are_fast(world: SandboxWorld, clock: Clock) -> None:
    platform = world.platform("acme", now=clock)
    ids = []
    for n in range(180):
        clock.set(hours=4 * n)
        ids.append((await post(platform, n)).platform_post_id)
    started = time.perf_counter()
    for minute in range(500):
        clock.set(hours=4 * 179, minutes=minute)
        await platform.fetch_account()
        await platform.fetch_metrics(ids[-3:])
    per_pair = (time.perf_counter() - started) / 500
    assert per_pair < 0.002, f"{per_pair * 1e6:.0f} us per fetch_account + fetch_metrics"
    assert math.isfinite(per_pair)
