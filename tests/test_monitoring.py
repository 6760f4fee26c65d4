"""deploy/monitoring: the Grafana dashboard and the Prometheus alert rules parse, and every metric
they use is one the real app exports at /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
# Metrics Prometheus itself makes, not the service.
BUILTIN = {"up"}


def expressions_of_dashboard() -> list[str]:
    dashboard: dict[str, Any] = json.loads((MONITORING / "dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["panels"]
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def expressions_of_alerts() -> list[str]:
    rules: dict[str, Any] = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
            assert rule["labels"]["severity"] in {"page", "ticket"}
            found.append(rule["expr"])
    return found


def metrics_in(expression: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "{}", expression)
    without_strings = re.sub(r'"[^"]*"', '""', without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_strings)
    names = set(re.findall(r"[a-z_][a-z0-9_]*", without_ranges))
    return {n for n in names if n.startswith("ticket_router_") or n in BUILTIN}


def exported(text: str) -> set[str]:
    """Every sample name the exposition can hold, from its TYPE lines."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "counter":
            names |= {f"{name}_total", f"{name}_created"}
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    return names


@pytest.mark.anyio
async def test_every_metric_the_dashboard_and_alerts_use_is_exported(client: AsyncTestClient[Litestar]) -> None:
    await client.post("/v1/classify", json={"title": "disk full"})
    await client.get("/readyz")
    text = (await client.get("/metrics")).text
    have = exported(text) | BUILTIN
    used: dict[str, set[str]] = {}
    for source, expressions in (
        ("dashboard.json", expressions_of_dashboard()),
        ("alerts.yaml", expressions_of_alerts()),
    ):
        for expression in expressions:
            for name in metrics_in(expression):
                used.setdefault(name, set()).add(source)
    assert len(used) >= 8, sorted(used)
    missing = {name: sorted(where) for name, where in used.items() if name not in have}
    assert not missing, f"not exported at /metrics: {missing}"


def test_the_dashboard_covers_the_operations_guide() -> None:
    used = set().union(*(metrics_in(e) for e in expressions_of_dashboard()))
    for metric in (
        "ticket_router_requests_total",
        "ticket_router_request_duration_seconds_bucket",
        "ticket_router_decisions_total",
        "ticket_router_webhook_events_total",
        "ticket_router_writebacks_total",
        "ticket_router_model_info",
        "ticket_router_training_jobs_total",
    ):
        assert metric in used, metric
