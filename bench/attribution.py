"""How close is each attribution method to the followers every post really caused?

    python -m bench.attribution [--scenario FILE ...] [--seeds N] [--days D] [--json OUT]

Runs the real agent (every cycle, the configured learner, both attribution methods) in simulated
time against the sandbox of each scenario, at the scenario's posting rate (``bench.posts_per_day``)
for ``--days`` (default: the scenario's ``bench.days``). Then, for every post attributed by both
methods, it compares the stored ``followers_gained`` with the sandbox's ground truth
(``GroundTruth.followers_caused``: the followers the post really brought, whenever they arrived)
and reports per scenario and method:

- **MAE**: mean absolute error per post; **bias**: mean (estimate - truth); **ratio**: the
  deconvolution MAE over the time-window MAE (the acceptance target is <= 0.5 in
  ``high_frequency``).
- **Calibration of the confidence**: each method's ``confidence_score`` is read as the
  probability of the event "the truth lies within ``max(1, 25 %)`` of the estimate",
  ``|truth - estimate| <= max(1, 0.25 * estimate)`` (the event the deconvolution's confidence is
  defined to claim; the time window's is a score and is shown against the same event). A
  reliability table bins the posts by confidence and gives, per bin, the mean confidence and the
  observed frequency of the event; the expected calibration error is
  ``ECE = sum_b n_b / n * |mean confidence_b - frequency_b|``.
- **Interval coverage** (deconvolution): the share of truths inside the stored interval
  ``inputs.interval_low .. inputs.interval_high`` against its stated level.
- **Floors** no method can beat by its covariates or its model: the MAE of each post's hidden
  expected gain (*the true mean*), of its expected gain given its realised reach (*given
  reach*: the most impressions, profile clicks or engagement could tell), and of the *oracle*
  deconvolution (:mod:`bench.attribution_oracle`: given reach, the true lag kernel and noise,
  and the whole follower series); *oracle ratio* is the oracle's MAE over the time window's.

Default scenarios: every shipped scenario (``adapters/scenarios/``) but ``demo_realtime`` and
``faulty``. ``--scenario`` takes a shipped scenario's name or a scenario file.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.sandbox_model import Scenario
from adapters.scenario_files import is_scenario_name, scenario_names
from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.config import Config, load_config
from agent.errors import ConfigError
from agent.logs import configure_logging
from agent.models import Attribution
from agent.simulator import run_until
from agent.store.base import Store
from bench.attribution_oracle import oracle_estimates

SKIPPED_BY_DEFAULT = ("demo_realtime", "faulty")
METHODS = ("time_window", "deconvolution")
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
ACTIVE_HOURS = 16.0  # the example config's 07:00-23:00
BLOCK_DAYS = 30.0  # the MAE ratios are also reported per block of this many days
BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostResult:
    """One post: what it really caused and what each method credited it with."""

    truth: float
    estimate: dict[str, float]
    confidence: dict[str, float]
    interval: tuple[float, float, float] | None  # (low, high, level) of the deconvolution
    expected: float = math.nan  # the post's expected caused followers (the world's hidden mean)
    given_reach: float = math.nan  # E[caused | its realised reach]: the best covariate-only guess
    oracle: float = math.nan  # the oracle deconvolution's estimate (bench.attribution_oracle)
    day: float = 0.0  # sandbox days from the start to the post


def default_scenarios() -> list[str]:
    return [name for name in scenario_names() if name not in SKIPPED_BY_DEFAULT]


def bench_config(base: Config, scenario_ref: str, posts_per_day: float) -> Config:
    """The config on the sandbox of ``scenario_ref`` (a name or a file), posting ``posts_per_day``
    a day."""
    accounts = [a.model_copy(update={"platform": "sandbox"}) for a in base.accounts[:1]]
    gap = min(timedelta(minutes=90), timedelta(hours=0.9 * ACTIVE_HOURS / posts_per_day))
    cadence = base.cadence.model_copy(
        update={
            "posts_per_day": posts_per_day,
            "min_gap": gap,
            "max_posts_per_hour": max(1, math.ceil(posts_per_day / ACTIVE_HOURS)),
        }
    )
    sandbox = base.sandbox.model_copy(update={"scenario": scenario_ref})
    return base.model_copy(update={"accounts": accounts, "sandbox": sandbox, "cadence": cadence})


class _Recorder:
    """The agent's store, keeping a copy of every attribution written (any backend)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.attributions: list[Attribution] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        await self._inner.add_attribution(attribution, now=now)
        self.attributions.append(attribution)


async def _build(cfg: Config, clock: VirtualClock, seed: int, tmp: Path) -> Any:
    """The agent graph on the in-memory store when this checkout has one, else SQLite."""
    if "store" in inspect.signature(build).parameters:
        return await build(cfg, clock=clock, seed=seed, store="memory", world_in_memory=True)  # type: ignore[call-arg]
    return await build(
        cfg, clock=clock, seed=seed, sqlite_path=tmp / "bench.db", world_in_memory=True
    )


async def run_one(
    base: Config, scenario_ref: str, seed: int, days: float, progress: Any = None
) -> list[PostResult]:
    """Simulate one scenario and seed; every post attributed by both methods, with its truth."""
    scenario = Scenario.load(scenario_ref)
    cfg = bench_config(base, scenario_ref, scenario.bench.posts_per_day)
    clock = VirtualClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        built = await _build(cfg, clock, seed, Path(tmp))
        recorder = _Recorder(built.agent.store)
        built.agent.store = cast(Store, recorder)
        try:
            await run_until(built.agent, clock, START + timedelta(days=days), progress=progress)
            ground = built.world.ground_truth()
            truth, expected = ground.followers_caused, ground.expected_followers_caused
            stored: dict[int, dict[str, tuple[float, float, dict[str, Any]]]] = {}
            for a in recorder.attributions:
                stored.setdefault(a.content_id, {})[a.attribution_method] = (
                    a.followers_gained,
                    a.confidence_score or 0.0,
                    dict(a.inputs or {}),
                )
            platform_ids = {}
            for cid in stored:
                post = await recorder.get_post(cid)
                if post is not None and post.platform_post_id is not None:
                    platform_ids[cid] = post.platform_post_id
            readings = []
            for account_id in await recorder.account_names():
                for snap in await recorder.account_series(account_id, START, clock.now()):
                    readings.append((ground.hours(snap.taken_at), float(snap.followers)))
            oracle = oracle_estimates(
                ground, readings, initial_followers=ground.reference_followers
            )
        finally:
            await built.aclose()
    results = []
    for cid, by_method in stored.items():
        ppid = platform_ids.get(cid)
        if ppid is None or ppid not in truth or not all(m in by_method for m in METHODS):
            continue
        inputs = by_method["deconvolution"][2]
        interval = None
        if "interval_low" in inputs:
            interval = (inputs["interval_low"], inputs["interval_high"], inputs["interval_level"])
        results.append(
            PostResult(
                truth=truth[ppid],
                estimate={m: by_method[m][0] for m in METHODS},
                confidence={m: by_method[m][1] for m in METHODS},
                interval=interval,
                expected=expected.get(ppid, math.nan),
                given_reach=ground.followers_given_reach.get(ppid, math.nan),
                oracle=oracle.get(ppid, math.nan),
                day=ground.post_days.get(ppid, 0.0),
            )
        )
    return results


def within_tolerance(truth: float, estimate: float) -> bool:
    """The event a confidence claims: the truth within max(1, 25 %) of the estimate."""
    return abs(truth - estimate) <= max(1.0, 0.25 * estimate)


def reliability(confidences: Sequence[float], hits: Sequence[bool]) -> dict[str, Any]:
    """Reliability table (per confidence bin: n, mean confidence, observed frequency) and ECE."""
    table = []
    ece = 0.0
    n = len(confidences)
    for lo, hi in itertools.pairwise(BINS):
        inside = [
            (c, h)
            for c, h in zip(confidences, hits, strict=True)
            if lo <= c < hi or (hi == 1.0 and c == 1.0)
        ]
        if not inside:
            continue
        mean_c = sum(c for c, _ in inside) / len(inside)
        freq = sum(h for _, h in inside) / len(inside)
        table.append({"bin": [lo, hi], "n": len(inside), "confidence": mean_c, "frequency": freq})
        ece += len(inside) / n * abs(mean_c - freq)
    return {"table": table, "ece": ece if n else math.nan}


def summarise(results: Sequence[PostResult]) -> dict[str, Any]:
    """Per method: posts, MAE, bias, calibration; plus the deconvolution's interval coverage."""
    out: dict[str, Any] = {"posts": len(results), "mean_truth": math.nan}
    if not results:
        return out
    out["mean_truth"] = sum(r.truth for r in results) / len(results)
    for m in METHODS:
        errors = [r.estimate[m] - r.truth for r in results]
        hits = [within_tolerance(r.truth, r.estimate[m]) for r in results]
        out[m] = {
            "mae": sum(abs(e) for e in errors) / len(errors),
            "bias": sum(errors) / len(errors),
            "calibration": reliability([r.confidence[m] for r in results], hits),
            "mean_confidence": sum(r.confidence[m] for r in results) / len(results),
            "event_frequency": sum(hits) / len(hits),
        }
    # A floor for any method that credits a post by what it should have caused (its covariates)
    # rather than by what the follower series shows it caused: the hidden expectation itself.
    known = [r for r in results if not math.isnan(r.expected)]
    out["mae_expected_value"] = (
        sum(abs(r.expected - r.truth) for r in known) / len(known) if known else math.nan
    )
    for key, attr in (("mae_given_reach", "given_reach"), ("mae_oracle", "oracle")):
        values = [(getattr(r, attr), r.truth) for r in results if not math.isnan(getattr(r, attr))]
        out[key] = sum(abs(v - t) for v, t in values) / len(values) if values else math.nan
    out["mae_ratio"] = (
        out["deconvolution"]["mae"] / out["time_window"]["mae"]
        if out["time_window"]["mae"] > 0
        else math.nan
    )
    intervals = [r for r in results if r.interval is not None]
    if intervals:
        covered = [r.interval[0] <= r.truth <= r.interval[1] for r in intervals if r.interval]
        levels = [r.interval[2] for r in intervals if r.interval]
        out["deconvolution"]["interval_level"] = sum(levels) / len(levels)
        out["deconvolution"]["interval_coverage"] = sum(covered) / len(covered)
    return out


def by_block(results: Sequence[PostResult]) -> list[dict[str, Any]]:
    """The MAE of each method and floor per ``BLOCK_DAYS`` of the posts' publication: a post's
    gain grows with the account, and with it how much the follower series shows."""
    blocks: dict[int, list[PostResult]] = {}
    for r in results:
        blocks.setdefault(int(r.day // BLOCK_DAYS), []).append(r)
    out = []
    for index in sorted(blocks):
        group = blocks[index]
        mae = {m: sum(abs(r.estimate[m] - r.truth) for r in group) / len(group) for m in METHODS}
        oracle = [abs(r.oracle - r.truth) for r in group if not math.isnan(r.oracle)]
        out.append(
            {
                "days": [index * BLOCK_DAYS, (index + 1) * BLOCK_DAYS],
                "posts": len(group),
                "mean_truth": sum(r.truth for r in group) / len(group),
                "mae": mae,
                "mae_oracle": sum(oracle) / len(oracle) if oracle else math.nan,
                "mae_ratio": mae["deconvolution"] / mae["time_window"]
                if mae["time_window"] > 0
                else math.nan,
            }
        )
    return out


def blocks_markdown(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | days | posts | mean truth | MAE time window | MAE deconvolution | ratio "
        "| MAE oracle | oracle ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["scenarios"].items():
        for b in s.get("blocks", []):
            tw = b["mae"]["time_window"]
            lines.append(
                f"| {name} | {b['days'][0]:g}-{b['days'][1]:g} | {b['posts']} "
                f"| {b['mean_truth']:.2f} | {tw:.2f} | {b['mae']['deconvolution']:.2f} "
                f"| {b['mae_ratio']:.2f} | {b['mae_oracle']:.2f} "
                f"| {b['mae_oracle'] / tw if tw > 0 else math.nan:.2f} |"
            )
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | posts/day | posts | mean truth | MAE time window | MAE deconvolution "
        "| ratio | MAE of the true mean | MAE given reach | MAE oracle | oracle ratio "
        "| bias tw | bias dc | ECE tw | ECE dc | interval coverage dc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["scenarios"].items():
        if not s["posts"]:
            lines.append(f"| {name} | {s['posts_per_day']:g} | 0 |" + " - |" * 13)
            continue
        tw, dc = s["time_window"], s["deconvolution"]
        coverage = (
            f"{dc['interval_coverage']:.2f} (stated {dc['interval_level']:.2f})"
            if "interval_coverage" in dc
            else "-"
        )
        lines.append(
            f"| {name} | {s['posts_per_day']:g} | {s['posts']} | {s['mean_truth']:.2f} "
            f"| {tw['mae']:.2f} | {dc['mae']:.2f} | {s['mae_ratio']:.2f} "
            f"| {s['mae_expected_value']:.2f} | {s['mae_given_reach']:.2f} "
            f"| {s['mae_oracle']:.2f} | {s['mae_oracle'] / tw['mae']:.2f} "
            f"| {tw['bias']:+.2f} | {dc['bias']:+.2f} "
            f"| {tw['calibration']['ece']:.3f} | {dc['calibration']['ece']:.3f} | {coverage} |"
        )
    return "\n".join(lines)


def reliability_markdown(report: dict[str, Any], method: str) -> str:
    lines = [
        f"Reliability of the {method} confidence "
        "(event: |truth - estimate| <= max(1, 25 % of the estimate)):",
        "",
        "| scenario | confidence bin | posts | mean confidence | observed frequency |",
        "|---|---|---:|---:|---:|",
    ]
    for name, s in report["scenarios"].items():
        if not s["posts"]:
            continue
        for row in s[method]["calibration"]["table"]:
            lo, hi = row["bin"]
            lines.append(
                f"| {name} | {lo:.1f}-{hi:.1f} | {row['n']} | {row['confidence']:.2f} "
                f"| {row['frequency']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--scenario", action="append", help="a shipped scenario's name or a file; repeatable"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--days", type=float, help="default: the scenario's bench.days")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.days is not None and args.days <= 0):
        parser.error("--seeds must be >= 1 and --days > 0")
    configure_logging(level="error")
    console = Console(stderr=True)
    try:
        base = load_config(args.config)
        refs = [r if is_scenario_name(r) else str(Path(r).resolve()) for r in args.scenario or []]
        scenarios = {ref: Scenario.load(ref) for ref in refs or default_scenarios()}
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(2) from None
    report: dict[str, Any] = {"seeds": args.seeds, "scenarios": {}}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[where]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for ref, scenario in scenarios.items():
            days = args.days or scenario.bench.days
            task = progress.add_task(scenario.name, total=days * len(seeds), where="")
            pooled: list[PostResult] = []
            per_seed = []
            for i, seed in enumerate(seeds):

                def tick(
                    now: datetime,
                    i: int = i,
                    seed: int = seed,
                    task: Any = task,
                    days: float = days,
                ) -> None:
                    elapsed = (now - START).total_seconds() / 86400
                    where = f"seed {seed} day {elapsed:.0f}"
                    progress.update(task, completed=i * days + elapsed, where=where)

                results = asyncio.run(run_one(base, ref, seed, days, progress=tick))
                pooled.extend(results)
                per_seed.append({"seed": seed, **summarise(results)})
            progress.update(task, completed=days * len(seeds))
            report["scenarios"][scenario.name] = {
                "file": ref,
                "days": days,
                "posts_per_day": scenario.bench.posts_per_day,
                **summarise(pooled),
                "blocks": by_block(pooled),
                "per_seed": per_seed,
            }
    print(markdown(report))
    print()
    print(f"By {BLOCK_DAYS:g} days of publication:")
    print()
    print(blocks_markdown(report))
    print()
    print(reliability_markdown(report, "deconvolution"))
    print()
    print(reliability_markdown(report, "time_window"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
