"""The report's audience and experiments sections (agent/report/sections.py): their figures are
``growthloop audience``'s and ``growthloop experiments show``'s, their charts render, and the
HTML and markdown show them. The browser test of the whole report is
tests/acceptance/test_report_browser.py; the dashboard serves the same sections."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from agent import audience as audience_figures
from agent.audience_models import AudienceEvent, AudienceKind
from agent.experiments import Sample
from agent.models import Experiment, ExperimentStatus, NewExperiment, NewVariant, Variant
from agent.report.data import gather
from agent.report.render import render_html, render_markdown
from agent.report.sections import _experiment_view
from tests.report_sim import START, simulate


def ev(kind: AudienceKind, who: str, at: Any, n: int = 0) -> AudienceEvent:
    return AudienceEvent(
        kind=kind, user_id=f"u-{who}", handle=f"{who}.example", at=at, source_id=f"{kind}:{who}:{n}"
    )


async def test_audience_section_is_the_audience_commands_figures(tmp_path: Path) -> None:
    sim = await simulate(tmp_path, days=0.01)
    try:
        store, config = sim.store, sim.config
        (account_id,) = (await store.account_names()).keys()
        t0 = sim.start + timedelta(hours=1)
        end = sim.start + timedelta(days=10)
        events = [
            ev(AudienceKind.FOLLOW, "ann", t0),
            ev(AudienceKind.FOLLOW, "bob", t0 + timedelta(hours=1)),
            ev(AudienceKind.UNFOLLOW, "bob", t0 + timedelta(days=3)),
            ev(AudienceKind.LIKE, "cid", t0 + timedelta(days=1)),
            *[ev(AudienceKind.REPLY, "ann", t0 + timedelta(days=1 + i), i) for i in range(3)],
            ev(AudienceKind.FOLLOW, "dee", t0 + timedelta(days=8)),
        ]
        await store.record_audience(account_id, events, now=end)
        await audience_figures.update_scores(store, account_id, config.audience, now=end)
        report = await gather(store, config, start=sim.start, end=end)
        expected = await audience_figures.report(store, account_id, now=end)
    finally:
        await sim.built.aclose()
    (account,) = report.accounts
    au = account.audience
    assert au is not None
    assert (au.members, au.followers) == (4, 2)  # ann, bob, cid, dee; ann and dee follow
    assert au.tiers == {str(t): n for t, n in expected.tiers.items()}
    # the last weekly tier count is the upkeep's scoring at the end
    assert au.tiers_over_time[-1].at == end
    assert au.tiers_over_time[-1].tiers == au.tiers
    assert [p.at for p in au.tiers_over_time] == sorted(p.at for p in au.tiers_over_time)
    # cohort of the week of 5 January: ann and bob, old enough at one week; bob left on day 3
    first = au.cohorts[0]
    assert (first.followers, first.still_following) == (2, 1)
    assert first.retained[1] == 0.5
    assert au.top[0].handle == "ann.example"  # three replies outscore a follow
    assert sum(w.unfollows for w in au.churn) == 1

    html = render_html(report)
    for chart in ("retention-demo", "tiers-demo"):
        assert f'data-chart="{chart}"' in html
    assert "ann.example" in html and "50.0%" in html
    markdown = render_markdown(report)
    assert "### Audience" in markdown
    assert re.search(r"\| 2026-01-05 \| 2 \| 1 \| 50\.0% \|", markdown)


def plan(**values: Any) -> NewExperiment:
    return NewExperiment(
        account_id=1,
        name="hooks",
        hypothesis="a question hook brings more followers",
        dimension="hook",
        metric="followers_per_post",
        mde=0.5,
        alpha=0.05,
        power=0.8,
        baseline_mean=4.0,
        baseline_sd=3.0,
        max_posts_per_variant=200,
        max_days=30.0,
        block_size=4,
        seed=3,
        variants=(
            NewVariant(name="a", value="plain", control=True),
            NewVariant(name="b", value="q"),
        ),
        **values,
    )


def test_experiment_view_intervals_are_scipys() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.poisson(4.0, 40).astype(float), rng.poisson(6.0, 35).astype(float)
    e = Experiment(
        id=3,
        plan=plan(),
        variants=(
            Variant(id=1, name="a", value="plain", control=True),
            Variant(id=2, name="b", value="q"),
        ),
        status=ExperimentStatus.COMPLETED,
        winner="b",
        decision="significance",
        reason="always-valid p below alpha",
        evidence={},
        state={},
        created_at=START,
        started_at=START,
        stopped_at=START + timedelta(days=9),
    )
    view = _experiment_view(e, {"a": Sample(values=tuple(a)), "b": Sample(values=tuple(b))})
    control, treated = view.variants
    low, high = stats.t.interval(0.95, a.size - 1, loc=a.mean(), scale=stats.sem(a))
    assert control.mean == a.mean() and (control.low, control.high) == (low, high)
    assert control.diff is None
    welch = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert treated.diff == b.mean() - a.mean()
    assert (treated.diff_low, treated.diff_high) == (welch.low, welch.high)
    assert treated.posts == 35 and view.winner == "b" and view.status == "completed"

    empty = _experiment_view(e, {"a": Sample(), "b": Sample(values=(1.0,))})
    assert empty.variants[0].mean is None and empty.variants[1].low is None


async def test_experiments_section_renders_each_experiment_with_its_chart(tmp_path: Path) -> None:
    sim = await simulate(tmp_path, days=0.01)
    try:
        store, config = sim.store, sim.config
        (account_id,) = (await store.account_names()).keys()
        created = await store.create_experiment(
            replace(plan(), account_id=account_id), now=sim.start
        )
        report = await gather(store, config, start=sim.start, end=sim.end)
    finally:
        await sim.built.aclose()
    (account,) = report.accounts
    (view,) = account.experiments
    assert view.id == created.id and view.status == "draft"
    assert [v.posts for v in view.variants] == [0, 0]
    html = render_html(report)
    assert f'data-chart="experiment-demo-{created.id}"' in html
    assert "a question hook brings more followers" in html
    assert f"#{created.id} hooks" in render_markdown(report)
