"""The rows the store reads and writes, as typed records, and the ids they carry."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import msgspec

__all__ = [
    "WRITEBACK_OPEN",
    "WRITEBACK_OURS",
    "CorrectionRecord",
    "DecisionRecord",
    "DeliveryRecord",
    "JobRecord",
    "OutcomeRecord",
    "QuestionRecord",
    "ShadowComparison",
    "ShadowRecord",
    "TriageItem",
    "TriageRecord",
    "WritebackRecord",
    "new_id",
]

_last_stamp = 0
_stamp_lock = threading.Lock()


def new_id() -> str:
    """A unique 32-character row id that sorts by creation time: microseconds, then randomness.

    Within a process the time part strictly increases, so ids made in the same microsecond
    still sort in the order they were made.
    """
    global _last_stamp
    with _stamp_lock:
        now = time.time_ns() // 1000
        _last_stamp = now if now > _last_stamp else _last_stamp + 1
        stamp = _last_stamp
    return f"{stamp:014x}{secrets.token_hex(9)}"


class DecisionRecord(msgspec.Struct, frozen=True):
    """One row of the audit trail: which ticket went where, by which model version."""

    id: str
    created_at: float
    source: str
    text_sha256: str
    team: str
    confidence: float
    abstained: bool
    model_version: str
    scores: dict[str, float]
    ticket_ref: str | None = None
    rule: str | None = None
    skipped: bool = False


class CorrectionRecord(msgspec.Struct, frozen=True):
    """A person's statement of which team owns a ticket: training data for the next model."""

    id: str
    created_at: float
    source: str
    team: str
    title: str
    body: str
    text_sha256: str
    actor: str | None = None
    previous_team: str | None = None
    decision_id: str | None = None
    ticket_ref: str | None = None


class JobRecord(msgspec.Struct, frozen=True):
    """A training job: queued, running, succeeded, refused (by the promotion gate) or failed.

    A finished job has its result (refused ones too) or its error; a running one its stage and
    progress (0 to 1).
    """

    id: str
    kind: str
    status: str
    created_at: float
    options: dict[str, Any]
    requested_by: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    stage: str | None = None
    progress: float | None = None


class ShadowRecord(msgspec.Struct, frozen=True):
    """What a shadowed candidate decided for a ticket the active model decided."""

    decision_id: str
    model_version: str
    created_at: float
    team: str
    confidence: float
    abstained: bool


class ShadowComparison(msgspec.Struct, frozen=True):
    """One shadowed decision beside the active one and the correction, if any."""

    decision_id: str
    active_team: str
    shadow_team: str
    corrected_team: str | None


class TriageRecord(msgspec.Struct, frozen=True):
    """A decision a person should look at, with the ticket's text (the audit trail keeps only its hash).

    ``reason`` is ``abstained`` or ``close`` (the top two teams within the triage margin);
    ``status`` is ``open`` (in the queue), ``corrected`` (a person named the team:
    ``correction_id``) or ``superseded`` (a newer decision for the same ticket).
    """

    decision_id: str
    created_at: float
    reason: str
    title: str
    body: str
    status: str = "open"
    ticket_ref: str | None = None
    url: str | None = None
    resolved_at: float | None = None
    correction_id: str | None = None


class TriageItem(msgspec.Struct, frozen=True):
    """An open triage row with its decision."""

    triage: TriageRecord
    decision: DecisionRecord


class DeliveryRecord(msgspec.Struct, frozen=True):
    """One webhook delivery we processed: what it was and what we did with it."""

    tracker: str
    delivery_id: str
    received_at: float
    event: str
    outcome: str
    action: str | None = None
    ticket_ref: str | None = None
    reason: str | None = None
    decision_id: str | None = None


class WritebackRecord(msgspec.Struct, frozen=True):
    """A write-back to a tracker: the requests still to make, and how the attempts went.

    ``status`` is ``pending`` (due at ``next_attempt_at``), ``done``, ``failed`` (retried at
    ``next_attempt_at``, or only on an admin's request when that is null), ``dry-run`` (recorded,
    never sent) or ``superseded`` (a person labelled the ticket first).
    """

    id: str
    created_at: float
    updated_at: float
    tracker: str
    ticket_ref: str
    request: str
    status: str
    decision_id: str | None = None
    label: str | None = None
    comment: str | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    claimed_until: float | None = None
    last_error: str | None = None


class QuestionRecord(msgspec.Struct, frozen=True):
    """The one question asked on a ticket: which two teams it was between, and what the answer did.

    ``status`` is ``asked`` until an answer (a comment or an edit) comes, then ``answered``.
    """

    ticket_ref: str
    tracker: str
    asked_at: float
    decision_id: str
    teams: list[str]
    question: str
    status: str = "asked"
    answered_at: float | None = None
    answer_decision_id: str | None = None
    outcome: str | None = None


class OutcomeRecord(msgspec.Struct, frozen=True):
    """The team a person finally gave a decided ticket (a relabel, a correction, the team at closing)."""

    decision_id: str
    created_at: float
    team: str
    source: str
    ticket_ref: str | None = None


WRITEBACK_OPEN = ("pending", "failed")
WRITEBACK_OURS = ("pending", "failed", "done")
