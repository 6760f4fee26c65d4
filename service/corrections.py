"""Corrections: a person names the right team for a decision or a ticket; kept for the next training.

One function records a correction for every surface that takes one (``POST /v1/feedback`` and the
console's triage queue), so they validate and store alike.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from model.taxonomy import Taxonomy
from model.text import compose, text_sha256
from service.errors import NotFoundError, UnprocessableError
from service.schemas import FeedbackRequest
from service.store import CorrectionRecord, OutcomeRecord, Store, new_id

__all__ = ["latest_per_ticket", "record_correction", "trainable", "training_count"]


def trainable(record: CorrectionRecord) -> bool:
    """Whether the correction carries the ticket's text, which training needs."""
    return bool(record.title.strip() or record.body.strip())


def record_correction(store: Store, taxonomy: Taxonomy, data: FeedbackRequest, source: str = "api") -> CorrectionRecord:
    """Validate against the active model's taxonomy and the audit trail, then store.

    The triage rows the correction answers (its decision's, its ticket's) leave the queue in
    the same transaction.
    """
    teams = taxonomy.ids
    if data.team not in teams:
        raise UnprocessableError(f"unknown team {data.team!r}; the taxonomy has {list(teams)}")
    title, body = data.parts if (data.title or data.body or data.text) else (None, None)
    text = compose(title, body)
    digest = text_sha256(text)
    previous_team = None
    ticket_ref = data.ticket_ref
    if data.decision_id is not None:
        decision = store.audit.get(data.decision_id)
        if decision is None:
            raise NotFoundError(f"no decision {data.decision_id!r} in the audit trail")
        if text and digest != decision.text_sha256:
            raise UnprocessableError("the text does not match the text of that decision")
        previous_team = decision.team
        digest = decision.text_sha256
        ticket_ref = ticket_ref or decision.ticket_ref
    record = CorrectionRecord(
        id=new_id(),
        created_at=time.time(),
        source=source,
        team=data.team,
        title=title or "",
        body=body or "",
        text_sha256=digest,
        actor=data.actor,
        previous_team=previous_team,
        decision_id=data.decision_id,
        ticket_ref=ticket_ref,
    )
    store.corrections.add(record)
    if data.decision_id is not None:
        # The team a person gave a decided ticket: what production precision is measured against.
        store.outcomes.record(
            OutcomeRecord(data.decision_id, record.created_at, data.team, f"{source}:feedback", ticket_ref)
        )
    return record


def latest_per_ticket(records: Sequence[CorrectionRecord]) -> list[CorrectionRecord]:
    """The corrections training uses: those with text, the latest one of each ticket (``records`` oldest first)."""
    latest: dict[str, CorrectionRecord] = {}
    for record in records:
        if trainable(record):
            latest[record.ticket_ref or record.text_sha256] = record
    return list(latest.values())


def training_count(records: Sequence[CorrectionRecord], taxonomy: Taxonomy) -> tuple[int, int]:
    """How many corrections (oldest first) the next training will use, and how many it will drop (team gone)."""
    latest = latest_per_ticket(records)
    known = set(taxonomy.ids)
    used = sum(1 for r in latest if r.team in known)
    return used, len(latest) - used
