"""``growthloop run`` serves /metrics as a user scrapes it: Prometheus' text format, its counters
equal to ``/healthz``'s totals once a post is published and all its snapshots are taken."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import (
    HORIZONS_S,
    Daemon,
    free_port,
    realtime_overrides,
    write_config,
    write_scenario,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Daemon]


def scrape(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Sample (name, labels) -> value, read with prometheus_client's own parser."""
    url = f"http://127.0.0.1:{daemon.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> float:
    return sum(v for (n, _labels), v in samples.items() if n == name)


def test_run_serves_metrics_that_agree_with_healthz(tmp_path: Path, daemons: Start) -> None:
    scenario = write_scenario(tmp_path / "scenario.yaml")
    config = write_config(tmp_path / "growthloop.yaml", **realtime_overrides(scenario, free_port()))
    daemon = daemons(config)
    daemon.wait_started()

    def settled() -> dict[str, Any] | None:
        body = daemon.healthz()
        if not body:
            return None
        totals = body["totals"]
        done = totals.get("snapshots_taken", 0) >= len(HORIZONS_S)  # every horizon of the post
        return body if done and totals.get("posts_published", 0) >= 1 else None

    body = daemon.wait(settled, timeout=45, what="a post published and its snapshots taken")
    samples = scrape(daemon)
    totals = body["totals"]
    for name in ("posts_planned", "posts_published", "snapshots_taken"):
        assert total(samples, f"growthloop_{name}_total") == totals[name], name
    labels = frozenset({("account", "demo"), ("platform", "sandbox")})
    assert samples["growthloop_posts_published_total", labels] == totals["posts_published"]
    assert samples["growthloop_publish_latency_seconds_count", labels] >= 1
    assert samples["growthloop_followers", labels] > 0
    assert samples["growthloop_accounts_suspended", labels] == 0
    assert samples["growthloop_store_up", frozenset()] == 1
    # follower readings go on every second: scraped after /healthz, never fewer
    assert total(samples, "growthloop_api_calls_total") >= totals["api_calls"] > 0
    assert daemon.terminate(timeout=15) == 0
