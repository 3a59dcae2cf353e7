"""Planned experiments, piece by piece: balanced seeded blocks, each stop rule on samples built
here (with the numbers that make it fire and the ones that must not), promotion and its undoing,
a redraft keeping its variant, the experiment file's validation, and ``growthloop experiments``
(a bad file exits 2 naming the key path)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent import experiment_spec
from agent.cycles.plan_steps import Choice, vary
from agent.errors import ExperimentError
from agent.experiments import Assigned, Sample, block_variant, decide, hours_in, promotion_of
from agent.learner import without
from agent.models import Experiment, ExperimentStatus, NewExperiment, NewVariant, Variant
from agent.store.engine import create_engine
from agent.store.migrate import upgrade
from agent.store.sql import SqlStore
from tests.acceptance.conftest import cli_env, run_cli
from tests.conftest import T0, make_config
from tests.unit.vt_harness import make_harness


def experiment(
    *,
    variants: int = 2,
    stop_rules: dict[str, Any] | None = None,
    stopped: tuple[str, ...] = (),
    **plan: Any,
) -> Experiment:
    names = ["a", "b", "c", "d"][:variants]
    values: dict[str, Any] = {
        "account_id": 1,
        "name": "e",
        "hypothesis": "h",
        "dimension": "hook",
        "metric": "followers_per_post",
        "mde": 0.5,
        "alpha": 0.05,
        "power": 0.8,
        "baseline_mean": 4.0,
        "baseline_sd": 3.0,
        "max_posts_per_variant": 200,
        "max_days": 30.0,
        "block_size": 2 * variants,
        "seed": 3,
        "stop_rules": {"significance": True} if stop_rules is None else stop_rules,
    }
    new = NewExperiment(**(values | plan))
    return Experiment(
        id=7,
        plan=new,
        variants=tuple(
            Variant(
                id=i + 1,
                name=n,
                value=f"arm_{n}",
                control=i == 0,
                stopped_at=T0 if n in stopped else None,
            )
            for i, n in enumerate(names)
        ),
        status=ExperimentStatus.RUNNING,
        winner=None,
        decision=None,
        reason=None,
        evidence={},
        state={},
        created_at=T0,
        started_at=T0,
    )


def sample(values: np.ndarray, rate: float | None = None) -> Sample:
    impressions = 1000 * len(values) if rate is not None else 0
    return Sample(
        values=tuple(float(v) for v in values),
        engagements=round(impressions * (rate or 0.0)),
        impressions=impressions,
    )


RNG = np.random.default_rng


# -- assignment ------------------------------------------------------------------------------


def test_blocks_hold_each_variant_equally_often_and_are_reproducible() -> None:
    e = experiment(variants=3)
    seq = [block_variant(e, i).name for i in range(60)]
    for start in range(0, 60, 6):
        assert Counter(seq[start : start + 6]) == {"a": 2, "b": 2, "c": 2}
    assert seq == [block_variant(e, i).name for i in range(60)]  # seeded
    assert seq != [block_variant(experiment(variants=3, seed=4), i).name for i in range(60)]
    # a stopped variant gets no more posts; the others stay balanced
    rest = [block_variant(experiment(variants=3, stopped=("c",)), i).name for i in range(12)]
    assert set(rest) == {"a", "b"} and Counter(rest[:6]) == {"a": 3, "b": 3}


def test_hour_windows() -> None:
    assert hours_in("09") == {"09"}
    assert hours_in("09-11") == {"09", "10", "11"}
    assert hours_in("23-01") == {"23", "00", "01"}


async def test_a_redraft_keeps_the_experiments_variant(tmp_path: Path) -> None:
    async with make_harness(tmp_path) as h:
        account = h.agent.config.accounts[0]
        arms = {"content_type": "how_to", "formula": "listicle", "hook": "myth_buster"}
        pinned = Assigned(arms={"hook": "myth_buster"}, assignments=(1,))
        choice = Choice(arms={**arms, "topic": account.topics[0]}, policy="p", assigned=pinned)
        second = vary(h.agent, account, choice, 2)
        assert second.arms["hook"] == "myth_buster" and second.assigned is pinned
        assert second.arms["topic"] != account.topics[0]


# -- stop rules ------------------------------------------------------------------------------


def test_significance_needs_a_real_difference_and_remembers_its_p_value() -> None:
    rng = RNG(1)
    e = experiment()
    same = {"a": sample(rng.normal(4, 3, 60)), "b": sample(rng.normal(4, 3, 60))}
    quiet = decide(e, same, days=3, rng=RNG(0))
    assert quiet.rule is None and 0.05 < quiet.state["p_values"]["b"] <= 1.0
    better = {"a": sample(rng.normal(4, 3, 60)), "b": sample(rng.normal(7, 3, 60))}
    found = decide(e, better, days=3, rng=RNG(0))
    assert (found.rule, found.winner) == ("significance", "b")
    assert found.evidence["p_values"]["b"] <= 0.05
    worse = {"a": sample(rng.normal(7, 3, 60)), "b": sample(rng.normal(4, 3, 60))}
    assert decide(e, worse, days=3, rng=RNG(0)).winner == "a"  # the control was better
    # the running minimum: a small p-value seen before stays (always valid, never rises)
    remembered = replace(e, state={"p_values": {"b": 0.01}})
    assert decide(remembered, same, days=3, rng=RNG(0)).rule == "significance"


def test_no_look_before_the_minimum_posts_per_variant() -> None:
    e = experiment()
    tiny = {"a": sample(np.array([1.0, 1, 2, 1])), "b": sample(np.array([9.0, 10, 11, 9]))}
    assert decide(e, tiny, days=1, rng=RNG(0)).rule is None


def test_a_poor_performer_is_stopped_and_the_last_variant_left_wins() -> None:
    rules = {
        "significance": False,
        "poor_performer": {"engagement_rate_below": 0.02, "after_posts": 20},
    }
    rng = RNG(2)
    three = experiment(variants=3, stop_rules=rules)
    found = {
        "a": sample(rng.normal(4, 3, 25), rate=0.03),
        "b": sample(rng.normal(4, 3, 25), rate=0.01),  # poor
        "c": sample(rng.normal(4, 3, 25), rate=0.03),
    }
    d = decide(three, found, days=2, rng=RNG(0))
    assert d.rule is None and [n for n, _ in d.stop_variants] == ["b"]
    assert "below 2.00%" in d.stop_variants[0][1]
    early = {**found, "b": sample(rng.normal(4, 3, 19), rate=0.01)}  # before after_posts
    assert decide(three, early, days=2, rng=RNG(0)).stop_variants == ()
    two = experiment(stop_rules=rules)
    d2 = decide(two, {"a": found["a"], "b": found["b"]}, days=2, rng=RNG(0))
    assert (d2.rule, d2.winner) == ("poor_performer", "a")


def test_futility_rules_out_the_planned_effect_only_after_enough_posts() -> None:
    rules = {"significance": False, "futility": {"after_fraction": 0.5}}
    rng = RNG(3)
    e = experiment(stop_rules=rules, max_posts_per_variant=100)
    flat = {"a": sample(rng.normal(4, 1, 60)), "b": sample(rng.normal(4, 1, 60))}
    d = decide(e, flat, days=5, rng=RNG(0))
    assert d.rule == "futility" and d.winner is None
    assert d.evidence["upper_bounds"]["b"] < 2.0  # the MDE: 0.5 x 4
    assert (
        decide(
            e, {k: sample(np.array(v.values[:40])) for k, v in flat.items()}, days=5, rng=RNG(0)
        ).rule
        is None
    )
    base = rng.normal(4, 3, 60)
    promising = {"a": sample(base), "b": sample(rng.permutation(base) + 1.5)}
    assert decide(e, promising, days=5, rng=RNG(0)).rule is None  # 2 still inside the interval


def test_maximum_duration_by_posts_or_days() -> None:
    rules: dict[str, Any] = {"significance": False}
    rng = RNG(4)
    e = experiment(stop_rules=rules, max_posts_per_variant=50, max_days=10)
    some = {"a": sample(rng.normal(4, 3, 30)), "b": sample(rng.normal(4, 3, 30))}
    assert decide(e, some, days=9.9, rng=RNG(0)).rule is None
    assert decide(e, some, days=10, rng=RNG(0)).rule == "max_duration"
    full = {"a": sample(rng.normal(4, 3, 50)), "b": sample(rng.normal(4, 3, 50))}
    d = decide(e, full, days=1, rng=RNG(0))
    assert d.rule == "max_duration" and d.winner is None and "50 of 50" in d.reason


def test_the_bayesian_threshold_needs_both_p_best_and_a_small_loss() -> None:
    rules = {"significance": False, "bayesian": {"p_best": 0.95, "expected_loss": 0.01}}
    rng = RNG(5)
    e = experiment(stop_rules=rules)
    clear = {"a": sample(rng.normal(4, 1, 40)), "b": sample(rng.normal(6, 1, 40))}
    d = decide(e, clear, days=2, rng=RNG(0))
    assert (d.rule, d.winner) == ("bayesian", "b") and d.evidence["p_best"]["b"] > 0.95
    base = rng.normal(4, 3, 40)
    close = {"a": sample(base), "b": sample(rng.permutation(base) + 0.3)}  # P(best) ~0.7
    assert decide(e, close, days=2, rng=RNG(0)).rule is None


# -- promotion -------------------------------------------------------------------------------


def test_promotion_retires_the_losers_or_sets_the_voice_and_the_learner_drops_retired_arms() -> (
    None
):
    e = replace(experiment(variants=3), winner="b")
    assert promotion_of(e) == {"winner": "arm_b", "retired": {"hook": ["arm_a", "arm_c"]}}
    voice = replace(experiment(dimension="voice"), winner="a")
    assert promotion_of(voice) == {"winner": "arm_a", "retired": {}, "voice": "arm_a"}
    catalogue = {"hook": ["arm_a", "arm_b", "arm_c"], "formula": ["x"]}
    assert without(dict(catalogue), {"hook": {"arm_a", "arm_c"}}) == {
        "hook": ["arm_b"],
        "formula": ["x"],
    }
    assert without(dict(catalogue), {"formula": {"x"}})["formula"] == ["x"]  # never empty


# -- the file and the command ------------------------------------------------------------------

GOOD = """
account: demo
name: stat hook
hypothesis: a surprising stat earns more engagement
varies: hook
variants:
  - {name: myth, value: myth_buster, control: true}
  - {name: stat, value: surprising_stat}
metric: engagement_rate
mde: 0.3
baseline: {mean: 0.02, sd: 0.01}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("alpha: 0.05", "alpha: 0.7"), "alpha: Input should be less than 0.5"),
        (("mde: 0.3", "mde: 0.3\nmdee: 1"), "mdee: unknown key"),
        (("metric: engagement_rate", "metric: likes"), "metric: Input should be"),
        (("  - {name: stat, value: surprising_stat}", "  - {name: myth, value: x}"), "same name"),
    ],
)
def test_a_bad_file_names_the_key(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace("mde: 0.3", "mde: 0.3\nalpha: 0.05").replace(*change)
    with pytest.raises(ExperimentError, match="not valid") as raised:
        experiment_spec.parse(text)
    assert message in str(raised.value)


def test_an_unknown_arm_or_account_names_the_key() -> None:
    config = make_config()
    spec = experiment_spec.parse(GOOD.replace("value: surprising_stat", "value: no_such_hook"))
    with pytest.raises(ExperimentError, match=r"variants\[1\]\.value: unknown hook 'no_such_hook'"):
        experiment_spec.check_values(spec, config)
    nobody = experiment_spec.parse(GOOD.replace("account: demo", "account: nobody"))
    with pytest.raises(ExperimentError, match="account: unknown account 'nobody'"):
        experiment_spec.check_values(nobody, config)
    hour = experiment_spec.parse(
        GOOD.replace("varies: hook", "varies: hour").replace("value: myth_buster", "value: 9am")
    )
    with pytest.raises(ExperimentError, match=r"variants\[0\]\.value: an hour"):
        experiment_spec.check_values(hour, config)


def test_a_prompt_experiment_needs_the_openai_generator_and_known_versions() -> None:
    spec = experiment_spec.parse(
        GOOD.replace("varies: hook", "varies: prompt")
        .replace("value: myth_buster", "value: default")
        .replace("value: surprising_stat", "value: concrete")
    )
    with pytest.raises(ExperimentError, match="varies: prompt versions are instructions"):
        experiment_spec.check_values(spec, make_config())
    config = make_config()
    openai = config.model_copy(
        update={
            "generator": config.generator.model_copy(
                update={"kind": "openai", "prompts": {"concrete": "Be concrete."}}
            )
        }
    )
    experiment_spec.check_values(spec, openai)  # default and concrete are known
    unknown = experiment_spec.parse(
        GOOD.replace("varies: hook", "varies: prompt")
        .replace("value: myth_buster", "value: default")
        .replace("value: surprising_stat", "value: chatty")
    )
    with pytest.raises(ExperimentError, match=r"variants\[1\]\.value: unknown prompt version"):
        experiment_spec.check_values(unknown, openai)
    winner = replace(experiment(dimension="prompt"), winner="b")
    assert promotion_of(winner) == {"winner": "arm_b", "retired": {}, "prompt": "arm_b"}


async def test_the_baseline_comes_from_the_history_or_the_file(tmp_path: Path) -> None:
    async with make_harness(tmp_path) as h:
        spec = experiment_spec.parse(GOOD.replace("baseline: {mean: 0.02, sd: 0.01}", ""))
        with pytest.raises(ExperimentError, match="baseline: the account has 0 learned posts"):
            await experiment_spec.create(h.store, h.agent.config, spec, now=T0)
        assert await h.store.experiments() == []


async def _cli_database(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    store = SqlStore(engine)
    await store.ensure_account(name="demo", platform="sandbox", handle=None, now=T0)
    await store.close()
    return cli_env(DATABASE_URL=url, COLUMNS="200")


def test_the_command_creates_lists_shows_stops_and_promotes_and_refuses_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process (Typer's runner), but for one refusal through the installed command."""
    import asyncio

    from typer.testing import CliRunner

    from agent.cli import app

    env = asyncio.run(_cli_database(tmp_path))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["experiments", *args], env=env)

    (tmp_path / "good.yaml").write_text(GOOD)
    made = cli("create", "good.yaml")
    assert made.exit_code == 0, made.output
    assert "created experiment 1" in made.stdout and "running" in made.stdout

    bad = {
        "alpha.yaml": (GOOD + "alpha: 0.7\n", "alpha: Input should be less than 0.5"),
        "arm.yaml": (
            GOOD.replace("varies: hook", "varies: formula"),
            "variants[0].value: unknown formula 'myth_buster'",
        ),
        "overlap.yaml": (GOOD.replace("name: stat hook", "name: again"), "varies: experiment 1"),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        refused = cli("create", name)
        assert refused.exit_code == 2, (name, refused.output)
        assert message in refused.stderr, refused.stderr
        assert refused.exception is None or isinstance(refused.exception, SystemExit)
    # the installed command: exit 2 and the key path, never a traceback
    real = run_cli("experiments", "create", "alpha.yaml", cwd=tmp_path, env=env)
    assert real.returncode == 2 and bad["alpha.yaml"][1] in real.stderr
    assert "Traceback" not in real.stderr
    missing = cli("create", "nothing.yaml")
    assert missing.exit_code == 2 and "cannot read" in missing.stderr

    listed = cli("list")
    assert listed.exit_code == 0 and "stat hook" in listed.stdout and "running" in listed.stdout
    shown = cli("show", "1")
    assert shown.exit_code == 0, shown.output
    assert "MDE +30%" in shown.stdout and "surprising_stat" in shown.stdout
    assert cli("show", "9").exit_code == 2
    assert cli("promote", "1").exit_code == 2  # running, no winner
    wrong = cli("stop", "1", "--winner", "nope")
    assert wrong.exit_code == 2 and "no variant 'nope'" in wrong.stderr
    stopped = cli("stop", "1", "--winner", "stat")
    assert stopped.exit_code == 0, stopped.output
    promoted = cli("promote", "1")
    assert promoted.exit_code == 0 and "promoted stat (surprising_stat)" in promoted.stdout
    assert cli("promote", "1").exit_code == 2  # promoted already
    assert "(promoted)" in cli("list").stdout
    undone = cli("promote", "1", "--undo")
    assert undone.exit_code == 0 and "undid" in undone.stdout
    assert "(promoted)" not in cli("list").stdout
    # the experiment ended: the same thing may be varied again
    assert cli("create", "overlap.yaml").exit_code == 0


# -- the plan step's hook --------------------------------------------------------------------


async def test_an_hour_window_is_assigned_only_when_the_cadence_allows_it_and_a_voice_promoted(
    tmp_path: Path,
) -> None:
    from agent import experiments
    from agent.cycles.plan_steps import choose, choose_slot

    async with make_harness(tmp_path) as h:
        account = h.agent.config.accounts[0]
        account_id = h.agent.account_ids[account.name]
        store, now = h.store, h.clock.now()
        hours = experiment(dimension="hour").plan
        windows = (
            NewVariant(name="morning", value="09-10", control=True),
            NewVariant(name="evening", value="18-19"),
        )
        made = await store.create_experiment(
            replace(hours, account_id=account_id, variants=windows, block_size=2), now=now
        )
        await store.set_experiment_status(
            made.id, expected=[ExperimentStatus.DRAFT], status=ExperimentStatus.RUNNING, now=now
        )
        allowed = {"10": now, "11": now, "18": now}
        first = await experiments.assign(h.agent, account_id, now, hours=allowed)
        second = await experiments.assign(h.agent, account_id, now, hours=allowed)
        assert sorted(a.arms["hour"] for a in (first, second)) == ["10", "18"]  # one block
        none = await experiments.assign(h.agent, account_id, now, hours={"13": now})
        assert none.arms == {} and none.assignments == ()  # not in the experiment
        assert len(await store.assignments(made.id)) == 2

        voices = replace(
            experiment(dimension="voice").plan,
            account_id=account_id,
            variants=(
                NewVariant(name="plain", value="a plain voice", control=True),
                NewVariant(name="warm", value="a warm, funny voice"),
            ),
        )
        spoken = await store.create_experiment(voices, now=now)
        for status in (ExperimentStatus.RUNNING, ExperimentStatus.COMPLETED):
            await store.set_experiment_status(
                spoken.id,
                expected=[ExperimentStatus.DRAFT, ExperimentStatus.RUNNING],
                status=status,
                now=now,
                winner="warm",
                decision="significance",
            )
        done = await store.get_experiment(spoken.id)
        assert done is not None and await experiments.promote(store, done, now=now)
        h.agent.caches.pop(experiments.CACHE, None)
        later = now + timedelta(minutes=1)
        slot = await choose_slot(h.agent, account, account_id, later)
        choice = await choose(h.agent, account, account_id, later, slot=slot)
        assert choice.arms["voice"] == "a warm, funny voice"
        assert await experiments.promote(store, done, now=later, undo=True)
        h.agent.caches.pop(experiments.CACHE, None)
        again = await choose(h.agent, account, account_id, later, slot=slot)
        assert "voice" not in again.arms


def test_a_format_experiment_needs_threads_on() -> None:
    spec = experiment_spec.parse(
        GOOD.replace("varies: hook", "varies: format")
        .replace("value: myth_buster", "value: single")
        .replace("value: surprising_stat", "value: thread")
    )
    config = make_config()
    with pytest.raises(ExperimentError, match=r"only with threads\.enabled"):
        experiment_spec.check_values(spec, config)
    threads = config.model_copy(
        update={"threads": config.threads.model_copy(update={"enabled": True})}
    )
    experiment_spec.check_values(spec, threads)  # single and thread are the format's arms


async def test_a_redraft_never_takes_a_retired_hook(tmp_path: Path) -> None:
    """Regression: a redraft drew its new hook from the whole catalogue, so a hook a promoted
    experiment retired came back whenever the gate refused a first draft."""
    async with make_harness(tmp_path) as h:
        account = h.agent.config.accounts[0]
        hooks = h.agent.config.catalogues.arms()["hook"]
        keep = hooks[0]
        choice = Choice(
            arms={"content_type": "how_to", "formula": "x", "hook": keep, "topic": "t"},
            policy="joint",
            retired={"hook": frozenset(hooks[2:])},
        )
        drawn = {vary(h.agent, account, choice, attempt).arms["hook"] for attempt in (2, 3) * 30}
    assert drawn == {hooks[1]}  # not the current hook, never a retired one
