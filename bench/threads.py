"""The threads benchmark: does the learner find threads where they pay, and avoid them where not?

    python -m bench.threads [--seeds N] [--first-seed S] [--days D] [--jobs J] [--json OUT]

Two scenario worlds (adapters/scenarios/): ``threads_favoured`` (a thread's first part earns ~1.8x
a single post's followers, and its later parts reach some more people) and ``threads_avoided``
(a thread's first part earns ~0.4x, which its later parts do not make up for). Each run is
:func:`bench.learning.run_one` with ``threads.enabled=true``: the joint learner chooses the
format among the other dimensions, through the real cycles on the simulated platform. Reported
per scenario: the share of threads among the posts of the last 30 days (the learner's decisions;
a thread counts once), the truly best format, whether the learner ended on it (found / avoided),
and the followers as a fraction of the oracle. Nothing was tuned on these worlds; the seeds are
from the report range (2000-2999).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent.logs import configure_logging
from bench.learning import LEARNER, run_one

SCENARIOS = ("threads_favoured", "threads_avoided")
OVERRIDES = ("threads.enabled=true",)
FIRST_SEED = 2000  # the report range of seeds (never tuned on)
DAYS = 60.0


def _run(args: tuple[str, int, float]) -> dict[str, Any]:
    configure_logging(level="error")
    scenario, seed, days = args
    out = asyncio.run(run_one(scenario, LEARNER, seed, days, OVERRIDES))
    return {
        "scenario": scenario,
        "seed": seed,
        "days": days,
        "posts": out["posts"],
        "best_format": best_format(out),
        "format_best_share_last_30d": out["best_arm_share_last_30d"]["format"],
        "fraction_of_oracle": out["fraction_of_oracle"],
        "posts_per_block": out["posts_per_block"]["format"],
        "posterior": out["posterior"]["format"],
    }


def best_format(out: dict[str, Any]) -> str:
    true = out["posterior"]["format"]["true"]
    return str(max(true, key=true.get))


def thread_share(run: dict[str, Any]) -> float:
    share = float(run["format_best_share_last_30d"])
    return share if run["best_format"] == "thread" else 1.0 - share


def summary(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for scenario in dict.fromkeys(r["scenario"] for r in runs):
        mine = [r for r in runs if r["scenario"] == scenario]
        best = {r["best_format"] for r in mine}
        ended_on_best = sum(r["format_best_share_last_30d"] > 0.5 for r in mine)
        rows.append(
            {
                "scenario": scenario,
                "seeds": len(mine),
                "best_format": "/".join(sorted(best)),
                "thread_share_last_30d": statistics.mean(thread_share(r) for r in mine),
                "runs_ending_on_best": ended_on_best,
                "fraction_of_oracle": statistics.mean(r["fraction_of_oracle"] for r in mine),
            }
        )
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| world | seeds | truly best format | threads among the last 30 days' posts "
        "| runs ending on the best format (> 50%) | followers / oracle |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['seeds']} | {r['best_format']} "
            f"| {r['thread_share_last_30d']:.0%} | {r['runs_ending_on_best']} of {r['seeds']} "
            f"| {r['fraction_of_oracle']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--days", type=float, default=DAYS)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", type=Path, help="every run, as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.days <= 0 or args.jobs < 1:
        parser.error("--seeds, --days and --jobs must be positive")
    tasks = [
        (scenario, seed, args.days)
        for scenario in SCENARIOS
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(_run, tasks))
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    print(markdown(summary(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
