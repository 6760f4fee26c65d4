"""Prometheus metrics of the domain; HTTP request metrics come from Litestar's Prometheus middleware.

Metrics live in prometheus-client's default registry. With several worker processes, the
``serve`` command sets ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates every worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from model.decision import Decision

__all__ = [
    "DECISIONS",
    "MODEL_INFO",
    "TRAINING_JOBS",
    "TRAINING_SECONDS",
    "WEBHOOK_EVENTS",
    "WRITEBACKS",
    "count_decisions",
    "exposition",
    "forget_dead_workers",
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


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format and their content type; every live worker's with several."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    forget_dead_workers(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_dead_workers(folder: str) -> list[int]:
    """Remove the live gauges (model info, requests in progress) of worker processes that have died.

    A worker killed by a signal never cleans up after itself; its counters stay in the totals,
    but its gauges would describe a process that is gone (a stale model version, requests that
    will never finish).
    """
    stems = (path.stem.rpartition("_")[2] for path in Path(folder).glob("*.db"))
    pids = {int(stem) for stem in stems if stem.isdigit()}
    dead = sorted(pid for pid in pids if not _alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
    return dead


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie awaiting its parent counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
