"""How often does a simulation rank the truly best arm first? And how long does a run take?

    python -m bench.seeds --days 30 --seeds 10 [--scenario NAME|FILE] [--config FILE] [--json OUT]
                          [--store memory|sqlite]

Runs the same code path as `growthloop simulate` (real cycles, in-memory sandbox; the in-memory
store by default, or a SQLite file with ``--store sqlite``) once per seed and reports, per
dimension, in how many seeds the arm with the highest posterior mean is the scenario's true best
arm, plus the wall time of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.bootstrap import build
from agent.clock import VirtualClock
from agent.config import load_config
from agent.logs import configure_logging
from agent.simulator import run_until
from agent.summary import simulation_report


async def one(
    config_path: Path | None,
    scenario: str | None,  # a shipped scenario's name or a scenario file
    seed: int,
    days: float,
    store: str = "memory",
) -> dict[str, Any]:
    cfg = load_config(config_path)
    accounts = [a.model_copy(update={"platform": "sandbox"}) for a in cfg.accounts]
    sandbox = cfg.sandbox.model_copy(update={"scenario": scenario} if scenario else {})
    cfg = cfg.model_copy(update={"accounts": accounts, "sandbox": sandbox})
    start = datetime(2026, 1, 5, tzinfo=UTC)
    clock = VirtualClock(start)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        built = await build(
            cfg,
            clock=clock,
            seed=seed,
            sqlite_path=Path(tmp) / "sim.db",
            world_in_memory=True,
            store="memory" if store == "memory" else "sql",
        )
        try:
            result = await run_until(built.agent, clock, start + timedelta(days=days))
            report = await simulation_report(built, result)
        finally:
            await built.aclose()
        seconds = time.perf_counter() - began
    out: dict[str, Any] = {"seed": seed, "seconds": round(seconds, 2), "dimensions": {}}
    for _name, acc in report["accounts"].items():
        out["followers_gained"] = acc["followers_gained"]
        out["posts"] = acc["posts"]
        for dimension, data in acc["dimensions"].items():
            if not data["learned"] or not data["true"]:
                continue  # nothing learned yet, or a dimension the world has no truth for
            top = data["learned"][0][0]
            out["dimensions"][dimension] = {
                "learned_top": top,
                "true_best": data["true"][0],
                "correct": top == data["true"][0],
            }
        break  # the first account
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--scenario", help="a shipped scenario's name or a scenario file")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite"),
        default="memory",
        help="where the run's data lives (default: memory, the fastest)",
    )
    args = parser.parse_args()
    configure_logging(level="error")
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        run = asyncio.run(one(args.config, args.scenario, seed, args.days, args.store))
        runs.append(run)
        dims = " ".join(
            f"{d}={'ok' if v['correct'] else 'MISS'}({v['learned_top']})"
            for d, v in run["dimensions"].items()
        )
        print(
            f"seed {seed:3d}: {run['seconds']:6.1f} s, "
            f"+{run['followers_gained']} followers, {dims}",
            flush=True,
        )
    print()
    for dimension in runs[0]["dimensions"]:
        hits = sum(r["dimensions"][dimension]["correct"] for r in runs)
        print(f"{dimension}: true best ranked first in {hits} of {len(runs)} seeds")
    times = sorted(r["seconds"] for r in runs)
    print(
        f"wall time per {args.days:g}-day run: "
        f"median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
