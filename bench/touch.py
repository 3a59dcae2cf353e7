"""Multi-touch attribution against the sandbox's person-level truth, beside the follower-series
methods (issue 19 item 5).

    python -m bench.touch [--scenario NAME ...] [--seeds N] [--days D] [--json OUT]

Runs the real agent in simulated time against the sandbox of each scenario (as
``bench.attribution`` does: every cycle, both series attribution methods), with the audience
reads on (``audience.read.sandbox``: the sandbox plays every person, and the agent reads them
like notifications). At the end every follow the store holds is credited to the posts its person
touched before it, by each model of :mod:`learning.touch` (the daily upkeep's computation, over
the whole run), and each post's credit is compared with the followers it really caused
(``GroundTruth.followers_caused``), beside the time-window and deconvolution estimates of the same
posts. Reported per scenario and model: MAE per post and bias (mean estimate - truth), over the
posts both series methods attributed.

The touch models see only follows preceded by a touch (or naming a post): a post's followers who
never engaged with it are invisible to them, so their bias is negative by construction; the
series methods see every follower but not who.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from adapters.sandbox_model import Scenario
from agent.audience import touches_of
from agent.audience_models import AudienceKind
from agent.clock import VirtualClock
from agent.config import DEFAULT_CONFIG, Config, load_config
from agent.logs import configure_logging
from agent.simulator import run_until
from agent.store.base import Store
from bench.attribution import METHODS, START, _build, _Recorder, bench_config
from learning import audience as maths
from learning import touch

DEFAULT_SCENARIOS = ("stationary", "high_frequency", "small_account")


def touch_config(base: Config, scenario_ref: str, posts_per_day: float) -> Config:
    cfg = bench_config(base, scenario_ref, posts_per_day)
    audience = cfg.audience
    read = audience.read.model_copy(update={"sandbox": True})
    return cfg.model_copy(update={"audience": audience.model_copy(update={"read": read})})


async def run_one(base: Config, scenario_ref: str, seed: int, days: float) -> dict[str, Any]:
    """One scenario and seed: per post (attributed by both series methods) its truth, the series
    estimates and each touch model's credit."""
    scenario = Scenario.load(scenario_ref)
    cfg = touch_config(base, scenario_ref, scenario.bench.posts_per_day)
    clock = VirtualClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        built = await _build(cfg, clock, seed, Path(tmp))
        recorder = _Recorder(built.agent.store)
        built.agent.store = cast(Store, recorder)
        try:
            await run_until(built.agent, clock, START + timedelta(days=days))
            truth = built.world.ground_truth().followers_caused
            series: dict[int, dict[str, float]] = {}
            for a in recorder.attributions:
                series.setdefault(a.content_id, {})[a.attribution_method] = a.followers_gained
            credits: dict[str, dict[int, float]] = {m: {} for m in touch.MODELS}
            follows_seen = follows_touched = 0
            platform_ids: dict[int, str] = {}
            for account_id in await recorder.account_names():
                found = await recorder.audience_interactions(account_id)
                follows = [
                    maths.Follow(member_id=i.member_id, followed_at=i.at, content_id=i.content_id)
                    for i in found
                    if i.kind == AudienceKind.FOLLOW
                ]
                touches = touches_of(found)
                given = touch.credit(
                    follows,
                    touches,
                    window=cfg.audience.touch_window,
                    half_life=cfg.audience.touch_half_life,
                )
                follows_seen += len(follows)
                follows_touched += len({(c.member_id, c.followed_at) for c in given})
                for model in touch.MODELS:
                    for cid, value in touch.per_post(given, model).items():
                        credits[model][cid] = credits[model].get(cid, 0.0) + value
            for cid in series:
                post = await recorder.get_post(cid)
                if post is not None and post.platform_post_id is not None:
                    platform_ids[cid] = post.platform_post_id
        finally:
            await built.aclose()
    posts = []
    for cid, by_method in series.items():
        ppid = platform_ids.get(cid)
        if ppid is None or ppid not in truth or not all(m in by_method for m in METHODS):
            continue
        estimates = {m: by_method[m] for m in METHODS}
        estimates.update({m: credits[m].get(cid, 0.0) for m in touch.MODELS})
        posts.append({"truth": float(truth[ppid]), "estimates": estimates})
    return {"posts": posts, "follows": follows_seen, "follows_with_touch": follows_touched}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    posts = [p for r in runs for p in r["posts"]]
    names = (*METHODS, *touch.MODELS)
    out: dict[str, Any] = {
        "posts": len(posts),
        "follows": sum(r["follows"] for r in runs),
        "follows_with_touch": sum(r["follows_with_touch"] for r in runs),
    }
    for name in names:
        errors = [p["estimates"][name] - p["truth"] for p in posts]
        out[name] = {
            "mae": sum(abs(e) for e in errors) / len(errors) if errors else math.nan,
            "bias": sum(errors) / len(errors) if errors else math.nan,
        }
    return out


def table(report: dict[str, dict[str, Any]]) -> Table:
    names = (*METHODS, *touch.MODELS)
    out = Table(title="followers per post: MAE (bias) against the person-level truth")
    out.add_column("scenario")
    out.add_column("posts", justify="right")
    out.add_column("follows with a touch", justify="right")
    for name in names:
        out.add_column(name.replace("_", " "), justify="right")
    for scenario, s in report.items():
        share = s["follows_with_touch"] / s["follows"] if s["follows"] else math.nan
        out.add_row(
            scenario,
            str(s["posts"]),
            f"{share:.0%}",
            *(f"{s[n]['mae']:.2f} ({s[n]['bias']:+.2f})" for n in names),
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.touch", description=__doc__)
    parser.add_argument("--scenario", action="append", default=None)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    base = load_config(args.config) if args.config else load_config(Path(str(DEFAULT_CONFIG)))
    configure_logging(level="error")
    console = Console()
    report: dict[str, dict[str, Any]] = {}
    for scenario_ref in args.scenario or DEFAULT_SCENARIOS:
        days = args.days or Scenario.load(scenario_ref).bench.days
        runs = []
        for seed in range(1, args.seeds + 1):
            console.print(f"{scenario_ref}: seed {seed}, {days:g} days")
            runs.append(asyncio.run(run_one(base, scenario_ref, seed, days)))
        report[scenario_ref] = summarise(runs)
    console.print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
