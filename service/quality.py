"""Production quality: how often routed decisions matched the team people finally gave the ticket.

A routed decision of the active model counts once a person gave its ticket a team: a relabel
(agreeing or not), a correction through the API, or the team label a ticket was closed with.
Over the last ``TICKET_ROUTER_QUALITY_WINDOW_DAYS``, production precision per team is set
against the precision the model was validated at (out of fold, at each team's threshold). When a
team with enough outcomes falls more than ``TICKET_ROUTER_DRIFT_TOLERANCE`` below it, or people
have made many corrections since the model was trained, retraining is recommended. The figures
are exported as Prometheus gauges too (``deploy/monitoring/alerts.yaml`` alerts on them).
"""

from __future__ import annotations

import datetime as dt
import time

import msgspec
from prometheus_client import Gauge

from model.registry import Manifest
from service.settings import Settings
from service.store import Store

__all__ = ["MIN_OUTCOMES", "RETRAIN_CORRECTIONS", "QualityReport", "TeamQuality", "quality_report"]

# A precision measured on fewer outcomes than this is shown but never recommends anything.
MIN_OUTCOMES = 20
# This many corrections since training are worth a retrain whatever the precision says.
RETRAIN_CORRECTIONS = 100
ALL = "all"

PRODUCTION_PRECISION = Gauge(
    "ticket_router_production_precision",
    "Precision of routed decisions against the team people gave the ticket, over the quality window"
    " (team 'all' for every team).",
    ["team"],
    multiprocess_mode="mostrecent",
)
VALIDATED_PRECISION = Gauge(
    "ticket_router_validated_precision",
    "The active model's validated (out-of-fold) routed precision, per team and 'all'.",
    ["team"],
    multiprocess_mode="mostrecent",
)
PRODUCTION_OUTCOMES = Gauge(
    "ticket_router_production_outcomes",
    "Routed decisions in the quality window whose ticket got a human team, per team and 'all'.",
    ["team"],
    multiprocess_mode="mostrecent",
)
CORRECTIONS_SINCE_TRAINING = Gauge(
    "ticket_router_corrections_since_training",
    "Corrections people made since the active model was trained.",
    multiprocess_mode="mostrecent",
)
RETRAIN_RECOMMENDED = Gauge(
    "ticket_router_retrain_recommended",
    "1 when production quality says the model should be retrained.",
    multiprocess_mode="mostrecent",
)


class TeamQuality(msgspec.Struct):
    """One team (or all of them): production precision on the outcomes known, against the validated one."""

    outcomes: int
    right: int
    precision: float | None
    validated_precision: float | None


class QualityReport(msgspec.Struct):
    """Production quality of the active model over the window, and whether retraining is recommended."""

    model_version: str
    trained_at: str
    window_days: int
    decisions: int
    routed_share: float | None
    abstain_share: float | None
    rule_share: float | None
    skipped_share: float | None
    overall: TeamQuality
    per_team: dict[str, TeamQuality]
    corrections_since_training: int
    retrain_recommended: bool
    reasons: list[str]


def _validated(manifest: Manifest) -> tuple[dict[str, float], float | None]:
    """Per team and overall, the routed precision the model was validated at (out of fold)."""
    routing = manifest.report.team_routing
    per_team = {team: row.precision for team, row in routing.items() if row.precision is not None}
    weighted = [
        (row.precision, row.decisions * row.routed)
        for row in routing.values()
        if row.precision is not None and row.routed is not None
    ]
    total = sum(weight for _, weight in weighted)
    if total > 0:
        return per_team, sum(p * w for p, w in weighted) / total
    cv = manifest.report.cv
    if cv is None:
        return per_team, None
    row = min(cv.thresholds, key=lambda r: abs(r.threshold - manifest.threshold))
    return per_team, row.precision


def _trained_at(manifest: Manifest) -> float:
    try:
        return dt.datetime.fromisoformat(manifest.created_at).timestamp()
    except ValueError:
        return 0.0


def _share(part: int, total: int) -> float | None:
    return part / total if total else None


def quality_report(settings: Settings, store: Store, manifest: Manifest, now: float | None = None) -> QualityReport:
    """Measure the active model's production quality now, and export it as gauges."""
    since = (time.time() if now is None else now) - settings.quality_window_days * 86400
    counts = store.outcomes.decision_counts(since, manifest.version)
    judged = {row.team: row for row in store.outcomes.team_outcomes(since, manifest.version)}
    validated, validated_all = _validated(manifest)
    per_team: dict[str, TeamQuality] = {}
    for team in manifest.teams:
        row = judged.get(team)
        n, right = (row.judged, row.right) if row else (0, 0)
        per_team[team] = TeamQuality(n, right, _share(right, n), validated.get(team))
    n_all = sum(q.outcomes for q in per_team.values())
    right_all = sum(q.right for q in per_team.values())
    overall = TeamQuality(n_all, right_all, _share(right_all, n_all), validated_all)
    corrections = store.outcomes.corrections_since(_trained_at(manifest))
    reasons = []
    tolerance = settings.drift_tolerance
    for team, q in [(ALL, overall), *per_team.items()]:
        measured = q.outcomes >= MIN_OUTCOMES and q.precision is not None and q.validated_precision is not None
        if measured and q.precision is not None and q.validated_precision is not None:
            if q.precision >= q.validated_precision - tolerance:
                continue
            reasons.append(
                f"{'overall' if team == ALL else team} precision {q.precision:.2f} on {q.outcomes} outcomes is more"
                f" than {tolerance:.2f} below the validated {q.validated_precision:.2f}"
            )
    if corrections >= RETRAIN_CORRECTIONS:
        reasons.append(f"{corrections} corrections since the model was trained (retrain at {RETRAIN_CORRECTIONS})")
    report = QualityReport(
        model_version=manifest.version,
        trained_at=manifest.created_at,
        window_days=settings.quality_window_days,
        decisions=counts.total,
        routed_share=_share(counts.routed, counts.total),
        abstain_share=_share(counts.abstained, counts.total),
        rule_share=_share(counts.by_rule, counts.total),
        skipped_share=_share(counts.skipped, counts.total),
        overall=overall,
        per_team=per_team,
        corrections_since_training=corrections,
        retrain_recommended=bool(reasons),
        reasons=reasons,
    )
    _export(report)
    return report


def _export(report: QualityReport) -> None:
    for team, q in [(ALL, report.overall), *report.per_team.items()]:
        PRODUCTION_OUTCOMES.labels(team).set(q.outcomes)
        if q.precision is not None:
            PRODUCTION_PRECISION.labels(team).set(q.precision)
        if q.validated_precision is not None:
            VALIDATED_PRECISION.labels(team).set(q.validated_precision)
    CORRECTIONS_SINCE_TRAINING.set(report.corrections_since_training)
    RETRAIN_RECOMMENDED.set(1 if report.retrain_recommended else 0)
