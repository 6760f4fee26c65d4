"""Prometheus metrics of the domain; HTTP request metrics come from Litestar's Prometheus middleware.

Metrics live in prometheus-client's default registry. With several worker processes, the
``serve`` command sets ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates every worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from model.decision import Decision

__all__ = [
    "DECISIONS",
    "MODEL_INFO",
    "TRAINING_JOBS",
    "TRAINING_SECONDS",
    "WEBHOOK_EVENTS",
    "WRITEBACKS",
    "count_decisions",
    "set_active_model",
]

DECISIONS = Counter(
    "ticket_router_decisions_total",
    "Decisions made, by team, source (api, batch, github, ...) and whether the router abstained.",
    ["team", "source", "abstained"],
)
WEBHOOK_EVENTS = Counter(
    "ticket_router_webhook_events_total",
    "Webhook deliveries by tracker and outcome (classified, ignored, duplicate, rejected, error).",
    ["tracker", "outcome"],
)
WRITEBACKS = Counter(
    "ticket_router_writebacks_total",
    "Write-back attempts to trackers by tracker and result (ok, retried, failed).",
    ["tracker", "result"],
)
MODEL_INFO = Gauge(
    "ticket_router_model_info",
    "The model version each worker serves (1 for the version in use).",
    ["version"],
    multiprocess_mode="liveall",
)
TRAINING_SECONDS = Histogram(
    "ticket_router_training_duration_seconds",
    "Duration of training runs, cross-validation and the promotion gate included.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
TRAINING_JOBS = Counter("ticket_router_training_jobs_total", "Training jobs by final status.", ["status"])


def count_decisions(decisions: Iterable[Decision], source: str) -> None:
    """Count recorded decisions."""
    for decision in decisions:
        DECISIONS.labels(decision.team, source, "true" if decision.abstained else "false").inc()


def set_active_model(version: str, previous: str | None) -> None:
    """Point the model-info metric at ``version``."""
    if previous is not None and previous != version:
        MODEL_INFO.labels(previous).set(0)
    MODEL_INFO.labels(version).set(1)
