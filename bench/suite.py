"""A generated suite's summary: distributions over worlds, and how policies move after a drift.

``python -m bench.learning --worlds report`` runs every policy on generated worlds
(:mod:`adapters.worlds`); this module turns its runs into the figures issue 17 asks for:

- per policy, the distribution over worlds of its **share of the oracle** (the mean over seeds in
  each world): median, 10th percentile and worst world;
- per baseline, the distribution over worlds of the **learner's ratio** over it, in expected
  followers (means over seeds in each world, as ``bench.learning.verdicts`` does), and the share
  of worlds where that ratio is above 1 (the learner **wins**);
- for worlds with drift, per policy and changed dimension, the **best-arm share in the
  ``AFTER_CHANGE_DAYS`` days after the change** and the **time to recover** (below).

Percentiles are ``numpy.percentile``'s linear interpolation between order statistics.

The change and the recovery. A dimension's change is the first moment its oracle arm (the truly
best, jointly where coupled) differs from the arm before a drift step began: the step's
``at_day`` for an abrupt drift, somewhere in the ramp for a gradual one (found on a grid of
``CHANGE_SCAN_DAYS``). A post is on the best arm when it uses the oracle's arm at the moment it
was published. The **time to recover** is the first whole day ``k`` after the change from which
every window of ``RECOVERY_WINDOW_DAYS`` days that starts on day ``k`` or later (and ends before
the run does) has at least ``RECOVERY_SHARE`` of its posts on the best arm; a run whose last
window is below that has **not recovered** (counted as infinitely late in medians).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

AFTER_CHANGE_DAYS = 30.0  # issue 17: "best-arm share in the 30 days after a change"
RECOVERY_WINDOW_DAYS = 7.0  # a week: ~14-56 posts at 2-8 a day, so a share is not one post's luck
RECOVERY_SHARE = 0.5  # "most posts on the new best arm" (issue 17's 50 % target for the median)
CHANGE_SCAN_DAYS = 0.25  # resolution at which a gradual drift's crossing is found
PERCENTILE = 10  # the low tail reported beside the median and the worst world
RATIO_TICKS = (0.5, 0.8, 0.9, 1.0, 1.3, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)  # plot labels

Post = tuple[float, Mapping[str, str], Mapping[str, str]]  # (day, arms used, oracle's arms)


# ------------------------------------------------------------------------------ drift, per run


def changes(
    steps: Sequence[tuple[float, float]],
    dimensions: Sequence[str],
    best_at: Callable[[float], Mapping[str, str]],
    end_day: float,
) -> list[dict[str, Any]]:
    """Where each drift step ``(at_day, ramp_days)`` changes a dimension's oracle arm before
    ``end_day`` (the run's end)."""
    out = []
    for at_day, ramp in steps:
        if at_day >= end_day:
            break
        before = best_at(at_day - 1e-6)
        grid = [at_day + k * CHANGE_SCAN_DAYS for k in range(int(ramp / CHANGE_SCAN_DAYS) + 1)]
        grid.append(at_day + ramp)
        for dim in dimensions:
            for day in grid:
                if day >= end_day:
                    break
                now = best_at(day)
                if now[dim] != before[dim]:
                    out.append(
                        {
                            "dimension": dim,
                            "change_day": round(day, 3),
                            "best_before": before[dim],
                            "best_after": best_at(at_day + ramp)[dim],
                        }
                    )
                    break
    return out


def window_share(posts: Sequence[Post], dim: str, start: float, end: float) -> float | None:
    """The share of the posts published in [start, end) that used the oracle's arm of ``dim``."""
    inside = [arms.get(dim) == best[dim] for day, arms, best in posts if start <= day < end]
    return sum(inside) / len(inside) if inside else None


def recovery_days(posts: Sequence[Post], dim: str, change_day: float, end_day: float) -> int | None:
    """The time to recover (module docstring), in whole days after the change; None if never."""
    shares = []
    k = 0
    while change_day + k + RECOVERY_WINDOW_DAYS <= end_day + 1e-9:
        start = change_day + k
        shares.append(window_share(posts, dim, start, start + RECOVERY_WINDOW_DAYS))
        k += 1
    if not shares:
        return None
    failing = [i for i, s in enumerate(shares) if s is None or s < RECOVERY_SHARE]
    if not failing:
        return 0
    last = failing[-1]
    return last + 1 if last + 1 < len(shares) else None


def after_change(
    posts: Sequence[Post], found: Sequence[Mapping[str, Any]], end_day: float
) -> list[dict[str, Any]]:
    """For each change, the best-arm share in the AFTER_CHANGE_DAYS after it and the recovery."""
    out = []
    for change in found:
        dim, day = change["dimension"], change["change_day"]
        window = [p for p in posts if day <= p[0] < day + AFTER_CHANGE_DAYS]
        out.append(
            {
                **change,
                "posts": len(window),
                "best_arm_share_30d": window_share(posts, dim, day, day + AFTER_CHANGE_DAYS),
                "recovery_days": recovery_days(posts, dim, day, end_day),
            }
        )
    return out


# ------------------------------------------------------------------------------ the suite


def _spread(values: Sequence[float]) -> dict[str, float | int]:
    array = np.asarray(values, dtype=float)
    return {
        "worlds": len(values),
        "median": float(np.median(array)),
        f"p{PERCENTILE}": float(np.percentile(array, PERCENTILE)),
        "worst": float(array.min()),
    }


def summarise_suite(
    runs: Sequence[Mapping[str, Any]], *, learner: str, baselines: Sequence[str]
) -> dict[str, Any]:
    """The suite's figures (module docstring) from its runs (``bench.learning.run_one`` dicts)."""
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for run in runs:
        cells.setdefault((run["scenario"], run["policy"]), []).append(run)
    worlds = sorted({w for w, _ in cells})
    policies = list(dict.fromkeys(p for _, p in cells))
    per_world: list[dict[str, Any]] = []
    for world in worlds:
        row: dict[str, Any] = {"world": world, "policies": {}}
        for policy in policies:
            group = cells.get((world, policy))
            if not group:
                continue
            fractions = [r["fraction_of_oracle"] for r in group if r["fraction_of_oracle"]]
            row["policies"][policy] = {
                "seeds": len(group),
                "fraction_of_oracle": statistics.mean(fractions) if fractions else None,
                "expected_followers": statistics.mean(r["expected_followers"] for r in group),
            }
            row.setdefault("description", group[0].get("scenario_description", ""))
        mine = row["policies"].get(learner)
        row["ratios"] = {
            b: mine["expected_followers"] / max(row["policies"][b]["expected_followers"], 1e-9)
            for b in baselines
            if mine is not None and b in row["policies"]
        }
        per_world.append(row)
    share = {
        p: _spread(
            [
                r["policies"][p]["fraction_of_oracle"]
                for r in per_world
                if p in r["policies"] and r["policies"][p]["fraction_of_oracle"] is not None
            ]
        )
        for p in policies
    }
    ratio = {}
    for b in baselines:
        values = [r["ratios"][b] for r in per_world if b in r["ratios"]]
        if values:
            ratio[b] = _spread(values) | {"wins": sum(v > 1.0 for v in values) / len(values)}
    return {
        "learner": learner,
        "worlds": len(worlds),
        "seeds": max((len(g) for g in cells.values()), default=0),
        "share_of_oracle": share,
        "ratio_over_baseline": ratio,
        "drift": drift_summary(runs, policies),
        "per_world": per_world,
    }


def drift_summary(runs: Sequence[Mapping[str, Any]], policies: Sequence[str]) -> dict[str, Any]:
    """Per policy (and per changed dimension): medians over every (world, change, seed)."""
    out: dict[str, Any] = {}
    for policy in policies:
        entries = [
            (change["dimension"], change)
            for run in runs
            if run["policy"] == policy
            for change in run.get("after_change", [])
        ]
        if not entries:
            continue
        groups: dict[str, list[Mapping[str, Any]]] = {"all": [c for _, c in entries]}
        for dim, change in entries:
            groups.setdefault(dim, []).append(change)
        out[policy] = {}
        for name, group in groups.items():
            shares = [c["best_arm_share_30d"] for c in group if c["best_arm_share_30d"] is not None]
            days = [math.inf if c["recovery_days"] is None else c["recovery_days"] for c in group]
            median_days = float(np.median(days)) if days else math.inf
            out[policy][name] = {
                "changes": len(group),
                "best_arm_share_30d_median": float(np.median(shares)) if shares else None,
                "recovered": sum(math.isfinite(d) for d in days) / len(days),
                "recovery_days_median": median_days if math.isfinite(median_days) else None,
            }
    return out


# ------------------------------------------------------------------------------ reports


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def suite_markdown(summary: Mapping[str, Any]) -> str:
    p = f"p{PERCENTILE}"
    learner = summary["learner"]
    lines = [
        f"{summary['worlds']} generated worlds x {summary['seeds']} seeds.",
        "",
        f"| policy | share of the oracle: median | {p} | worst |",
        "|---|---:|---:|---:|",
    ]
    for policy, s in summary["share_of_oracle"].items():
        lines.append(f"| {policy} | {s['median']:.1%} | {s[p]:.1%} | {s['worst']:.1%} |")
    lines += [
        "",
        f"| {learner} / baseline (expected followers) | median | {p} | worst | worlds won |",
        "|---|---:|---:|---:|---:|",
    ]
    for baseline, r in summary["ratio_over_baseline"].items():
        lines.append(
            f"| {baseline} | {r['median']:.2f}x | {r[p]:.2f}x | {r['worst']:.2f}x | "
            f"{r['wins']:.0%} ({round(r['wins'] * r['worlds'])}/{r['worlds']}) |"
        )
    if summary["drift"]:
        lines += [
            "",
            f"Drift: after each change of a dimension's best arm, the share of posts on the new "
            f"best arm in the next {AFTER_CHANGE_DAYS:g} days, and the days until every later "
            f"{RECOVERY_WINDOW_DAYS:g}-day window has >= {RECOVERY_SHARE:.0%} on it (medians over "
            "every world, changed dimension and seed).",
            "",
            "| policy | dimension | changes | best-arm share, 30 d after | recovered "
            "| days to recover (median) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for policy, dims in summary["drift"].items():
            for dim, d in dims.items():
                days = d["recovery_days_median"]
                lines.append(
                    f"| {policy} | {dim} | {d['changes']} | {_pct(d['best_arm_share_30d_median'])} "
                    f"| {d['recovered']:.0%} | {'not recovered' if days is None else f'{days:g}'} |"
                )
    baselines = list(summary["ratio_over_baseline"])
    lines += [
        "",
        f"| world | {learner} share of oracle | "
        + " | ".join(f"{learner} / {b}" for b in baselines)
        + " | kind |",
        "|---|---:|" + "---:|" * len(baselines) + "---|",
    ]
    for row in summary["per_world"]:
        mine = row["policies"].get(learner, {}).get("fraction_of_oracle")
        ratios = " | ".join(
            f"{row['ratios'][b]:.2f}x" if b in row["ratios"] else "-" for b in baselines
        )
        lines.append(f"| {row['world']} | {_pct(mine)} | {ratios} | {row['description']} |")
    return "\n".join(lines)


def suite_plot(summary: Mapping[str, Any], path: Path) -> Path:
    """Two panels: each policy's share of the oracle over worlds; the learner's ratio over each
    baseline over worlds (log scale, with 1x marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    learner = summary["learner"]
    worlds = summary["per_world"]
    policies = list(summary["share_of_oracle"])
    baselines = list(summary["ratio_over_baseline"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    shares = [
        [
            w["policies"][p]["fraction_of_oracle"]
            for w in worlds
            if p in w["policies"] and w["policies"][p]["fraction_of_oracle"] is not None
        ]
        for p in policies
    ]
    left.boxplot(shares, whis=(PERCENTILE, 100 - PERCENTILE), showfliers=False)
    left.set_xticks(range(1, len(policies) + 1), policies, fontsize=8)
    rng = np.random.default_rng(0)  # jitter only
    for i, values in enumerate(shares, start=1):
        left.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, ".", alpha=0.6)
    left.set_ylabel("share of the oracle's expected followers")
    left.set_title(f"per world ({summary['worlds']} worlds, mean of {summary['seeds']} seeds)")
    left.grid(alpha=0.3)
    ratios = [[w["ratios"][b] for w in worlds if b in w["ratios"]] for b in baselines]
    if ratios:
        right.boxplot(ratios, whis=(PERCENTILE, 100 - PERCENTILE), showfliers=False)
        for i, values in enumerate(ratios, start=1):
            right.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, ".", alpha=0.6)
        right.set_xticks(range(1, len(baselines) + 1), baselines, fontsize=8)
    right.axhline(1.0, color="k", lw=1)
    right.set_yscale("log")
    low, high = right.get_ylim()
    right.set_yticks([t for t in RATIO_TICKS if low <= t <= high])
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    right.yaxis.set_minor_formatter(NullFormatter())
    right.set_ylabel(f"{learner} / baseline, expected followers")
    right.set_title(f"{learner} over each baseline, per world")
    right.grid(alpha=0.3, which="both")
    fig.suptitle(f"whiskers: {PERCENTILE}th-{100 - PERCENTILE}th percentile", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
