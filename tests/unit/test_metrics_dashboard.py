"""docs/grafana-dashboard.json and docs/metrics.md cannot drift from the metrics: every name and
label the dashboard's PromQL uses is one the registry exposes, every metric family is on it, and
the docs' tables list each family with its type and labels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"\bgrowthloop_[a-z0-9_]+")
BY = re.compile(r"\bby\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(growthloop_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def exercised() -> Metrics:
    """A registry with one sample of every labelled series (so its labels show)."""
    metrics = Metrics()
    metrics.track("demo", "sandbox")
    metrics.api_call(
        account="demo",
        platform="sandbox",
        operation="publish",
        seconds=0.2,
        spent_usd=0.01,
        error=RuntimeError("x"),
        rate_limited=True,
    )
    metrics.followers.labels("demo", "sandbox").set(10)
    metrics.month_spend.labels("demo", "sandbox").set(0.5)
    metrics.cost_per_post.labels("demo", "sandbox").set(0.02)
    with metrics.time_cycle("plan"):
        pass
    return metrics


def exposed() -> dict[str, set[str]]:
    """Sample name -> its label names (``le`` included for buckets), as the registry has them."""
    names: dict[str, set[str]] = {}
    for family in exercised().registry.collect():
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from walk(child)


def expressions() -> list[str]:
    """Every PromQL expression: panel targets and the template variables' queries."""
    found = [n["expr"] for n in walk(dashboard()["panels"]) if "expr" in n]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["definition"])
    return found


def test_the_dashboard_queries_only_metrics_the_registry_exposes() -> None:
    names = exposed()
    used = {name for expr in expressions() for name in NAME.findall(expr)}
    assert used, "no PromQL found"
    assert used - set(names) == set()


@pytest.mark.parametrize("expr", expressions())
def test_every_label_a_query_groups_or_filters_by_exists(expr: str) -> None:
    names = exposed()
    labels = set().union(*(names[n] for n in NAME.findall(expr)))
    grouped = {label.strip() for group in BY.findall(expr) for label in group.split(",")}
    assert grouped - labels == set(), expr
    for name, matchers in SELECTOR.findall(expr):
        assert set(MATCHER.findall(matchers)) - names[name] == set(), expr


def test_every_metric_family_is_on_the_dashboard() -> None:
    used = {name for expr in expressions() for name in NAME.findall(expr)}
    families = {family.name for family in Metrics().registry.collect()}
    missing = {f for f in families if not any(u == f or u.startswith(f + "_") for u in used)}
    assert missing == set()


def test_every_panel_reads_the_prometheus_datasource_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = [n["datasource"] for n in walk(board["panels"]) if "datasource" in n]
    assert sources and all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources)
    titles = {p["title"] for p in board["panels"]}
    assert {"Store up", "Suspended accounts", "Publish latency p50 / p95"} <= titles


DOCS = DASHBOARD.with_name("metrics.md")
DOC_ROW = re.compile(
    r"^\| `(growthloop_[a-z0-9_]+)` \| (counter|gauge|histogram) \|\s*([a-z_, ]*?)\s*\|"
)


def test_docs_list_every_metric_with_its_type_and_labels() -> None:
    documented = {
        (m.group(1), m.group(2), frozenset(filter(None, map(str.strip, m.group(3).split(",")))))
        for line in DOCS.read_text().splitlines()
        if (m := DOC_ROW.match(line))
    }
    registry = set()
    for family in exercised().registry.collect():
        labels = frozenset(label for s in family.samples for label in s.labels if label != "le")
        name = f"{family.name}_total" if family.type == "counter" else family.name
        registry.add((name, family.type, labels))
    assert documented == registry
