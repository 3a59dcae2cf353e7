"""End to end: a planned experiment on a hook with a true 1.5x effect (the sandbox scenario
``experiment_hook``) is created from a YAML file, runs in the simulated daemon (posts assigned in
balanced blocks, everything else still the learner's), stops by its rule, promotes the winner,
and the learner then posts the winner more often than before the experiment and never the
retired loser."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from structlog.testing import capture_logs

from agent import experiment_spec
from agent.models import ExperimentStatus
from agent.simulator import run_until
from agent.store.experiment_rows import PROMOTION
from agent.store.schema import learning_updates
from tests.conftest import T0
from tests.unit.vt_harness import make_harness

WARM_UP = timedelta(days=3)  # enough learned posts (>= MIN_BASELINE_POSTS) to size it on
LONGEST = timedelta(days=14)  # the experiment must have ended by then
AFTER = timedelta(days=3)  # posts planned after the promotion
POSTS_PER_DAY = 16
CADENCE = {"posts_per_day": POSTS_PER_DAY, "max_posts_per_hour": 2, "min_gap": "60m"}

EXPERIMENT = """
account: demo
name: surprising stat hook
hypothesis: opening with a surprising statistic earns more engagement than busting a myth
varies: hook
variants:
  - {name: myth, value: myth_buster, control: true}
  - {name: stat, value: surprising_stat}
metric: engagement_rate
mde: 0.3
alpha: 0.05
power: 0.8
max_days: 20
seed: 5
stop_rules:
  significance: true
  futility: {after_fraction: 0.5}
  promote: auto
"""


async def test_a_hook_experiment_stops_by_its_rule_promotes_the_winner_and_the_learner_uses_it(
    tmp_path: Path,
) -> None:
    file = tmp_path / "experiment.yaml"
    file.write_text(EXPERIMENT)
    async with make_harness(tmp_path, scenario="experiment_hook", cadence=CADENCE) as h:
        await run_until(h.agent, h.clock, T0 + WARM_UP)
        before = [p for p in await h.posts() if p.status == "posted"]
        spec = experiment_spec.read(file)
        made = await experiment_spec.create(h.store, h.agent.config, spec, now=h.clock.now())
        assert made.status is ExperimentStatus.RUNNING
        # sized from the account's own engagement rate: the sequential test's posts at +30 %
        assert 10 < made.plan.max_posts_per_variant < 400
        started = h.clock.now()

        end = started + LONGEST
        found = None
        with capture_logs() as logs:
            while h.clock.now() < end:
                await run_until(h.agent, h.clock, h.clock.now() + timedelta(hours=12))
                found = await h.store.get_experiment(made.id)
                assert found is not None
                if found.status is not ExperimentStatus.RUNNING:
                    break
        events = {e["event"]: e for e in logs if e["event"].startswith("experiment_")}
        assert events["experiment_completed"]["rule"] == "significance"
        assert events["experiment_promoted"]["winner"] == "stat"
        assert found is not None and found.status is ExperimentStatus.COMPLETED, found
        assert (found.decision, found.winner) == ("significance", "stat")
        assert found.promoted and "alpha 0.05" in (found.reason or "")
        assert found.evidence["p_values"]["stat"] <= 0.05

        # assigned in balanced blocks of 4: within each full block two of each
        assignments = await h.store.assignments(made.id)
        myth, stat = found.variants
        variants = [a.variant_id for a in assignments]
        for start in range(0, len(variants) - len(variants) % 4, 4):
            assert Counter(variants[start : start + 4]) == {myth.id: 2, stat.id: 2}
        # each assigned post was written with its variant's hook, the rest by the learner
        posts = {p.id: p for p in await h.posts()}
        values = {myth.id: "myth_buster", stat.id: "surprising_stat"}
        linked = [a for a in assignments if a.content_id is not None]
        assert len(linked) >= len(assignments) - 1  # the last may still be being written
        for a in linked:
            post = posts[a.content_id]
            assert post.generation_metadata["hook"] == values[a.variant_id]
            assert post.generation_metadata["experiments"][0]["id"] == made.id

        # the cadence is unchanged: never more than the daily cap on any day
        per_day = Counter(p.posted_at.date() for p in posts.values() if p.posted_at)
        assert max(per_day.values()) <= POSTS_PER_DAY

        # the results view counts each variant's posts
        async with h.store.engine.connect() as conn:
            view = {
                r.variant: r
                for r in await conn.execute(
                    sa.text("SELECT * FROM experiment_results WHERE experiment_id = :e"),
                    {"e": made.id},
                )
            }
        assert view["stat"].assigned == Counter(variants)[stat.id]
        assert view["stat"].learned >= found.evidence["variants"]["stat"]["posts"]
        assert view["myth"].posted <= view["myth"].assigned

        # the promotion is in learning_updates with its evidence
        updates = [u for u in await h.rows(learning_updates) if u.update_type == PROMOTION]
        assert len(updates) == 1
        assert updates[0].updates_applied == {
            "winner": "surprising_stat",
            "retired": {"hook": ["myth_buster"]},
        }
        assert updates[0].evidence["decision"] == "significance"

        promoted_at = h.clock.now()
        await run_until(h.agent, h.clock, promoted_at + AFTER)
        after = [
            p
            for p in await h.posts()
            if p.created_at > promoted_at and p.status in ("planned", "posted")
        ]
        assert len(after) >= 30

        def share(posts: list[Any], hook: str) -> float:
            hooks = [p.generation_metadata["hook"] for p in posts]
            return hooks.count(hook) / len(hooks)

        assert share(after, "myth_buster") == 0.0  # the retired loser
        assert share(after, "surprising_stat") > max(0.5, share(before, "surprising_stat"))
