"""The cost benchmark: what a post costs all-in on a platform that bills every call.

    python -m bench.cost [--days D] [--seeds N] [--posts-per-day P] [--json OUT]

One account on the simulated platform billing X's pay-per-use prices ($0.015 a post, $0.20 with a
link, $0.001 per object a read returns: ``adapters.x.PRICES``), the default configuration at
``P`` posts a day (default 4), run through the real cycles on a virtual clock. Two settings in
one run, on the same seeds:

- **before**: the follower count read every 10 minutes and metrics polled at every horizon
  (``polling.account_every: 10m``, ``polling.paid_horizons: [1h, 4h, 24h]``: the defaults before
  cost-aware reading, and still the defaults where reads are free);
- **after**: the defaults (``agent/reading.py``: the follower count every
  ``polling.paid_account_every`` and before each post, metrics at the last two horizons).

For each: posts published, follower readings, objects read, platform spend, the all-in cost per
post and its ratio to the post fee, and the learning figures of ``bench.learning`` (fraction of
the oracle's expected followers, best-arm share), so a saving that hurt learning would show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.sandbox_model import Scenario
from adapters.x import PRICES
from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.errors import ConfigError
from agent.learner import catalogue_for
from agent.logs import configure_logging
from agent.simulator import run_until
from bench.learning import ACCOUNT, LEARNER, START, bench_config, score

PAY_PER_USE = PRICES["pay_per_use"]
BASE_SCENARIO = "stationary"
SETTINGS: dict[str, tuple[str, ...]] = {
    # the behaviour before cost-aware reading: every 10 minutes, every horizon
    "before": ("polling.account_every=10m", "polling.paid_horizons=[1h, 4h, 24h]"),
    "after": ("polling.account_every=null",),  # the defaults: agent/reading.py decides
}
TARGET_RATIO = 1.3  # issue 16: all-in cost per post at most 1.3x the post fee


def scenario_text(posts_per_day: float) -> str:
    """The stationary world, billing X's pay-per-use prices."""
    return (
        f"extends: {BASE_SCENARIO}\n"
        "name: x_pay_per_use\n"
        "platform:\n"
        "  prices:\n"
        f"    post: {PAY_PER_USE.post}\n"
        f"    post_with_url: {PAY_PER_USE.post_with_url}\n"
        f"    read: {PAY_PER_USE.read}\n"
        "bench:\n"
        f"  posts_per_day: {posts_per_day}\n"
    )


async def run_setting(
    scenario_ref: str, setting: str, seed: int, days: float, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """One run: the spend and readings of ``setting`` on ``seed`` (``extra`` settings on top,
    e.g. ``polling.paid_account_every=4h``), with its learning score."""
    scenario = Scenario.load(scenario_ref)
    cfg = bench_config(scenario_ref, scenario, LEARNER, (*SETTINGS[setting], *extra))
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
            result = await run_until(built.agent, clock, START + timedelta(days=days))
            assert built.world is not None
            platform = built.agent.platforms[ACCOUNT]
            account_id = built.agent.account_ids[ACCOUNT]
            readings = await built.agent.store.account_series(
                account_id, START, START + timedelta(days=days + 1)
            )
            catalogue = catalogue_for(cfg, cfg.accounts[0])
            catalogue.pop("topic", None)
            learning = score(built.world.ground_truth(), catalogue, days, scenario.time_scale)
        finally:
            await built.aclose()
    posts = int(result.counts.get("posted", 0))
    spend = platform.spend_usd
    per_post = spend / posts if posts else float("nan")
    return {
        "setting": setting,
        "seed": seed,
        "days": days,
        "posts": posts,
        "follower_readings": len(readings),
        "readings_per_day": round(len(readings) / days, 2),
        "spend_usd": round(spend, 4),
        "cost_per_post_usd": round(per_post, 5),
        "ratio_to_post_fee": round(per_post / PAY_PER_USE.post, 3),
        "fraction_of_oracle": learning.get("fraction_of_oracle"),
        "best_arm_share": learning.get("best_arm_share_last_30d"),
        "seconds": round(time.perf_counter() - began, 1),
    }


def summary(runs: Sequence[dict[str, Any]]) -> str:
    """A markdown table: each setting's means over the seeds."""
    lines = [
        "| setting | posts | readings/day | spend $ | $ per post | x post fee | "
        "fraction of oracle | best content_type share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        rows = [r for r in runs if r["setting"] == setting]
        if not rows:
            continue

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.fmean(float(r[key]) for r in rows)

        def share(rows: list[dict[str, Any]] = rows) -> str:
            values = [
                r["best_arm_share"].get("content_type")
                for r in rows
                if isinstance(r.get("best_arm_share"), dict)
            ]
            values = [v for v in values if v is not None]
            return f"{statistics.fmean(values):.2f}" if values else "-"

        fraction = [r["fraction_of_oracle"] for r in rows if r["fraction_of_oracle"] is not None]
        lines.append(
            f"| {setting} | {mean('posts'):.0f} | {mean('readings_per_day'):.1f} | "
            f"{mean('spend_usd'):.3f} | {mean('cost_per_post_usd'):.4f} | "
            f"{mean('ratio_to_post_fee'):.2f} | "
            f"{statistics.fmean(fraction):.3f} | {share()} |"
            if fraction
            else f"| {setting} | {mean('posts'):.0f} | {mean('readings_per_day'):.1f} | "
            f"{mean('spend_usd'):.3f} | {mean('cost_per_post_usd'):.4f} | "
            f"{mean('ratio_to_post_fee'):.2f} | - | {share()} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--posts-per-day", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="write one JSON object per run (JSON lines)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config setting for every run, e.g. polling.paid_account_every=4h",
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.seeds < 1 or not 0 < args.posts_per_day <= 48:
        print(
            "error: --days must be > 0, --seeds >= 1, --posts-per-day in (0, 48]", file=sys.stderr
        )
        return 2
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        scenario_file = Path(tmp) / "x_pay_per_use.yaml"
        scenario_file.write_text(scenario_text(args.posts_per_day), encoding="utf-8")
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for setting in SETTINGS:
                try:
                    run = asyncio.run(
                        run_setting(str(scenario_file), setting, seed, args.days, args.set)
                    )
                except ConfigError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                runs.append(run)
                print(json.dumps(run), file=sys.stderr)
                if args.json:
                    with args.json.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(run) + "\n")
    print(summary(runs))
    after = [r["ratio_to_post_fee"] for r in runs if r["setting"] == "after"]
    verdict = "met" if max(after) <= TARGET_RATIO else "NOT met"
    print(f"\ntarget: all-in cost per post <= {TARGET_RATIO}x the post fee (after): {verdict}")
    return 0


if __name__ == "__main__":
    configure_logging(level="error")  # here, not in main(): a test calling main() keeps its own
    raise SystemExit(main())
