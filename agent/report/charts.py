"""The report's charts: matplotlib figures rendered to inline SVG strings.

matplotlib draws every chart (no hand-made SVG); its SVG backend writes text as ``<text>``
(``svg.fonttype = none``: small files, the browser's own sans-serif font), embeds nothing from
outside the file and needs no JavaScript, so a report opens offline. Figures are built with
:class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global figure registry, no GUI
backend, safe to call from a server. Each SVG's element ids are salted with its chart name, so
several charts inlined in one HTML page never share an id.

Every function takes values from :mod:`agent.report.data` and returns ``<svg ...>...</svg>``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from agent.report.data import WEEKDAYS, AccountReport, DimensionView

WIDTH = 9.0  # inches; at matplotlib's 72 pt per inch the SVG is 648 px wide, scaled by CSS
GAIN = "#2a9d8f"  # attributed followers
FOLLOWERS = "#264653"
ESTIMATE = "#e76f51"
TRUTH = "#6a4c93"
SPEND = "#f4a261"
ERRORS = "#d62828"

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@contextmanager
def _style(salt: str) -> Iterator[None]:
    with matplotlib.rc_context(cast(Any, {**_RC, "svg.hashsalt": salt})):
        yield


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no metadata block)."""
    buf = io.StringIO()
    with _style(name):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = _prefix_ids(svg, re.sub(r"[^A-Za-z0-9_-]+", "_", name))
    return svg.replace("<svg ", f'<svg class="chart" data-chart="{name}" role="img" ', 1)


# an element id, or a reference to one: id="x", url(#x), href="#x" (xlink:href too)
_ID_OR_REF = re.compile(r'(\sid=")([^"]+)(")|(url\(#)([^)]+)(\))|(href="#)([^"]+)(")')


def _prefix_ids(svg: str, prefix: str) -> str:
    """Every id of one chart and every reference to it, prefixed with the chart's name:
    matplotlib numbers its groups per figure (``figure_1``, ``axes_1``...), so two charts in
    one page would otherwise share ids."""

    def sub(m: re.Match[str]) -> str:
        groups = [g for g in m.groups() if g is not None]
        return f"{groups[0]}{prefix}-{groups[1]}{groups[2]}"

    return _ID_OR_REF.sub(sub, svg)


def _figure(height: float, name: str) -> Figure:
    with _style(name):
        return Figure(figsize=(WIDTH, height), layout="constrained")


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#777777", transform=ax.transAxes)


def followers_chart(account: AccountReport) -> str:
    """Followers over time with each post marked (top), and each post's attributed gain (bottom)."""
    name = f"followers-{account.name}"
    fig = _figure(4.6, name)
    if not account.followers:
        _empty(fig, "no follower readings in this period")
        return to_svg(fig, name)
    with _style(name):
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
        times = [p.at for p in account.followers]
        top.plot(times, [p.followers for p in account.followers], color=FOLLOWERS, lw=1.4)
        marked = [p for p in account.posts if p.followers_at is not None]
        top.scatter(
            [p.posted_at for p in marked],
            [p.followers_at for p in marked],
            s=14,
            color=ESTIMATE,
            zorder=3,
            label="post published",
        )
        top.set_ylabel("followers")
        top.legend(loc="upper left", frameon=False)
        gained = [p for p in account.posts if p.gained is not None]
        waiting = [p for p in account.posts if p.gained is None]
        bottom.bar(
            [p.posted_at for p in gained],
            [p.gained for p in gained],
            width=0.06,
            color=GAIN,
            label="attributed followers",
        )
        if waiting:
            bottom.scatter(
                [p.posted_at for p in waiting],
                [0.0] * len(waiting),
                marker="|",
                color="#999999",
                label="not attributed yet",
            )
        bottom.axhline(0, color="#444444", lw=0.6)
        bottom.set_ylabel("per post")
        bottom.legend(loc="upper left", frameon=False, ncols=2)
        fig.autofmt_xdate()
    return to_svg(fig, name)


def estimates_chart(account: AccountReport, dimension: DimensionView) -> str:
    """Each arm's estimate with its 90% interval, P(best) in the label, the truth where known."""
    name = f"estimates-{account.name}-{dimension.dimension}"
    arms = list(reversed(dimension.arms))  # best at the top
    fig = _figure(0.9 + 0.32 * max(len(arms), 1), name)
    if not arms:
        _empty(fig, "no estimates yet")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        y = np.arange(len(arms))
        means = np.array([a.mean for a in arms])
        low = means - np.array([a.low for a in arms])
        high = np.array([a.high for a in arms]) - means
        ax.errorbar(
            means,
            y,
            xerr=np.clip(np.vstack([low, high]), 0, None),
            fmt="o",
            color=ESTIMATE,
            ecolor=ESTIMATE,
            capsize=3,
            label="estimate, 90% interval",
        )
        truth = [(i, a.true_value) for i, a in enumerate(arms) if a.true_value is not None]
        if truth:
            ax.scatter(
                [v for _i, v in truth],
                [i for i, _v in truth],
                marker="x",
                color=TRUTH,
                zorder=3,
                label="true value (simulation)",
            )
        ax.set_yticks(y, [f"{a.arm}  (P(best) {a.p_best:.2f}, n={a.posts})" for a in arms])
        ax.set_xlabel(f"followers per post, {dimension.dimension}")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
    return to_svg(fig, name)


def hour_heatmap(account: AccountReport) -> str:
    """Mean attributed followers per post by local weekday and hour, post counts written in."""
    name = f"hours-{account.name}"
    fig = _figure(3.0, name)
    if not account.hours:
        _empty(fig, "no posts in this period")
        return to_svg(fig, name)
    grid = np.full((7, 24), np.nan)
    counts = np.zeros((7, 24), dtype=int)
    for cell in account.hours:
        counts[cell.weekday, cell.hour] = cell.posts
        if cell.mean_gained is not None:
            grid[cell.weekday, cell.hour] = cell.mean_gained
    with _style(name):
        ax = fig.add_subplot()
        ax.grid(False)
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
        for (row, col), n in np.ndenumerate(counts):
            if n:
                ax.text(col, row, str(n), ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(24), [str(h) for h in range(24)])
        ax.set_yticks(range(7), list(WEEKDAYS))
        ax.set_xlabel(f"hour posted ({account.timezone}); number: posts")
        fig.colorbar(image, ax=ax, label="followers per post")
    return to_svg(fig, name)


def engagement_chart(account: AccountReport) -> str:
    """Each attributed post's engagements against the followers credited to it."""
    name = f"engagement-{account.name}"
    fig = _figure(3.4, name)
    posts = [p for p in account.posts if p.gained is not None]
    if not posts:
        _empty(fig, "no attributed posts yet")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        types = sorted({p.arms.get("content_type", "") for p in posts})
        for kind in types:
            group = [p for p in posts if p.arms.get("content_type", "") == kind]
            ax.scatter(
                [p.engagements for p in group],
                [p.gained for p in group],
                s=16,
                alpha=0.8,
                label=kind or "unknown",
            )
        ax.axhline(0, color="#444444", lw=0.6)
        ax.set_xlabel("engagements (latest snapshot)")
        ax.set_ylabel("attributed followers")
        ax.legend(title="content type", frameon=False, fontsize=7, loc="best")
    return to_svg(fig, name)


def spend_chart(account: AccountReport) -> str:
    """Spend per day (bars) and the running cost per follower gained (line)."""
    name = f"spend-{account.name}"
    fig = _figure(3.0, name)
    if not account.days:
        _empty(fig, "no health rows in this period")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        days = [datetime.combine(d.day, datetime.min.time()) for d in account.days]
        ax.bar(days, [d.llm_spend_usd for d in account.days], color=SPEND, label="LLM $")
        ax.bar(
            days,
            [d.platform_spend_usd for d in account.days],
            bottom=[d.llm_spend_usd for d in account.days],
            color=FOLLOWERS,
            label="platform $",
        )
        ax.set_ylabel("spend per day (US$)")
        ax.set_ylim(bottom=0)
        spent = np.cumsum([d.spend_usd for d in account.days])
        gained = np.cumsum([d.followers_gained for d in account.days])
        per = [s / g if g > 0 else np.nan for s, g in zip(spent, gained, strict=True)]
        right = ax.twinx()
        right.grid(False)
        right.plot(days, per, color=ERRORS, lw=1.4, label="$ per follower (running)")
        right.set_ylabel("US$ per follower gained")
        right.set_ylim(bottom=0)
        if not spent[-1]:
            ax.text(
                0.5, 0.5, "no spend recorded", transform=ax.transAxes, ha="center", color="#777777"
            )
        lines = ax.get_legend_handles_labels()
        extra = right.get_legend_handles_labels()
        ax.legend(lines[0] + extra[0], lines[1] + extra[1], loc="upper left", frameon=False)
        fig.autofmt_xdate()
    return to_svg(fig, name)


def health_chart(account: AccountReport) -> str:
    """Per day: publish and poll success (lines), late polls and API errors (bars)."""
    name = f"health-{account.name}"
    fig = _figure(3.0, name)
    if not account.days:
        _empty(fig, "no health rows in this period")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        days = [datetime.combine(d.day, datetime.min.time()) for d in account.days]
        ax.bar(days, [d.polls_late for d in account.days], color=SPEND, label="late polls")
        ax.bar(
            days,
            [d.api_errors for d in account.days],
            bottom=[d.polls_late for d in account.days],
            color=ERRORS,
            label="API errors",
        )
        ax.set_ylabel("count per day")
        ax.set_ylim(bottom=0)
        right = ax.twinx()
        right.grid(False)
        right.plot(
            days,
            _share([(d.posts_succeeded, d.posts_attempted) for d in account.days]),
            color=FOLLOWERS,
            marker=".",
            label="publish success",
        )
        right.plot(
            days,
            _share([(d.polls_done, d.polls_due) for d in account.days]),
            color=GAIN,
            marker=".",
            label="polls done / due",
        )
        right.set_ylim(0, 1.05)
        right.set_ylabel("share")
        lines = ax.get_legend_handles_labels()
        extra = right.get_legend_handles_labels()
        ax.legend(
            lines[0] + extra[0],
            lines[1] + extra[1],
            loc="lower left",
            frameon=False,
            ncols=4,
            fontsize=7,
        )
        fig.autofmt_xdate()
    return to_svg(fig, name)


def _share(pairs: Sequence[tuple[int, int]]) -> list[float]:
    return [done / due if due else np.nan for done, due in pairs]


# -- the audience (issue 19) and experiments (issue 20) sections ---------------------------------

TIER_COLOURS = {
    "super_fan": "#e76f51",
    "active": "#f4a261",
    "lurker": "#2a9d8f",
    "inactive": "#cccccc",
}


def retention_chart(account: AccountReport) -> str:
    """Each weekly follow cohort's share still following at 1, 2, 4, 8 and 12 weeks (the
    checkpoints its age allows), one line per cohort, newest darkest."""
    name = f"retention-{account.name}"
    fig = _figure(3.2, name)
    audience = account.audience
    cohorts = [
        c
        for c in (audience.cohorts if audience else ())
        if any(v is not None for v in c.retained.values())
    ]
    if audience is None or not cohorts:
        _empty(fig, "no follow cohort old enough to show retention yet")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        shades = np.linspace(0.35, 1.0, len(cohorts))
        for shade, c in zip(shades, cohorts, strict=True):
            weeks = [w for w in audience.retention_weeks if c.retained.get(w) is not None]
            ax.plot(
                weeks,
                [100 * cast(float, c.retained[w]) for w in weeks],
                marker="o",
                ms=3,
                color=(0.15, 0.27, 0.33, float(shade)),
                label=f"{c.week} ({c.followers})",
            )
        ax.set_xticks(list(audience.retention_weeks))
        ax.set_ylim(0, 105)
        ax.set_xlabel("weeks after following")
        ax.set_ylabel("% still following")
        ax.legend(title="cohort (followers)", frameon=False, fontsize=7, loc="lower left", ncols=2)
    return to_svg(fig, name)


def tiers_chart(account: AccountReport) -> str:
    """Members per engagement tier at the end of each week (stacked)."""
    name = f"tiers-{account.name}"
    fig = _figure(3.0, name)
    audience = account.audience
    if audience is None or not audience.tiers_over_time:
        _empty(fig, "no audience members recorded")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        points = audience.tiers_over_time
        tiers = list(points[-1].tiers)
        colours = [TIER_COLOURS.get(t, "#999999") for t in tiers]
        labels = [t.replace("_", " ") for t in tiers]
        if len(points) == 1:  # one moment draws no area: bars
            ax.bar(labels, [points[0].tiers[t] for t in tiers], color=colours)
        else:
            ax.stackplot(
                [p.at for p in points],
                [[p.tiers.get(t, 0) for p in points] for t in tiers],
                labels=labels,
                colors=colours,
                alpha=0.9,
            )
            ax.legend(frameon=False, fontsize=7, loc="upper left")
        ax.set_ylabel("members")
    return to_svg(fig, name)


def experiment_chart(account: AccountReport, experiment: Any) -> str:
    """One experiment's variants: mean per post with its 95% interval, the control's mean as a
    dashed line, the winner highlighted."""
    name = f"experiment-{account.name}-{experiment.id}"
    variants = list(experiment.variants)
    fig = _figure(0.9 + 0.36 * max(len(variants), 1), name)
    shown = [v for v in variants if v.mean is not None]
    if not shown:
        _empty(fig, "no learned post in this experiment yet")
        return to_svg(fig, name)
    with _style(name):
        ax = fig.add_subplot()
        ys = np.arange(len(shown))[::-1]
        for y, v in zip(ys, shown, strict=True):
            colour = GAIN if v.name == experiment.winner else (FOLLOWERS if v.control else ESTIMATE)
            if v.low is not None and v.high is not None:
                ax.plot([v.low, v.high], [y, y], color=colour, lw=2.2, solid_capstyle="butt")
            ax.plot([v.mean], [y], "o", color=colour, ms=5)
        control = next((v for v in shown if v.control), None)
        if control is not None and control.mean is not None:
            ax.axvline(control.mean, color=FOLLOWERS, ls="--", lw=0.8)
        ax.set_yticks(ys, [f"{v.name} ({v.posts})" for v in shown])
        metric = (
            "engagement rate" if experiment.metric == "engagement_rate" else "followers per post"
        )
        ax.set_xlabel(f"{metric}: mean and 95% interval (posts in brackets)")
    return to_svg(fig, name)
