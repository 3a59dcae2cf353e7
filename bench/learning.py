"""The learning benchmark: scenarios x policies x seeds, through the real cycles in simulated time.

    python -m bench.learning [--scenario NAME|FILE ...] [--policy NAME ...] [--seeds N] [--days D]
                             [--jobs J] [--json OUT] [--markdown OUT] [--plots DIR]
    python -m bench.learning --worlds tune|report [--count N] [--kind all|drift|stationary]
                             [--seeds N] [--jobs J]
                             [--summary-json OUT] [--markdown OUT] [--plots DIR] [--worlds-dir DIR]

Each run builds the real agent (plan, publish, poll, attribute, learn) on the simulated platform
of one scenario file, with one policy, for one seed, and runs it on a virtual clock for the
scenario's ``bench.days`` (or ``--days``) at its ``bench.posts_per_day``. Afterwards every post
is scored against the scenario's hidden truth:

- **fraction of the oracle**: the expected followers the policy's posts caused, over what the
  oracle (always the truly best arms at that moment) would have caused with the same posts at
  the same follower counts. Expected values, not the realised draws, so the ratio measures the
  decisions rather than the luck of the viral lottery; the realised followers are reported too.
- **regret**: the oracle's expected followers minus the policy's.
- **best-arm share**: per dimension, the share of the last 30 days' posts on the truly best arm.
- the same fraction for **engagement** (against the engagement-maximising arms).

- **after a change** (drifting worlds): per dimension whose best arm changed, the best-arm share
  in the 30 days after the change and the time to recover (``bench/suite.py``).

With ``--worlds`` the scenarios are generated worlds (``adapters/worlds.py``) from the fixed
``tune`` or ``report`` seed set, and the report is the distribution over worlds
(``bench/suite.py``): each policy's share of the oracle, the learner's ratio over each baseline
and the share of worlds it wins, the drift figures, and one plot of those distributions.

Output: one JSON object per run (``--json``), a markdown table (stdout and ``--markdown``), and
PNG plots (``--plots``): cumulative expected followers as a fraction of the oracle over time,
and the joint learner's posterior intervals beside the truth.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml
from pydantic import ValidationError

from adapters.sandbox import REPLY_LABEL
from adapters.sandbox_model import GroundTruth, Scenario
from adapters.scenario_files import is_scenario_name
from adapters.worlds import DEFAULT_COUNT, SEED_SETS, WORLD_KINDS, write_worlds
from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.config import ArmEntry, Catalogues, Config, load_config
from agent.errors import ConfigError
from agent.learner import catalogue_for, joint_posterior
from agent.logs import configure_logging
from agent.models import DIMENSIONS
from agent.simulator import run_until
from bench.suite import after_change, changes, suite_markdown, suite_plot, summarise_suite
from learning.estimates import ArmEstimate, Estimates, posts_per_arm, ranked
from learning.policies import BASELINES, POLICIES, JointState, Outcome

DEFAULT_SCENARIOS = (
    "stationary",
    "drifting",
    "viral",
    "many_arms",
    "interaction",
    "high_frequency",
    "small_account",
    "posting_time",
)
LEARNER = "joint"
# The follower count is read every 30 minutes instead of the daemon's 10: the deconvolution bins
# readings by the hour anyway, and a third of the readings makes a run ~10 % faster
# (``--set polling.account_every=10m`` restores the default).
BENCH_ACCOUNT_POLL = timedelta(minutes=30)
DEFAULT_POLICIES = (LEARNER, *BASELINES)
START = datetime(2026, 1, 5, tzinfo=UTC)
ACCOUNT = "bench"
LAST_DAYS = 30.0


# ------------------------------------------------------------------------------ the oracle


def best_arms(
    truth: GroundTruth, catalogue: Mapping[str, Sequence[str]], day: float, metric: str
) -> dict[str, str]:
    """The arms with the highest expected ``metric`` on ``day`` (jointly where coupled)."""
    coupled = [d for d in catalogue if d in truth.coupled_dimensions()]
    chosen: dict[str, str] = {}
    for dimension, arms in catalogue.items():
        if dimension in coupled:
            continue
        chosen[dimension] = max(
            arms, key=lambda a: (truth.expected_on_day({dimension: a}, day, metric=metric), a)
        )
    if coupled:
        combos = itertools.product(*(catalogue[d] for d in coupled))
        best = max(
            combos,
            key=lambda combo: truth.expected_on_day(
                dict(zip(coupled, combo, strict=True)), day, metric=metric
            ),
        )
        chosen.update(zip(coupled, best, strict=True))
    return chosen


@dataclass
class Oracle:
    """Always the truly best arms at the moment of planning (benchmarks only)."""

    world: Any
    start: datetime
    time_scale: float
    name: str = "oracle"
    learns_hours: ClassVar[bool] = True  # picks the best hour among the slots the cadence allows

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Mapping[str, Sequence[str]],
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> tuple[dict[str, str], None]:
        day = (now - self.start).total_seconds() * self.time_scale / 86400.0
        return best_arms(self.world.ground_truth(), catalogue, day, "followers"), None

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Mapping[str, Sequence[str]],
        now: datetime,
        rng: np.random.Generator,
        state: Any = None,
    ) -> Estimates:
        """The truth: each arm's expected followers per post, known exactly."""
        day = (now - self.start).total_seconds() * self.time_scale / 86400.0
        truth = self.world.ground_truth()
        best = best_arms(truth, catalogue, day, "followers")
        dimensions = {}
        for dimension, arms in catalogue.items():
            posts = posts_per_arm([o.arms for o in history if o.final], dimension, arms)
            values = {a: truth.expected_on_day({dimension: a}, day) for a in arms}
            dimensions[dimension] = ranked(
                [
                    ArmEstimate(
                        arm=a,
                        posts=posts[a],
                        mean=values[a],
                        low=values[a],
                        high=values[a],
                        p_best=float(a == best.get(dimension)),
                    )
                    for a in arms
                ]
            )
        return Estimates(model=self.name, unit="followers per post", dimensions=dimensions)


# ------------------------------------------------------------------------------ one run


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``KEY=VALUE`` settings (dotted key paths, YAML values) on top of a configuration."""
    if not overrides:
        return cfg
    data = cfg.model_dump(mode="python")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE, e.g. learning.half_life_days=60"
            )
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section of the config")
            node = child
        node[leaf] = yaml.safe_load(raw)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--set {', '.join(overrides)}: {exc.errors()[0]['msg']}") from None


def bench_config(
    scenario_ref: str, scenario: Scenario, policy: str, overrides: Sequence[str] = ()
) -> Config:
    """The default configuration on one sandbox account, driven the way the scenario asks."""
    cfg = apply_overrides(load_config(None), overrides)
    base = cfg.accounts[0]
    account = base.model_copy(update={"name": ACCOUNT, "platform": "sandbox"})
    catalogues = cfg.catalogues
    named = {d: list(arms) for d, arms in scenario.effects.items() if d in DIMENSIONS}
    outside = any(
        len(arms) >= 2 and set(arms) - set(catalogues.arms()[d]) for d, arms in named.items()
    )
    if outside or scenario.bench.catalogue == "scenario":
        entries = {
            d: [
                ArmEntry(name=a, description=f"{a.replace('_', ' ')}: a {d} of this scenario")
                for a in named[d]
            ]
            if len(named.get(d, [])) >= 2
            else getattr(catalogues, _KEYS[d])
            for d in DIMENSIONS
        }
        catalogues = Catalogues(**{_KEYS[d]: entries[d] for d in DIMENSIONS})
    set_keys = {o.split("=", 1)[0].strip() for o in overrides}
    update: dict[str, Any] = {"policy": policy if policy in POLICIES else LEARNER}
    if "learning.compare_attribution" not in set_keys:
        update["compare_attribution"] = False  # only the learner's method: half the work
    learning = cfg.learning.model_copy(update=update)
    polling = cfg.polling
    if "polling.account_every" not in set_keys:
        polling = polling.model_copy(update={"account_every": BENCH_ACCOUNT_POLL})
    cadence = cfg.cadence.model_copy(update={"posts_per_day": scenario.bench.posts_per_day})
    return cfg.model_copy(
        update={
            "accounts": [account],
            "catalogues": catalogues,
            "learning": learning,
            "polling": polling,
            "cadence": cadence,
            "sandbox": cfg.sandbox.model_copy(update={"scenario": scenario_ref}),
        }
    )


_KEYS = {"content_type": "content_types", "formula": "formulas", "hook": "hooks"}


async def run_one(
    scenario_ref: str,
    policy: str,
    seed: int,
    days: float | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    scenario = Scenario.load(scenario_ref)
    days = scenario.bench.days if days is None else days
    cfg = bench_config(scenario_ref, scenario, policy, overrides)
    clock = VirtualClock(START)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        built = await build(
            cfg,
            clock=clock,
            seed=seed,
            sqlite_path=Path(tmp) / "bench.db",
            world_in_memory=True,
            store="memory",
        )
        try:
            if policy == "oracle":
                built.agent.policies[ACCOUNT] = Oracle(built.world, START, scenario.time_scale)
            elif policy not in POLICIES:
                raise ConfigError(
                    f"unknown policy {policy!r}; known: {', '.join([*POLICIES, 'oracle'])}"
                )
            result = await run_until(built.agent, clock, START + timedelta(days=days))
            assert built.world is not None  # a sandbox account always has its world
            truth = built.world.ground_truth()
            account = cfg.accounts[0]
            catalogue = catalogue_for(cfg, account)
            catalogue.pop("topic", None)
            posterior = None
            if policy == LEARNER:
                account_id = built.agent.account_ids[ACCOUNT]
                posterior = await joint_posterior(built.agent, account, account_id)
            out = score(truth, catalogue, days, scenario.time_scale)
            final_day = days * scenario.time_scale
            out |= {
                "scenario": scenario.name,
                "scenario_file": scenario_ref,
                "scenario_description": scenario.description,
                "policy": policy + (f"[{','.join(overrides)}]" if overrides else ""),
                "overrides": list(overrides),
                "seed": seed,
                "days": days,
                "posts_per_day": scenario.bench.posts_per_day,
                "steps": result.steps,
                "counts": result.counts,
                "seconds": round(time.perf_counter() - began, 2),
            }
            learner = built.agent.learner_states.get(ACCOUNT)
            if isinstance(learner, JointState):  # the changes it found, and how near it came
                out["changes"] = [
                    {
                        "dimension": c.dimension,
                        "arm": c.arm,
                        "day": round((c.at - START) / timedelta(days=1) * scenario.time_scale, 2),
                        "statistic": round(c.statistic, 2),
                        "ratio": round(c.ratio, 3),
                    }
                    for c in learner.changes
                ]
                out["change_peak"] = round(learner.peak, 2)
            if posterior is not None:
                out["posterior"] = {
                    d: {
                        "learned": [list(r) for r in posterior.arm_table(d)],
                        "true": {a: truth.expected_on_day({d: a}, final_day) for a in catalogue[d]},
                    }
                    for d in catalogue
                }
                out["rho"], out["tau"] = posterior.rho, posterior.tau
        finally:
            await built.aclose()
    return out


BLOCK_DAYS = 15  # the blocks of "posts_per_block" in a run's JSON


def score(
    truth: GroundTruth, catalogue: Mapping[str, Sequence[str]], days: float, time_scale: float
) -> dict[str, Any]:
    """Compare every post with what the oracle would have posted at that moment."""
    posts = sorted(truth.post_days, key=lambda pid: truth.post_days[pid])
    chosen_f = oracle_f = chosen_e = oracle_e = realised = 0.0
    timeline: list[tuple[float, float, float]] = []
    last_start = days * time_scale - LAST_DAYS
    on_best = {d: [0, 0] for d in catalogue}
    # posts per arm in each BLOCK_DAYS-day block (where a policy moved, and when)
    blocks = max(1, math.ceil(days * time_scale / BLOCK_DAYS))
    by_block = {d: {a: [0] * blocks for a in arms} for d, arms in catalogue.items()}
    best_cache: dict[tuple[float, str], dict[str, str]] = {}
    steps = [(step.at_day, step.ramp_days) for step in truth.model.scenario.drift]
    records: list[tuple[float, dict[str, str], dict[str, str]]] = []
    for pid in posts:
        day = truth.post_days[pid]
        if REPLY_LABEL in truth.post_arms[pid]:
            # a thread's later part (docs/threads.md): no decision of its own; the followers it
            # brings count for the thread, the same for the policy and for the oracle
            chosen_f += truth.expected_followers_caused[pid]
            oracle_f += truth.expected_followers_caused[pid]
            realised += truth.followers_caused[pid]
            continue
        arms = {d: a for d, a in truth.post_arms[pid].items() if d in catalogue}
        key = truth_key(steps, day)
        for metric in ("followers", "engagements"):
            if (key, metric) not in best_cache:
                best_cache[(key, metric)] = best_arms(truth, catalogue, day, metric)
        best = best_cache[(key, "followers")]
        records.append((day, arms, best))
        expected = truth.expected_followers_caused[pid]
        mine = truth.expected_on_day(arms, day)
        ideal = truth.expected_on_day(best, day)
        chosen_f += expected
        oracle_f += expected * ideal / mine if mine > 0 else expected
        chosen_e += truth.expected_on_day(arms, day, metric="engagements")
        oracle_e += truth.expected_on_day(
            best_cache[(key, "engagements")], day, metric="engagements"
        )
        realised += truth.followers_caused[pid]
        timeline.append((round(day, 3), round(chosen_f, 3), round(oracle_f, 3)))
        block = min(int(day // BLOCK_DAYS), blocks - 1)
        for d, arm in arms.items():
            if arm in by_block[d]:
                by_block[d][arm][block] += 1
        if day >= last_start:
            for d in catalogue:
                on_best[d][1] += 1
                on_best[d][0] += arms.get(d) == best[d]
    return {
        "posts": len(records),  # the decisions (a thread is one, however many parts)
        "expected_followers": chosen_f,
        "oracle_followers": oracle_f,
        "fraction_of_oracle": chosen_f / oracle_f if oracle_f else None,
        "regret": oracle_f - chosen_f,
        "realised_followers_caused": realised,
        "engagement_fraction_of_oracle": chosen_e / oracle_e if oracle_e else None,
        "best_arm_share_last_30d": {d: (n / t if t else None) for d, (n, t) in on_best.items()},
        "timeline": timeline[:: max(1, len(timeline) // 200)] + timeline[-1:],
        "posts_per_block": by_block,
        "after_change": after_change(
            records,
            changes(
                steps,
                list(catalogue),
                lambda d: best_arms(truth, catalogue, d, "followers"),
                days * time_scale,
            ),
            days * time_scale,
        ),
    }


def truth_key(steps: Sequence[tuple[float, float]], day: float) -> float:
    """A key under which the truth is the same: the drift epoch, or the day itself in a ramp."""
    key = 0.0
    for at_day, ramp in steps:
        if day < at_day:
            break
        if day < at_day + ramp:
            return day
        key = at_day + ramp
    return key


Task = tuple[str, str, int, float | None, tuple[str, ...]]


def _run_in_process(args: Task) -> dict[str, Any]:
    scenario, policy, seed, days, overrides = args
    return asyncio.run(run_one(scenario, policy, seed, days, overrides))


# ------------------------------------------------------------------------------ reports


def summarise(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, policy): means over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["policy"]), []).append(run)
    rows = []
    for (scenario, policy), group in groups.items():
        fractions = [r["fraction_of_oracle"] for r in group if r["fraction_of_oracle"] is not None]
        shares = {
            d: statistics.mean(
                r["best_arm_share_last_30d"][d]
                for r in group
                if r["best_arm_share_last_30d"][d] is not None
            )
            for d in group[0]["best_arm_share_last_30d"]
        }
        rows.append(
            {
                "scenario": scenario,
                "policy": policy,
                "seeds": len(group),
                "fraction_of_oracle": statistics.mean(fractions),
                "fraction_sd": statistics.stdev(fractions) if len(fractions) > 1 else 0.0,
                "regret": statistics.mean(r["regret"] for r in group),
                "expected_followers": statistics.mean(r["expected_followers"] for r in group),
                "realised_followers": statistics.mean(
                    r["realised_followers_caused"] for r in group
                ),
                "engagement_fraction": statistics.mean(
                    r["engagement_fraction_of_oracle"] for r in group
                ),
                "best_arm_share": shares,
                "seconds": statistics.median(r["seconds"] for r in group),
            }
        )
    order = {name: i for i, name in enumerate(DEFAULT_SCENARIOS)}
    return sorted(rows, key=lambda r: (order.get(r["scenario"], 99), r["scenario"], r["policy"]))


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| scenario | policy | seeds | followers / oracle | regret | realised followers "
        "| engagement / oracle | best-arm share, last 30 d (ct / formula / hook) | s/run |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        shares = " / ".join(
            f"{r['best_arm_share'].get(d, 0.0):.0%}" for d in ("content_type", "formula", "hook")
        )
        lines.append(
            f"| {r['scenario']} | {r['policy']} | {r['seeds']} | "
            f"{r['fraction_of_oracle']:.1%} ± {r['fraction_sd']:.1%} | {r['regret']:.0f} | "
            f"{r['realised_followers']:.0f} | {r['engagement_fraction']:.1%} | {shares} | "
            f"{r['seconds']:.1f} |"
        )
    verdict = verdicts(rows)
    if verdict:
        lines += ["", *verdict]
    return "\n".join(lines)


def verdicts(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Does the learner beat every baseline, per scenario (ratios of expected followers)?"""
    out = []
    by = {(r["scenario"], r["policy"]): r for r in rows}
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        learner = by.get((scenario, LEARNER))
        if learner is None:
            continue
        parts = []
        wins = True
        for baseline in BASELINES:
            other = by.get((scenario, baseline))
            if other is None:
                continue
            ratio = learner["expected_followers"] / max(other["expected_followers"], 1e-9)
            wins &= ratio > 1.0
            parts.append(f"{ratio:.2f}x {baseline}")
        if parts:
            status = "beats every baseline" if wins else "does NOT beat every baseline"
            out.append(f"- {scenario}: {LEARNER} {status} ({', '.join(parts)})")
    return out


def plots(runs: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Cumulative followers vs the oracle over time, and posterior intervals vs the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    scenarios = dict.fromkeys(r["scenario"] for r in runs)
    for scenario in scenarios:
        fig, ax = plt.subplots(figsize=(7, 4))
        mine = [r for r in runs if r["scenario"] == scenario]
        for policy in dict.fromkeys(r["policy"] for r in mine):
            group = [r for r in mine if r["policy"] == policy]
            grid = np.linspace(1.0, max(r["days"] for r in group), 90)
            curves = []
            for r in group:
                t = np.array([p[0] for p in r["timeline"]])
                ratio = np.array([p[1] / p[2] if p[2] else 1.0 for p in r["timeline"]])
                curves.append(np.interp(grid, t, ratio))
            ax.plot(grid, np.mean(curves, axis=0), label=policy)
        ax.set_xlabel("day")
        ax.set_ylabel("cumulative expected followers / oracle")
        ax.set_title(f"{scenario}: followers as a fraction of the oracle")
        ax.set_ylim(0.4, 1.02)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        path = directory / f"{scenario}-oracle.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
        learned = next((r for r in mine if r.get("posterior")), None)
        if learned is None:
            continue
        dims = list(learned["posterior"])
        fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 4))
        for ax, d in zip(np.atleast_1d(axes), dims, strict=True):
            table = learned["posterior"][d]["learned"]
            names = [row[0] for row in table]
            y = np.arange(len(names))
            means = np.array([row[1] for row in table])
            low = np.array([row[2] for row in table])
            high = np.array([row[3] for row in table])
            ax.errorbar(means, y, xerr=[means - low, high - means], fmt="o", label="learned 90%")
            truth = learned["posterior"][d]["true"]
            ax.plot([truth[n] for n in names], y, "rx", label="true")
            ax.set_yticks(y, names, fontsize=7)
            ax.set_title(d)
            ax.invert_yaxis()
        np.atleast_1d(axes)[0].legend(fontsize=7)
        fig.suptitle(f"{scenario}: posterior (seed {learned['seed']}) vs truth, followers/post")
        fig.tight_layout()
        path = directory / f"{scenario}-posterior.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# ------------------------------------------------------------------------------ CLI


def scenario_refs(names: Sequence[str]) -> list[str]:
    """Shipped scenarios by name (adapters/scenarios/), other scenario files by path."""
    out = []
    for name in names or DEFAULT_SCENARIOS:
        ref = name if is_scenario_name(name) else str(Path(name).resolve())
        if not is_scenario_name(ref) and not Path(ref).is_file():
            raise ConfigError(f"scenario file {ref} does not exist")
        Scenario.load(ref)  # a clear error now rather than in a worker
        out.append(ref)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="file or built-in name")
    parser.add_argument(
        "--worlds",
        choices=sorted(SEED_SETS),
        help="run a suite of generated worlds from this seed set instead of scenarios",
    )
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="--worlds: the set's first N worlds"
    )
    parser.add_argument(
        "--kind",
        choices=WORLD_KINDS,
        default="all",
        help="--worlds: only worlds whose best arm changes (drift) or none does (stationary)",
    )
    parser.add_argument(
        "--worlds-dir", type=Path, help="--worlds: keep the world files here (default: temporary)"
    )
    parser.add_argument("--summary-json", type=Path, help="--worlds: the suite summary (JSON)")
    parser.add_argument("--policy", action="append", default=[], help="policy name, or oracle")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--days", type=float, help="default: each scenario's bench.days")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", type=Path, help="write one JSON object per run (JSON lines)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plots", type=Path, help="directory for PNG plots")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config setting for every run, e.g. learning.half_life_days=60 (ablations)",
    )
    args = parser.parse_args(argv)
    if args.worlds is None and (args.summary_json or args.worlds_dir or args.kind != "all"):
        print("error: --summary-json, --worlds-dir and --kind go with --worlds", file=sys.stderr)
        return 2
    if args.worlds is not None and args.scenario:
        print("error: give --worlds or --scenario, not both", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="worlds-") as tmp:
        try:
            if args.worlds is not None:
                seeds = SEED_SETS[args.worlds].seeds(args.count, args.kind)
                directory = args.worlds_dir or Path(tmp)
                refs = [str(p.resolve()) for p in write_worlds(seeds, directory)]
            else:
                refs = scenario_refs(args.scenario)
            policies = args.policy or list(DEFAULT_POLICIES)
            for policy in policies:
                if policy not in POLICIES and policy != "oracle":
                    raise ConfigError(
                        f"unknown policy {policy!r}; known: {', '.join([*POLICIES, 'oracle'])}"
                    )
            apply_overrides(load_config(None), args.set)
        except (ConfigError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: cannot write the worlds: {exc.strerror or exc}", file=sys.stderr)
            return 2
        tasks: list[Task] = [
            (ref, policy, seed, args.days, tuple(args.set))
            for ref in refs
            for policy in policies
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        runs = execute(tasks, args.jobs, args.json)
    if args.worlds is not None:
        return _report_suite(runs, args)
    table = markdown(summarise(runs))
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.plots:
        for path in plots(runs, args.plots):
            print(f"wrote {path}")
    return 0


def _report_suite(runs: Sequence[dict[str, Any]], args: argparse.Namespace) -> int:
    """A generated suite: distributions over worlds (bench/suite.py), not one row per world."""
    summary = summarise_suite(runs, learner=LEARNER, baselines=BASELINES)
    summary |= {"seed_set": args.worlds, "kind": args.kind, "count": args.count, "days": args.days}
    table = suite_markdown(summary)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=1) + "\n")
    if args.plots:
        path = suite_plot(summary, args.plots / f"worlds-{args.worlds}.png")
        print(f"wrote {path}")
    return 0


def _expected_cost(task: Task) -> float:
    """A run's relative cost: the posts it makes, times ~1.5 for the joint learner's fits."""
    scenario_file, policy, _seed, days, _overrides = task
    bench = Scenario.load(scenario_file).bench
    posts = bench.posts_per_day * (bench.days if days is None else days)
    return posts * (1.5 if policy == LEARNER else 1.0)


def execute(tasks: Sequence[Task], jobs: int, out: Path | None = None) -> list[dict[str, Any]]:
    """Run every task; each finished run is appended to ``out`` at once (JSON lines), so an
    interrupted benchmark keeps what it finished."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from agent.progress_lines import ProgressLines

    began = time.perf_counter()
    runs: list[dict[str, Any]] = []
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    sink = out.open("w") if out is not None else None

    def done(run: dict[str, Any]) -> None:
        runs.append(run)
        if sink is not None:
            sink.write(json.dumps(run) + "\n")
            sink.flush()

    try:
        with Progress(*columns, transient=False) as progress:
            bar = progress.add_task("runs", total=len(tasks))
            # off a terminal (CI logs, pipes) the bar draws nothing: a line every 5 % instead
            lines = (
                None
                if progress.console.is_terminal or not tasks
                else ProgressLines(Console(stderr=True), label="runs", total=len(tasks))
            )

            def advance() -> None:
                progress.advance(bar)
                if lines is not None:
                    lines.update(len(runs), f"{len(runs)}/{len(tasks)}")

            if jobs <= 1:
                for task in tasks:
                    done(_run_in_process(task))
                    advance()
            else:
                with ProcessPoolExecutor(max_workers=jobs) as pool:
                    # longest first, so no process is left alone with a long run at the end
                    ordered = sorted(tasks, key=_expected_cost, reverse=True)
                    futures = [pool.submit(_run_in_process, task) for task in ordered]
                    for future in as_completed(futures):
                        done(future.result())
                        advance()
    finally:
        if sink is not None:
            sink.close()
    print(f"{len(tasks)} runs in {time.perf_counter() - began:.0f} s with {jobs} processes")
    runs.sort(key=lambda r: (r["scenario"], r["policy"], r["seed"]))
    return runs


if __name__ == "__main__":
    configure_logging(level="error")  # here, not in main(): a test calling main() keeps its own
    raise SystemExit(main())
