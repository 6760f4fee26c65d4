"""The triage queue: the texts of decisions a person should look at, until a correction or a newer decision.

Rows are written with their decisions, in the audit trail's transaction (``AuditTrail.add``);
a correction naming the decision or the ticket takes them out of the queue in the correction's
own transaction (``resolve``, called by every writer of corrections).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.store.database import Database
from service.store.records import CorrectionRecord, DecisionRecord, TriageItem, TriageRecord
from service.store.schema import decisions, triage

__all__ = ["TriageQueue", "insert_triage", "resolve"]

_decision_columns = [c.label(f"d_{c.name}") for c in decisions.c]


class TriageQueue:
    """Open triage rows, newest first, read through the (status, decision_id) index."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def page(self, limit: int = 50, before: str | None = None) -> list[TriageItem]:
        """Open rows with their decisions, newest first; ``before`` is the last decision id of the previous page."""
        query = self.page_query(limit, before)
        with self.db.read() as conn:
            return [_item(row) for row in conn.execute(query).mappings()]

    @staticmethod
    def page_query(limit: int, before: str | None = None) -> sa.Select[Any]:
        """The queue's query (kept apart so a test can ask the database how it runs)."""
        query = (
            sa.select(triage, *_decision_columns)
            .join(decisions, decisions.c.id == triage.c.decision_id)
            .where(triage.c.status == "open")
            .order_by(triage.c.decision_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(triage.c.decision_id < before)
        return query

    def open_count(self) -> int:
        """How many rows wait in the queue."""
        query = sa.select(sa.func.count()).select_from(triage).where(triage.c.status == "open")
        with self.db.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def get(self, decision_id: str) -> TriageRecord | None:
        """One row by its decision id, whatever its status."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(triage).where(triage.c.decision_id == decision_id)).mappings().first()
        return None if row is None else TriageRecord(**dict(row))

    def prune(self, before: float) -> int:
        """Delete rows (and so their texts) created before ``before``, in the queue or not; returns how many."""
        with self.db.write() as conn:
            result = conn.execute(triage.delete().where(triage.c.created_at < before))
        return int(result.rowcount or 0)


def insert_triage(conn: Connection, rows: Sequence[TriageRecord], decided: Sequence[DecisionRecord]) -> None:
    """Add triage rows and supersede the open rows of tickets decided again (inside the audit transaction)."""
    refs = {r.ticket_ref for r in decided if r.ticket_ref is not None}
    if refs:
        conn.execute(
            triage.update()
            .where(
                triage.c.status == "open",
                triage.c.ticket_ref.in_(sorted(refs)),
                triage.c.decision_id.not_in([r.id for r in decided]),
            )
            .values(status="superseded", resolved_at=time.time())
        )
    if rows:
        conn.execute(triage.insert(), [msgspec.structs.asdict(r) for r in rows])


def resolve(conn: Connection, correction: CorrectionRecord) -> None:
    """Take the rows a correction answers out of the queue: its decision's, and its ticket's."""
    named = [triage.c.decision_id == correction.decision_id] if correction.decision_id else []
    if correction.ticket_ref:
        named.append(triage.c.ticket_ref == correction.ticket_ref)
    if named:
        conn.execute(
            triage.update()
            .where(triage.c.status == "open", sa.or_(*named))
            .values(status="corrected", resolved_at=correction.created_at, correction_id=correction.id)
        )


def _item(row: Any) -> TriageItem:
    values = dict(row)
    decision = {key[2:]: values.pop(key) for key in list(values) if key.startswith("d_")}
    decision["scores"] = msgspec.json.decode(decision["scores"])
    decision["abstained"] = bool(decision["abstained"])
    return TriageItem(triage=TriageRecord(**values), decision=DecisionRecord(**decision))
